/*
 * buffer.h - growable byte buffers with a free list of standard blocks.
 *
 * Owns the memory behind every per-connection read buffer and every
 * serialized response head.  Buffers start as one standard block
 * (SRV_BUF_BLOCK bytes) taken from a free list, so a keep-alive request never
 * asks the allocator for memory on its hot path; a buffer that had to grow is
 * returned to the allocator when released, and a standard one goes back to the
 * list (bounded, so an idle server gives memory back).
 */
#ifndef SRV_BUFFER_H
#define SRV_BUFFER_H

#include <stddef.h>

#define SRV_BUF_BLOCK 16384

typedef struct srv_buf {
    char *data;
    size_t len;
    size_t cap;
} srv_buf;

/* Makes room for at least `extra` more bytes after len.  Returns 0, or -1
 * when memory is exhausted (the buffer is then left as it was). */
int srv_buf_reserve(srv_buf *b, size_t extra);

/* Appends n bytes.  Returns 0 or -1 (out of memory). */
int srv_buf_append(srv_buf *b, const void *p, size_t n);

/* Appends a NUL-free C string. */
int srv_buf_puts(srv_buf *b, const char *s);

/* Drops the first n bytes, moving the rest to the front. */
void srv_buf_consume(srv_buf *b, size_t n);

/* Gives the memory back (to the free list when it is a standard block). */
void srv_buf_release(srv_buf *b);

#endif
