/*
 * test_reqline.c - unit tests for src/reqline.c: the request line parser,
 * srv_reqline_skip_empty, srv_host_valid and srv_authority_host_len.
 *
 * Linked with src/reqline.c alone (no srv_core, no Python, no libev).
 */
#include "srv/reqline.h"
#include "unit.h"

#include <stdlib.h>

#define S(lit) (lit), (sizeof(lit) - 1)
#define CHECK_LIT(got, gn, lit) CHECK_MEM(got, gn, lit, sizeof(lit) - 1)

static const srv_reqline_limits deflim = {.max_target = 8192, .max_method = 32};

static int parse_lim(const char *p, size_t n, const srv_reqline_limits *lim,
                     srv_reqline *out)
{
    const char *why = NULL;
    memset(out, 0xa5, sizeof *out);
    int st = srv_reqline_parse(p, n, lim, out, &why);
    if (st != SRV_REQLINE_MORE && st != SRV_REQLINE_DONE && why == NULL) {
        unit_failed++;
        fprintf(stderr, "FAIL: status %d without a reason for \"%s\"\n", st,
                unit_esc(p, n));
    }
    return st;
}

static int parse(const char *p, size_t n)
{
    srv_reqline out;
    return parse_lim(p, n, &deflim, &out);
}

/* Every proper prefix of a valid line is MORE, the whole line is DONE, and
 * the same line followed by more bytes is DONE with line_len at its LF. */
static void check_valid_incrementally(const char *p, size_t n,
                                      const srv_reqline_limits *lim)
{
    srv_reqline out;
    for (size_t k = 0; k < n; k++) {
        char ctx[600];
        snprintf(ctx, sizeof ctx, "prefix %zu of \"%s\"", k, unit_esc(p, n));
        CHECK_INT_CTX(parse_lim(p, k, lim, &out), SRV_REQLINE_MORE, ctx);
    }
    CHECK_INT_CTX(parse_lim(p, n, lim, &out), SRV_REQLINE_DONE, unit_esc(p, n));
    CHECK_INT_CTX(out.line_len, n, unit_esc(p, n));
    char *more = malloc(n + 32);
    memcpy(more, p, n);
    memcpy(more + n, "Host: x\r\n\r\nGET / HTTP/1.1\r\n", 27);
    srv_reqline out2;
    CHECK_INT_CTX(parse_lim(more, n + 27, lim, &out2), SRV_REQLINE_DONE, unit_esc(p, n));
    CHECK_INT_CTX(out2.line_len, n, unit_esc(p, n));
    CHECK_INT_CTX(out2.target_len, out.target_len, unit_esc(p, n));
    free(more);
}

/* An invalid line: the whole line gives want, and no prefix gives DONE or
 * an error the whole line would not give (an error seen early must be the
 * error of the line; a prefix may also be MORE). */
static void check_invalid_lim(const char *p, size_t n, const srv_reqline_limits *lim,
                              int want, int line)
{
    srv_reqline out;
    char ctx[600];
    snprintf(ctx, sizeof ctx, "line %d: \"%s\"", line, unit_esc(p, n));
    CHECK_INT_CTX(parse_lim(p, n, lim, &out), want, ctx);
    for (size_t k = 0; k < n; k++) {
        int st = parse_lim(p, k, lim, &out);
        if (st == SRV_REQLINE_MORE)
            continue;
        char pctx[700];
        snprintf(pctx, sizeof pctx, "prefix %zu of %s", k, ctx);
        CHECK_INT_CTX(st, want, pctx);
    }
}

#define INVALID(lit, want) check_invalid_lim(S(lit), &deflim, (want), __LINE__)

