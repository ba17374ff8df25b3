/*
 * test_pathinfo.c - unit tests for src/pathinfo.c: a request target's path
 * split from its query, and the path's percent-decoding into PATH_INFO's
 * bytes.  Inputs are copied into exactly sized heap buffers, so that ASan
 * sees any read past the end (a '%' in the last two bytes) or any write
 * past the n bytes the decoder may use.  Linked with src/pathinfo.c only.
 */
#include "srv/pathinfo.h"
#include "unit.h"

#include <stdlib.h>

#define S(lit) (lit), (sizeof(lit) - 1)

static void check_decode(const char *in, size_t n, const char *want, size_t wn)
{
    char *p = malloc(n ? n : 1), *out = malloc(n ? n : 1);
    memcpy(p, in, n);
    size_t o = srv_pathinfo_decode(p, n, out);
    CHECK_INT_CTX(o <= n, 1, unit_esc(in, n));
    CHECK_MEM_CTX(out, o <= n ? o : 0, want, wn, unit_esc(in, n));
    free(p);
    free(out);
}

static void test_plain(void)
{
    check_decode(S(""), S(""));
    check_decode(S("/"), S("/"));
    check_decode(S("/a/b/c.txt"), S("/a/b/c.txt"));
    check_decode(S("*"), S("*"));
    /* '+' is not a space in a path */
    check_decode(S("/a+b"), S("/a+b"));
    check_decode(S("/a%2Bb"), S("/a+b"));
    /* nothing else is touched either: dot segments, doubled slashes */
    check_decode(S("//a/../b/./c"), S("//a/../b/./c"));
}

static void test_escapes(void)
{
    check_decode(S("%41"), S("A"));
    check_decode(S("/a%20b"), S("/a b"));
    check_decode(S("/%2F%2f"), S("///"));
    check_decode(S("%aB%Ab%ab%AB"), S("\xab\xab\xab\xab"));
    check_decode(S("%00"), S("\0"));
    check_decode(S("/a%00b"), S("/a\0b"));
    check_decode(S("%ff%FF%80%7f"), S("\xff\xff\x80\x7f"));
    check_decode(S("%e2%82%ac"), S("\xe2\x82\xac"));   /* UTF-8 stays bytes */
    check_decode(S("%30%39%3a%3A"), S("09::"));
    /* decoded once: %25 is a '%' that starts nothing */
    check_decode(S("%2541"), S("%41"));
    check_decode(S("%25%34%31"), S("%41"));
    check_decode(S("%%41"), S("%A"));
    check_decode(S("%%%41"), S("%%A"));
    /* escapes back to back */
    check_decode(S("%41%42%43"), S("ABC"));
}

static void test_at_end(void)
{
    /* "%XX" ending the string is decoded; a shorter one is kept */
    check_decode(S("/a%41"), S("/aA"));
    check_decode(S("/a%4"), S("/a%4"));
    check_decode(S("/a%"), S("/a%"));
    check_decode(S("%"), S("%"));
    check_decode(S("%4"), S("%4"));
    check_decode(S("%%"), S("%%"));
    check_decode(S("%%%"), S("%%%"));
    /* the decoder stops at n: a hex digit after it is not read */
    check_decode("%41", 2, S("%4"));
    check_decode("/%4142", 3, S("/%4"));
    check_decode("/%4142", 4, S("/A"));
}

static void test_bad_hex(void)
{
    check_decode(S("%zz"), S("%zz"));
    check_decode(S("%4g"), S("%4g"));
    check_decode(S("%g4"), S("%g4"));
    check_decode(S("%G0"), S("%G0"));
    check_decode(S("% 41"), S("% 41"));
    check_decode(S("%-1"), S("%-1"));
    check_decode(S("%+1"), S("%+1"));
    check_decode(S("%4\xff"), S("%4\xff"));
    check_decode(S("%\xff" "4"), S("%\xff" "4"));
    check_decode(S("%\0" "41"), S("%\0" "41"));
    /* after a bad one, the next '%' is tried at once */
    check_decode(S("%4%41"), S("%4A"));
    check_decode(S("%x%41%"), S("%xA%"));
    /* the characters next to each range */
    check_decode(S("%/0%:0%@0%`0"), S("%/0%:0%@0%`0"));
}

