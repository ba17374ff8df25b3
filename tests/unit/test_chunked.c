/*
 * test_chunked.c - unit tests for src/chunked.c, the chunked body decoder.
 *
 * Every case is decoded whole, split in two at every position, split in
 * three at every pair of positions (short inputs) and one byte at a time:
 * all must agree on the status, the bytes consumed and the body the sink
 * received.  Linked with src/chunked.c and src/reqline.c only.
 */
#include "srv/chunked.h"
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>

#define S(lit) (lit), (sizeof(lit) - 1)

typedef struct limits {
    uint64_t max_body;
    size_t max_ext, max_trailer;
    unsigned max_fields;
} limits;

static const limits deflim = {1 << 20, 4096, 8192, 100};

typedef struct sinkbuf {
    char *p;
    size_t n, cap;
    unsigned calls;
    int fail_status;        /* returned once n + len would exceed fail_after */
    size_t fail_after;
} sinkbuf;

static int sink(void *ctx, const char *p, size_t n)
{
    sinkbuf *b = ctx;
    b->calls++;
    if (n == 0) {
        unit_failed++;
        fprintf(stderr, "FAIL: the sink was called with 0 bytes\n");
    }
    if (b->fail_status && b->n + n > b->fail_after)
        return b->fail_status;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

typedef struct result {
    int st;
    size_t used;
    sinkbuf body;
    const char *why;
} result;

/* Feeds in[0..n) in pieces ending at cuts[0..ncuts) (then n), as a caller
 * would: each piece after what the previous call consumed, stopping at the
 * first status other than MORE.  A MORE must have consumed the whole piece. */
static void feed(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                 const limits *lim, result *r)
{
    srv_chunked d;
    srv_chunked_init(&d, lim->max_body, lim->max_ext, lim->max_trailer, lim->max_fields);
    memset(r, 0, sizeof *r);
    size_t at = 0;
    r->st = SRV_CHUNKED_MORE;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        /* a copy of exactly the piece, so that ASan sees any over-read */
        size_t len = end - at;
        char *piece = malloc(len ? len : 1);
        memcpy(piece, in + at, len);
        size_t used = (size_t)-1;
        r->why = NULL;
        r->st = srv_chunked_decode(&d, piece, len, &used, sink, &r->body, &r->why);
        free(piece);
        if (used > len) {
            unit_failed++;
            fprintf(stderr, "FAIL: used %zu of a %zu-byte piece\n", used, len);
            used = len;
        }
        r->used = at + used;
        if (r->st != SRV_CHUNKED_MORE)
            break;
        if (used != len) {
            unit_failed++;
            fprintf(stderr, "FAIL: MORE after using %zu of %zu bytes of \"%s\"\n",
                    used, len, unit_esc(in, n));
        }
        at = end;
    }
    if (r->st != SRV_CHUNKED_MORE && r->st != SRV_CHUNKED_DONE && r->why == NULL) {
        unit_failed++;
        fprintf(stderr, "FAIL: status %d without a reason for \"%s\"\n", r->st,
                unit_esc(in, n));
    }
}

static int same(const result *a, const result *b)
{
    return a->st == b->st && a->used == b->used && a->body.n == b->body.n
           && (a->body.n == 0 || memcmp(a->body.p, b->body.p, a->body.n) == 0);
}

static unsigned long splits_tried;

/* One split against the whole; reports the first few disagreements only. */
static int agree(const char *in, size_t n, const result *whole, const size_t *cuts,
                 size_t ncuts, const limits *lim, int line)
{
    result r;
    feed(in, n, cuts, ncuts, lim, &r);
    splits_tried++;
    int ok = same(&r, whole);
    if (!ok) {
        unit_failed++;
        fprintf(stderr,
                "test_chunked.c:%d: FAIL: split at", line);
        for (size_t k = 0; k < ncuts; k++)
            fprintf(stderr, " %zu", cuts[k]);
        fprintf(stderr, ": status %d used %zu body %zu, whole: status %d used %zu body %zu"
                " [\"%s\"]\n", r.st, r.used, r.body.n, whole->st, whole->used,
                whole->body.n, unit_esc(in, n));
    }
    free(r.body.p);
    return ok;
}

