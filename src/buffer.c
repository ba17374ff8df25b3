/*
 * buffer.c - growable byte buffers backed by a free list of standard blocks.
 *
 * Most buffers never grow past one block: a request head, a small body, a
 * serialized response head.  Those blocks cycle through a LIFO free list so
 * the hot path of a keep-alive request does not call malloc or free.  A buffer
 * that outgrows its block is realloc'ed like any other and freed on release.
 */
#include "srv/buffer.h"

#include <stdlib.h>
#include <string.h>

#define POOL_MAX 1024

typedef struct block { struct block *next; } block;

static block *pool;
static size_t pool_len;

static char *block_get(void)
{
    if (pool) {
        block *b = pool;
        pool = b->next;
        pool_len--;
        return (char *)b;
    }
    return malloc(SRV_BUF_BLOCK);
}

static void block_put(char *p)
{
    if (pool_len >= POOL_MAX) {
        free(p);
        return;
    }
    block *b = (block *)p;
    b->next = pool;
    pool = b;
    pool_len++;
}

int srv_buf_reserve(srv_buf *b, size_t extra)
{
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    if (b->data == NULL && need <= SRV_BUF_BLOCK) {
        b->data = block_get();
        if (b->data == NULL)
            return -1;
        b->cap = SRV_BUF_BLOCK;
        return 0;
    }
    size_t cap = b->cap ? b->cap : SRV_BUF_BLOCK;
    while (cap < need)
        cap *= 2;
    char *p;
    if (b->cap == SRV_BUF_BLOCK) {
        /* Leaving the pool: move to a private allocation. */
        p = malloc(cap);
        if (p == NULL)
            return -1;
        memcpy(p, b->data, b->len);
        block_put(b->data);
    } else {
        p = realloc(b->data, cap);
        if (p == NULL)
            return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int srv_buf_append(srv_buf *b, const void *p, size_t n)
{
    if (srv_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int srv_buf_puts(srv_buf *b, const char *s)
{
    return srv_buf_append(b, s, strlen(s));
}

void srv_buf_consume(srv_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void srv_buf_release(srv_buf *b)
{
    if (b->data) {
        if (b->cap == SRV_BUF_BLOCK)
            block_put(b->data);
        else
            free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}
