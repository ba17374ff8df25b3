/*
 * chunked.h - the chunked transfer coding of a request body (RFC 9112 7.1),
 * decoded incrementally: pure code, no Python, no libev.
 *
 * Owns the decoder's state: chunk sizes, chunk extensions (accepted with
 * their optional whitespace and quoted values, and ignored, up to a bound),
 * the CRLF after each chunk, and the trailer section, whose fields are
 * checked and then dropped (RFC 9110 6.5.1 lists the fields a trailer must
 * never carry: srv refuses a request that sends one).  Decoded bytes go to a
 * sink the caller gives; the decoder never buffers body bytes itself.
 */
#ifndef SRV_CHUNKED_H
#define SRV_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

/* Receives decoded body bytes; returns 0, or an HTTP status to stop with. */
typedef int (*srv_chunked_sink)(void *ctx, const char *p, size_t n);

typedef struct srv_chunked {
    int state;
    uint64_t remaining;     /* bytes left in the current chunk */
    size_t ext_len;         /* bytes of extensions on the current size line */
    size_t trailer_bytes;   /* bytes of the trailer section so far */
    unsigned trailer_fields;
    char name[24];          /* the current trailer field's name, lower-cased */
    size_t name_len;        /* may exceed sizeof name: then it is no known name */
    /* limits, set by the caller before the first byte */
    uint64_t max_body;      /* a chunk beyond this total gets 413 */
    uint64_t body_seen;
    size_t max_ext;         /* extension bytes per size line (400 beyond) */
    size_t max_trailer;     /* trailer section bytes (431 beyond) */
    unsigned max_trailer_fields;
} srv_chunked;

enum {
    SRV_CHUNKED_MORE = 0,   /* all bytes consumed, the body goes on */
    SRV_CHUNKED_DONE = 1,   /* the last chunk and trailers are complete */
};

/* Starts a new body with the given limits. */
void srv_chunked_init(srv_chunked *d, uint64_t max_body, size_t max_ext,
                      size_t max_trailer, unsigned max_trailer_fields);

/* Decodes p[0..n).  Sets *used to the bytes consumed (all of them unless
 * the body ended or an error stopped it).  Returns SRV_CHUNKED_MORE,
 * SRV_CHUNKED_DONE, or an HTTP status (400, 413, 431, or the sink's) with
 * *why saying what was wrong. */
int srv_chunked_decode(srv_chunked *d, const char *p, size_t n, size_t *used,
                       srv_chunked_sink sink, void *ctx, const char **why);

/* Must a trailer never carry this field (name lower-case)? */
int srv_trailer_forbidden(const char *name, size_t len);

#endif