/* The whole input must give want_st, want_used bytes consumed (or all of
 * them, with -1) and the body want_body; every split must agree. */
static void check_case(const char *in, size_t n, const limits *lim, int want_st,
                       long want_used, const char *want_body, size_t want_bn, int line)
{
    result whole;
    char ctx[700];
    snprintf(ctx, sizeof ctx, "line %d: \"%s\"", line, unit_esc(in, n));
    feed(in, n, NULL, 0, lim, &whole);
    CHECK_INT_CTX(whole.st, want_st, ctx);
    CHECK_INT_CTX(whole.used, want_used < 0 ? (long long)n : want_used, ctx);
    if (want_body)
        CHECK_MEM_CTX(whole.body.p, whole.body.n, want_body, want_bn, ctx);
    if (want_st >= 100 && whole.st == want_st && whole.why == NULL)
        UNIT_FAIL_("no reason [%s]", ctx);

    int ok = 1;
    size_t cuts[3];
    /* two pieces, at every position (including empty pieces) */
    for (size_t i = 0; i <= n && ok; i++) {
        cuts[0] = i;
        ok = agree(in, n, &whole, cuts, 1, lim, line);
    }
    /* three pieces, for short inputs */
    if (n <= 80)
        for (size_t i = 0; i <= n && ok; i++)
            for (size_t j = i; j <= n && ok; j++) {
                cuts[0] = i;
                cuts[1] = j;
                ok = agree(in, n, &whole, cuts, 2, lim, line);
            }
    /* one byte at a time */
    if (ok) {
        size_t *every = malloc((n + 1) * sizeof *every);
        for (size_t i = 0; i < n; i++)
            every[i] = i + 1;
        ok = agree(in, n, &whole, every, n ? n - 1 : 0, lim, line);
        free(every);
    }
    if (ok)
        unit_passed++;
    free(whole.body.p);
}

/* A complete body: DONE, all consumed. */
#define OK(lit, body) check_case(S(lit), &deflim, SRV_CHUNKED_DONE, -1, S(body), __LINE__)
/* A complete body followed by tail (not consumed). */
#define OK_TAIL(lit, tail, body)                                                     \
    check_case(S(lit tail), &deflim, SRV_CHUNKED_DONE, sizeof(lit) - 1, S(body),     \
               __LINE__)
/* Refused with st at byte at (or -1: not checked, taken from the whole). */
#define ERR_LIM(lit, lim, st, at)                                                    \
    check_case(S(lit), (lim), (st), (at) < 0 ? err_at(S(lit), (lim)) : (at), NULL, 0,  \
               __LINE__)
#define ERR(lit, st, at) ERR_LIM(lit, &deflim, st, at)

static long err_at(const char *in, size_t n, const limits *lim)
{
    result r;
    feed(in, n, NULL, 0, lim, &r);
    free(r.body.p);
    return (long)r.used;
}

static void test_simple(void)
{
    OK("0\r\n\r\n", "");
    OK("5\r\nhello\r\n0\r\n\r\n", "hello");
    OK("1\r\nx\r\n0\r\n\r\n", "x");
    OK("5\r\nhello\r\n6\r\n world\r\n1\r\n!\r\n0\r\n\r\n", "hello world!");
    OK("2\r\n\r\n\r\n2\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n");   /* CRLF as data */
    OK("3\r\n0\r\n\r\n0\r\n\r\n", "0\r\n");
    OK("4\r\n\0\xff\n\r\r\n0\r\n\r\n", "\0\xff\n\r");
    /* hex sizes, both cases */
    OK("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij");
    OK("1f\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n",
       "0123456789abcdefghijklmnopqrstu");
    OK("1F\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n",
       "0123456789abcdefghijklmnopqrstu");
    OK("1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n", "abcdefghijklmnopqrstuvwxyz");
    /* leading zeros, even beyond 16 digits */
    OK("0005\r\nhello\r\n000\r\n\r\n", "hello");
    OK("0000000000000001\r\nx\r\n0\r\n\r\n", "x");
    OK("00000000000000000000000000000002\r\nxy\r\n00000000000000000000\r\n\r\n", "xy");
    /* the last chunk may have extensions too */
    OK("0;done\r\n\r\n", "");
}