static void test_valid_lines_fields(void)
{
    srv_reqline r;
    CHECK_INT(parse_lim(S("GET / HTTP/1.1\r\n"), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.method_len, 3);
    CHECK_INT(r.target_off, 4);
    CHECK_INT(r.target_len, 1);
    CHECK_INT(r.path_off, 4);
    CHECK_INT(r.path_len, 1);
    CHECK_INT(r.authority_len, 0);
    CHECK_INT(r.form, SRV_TARGET_ORIGIN);
    CHECK_INT(r.http_minor, 1);
    CHECK_INT(r.line_len, 16);

    CHECK_INT(parse_lim(S("POST /a/b?c=d&e HTTP/1.0\r\n"), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.method_len, 4);
    CHECK_INT(r.target_off, 5);
    CHECK_INT(r.target_len, 10);
    CHECK_INT(r.path_off, 5);
    CHECK_INT(r.path_len, 10);
    CHECK_INT(r.http_minor, 0);
    CHECK_INT(r.form, SRV_TARGET_ORIGIN);

    /* any token is a method */
    CHECK_INT(parse_lim(S("PROPFIND /x HTTP/1.1\r\n"), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(parse_lim(S("!#$%&'*+-.^_`|~09azAZ /x HTTP/1.1\r\n"), &deflim, &r),
              SRV_REQLINE_DONE);
    CHECK_INT(r.method_len, 21);
    CHECK_INT(parse_lim(S("get / HTTP/1.1\r\n"), &deflim, &r), SRV_REQLINE_DONE);
}

static void test_target_forms(void)
{
    srv_reqline r;
    const char *l;

    /* absolute-form */
    l = "GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\n";
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_ABSOLUTE);
    CHECK_LIT(l + r.authority_off, r.authority_len, "example.com:8080");
    CHECK_LIT(l + r.path_off, r.path_len, "/p/q?x=1");
    CHECK_LIT(l + r.target_off, r.target_len, "http://example.com:8080/p/q?x=1");

    l = "GET https://[::1]:443/ HTTP/1.1\r\n";
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_ABSOLUTE);
    CHECK_LIT(l + r.authority_off, r.authority_len, "[::1]:443");
    CHECK_LIT(l + r.path_off, r.path_len, "/");

    l = "GET HTTP://a.b?q HTTP/1.1\r\n";   /* scheme is case-insensitive */
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_ABSOLUTE);
    CHECK_LIT(l + r.authority_off, r.authority_len, "a.b");
    CHECK_LIT(l + r.path_off, r.path_len, "?q");

    l = "GET http://a.b HTTP/1.1\r\n";     /* empty path */
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_LIT(l + r.authority_off, r.authority_len, "a.b");
    CHECK_INT(r.path_len, 0);

    l = "POST hTtPs://127.0.0.1/x HTTP/1.0\r\n";
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_ABSOLUTE);

    INVALID("GET ftp://a.b/ HTTP/1.1\r\n", 400);
    INVALID("GET httpx://a.b/ HTTP/1.1\r\n", 400);
    INVALID("GET http:/a.b/ HTTP/1.1\r\n", 400);
    INVALID("GET http:// HTTP/1.1\r\n", 400);
    INVALID("GET http:///x HTTP/1.1\r\n", 400);
    INVALID("GET http://u@a.b/ HTTP/1.1\r\n", 400);   /* userinfo */
    INVALID("GET http://a b/ HTTP/1.1\r\n", 400);
    INVALID("GET http://a.b:80x/ HTTP/1.1\r\n", 400);
    INVALID("GET http://a.b:123456/ HTTP/1.1\r\n", 400);
    INVALID("GET http://[::1/ HTTP/1.1\r\n", 400);
    INVALID("GET http://:80/ HTTP/1.1\r\n", 400);
    INVALID("GET example.com/x HTTP/1.1\r\n", 400);
    INVALID("GET a HTTP/1.1\r\n", 400);

    /* authority-form: CONNECT only, and a port is required */
    l = "CONNECT example.com:443 HTTP/1.1\r\n";
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_AUTHORITY);
    CHECK_LIT(l + r.authority_off, r.authority_len, "example.com:443");
    CHECK_INT(r.method_len, 7);
    l = "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n";
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_AUTHORITY);
    CHECK_LIT(l + r.authority_off, r.authority_len, "[2001:db8::1]:8443");
    l = "CONNECT 10.0.0.1:1 HTTP/1.0\r\n";
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    INVALID("CONNECT example.com HTTP/1.1\r\n", 400);
    INVALID("CONNECT example.com: HTTP/1.1\r\n", 400);
    INVALID("CONNECT :443 HTTP/1.1\r\n", 400);
    INVALID("CONNECT / HTTP/1.1\r\n", 400);
    INVALID("CONNECT * HTTP/1.1\r\n", 400);
    INVALID("CONNECT http://example.com:443/ HTTP/1.1\r\n", 400);
    INVALID("CONNECT example.com:443/x HTTP/1.1\r\n", 400);
    INVALID("CONNECT example.com:123456 HTTP/1.1\r\n", 400);
    INVALID("GET example.com:443 HTTP/1.1\r\n", 400);
    INVALID("OPTIONS example.com:443 HTTP/1.1\r\n", 400);
    INVALID("connect example.com:443 HTTP/1.1\r\n", 400);  /* methods are case-sensitive */

    /* asterisk-form: OPTIONS only */
    l = "OPTIONS * HTTP/1.1\r\n";
    CHECK_INT(parse_lim(l, strlen(l), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_ASTERISK);
    CHECK_INT(r.target_len, 1);
    CHECK_INT(parse_lim(S("OPTIONS / HTTP/1.1\r\n"), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.form, SRV_TARGET_ORIGIN);
    INVALID("GET * HTTP/1.1\r\n", 400);
    INVALID("options * HTTP/1.1\r\n", 400);
    INVALID("OPTIONS ** HTTP/1.1\r\n", 400);
    INVALID("OPTIONS *x HTTP/1.1\r\n", 400);
    INVALID("POST * HTTP/1.1\r\n", 400);
}

static void test_statuses(void)
{
    /* MORE and DONE */
    CHECK_INT(parse(S("")), SRV_REQLINE_MORE);
    CHECK_INT(parse(S("GET / HTTP/1.1\r")), SRV_REQLINE_MORE);
    CHECK_INT(parse(S("GET / HTTP/1.1\r\n")), SRV_REQLINE_DONE);

    /* 400: the shape of the line */
    INVALID("\r\n", 400);
    INVALID(" / HTTP/1.1\r\n", 400);
    INVALID("GET\r\n", 400);
    INVALID("GET /\r\n", 400);
    INVALID("GET / \r\n", 400);
    INVALID("GET  / HTTP/1.1\r\n", 400);
    INVALID("GET /  HTTP/1.1\r\n", 400);
    INVALID("GET / HTTP/1.1 \r\n", 400);
    INVALID(" GET / HTTP/1.1\r\n", 400);
    INVALID("GET\t/ HTTP/1.1\r\n", 400);
    INVALID("GET /\tHTTP/1.1\r\n", 400);
    INVALID("GET / HTTP/1.1 extra\r\n", 400);
    INVALID("GET /a b HTTP/1.1\r\n", 400);
    INVALID("GE(T / HTTP/1.1\r\n", 400);
    INVALID("GET: / HTTP/1.1\r\n", 400);
    INVALID("G\"ET / HTTP/1.1\r\n", 400);
    INVALID("GET x/ HTTP/1.1\r\n", 400);

    /* 400: CRLF required */
    INVALID("GET / HTTP/1.1\n", 400);
    INVALID("GET / HTTP/1.11\n", 400);   /* the byte before a bare LF is no CR */
    INVALID("GET / HTTP/1.1x\n", 400);
    INVALID("\n", 400);
    INVALID("GET / HTTP/1.1\r\r\n", 400);
    INVALID("GET / HTTP/1.1\rX\r\n", 400);
    INVALID("GET /\r HTTP/1.1\r\n", 400);
    INVALID("GET /\n HTTP/1.1\r\n", 400);
    CHECK_INT(parse(S("GET / HTTP/1.1\rX")), 400);   /* refused before any LF */
    CHECK_INT(parse(S("GET / HTTP/1.1\r\r")), 400);

    /* versions */
    srv_reqline r;
    CHECK_INT(parse_lim(S("GET / HTTP/1.0\r\n"), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.http_minor, 0);
    CHECK_INT(parse_lim(S("GET / HTTP/1.1\r\n"), &deflim, &r), SRV_REQLINE_DONE);
    CHECK_INT(r.http_minor, 1);
    INVALID("GET / HTTP/2.0\r\n", 505);
    INVALID("GET / HTTP/0.9\r\n", 505);
    INVALID("GET / HTTP/1.2\r\n", 505);
    INVALID("GET / HTTP/1.9\r\n", 505);
    INVALID("GET / HTTP/3.0\r\n", 505);
    INVALID("GET / HTTP/9.9\r\n", 505);
    INVALID("GET / http/1.1\r\n", 400);
    INVALID("GET / Http/1.1\r\n", 400);
    INVALID("GET / HTTP/1.10\r\n", 400);
    INVALID("GET / HTTP/01.1\r\n", 400);
    INVALID("GET / HTTP/1\r\n", 400);
    INVALID("GET / HTTP/1.\r\n", 400);
    INVALID("GET / HTTP/\r\n", 400);
    INVALID("GET / HTTP\r\n", 400);
    INVALID("GET / HTTP/1,1\r\n", 400);
    INVALID("GET / HTTP/1.x\r\n", 400);
    INVALID("GET / HTTP/a.1\r\n", 400);
    INVALID("GET / HTTPS/1.1\r\n", 400);
    INVALID("GET / HTTP/2\r\n", 400);
    INVALID("GET / HTTP/1.1.1\r\n", 400);
    /* a version error comes before a target error */
    INVALID("GET * HTTP/2.0\r\n", 505);

    /* 414 and 501: the limits */
    srv_reqline_limits lim = {.max_target = 10, .max_method = 5};
    /* both at the limit */
    check_valid_incrementally(S("ABCDE /123456789 HTTP/1.1\r\n"), &lim);
    check_invalid_lim(S("ABCDEF / HTTP/1.1\r\n"), &lim, 501, __LINE__);
    check_invalid_lim(S("GET /1234567890 HTTP/1.1\r\n"), &lim, 414, __LINE__);
    check_invalid_lim(S("GET http://a.b/ HTTP/1.1\r\n"), &lim, 414, __LINE__);
    /* refused as it arrives, long before any CRLF */
    CHECK_INT(parse_lim(S("ABCDEF"), &lim, &r), 501);
    CHECK_INT(parse_lim(S("ABCDE"), &lim, &r), SRV_REQLINE_MORE);
    CHECK_INT(parse_lim(S("GET /1234567890"), &lim, &r), 414);
    CHECK_INT(parse_lim(S("GET /123456789"), &lim, &r), SRV_REQLINE_MORE);
    /* the method limit is checked first */
    check_invalid_lim(S("ABCDEF /1234567890 HTTP/1.1\r\n"), &lim, 501, __LINE__);
    /* a limit of 0 refuses everything non-empty */
    srv_reqline_limits zero = {.max_target = 0, .max_method = 0};
    CHECK_INT(parse_lim(S("G"), &zero, &r), 501);
    srv_reqline_limits zt = {.max_target = 0, .max_method = 8};
    CHECK_INT(parse_lim(S("GET /"), &zt, &r), 414);
    /* a long target below a large limit */
    {
        size_t tn = 5000;
        char *line = malloc(tn + 32);
        memcpy(line, "GET /", 5);
        memset(line + 5, 'a', tn - 1);
        memcpy(line + 4 + tn, " HTTP/1.1\r\n", 11);
        srv_reqline_limits l2 = {.max_target = tn, .max_method = 8};
        CHECK_INT(parse_lim(line, tn + 15, &l2, &r), SRV_REQLINE_DONE);
        CHECK_INT(r.target_len, tn);
        l2.max_target = tn - 1;
        CHECK_INT(parse_lim(line, tn + 15, &l2, &r), 414);
        CHECK_INT(parse_lim(line, 4 + tn, &l2, &r), 414);
        CHECK_INT(parse_lim(line, 3 + tn, &l2, &r), SRV_REQLINE_MORE);
        free(line);
    }
}

static void test_target_bytes(void)
{
    srv_reqline r;
    /* bytes above 0x7f are taken as they are */
    const char l1[] = "GET /caf\xc3\xa9/\x80\xff?q=\xfe HTTP/1.1\r\n";
    check_valid_incrementally(l1, sizeof l1 - 1, &deflim);
    for (int c = 0x80; c <= 0xff; c++) {
        char line[] = "GET /?x HTTP/1.1\r\n";
        line[6] = (char)c;
        CHECK_INT_CTX(parse_lim(line, sizeof line - 1, &deflim, &r), SRV_REQLINE_DONE,
                      unit_esc(line, sizeof line - 1));
    }
    /* every VCHAR */
    for (int c = 0x21; c < 0x7f; c++) {
        char line[] = "GET /?x HTTP/1.1\r\n";
        line[6] = (char)c;
        CHECK_INT_CTX(parse_lim(line, sizeof line - 1, &deflim, &r), SRV_REQLINE_DONE,
                      unit_esc(line, sizeof line - 1));
    }
    /* control bytes, SP and DEL are not: in the target, the method or the
     * version, whole or as a prefix */
    for (int c = 0; c <= 0x20; c++) {
        for (int where = 0; where < 3; where++) {
            char line[] = "GET /?x HTTP/1.1\r\n";
            int pos = where == 0 ? 6 : where == 1 ? 1 : 13;
            line[pos] = (char)c;
            check_invalid_lim(line, sizeof line - 1, &deflim, 400, __LINE__);
        }
    }
    {
        char line[] = "GET /?x HTTP/1.1\r\n";
        line[6] = 0x7f;
        check_invalid_lim(line, sizeof line - 1, &deflim, 400, __LINE__);
        line[6] = 'x';
        line[1] = 0x7f;
        check_invalid_lim(line, sizeof line - 1, &deflim, 400, __LINE__);
    }
    /* non-ASCII in the method is not a token */
    INVALID("G\xc3\x89T / HTTP/1.1\r\n", 400);
    /* NUL within the line */
    CHECK_INT(parse(S("GET /\0 HTTP/1.1\r\n")), 400);
    CHECK_INT(parse(S("GET /\0")), 400);
}

static void test_incremental(void)
{
    static const char *const valid[] = {
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.0\r\n",
        "POST /upload?x=1&y=%20 HTTP/1.1\r\n",
        "DELETE /a/b/c HTTP/1.0\r\n",
        "OPTIONS * HTTP/1.1\r\n",
        "OPTIONS /x HTTP/1.1\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\n",
        "CONNECT [::1]:8080 HTTP/1.1\r\n",
        "CONNECT 192.168.0.1:65535 HTTP/1.0\r\n",
        "GET http://example.com/ HTTP/1.1\r\n",
        "GET https://example.com:8443/a?b HTTP/1.1\r\n",
        "GET http://[fe80::1]:80/ HTTP/1.1\r\n",
        "GET http://a%41b.c/ HTTP/1.1\r\n",
        "GET HTTP://EXAMPLE.COM HTTP/1.1\r\n",
        "GET /\xe2\x82\xac\xff HTTP/1.1\r\n",
        "X /%% HTTP/1.1\r\n",   /* a target is visible bytes, not checked as a URI */
        "GET //x//y HTTP/1.1\r\n",
        "M /HTTP/1.1 HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        check_valid_incrementally(valid[i], strlen(valid[i]), &deflim);
    /* a target of exactly max_target and a method of exactly max_method,
     * fed as every prefix */
    srv_reqline_limits lim = {.max_target = 3, .max_method = 3};
    check_valid_incrementally(S("GET /ab HTTP/1.1\r\n"), &lim);
    srv_reqline_limits opt = {.max_target = 1, .max_method = 7};
    check_valid_incrementally(S("OPTIONS * HTTP/1.1\r\n"), &opt);
}

static void test_skip_empty(void)
{
    CHECK_INT(srv_reqline_skip_empty(S("")), 0);
    CHECK_INT(srv_reqline_skip_empty(S("GET / HTTP/1.1\r\n")), 0);
    CHECK_INT(srv_reqline_skip_empty(S("\r\nGET")), 2);
    CHECK_INT(srv_reqline_skip_empty(S("\r\n\r\n\r\nGET")), 6);
    CHECK_INT(srv_reqline_skip_empty(S("\r\n")), 2);
    CHECK_INT(srv_reqline_skip_empty(S("\r")), 0);          /* its LF may follow */
    CHECK_INT(srv_reqline_skip_empty(S("\r\n\r")), 2);
    CHECK_INT(srv_reqline_skip_empty(S("\n")), -1);
    CHECK_INT(srv_reqline_skip_empty(S("\r\n\n")), -1);
    CHECK_INT(srv_reqline_skip_empty(S("\n\r\nGET")), -1);
    CHECK_INT(srv_reqline_skip_empty(S("\r\r\n")), 0);      /* left to the parser: 400 */
    CHECK_INT(parse(S("\r\r\n")), 400);
    CHECK_INT(srv_reqline_skip_empty(S(" \r\n")), 0);
    CHECK_INT(srv_reqline_skip_empty(S("\r\nG\n")), 2);
}

static void test_host_valid(void)
{
    static const char *const good[] = {
        "", "example.com", "EXAMPLE.COM", "a", "a-b_c~d.e", "localhost:8080",
        "example.com:1", "example.com:65535", "example.com:99999", "example.com:",
        "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8080", "[2001:db8::1]",
        "[fe80::1:2:3:4]:443", "[v1.fe]", "%41", "a%2eb", "a%2Eb:80",
        "!$&'()*+;=", "xn--bcher-kva.example",
    };
    static const char *const bad[] = {
        "a b", " a", "a ", "a/b", "/", "a@b", "u@a:80", "[", "[::1", "[::1:80",
        "[]", "[]:80", "[::1]x", "[::1]:x", "[::1]]", "[::1]:123456", ":80", ":",
        "a:80:80", "a:8o", "a:123456", "a:-1", "%", "%4", "%4g", "a%", "a%zz",
        "a\tb", "a\rb", "a\nb", "a\"b", "a<b", "a\\b", "a?b", "a#b", "a[b", "a]b",
        "a{b}", "a|b", "a^b", "a`b", "[a b]", "[::1/]", "a\x7f", "caf\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_INT_CTX(srv_host_valid(good[i], strlen(good[i])), 1, good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT_CTX(srv_host_valid(bad[i], strlen(bad[i])), 0,
                      unit_esc(bad[i], strlen(bad[i])));
    CHECK_INT(srv_host_valid(S("a\0b")), 0);
    /* the length given is the value: bytes beyond it are not looked at */
    CHECK_INT(srv_host_valid("a.b c", 3), 1);
    CHECK_INT(srv_host_valid("[::1]", 4), 0);
    CHECK_INT(srv_host_valid("a%41", 3), 0);

    /* ',' is a sub-delim, so RFC 3986 reg-name allows it, but a comma in Host
     * is what merging two Host fields into a list gives (RFC 9110 5.3): a
     * Host value must be a single host. */
    CHECK_INT(srv_host_valid(S("a,b")), 0);
    CHECK_INT(srv_host_valid(S("a.example, b.example")), 0);
}

static void test_authority_host_len(void)
{
    CHECK_INT(srv_authority_host_len(S("example.com")), 11);
    CHECK_INT(srv_authority_host_len(S("example.com:80")), 11);
    CHECK_INT(srv_authority_host_len(S("example.com:")), 11);
    CHECK_INT(srv_authority_host_len(S("[::1]")), 5);
    CHECK_INT(srv_authority_host_len(S("[::1]:8080")), 5);
    CHECK_INT(srv_authority_host_len(S("127.0.0.1:1")), 9);
    CHECK_INT(srv_authority_host_len(S("a%41:1")), 4);
    CHECK_INT(srv_authority_host_len(S("")), 0);
    CHECK_INT(srv_authority_host_len(S(":80")), 0);
    /* an invalid host: the whole value */
    CHECK_INT(srv_authority_host_len(S("a b:80")), 6);
    CHECK_INT(srv_authority_host_len(S("[::1")), 4);
}

static void test_tchar(void)
{
    const char *tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int c = 0; c < 256; c++) {
        int want = c != 0 && strchr(tchars, c) != NULL;
        char ctx[16];
        snprintf(ctx, sizeof ctx, "0x%02x", c);
        CHECK_INT_CTX(srv_is_tchar((unsigned char)c) != 0, want, ctx);
    }
}

int main(void)
{
    test_valid_lines_fields();
    test_target_forms();
    test_statuses();
    test_target_bytes();
    test_incremental();
    test_skip_empty();
    test_host_valid();
    test_authority_host_len();
    test_tchar();
    return unit_report("unit_reqline");
}