static void test_raw_bytes(void)
{
    check_decode(S("/caf\xe9"), S("/caf\xe9"));
    check_decode(S("/\x80\xff\xc3\xa9%41"), S("/\x80\xff\xc3\xa9" "A"));
    check_decode(S("\t\r\n"), S("\t\r\n"));
}

static void test_long(void)
{
    /* longer than environ.c's 1 KiB stack buffer: every byte escaped */
    size_t n = 3 * 1500;
    char *in = malloc(n + 1), want[1500];
    for (size_t i = 0; i < 1500; i++) {
        unsigned char b = (unsigned char)(i * 7);
        snprintf(in + 3 * i, 4, "%%%02X", b);   /* and a NUL, overwritten next */
        want[i] = (char)b;
    }
    check_decode(in, n, want, sizeof want);
    free(in);
}

static void check_split(const char *in, size_t n, const char *path, size_t plen,
                        const char *query, size_t qlen)
{
    char *p = malloc(n ? n : 1);
    memcpy(p, in, n);
    srv_pathinfo_parts r;
    memset(&r, 0xaa, sizeof r);
    srv_pathinfo_split(p, n, &r);
    const char *ctx = unit_esc(in, n);
    CHECK_MEM_CTX(p, r.path_len <= n ? r.path_len : 0, path, plen, ctx);
    if (query == NULL) {
        CHECK_INT_CTX(r.query == NULL, 1, ctx);
        CHECK_INT_CTX(r.query_len, 0, ctx);
    } else {
        int inside = r.query != NULL && r.query >= p && r.query + r.query_len <= p + n;
        CHECK_INT_CTX(inside, 1, ctx);
        if (inside)
            CHECK_MEM_CTX(r.query, r.query_len, query, qlen, ctx);
    }
    free(p);
}

static void test_split(void)
{
    check_split(S(""), S(""), NULL, 0);
    check_split(S("/"), S("/"), NULL, 0);
    check_split(S("*"), S("*"), NULL, 0);
    check_split(S("/a/b"), S("/a/b"), NULL, 0);
    check_split(S("/a?b=1&c=2"), S("/a"), S("b=1&c=2"));
    /* an empty query is there, and not the same as none */
    check_split(S("/a?"), S("/a"), S(""));
    check_split(S("?"), S(""), S(""));
    check_split(S("?x"), S(""), S("x"));
    /* the first '?' splits; later ones are the query's */
    check_split(S("/a?b?c"), S("/a"), S("b?c"));
    check_split(S("/a??"), S("/a"), S("?"));
    /* a '#' ends the target, the '?' too if it comes later */
    check_split(S("/a#frag"), S("/a"), NULL, 0);
    check_split(S("/a?q#frag"), S("/a"), S("q"));
    check_split(S("/a?#frag"), S("/a"), S(""));
    check_split(S("/a#f?q"), S("/a"), NULL, 0);
    check_split(S("#"), S(""), NULL, 0);
    check_split(S("/a?q#f#g"), S("/a"), S("q"));
    /* escapes are not looked into: %3F is not a '?' */
    check_split(S("/a%3Fb?c%23d"), S("/a%3Fb"), S("c%23d"));
    /* raw and NUL bytes are just bytes */
    check_split(S("/\xe9\0?\xff"), S("/\xe9\0"), S("\xff"));
    /* n is the end, not a NUL */
    check_split("/a?b", 2, S("/a"), NULL, 0);
}

int main(void)
{
    test_plain();
    test_escapes();
    test_at_end();
    test_bad_hex();
    test_raw_bytes();
    test_long();
    test_split();
    return unit_report("pathinfo");
}