static void test_sizes(void)
{
    /* 16 significant digits fit in 64 bits (and then exceed max_body) */
    ERR("FFFFFFFFFFFFFFFF\r\n", 413, 16);
    ERR("ffffffffffffffff\r\n", 413, 16);
    ERR("1000000000000000\r\n", 413, 16);
    /* a 17th significant digit overflows: refused at that digit */
    ERR("10000000000000000\r\n", 400, 16);
    ERR("FFFFFFFFFFFFFFFFF\r\n", 400, 16);
    ERR("0FFFFFFFFFFFFFFFFF\r\n", 400, 17);
    ERR("123456789abcdef012345\r\n", 400, 16);
    /* not a size */
    ERR("\r\n", 400, 0);
    ERR("\r\n0\r\n\r\n", 400, 0);
    ERR("x\r\n", 400, 0);
    ERR("g\r\n", 400, 0);
    ERR("-1\r\n", 400, 0);
    ERR("+1\r\n", 400, 0);
    ERR("0x5\r\nhello\r\n0\r\n\r\n", 400, 1);
    ERR(" 5\r\nhello\r\n0\r\n\r\n", 400, 0);
    ERR("\t5\r\nhello\r\n0\r\n\r\n", 400, 0);
    ERR(";a\r\n", 400, 0);
    ERR("5g\r\nhello\r\n0\r\n\r\n", 400, 1);
    ERR("5.0\r\n", 400, 1);
    /* whitespace after the size must lead to ';' */
    ERR("5 \r\nhello\r\n0\r\n\r\n", 400, 2);
    ERR("5\t\r\nhello\r\n0\r\n\r\n", 400, 2);
    ERR("5  \r\nhello\r\n0\r\n\r\n", 400, 3);
    ERR("5 5\r\nhello\r\n0\r\n\r\n", 400, 2);
    ERR("0 \r\n\r\n", 400, 2);
}

