/*
 * fuzz_chunked.c - libFuzzer harness for the chunked body decoder alone
 * (src/chunked.c; no Python, no libev).
 *
 * Input: byte 0 picks where the rest is split in two, byte 1 picks the
 * limits, the rest is the body as a client sends it.  The body is decoded
 * whole, in the two pieces and one byte at a time; the three must agree on
 * the status, the bytes consumed and the bytes the sink received, or the
 * harness aborts.  It also aborts if the decoder breaks its contract: a MORE
 * that did not consume everything, more consumed than given, more body than
 * max_body, or an error status without a reason.
 *
 * Build: make fuzz-build (clang); run: build-fuzz/fuzz_chunked.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srv/chunked.h"

typedef struct outbuf {
    uint8_t *p;
    size_t n, cap;
} outbuf;

static int sink(void *ctx, const char *p, size_t n)
{
    outbuf *b = ctx;
    if (n == 0)
        abort();
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

typedef struct limits {
    uint64_t max_body;
    size_t max_ext, max_trailer;
    unsigned max_fields;
} limits;

typedef struct result {
    int st;
    size_t used;
    outbuf body;
} result;

/* Decodes in[0..n): a first piece ending at first (which may be empty),
 * then pieces of step bytes. */
static void run(const uint8_t *in, size_t n, size_t first, size_t step,
                const limits *lim, result *r)
{
    srv_chunked d;
    srv_chunked_init(&d, lim->max_body, lim->max_ext, lim->max_trailer, lim->max_fields);
    memset(r, 0, sizeof *r);
    r->st = SRV_CHUNKED_MORE;
    size_t at = 0;
    for (int k = 0; k == 0 || at < n; k++) {
        size_t end = k == 0 ? first : at + step;
        if (end > n)
            end = n;
        size_t len = end - at, used = (size_t)-1;
        const char *why = NULL;
        r->st = srv_chunked_decode(&d, (const char *)in + at, len, &used, sink, &r->body,
                                   &why);
        if (used > len)
            abort();
        r->used = at + used;
        if (r->st != SRV_CHUNKED_MORE) {
            if (r->st != SRV_CHUNKED_DONE && why == NULL)
                abort();
            break;
        }
        if (used != len)
            abort();
        at = end;
    }
    if (r->body.n > lim->max_body)
        abort();
}

static int same(const result *a, const result *b)
{
    return a->st == b->st && a->used == b->used && a->body.n == b->body.n
           && (a->body.n == 0 || memcmp(a->body.p, b->body.p, a->body.n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t n = size - 2;
    const uint8_t *in = data + 2;
    size_t cut = n ? data[0] % (n + 1) : 0;
    static const uint64_t bodies[] = {0, 1, 16, 1000, 1 << 20, UINT64_MAX};
    limits lim = {
        .max_body = bodies[(data[1] & 7) % 6],
        .max_ext = (data[1] & 8) ? 8 : 4096,
        .max_trailer = (data[1] & 16) ? 12 : 8192,
        .max_fields = (data[1] & 32) ? 1 : 100,
    };
    result whole, split, bytes;
    run(in, n, n, 1, &lim, &whole);
    run(in, n, cut, n, &lim, &split);
    run(in, n, n ? 1 : 0, 1, &lim, &bytes);
    if (!same(&whole, &split) || !same(&whole, &bytes))
        abort();
    free(whole.body.p);
    free(split.body.p);
    free(bytes.body.p);
    return 0;
}