static void test_max_body(void)
{
    limits lim = deflim;
    lim.max_body = 10;
    check_case(S("a\r\n0123456789\r\n0\r\n\r\n"), &lim, SRV_CHUNKED_DONE, -1,
               S("0123456789"), __LINE__);
    check_case(S("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), &lim, SRV_CHUNKED_DONE, -1,
               S("helloworld"), __LINE__);
    /* refused at the end of the size, before any of the chunk's data */
    check_case(S("b\r\n0123456789a\r\n0\r\n\r\n"), &lim, 413, 1, S(""), __LINE__);
    check_case(S("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"), &lim, 413, 11, S("hello"),
               __LINE__);
    check_case(S("5\r\nhello\r\n6;a=b\r\nworld!\r\n0\r\n\r\n"), &lim, 413, 11, S("hello"),
               __LINE__);
    check_case(S("5\r\nhello\r\n0006 ;a\r\nworld!\r\n0\r\n\r\n"), &lim, 413, 14,
               S("hello"), __LINE__);
    lim.max_body = 0;
    check_case(S("0\r\n\r\n"), &lim, SRV_CHUNKED_DONE, -1, S(""), __LINE__);
    check_case(S("1\r\nx\r\n0\r\n\r\n"), &lim, 413, 1, S(""), __LINE__);
    lim.max_body = UINT64_MAX;
    check_case(S("FFFFFFFFFFFFFFFF\r\nabc"), &lim, SRV_CHUNKED_MORE, -1, S("abc"), __LINE__);
}

static void test_extensions(void)
{
    OK("5;a=1\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5; name=value\r\nhello\r\n0\r\n\r\n", "hello");
    OK("6 ; a = \"b c\"\r\nhello!\r\n0\r\n\r\n", "hello!");
    OK("5;a=\"x\\\"y\"\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a=\"\\\\\"\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a=1;b=2;c=\"3\"\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a;b\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5 ;a ;b=1 ; c\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5\t;\ta\t=\t1\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a=\"\xc3\xa9\x80\"\r\nhello\r\n0\r\n\r\n", "hello");   /* obs-text */
    OK("5;a=\"\\\t\"\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a=\"x\";b=y\r\nhello\r\n0\r\n\r\n", "hello");
    OK("5;a=\"! #[]^~(),/:;<=>?@{}\"\r\nhello\r\n0\r\n\r\n", "hello");   /* qdtext */
    OK("5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", "hello");
    /* invalid */
    ERR("5;=x\r\nhello\r\n0\r\n\r\n", 400, 2);
    ERR("5;\r\nhello\r\n0\r\n\r\n", 400, 2);
    ERR("5;;a\r\nhello\r\n0\r\n\r\n", 400, 2);
    ERR("5;a=\r\nhello\r\n0\r\n\r\n", 400, 4);
    ERR("5;a==1\r\nhello\r\n0\r\n\r\n", 400, 4);
    ERR("5;a=\"x\r\nhello\r\n0\r\n\r\n", 400, 6);      /* unterminated quote */
    ERR("5;a=\"x\\\r\nhello\r\n0\r\n\r\n", 400, 7);
    ERR("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", 400, 7);
    ERR("5;a=\"x\"=\r\nhello\r\n0\r\n\r\n", 400, 7);
    ERR("5;a=b c\r\nhello\r\n0\r\n\r\n", 400, 6);
    ERR("5;a b\r\nhello\r\n0\r\n\r\n", 400, 4);
    ERR("5;a=b=c\r\nhello\r\n0\r\n\r\n", 400, 5);
    ERR("5;a=b =c\r\nhello\r\n0\r\n\r\n", 400, 6);
    ERR("5;a=\"b\" =c\r\nhello\r\n0\r\n\r\n", 400, 8);
    ERR("5;a(b)\r\nhello\r\n0\r\n\r\n", 400, 3);
    ERR("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", 400, 5);
    ERR("5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n", 400, 5);
    ERR("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n", 400, 6);
    ERR("5;a=\xc3\xa9\r\nhello\r\n0\r\n\r\n", 400, 4);    /* obs-text is no token */
    ERR("5;a\x00\r\nhello\r\n0\r\n\r\n", 400, 3);
    /* BWS only before ';' or '=' (RFC 9112 7.1.1): none at the line's end */
    ERR("5;a \r\nhello\r\n0\r\n\r\n", 400, 4);
    ERR("5;a=1 \r\nhello\r\n0\r\n\r\n", 400, 6);
    ERR("5;a=\"1\" \r\nhello\r\n0\r\n\r\n", 400, 8);

    /* max_ext bounds the size line: size, extensions and CR */
    limits lim = deflim;
    lim.max_ext = 6;
    check_case(S("5;a=1\r\nhello\r\n0;b=2\r\n\r\n"), &lim, SRV_CHUNKED_DONE, -1,
               S("hello"), __LINE__);
    check_case(S("5;a=12\r\nhello\r\n0\r\n\r\n"), &lim, 400, 6, S(""), __LINE__);
    check_case(S("5;a=1\r\nhello\r\n0;b=23\r\n\r\n"), &lim, 400, 20, S("hello"), __LINE__);
    check_case(S("0000005\r\nhello\r\n0\r\n\r\n"), &lim, 400, 6, S(""), __LINE__);
    /* a long extension against the default 4096 */
    {
        size_t en = 5000;
        char *in = malloc(en + 64);
        size_t o = 0;
        memcpy(in, "5;a=", 4);
        o = 4;
        memset(in + o, 'x', en);
        o += en;
        memcpy(in + o, "\r\nhello\r\n0\r\n\r\n", 14);
        o += 14;
        result r;
        feed(in, o, NULL, 0, &deflim, &r);
        CHECK_INT(r.st, 400);
        CHECK_INT(r.used, 4096);
        free(r.body.p);
        size_t cut = 2000;
        feed(in, o, &cut, 1, &deflim, &r);
        CHECK_INT(r.st, 400);
        CHECK_INT(r.used, 4096);
        free(r.body.p);
        /* exactly 4096 bytes with the CR is fine, 4097 is not */
        memcpy(in + 4 + 4091, "\r\nhello\r\n0\r\n\r\n", 14);
        check_case(in, 4 + 4091 + 14, &deflim, SRV_CHUNKED_DONE, -1, S("hello"), __LINE__);
        memcpy(in + 4 + 4092, "\r\nhello\r\n0\r\n\r\n", 14);
        check_case(in, 4 + 4092 + 14, &deflim, 400, 4096, S(""), __LINE__);
        free(in);
    }
}

static void test_framing(void)
{
    /* the CRLF after the data */
    ERR("5\r\nhelloX\r\n0\r\n\r\n", 400, 8);
    ERR("5\r\nhello!\r\n0\r\n\r\n", 400, 8);
    ERR("5\r\nhell\r\n0\r\n\r\n", 400, 8);   /* the CR was data */
    ERR("5\r\nhello0\r\n\r\n", 400, 8);
    ERR("5\r\nhello\r0\r\n\r\n", 400, 9);
    ERR("5\r\nhello\r\r\n0\r\n\r\n", 400, 9);
    /* bare LF anywhere */
    ERR("5\nhello\r\n0\r\n\r\n", 400, 1);
    ERR("5;a=1\nhello\r\n0\r\n\r\n", 400, 5);
    ERR("5;a\nhello\r\n0\r\n\r\n", 400, 3);
    ERR("5\r\nhello\n0\r\n\r\n", 400, 8);
    ERR("0\n\r\n", 400, 1);
    ERR("0\r\n\n", 400, 3);
    ERR("0\r\nX: y\n\r\n", 400, 7);
    ERR("0\r\nX: y\r\n\n", 400, 9);
    ERR("0\r\nX\n: y\r\n\r\n", 400, 4);
    /* bare CR */
    ERR("5\r\r\nhello\r\n0\r\n\r\n", 400, 2);
    ERR("5\rhello\r\n0\r\n\r\n", 400, 2);
    ERR("0\r\n\r\r\n", 400, 4);
    ERR("0\r\n\rX", 400, 4);
    ERR("0\r\nX: y\rz\r\n\r\n", 400, 8);
    /* incomplete: MORE, everything consumed, the body so far delivered */
    check_case(S("5\r\nhel"), &deflim, SRV_CHUNKED_MORE, -1, S("hel"), __LINE__);
    check_case(S("5\r\nhello\r\n0\r\n"), &deflim, SRV_CHUNKED_MORE, -1, S("hello"), __LINE__);
    check_case(S("5\r\nhello\r\n0\r\n\r"), &deflim, SRV_CHUNKED_MORE, -1, S("hello"),
               __LINE__);
    check_case(S("5\r\nhello\r\n0\r\nX: y\r\n"), &deflim, SRV_CHUNKED_MORE, -1, S("hello"),
               __LINE__);
    check_case(S(""), &deflim, SRV_CHUNKED_MORE, -1, S(""), __LINE__);
}

static void test_used_stops_at_end(void)
{
    OK_TAIL("5\r\nhello\r\n0\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "hello");
    OK_TAIL("0\r\n\r\n", "POST / HTTP/1.1\r\n", "");
    OK_TAIL("0\r\nX-A: b\r\n\r\n", "GET / HTTP/1.1\r\n\r\n", "");
    OK_TAIL("3\r\nabc\r\n0\r\n\r\n", "3\r\nxyz\r\n0\r\n\r\n", "abc");
    OK_TAIL("0\r\n\r\n", "\r\n", "");
    OK_TAIL("0\r\n\r\n", "\n", "");
    OK_TAIL("0\r\n\r\n", "\0", "");

    /* after DONE, nothing more is taken */
    srv_chunked d;
    srv_chunked_init(&d, 100, 100, 100, 10);
    sinkbuf b = {0};
    size_t used = 99;
    const char *why = NULL;
    CHECK_INT(srv_chunked_decode(&d, S("1\r\na\r\n0\r\n\r\nXYZ"), &used, sink, &b, &why),
              SRV_CHUNKED_DONE);
    CHECK_INT(used, 11);
    used = 99;
    CHECK_INT(srv_chunked_decode(&d, S("XYZ"), &used, sink, &b, &why), SRV_CHUNKED_DONE);
    CHECK_INT(used, 0);
    CHECK_MEM(b.p, b.n, "a", 1);
    /* init starts a new body */
    srv_chunked_init(&d, 100, 100, 100, 10);
    CHECK_INT(srv_chunked_decode(&d, S("2\r\nbc\r\n0\r\n\r\n"), &used, sink, &b, &why),
              SRV_CHUNKED_DONE);
    CHECK_INT(used, 12);
    CHECK_MEM(b.p, b.n, "abc", 3);
    /* an empty call */
    srv_chunked_init(&d, 100, 100, 100, 10);
    used = 99;
    CHECK_INT(srv_chunked_decode(&d, "", 0, &used, sink, &b, &why), SRV_CHUNKED_MORE);
    CHECK_INT(used, 0);
    free(b.p);
}

static void test_trailers(void)
{
    OK("0\r\nX-Checksum: abc\r\n\r\n", "");
    OK("5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: two words\t\r\nx-c:\r\nD:  \r\n\r\n", "hello");
    OK("0\r\nX-Obs: caf\xc3\xa9\x80\xff\r\n\r\n", "");
    OK("0\r\nX:a:b:c\r\n\r\n", "");
    OK("0\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", "");
    /* names that look like forbidden ones but are not */
    OK("0\r\nContent-MD5: x\r\nX-Content-Length: 1\r\nHosts: y\r\nHos: z\r\n\r\n", "");
    OK("0\r\nContent-Length-X: 1\r\nTransfer-Encoding-X: c\r\n\r\n", "");
    OK("0\r\nA-Rather-Long-Trailer-Field-Name: 1\r\n\r\n", "");
    OK("0\r\nContent-Length-And-Then-Some: 1\r\n\r\n", "");
    OK("0\r\nabcdefghijklmnopqrstuvwx: 24\r\n\r\n", "");
    OK("0\r\nabcdefghijklmnopqrstuvwxy: 25\r\n\r\n", "");

    /* forbidden fields, any case */
    ERR("0\r\nContent-Length: 5\r\n\r\n", 400, 17);
    ERR("0\r\ncontent-length: 5\r\n\r\n", 400, 17);
    ERR("0\r\nCONTENT-LENGTH: 5\r\n\r\n", 400, 17);
    ERR("0\r\nHost: x\r\n\r\n", 400, 7);
    ERR("0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, 20);
    ERR("0\r\nAuthorization: Basic eA==\r\n\r\n", 400, 16);
    ERR("5\r\nhello\r\n0\r\nX-A: 1\r\nTE: trailers\r\n\r\n", 400, -1);
    ERR("0\r\nTrailer: x\r\n\r\n", 400, 10);
    ERR("0\r\nProxy-Authorization: x\r\n\r\n", 400, 22);
    ERR("0\r\nSet-Cookie: a=b\r\n\r\n", 400, 13);
    ERR("0\r\nContent-Length:5\r\n\r\n", 400, 17);
    ERR("0\r\nContent-Length:\r\n\r\n", 400, 17);

    /* malformed fields */
    ERR("0\r\nX: a\r\n b\r\n\r\n", 400, 9);      /* obs-fold */
    ERR("0\r\nX: a\r\n\tb\r\n\r\n", 400, 9);
    ERR("0\r\n b\r\n\r\n", 400, 3);
    ERR("0\r\nX : a\r\n\r\n", 400, 4);
    ERR("0\r\n: a\r\n\r\n", 400, 3);
    ERR("0\r\nX\r\n\r\n", 400, 4);
    ERR("0\r\nX a\r\n\r\n", 400, 4);
    ERR("0\r\nX(: a\r\n\r\n", 400, 4);
    ERR("0\r\nX: a\0b\r\n\r\n", 400, 7);           /* NUL in value */
    ERR("0\r\nX: \0\r\n\r\n", 400, 6);
    ERR("0\r\nX: a\x7f\r\n\r\n", 400, 7);
    ERR("0\r\nX: a\x01\r\n\r\n", 400, 7);
    ERR("0\r\nX\0: a\r\n\r\n", 400, 4);
    ERR("0\r\nX\xc3\xa9: a\r\n\r\n", 400, 4);

    /* too many fields, too many bytes: 431 */
    limits lim = deflim;
    lim.max_fields = 2;
    check_case(S("0\r\nA: 1\r\nB: 2\r\n\r\n"), &lim, SRV_CHUNKED_DONE, -1, S(""), __LINE__);
    check_case(S("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), &lim, 431, 15, S(""), __LINE__);
    lim.max_fields = 0;
    check_case(S("0\r\n\r\n"), &lim, SRV_CHUNKED_DONE, -1, S(""), __LINE__);
    check_case(S("0\r\nA: 1\r\n\r\n"), &lim, 431, 3, S(""), __LINE__);
    lim = deflim;
    /* "A: 1\r\nB: 2\r\n" is 12 bytes, 14 with the final CRLF */
    lim.max_trailer = 14;
    check_case(S("0\r\nA: 1\r\nB: 2\r\n\r\n"), &lim, SRV_CHUNKED_DONE, -1, S(""), __LINE__);
    lim.max_trailer = 11;
    check_case(S("0\r\nA: 1\r\nB: 2\r\n\r\n"), &lim, 431, 14, S(""), __LINE__);
    lim.max_trailer = 5;
    check_case(S("0\r\nA: 1234567890\r\n\r\n"), &lim, 431, 8, S(""), __LINE__);
    lim.max_trailer = 100;
    {
        /* many fields, within and beyond the default limits */
        char in[4096];
        size_t o = 0;
        memcpy(in, "1\r\nz\r\n0\r\n", 9);
        o = 9;
        for (int i = 0; i < 100; i++)
            o += (size_t)snprintf(in + o, sizeof in - o, "X-%d: %d\r\n", i, i);
        memcpy(in + o, "\r\n", 2);
        o += 2;
        check_case(in, o, &deflim, SRV_CHUNKED_DONE, -1, S("z"), __LINE__);
        lim = deflim;
        lim.max_fields = 99;
        check_case(in, o, &lim, 431, (long)(o - 2 - 10), S("z"), __LINE__);
        lim = deflim;
        lim.max_trailer = 200;
        result r;
        feed(in, o, NULL, 0, &lim, &r);
        CHECK_INT(r.st, 431);
        CHECK_INT(r.used, 9 + 200);
        free(r.body.p);
    }
}

static void test_trailer_forbidden(void)
{
    static const char *const yes[] = {
        "content-length", "transfer-encoding", "host", "authorization", "te",
        "trailer", "content-type", "content-encoding", "content-range", "cookie",
        "set-cookie", "cache-control", "expect", "max-forwards", "pragma", "range",
        "proxy-authorization", "proxy-authenticate", "www-authenticate", "age",
        "expires", "date", "location", "retry-after", "vary", "if-match",
        "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
        "connection", "keep-alive", "upgrade", "proxy-connection",
    };
    static const char *const no[] = {
        "", "x-checksum", "content-md5", "digest", "server-timing", "etag",
        "hos", "hostx", "content-lengt", "content-length ", "Content-Length",
        "HOST", "t", "tee", "x-host",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK_INT_CTX(srv_trailer_forbidden(yes[i], strlen(yes[i])), 1, yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK_INT_CTX(srv_trailer_forbidden(no[i], strlen(no[i])), 0, no[i]);
    CHECK_INT(srv_trailer_forbidden("hostname", 4), 1);
    CHECK_INT(srv_trailer_forbidden("host", 3), 0);

    /* each forbidden name is refused in a trailer, as sent in any case */
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        char in[128];
        size_t nl = strlen(yes[i]);
        memcpy(in, "0\r\n", 3);
        for (size_t k = 0; k < nl; k++) {
            char c = yes[i][k];
            in[3 + k] = (k % 2 && c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        }
        memcpy(in + 3 + nl, ": v\r\n\r\n", 7);
        check_case(in, nl + 10, &deflim, 400, (long)(3 + nl), S(""), __LINE__);
    }
}

static int fixed_status;
static int refusing_sink(void *ctx, const char *p, size_t n)
{
    (void)ctx; (void)p; (void)n;
    return fixed_status;
}

static void test_sink_errors(void)
{
    /* the sink's status is returned, *used at the run it refused */
    srv_chunked d;
    size_t used = 99;
    const char *why = NULL;
    fixed_status = 507;
    srv_chunked_init(&d, 100, 100, 100, 10);
    CHECK_INT(srv_chunked_decode(&d, S("5\r\nhello\r\n0\r\n\r\n"), &used, refusing_sink,
                                 NULL, &why), 507);
    CHECK_INT(used, 3);
    CHECK(why != NULL);
    fixed_status = 413;
    srv_chunked_init(&d, 100, 100, 100, 10);
    CHECK_INT(srv_chunked_decode(&d, S("0\r\n\r\n"), &used, refusing_sink, NULL, &why),
              SRV_CHUNKED_DONE);   /* no data, no sink call */

    /* a sink that takes 7 bytes then refuses: the body so far is intact */
    const char in[] = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    for (size_t cut = 0; cut < sizeof in; cut++) {
        srv_chunked_init(&d, 100, 100, 100, 10);
        sinkbuf b = {0};
        b.fail_status = 500;
        b.fail_after = 7;
        size_t u1 = 0, u2 = 0;
        int st = srv_chunked_decode(&d, in, cut, &u1, sink, &b, &why);
        if (st == SRV_CHUNKED_MORE) {
            CHECK_INT(u1, cut);
            st = srv_chunked_decode(&d, in + cut, sizeof in - 1 - cut, &u2, sink, &b, &why);
        }
        char ctx[32];
        snprintf(ctx, sizeof ctx, "cut %zu", cut);
        CHECK_INT_CTX(st, 500, ctx);
        CHECK_INT_CTX(b.n <= 7, 1, ctx);
        CHECK_MEM_CTX(b.p, b.n, "hellowo", b.n, ctx);
        free(b.p);
    }
}

static uint32_t seed = 12345;
static unsigned rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7fff;
}
#define RND() rnd()

/* Random valid bodies (and corrupted ones) against every split. */
static void test_random(void)
{
    for (int iter = 0; iter < 60; iter++) {
        char in[1024], body[1024];
        size_t o = 0, bn = 0;
        int chunks = (int)(RND() % 5);
        for (int c = 0; c < chunks; c++) {
            size_t len = 1 + RND() % 40;
            static const char *const exts[] = {"", ";a", ";a=b", " ; q=\"x y\"", ";a;b=1"};
            o += (size_t)snprintf(in + o, sizeof in - o, RND() % 2 ? "%zx%s\r\n" : "%zX%s\r\n",
                                  len, exts[RND() % 5]);
            for (size_t k = 0; k < len; k++)
                body[bn++] = in[o++] = (char)(RND() & 0xff);
            memcpy(in + o, "\r\n", 2);
            o += 2;
        }
        o += (size_t)snprintf(in + o, sizeof in - o, "0\r\n%s\r\n",
                              RND() % 2 ? "X-T: v\r\n" : "");
        check_case(in, o, &deflim, SRV_CHUNKED_DONE, -1, body, bn, __LINE__);
        /* corrupt one byte: whatever the result, every split must agree */
        size_t at = RND() % o;
        in[at] = (char)(RND() & 0xff);
        result whole;
        feed(in, o, NULL, 0, &deflim, &whole);
        check_case(in, o, &deflim, whole.st, (long)whole.used, whole.body.p, whole.body.n,
                   __LINE__);
        free(whole.body.p);
    }
}

int main(void)
{
    test_simple();
    test_sizes();
    test_max_body();
    test_extensions();
    test_framing();
    test_used_stops_at_end();
    test_trailers();
    test_trailer_forbidden();
    test_sink_errors();
    test_random();
    printf("unit_chunked: %lu splits compared with whole inputs\n", splits_tried);
    return unit_report("unit_chunked");
}
