/*
 * test_logfmt.c - unit tests for src/logfmt.c: the access-log format
 * compiled into items.  Every directive srv knows, alone and with '>';
 * literal text and "%%" merged into one item; %{Name}i and its environ key;
 * and every error, with its offset and the message srv prints.  Linked with
 * src/logfmt.c and src/hdrkey.c only.
 */
#include "srv/logfmt.h"
#include "unit.h"

#include <stdlib.h>

enum { T = SRV_LOGFMT_TEXT, HDR = SRV_LOGFMT_HEADER };

/* One expected item: its kind, and its text for TEXT and HEADER. */
typedef struct want {
    int kind;
    const char *text;
} want;

#define END {-1, NULL}

static void check_items(const char *fmt, const want *w)
{
    srv_logfmt f;
    srv_logfmt_error err = {0, ""};
    memset(&f, 0xaa, sizeof f);
    int rc = srv_logfmt_compile(fmt, &f, &err);
    const char *ctx = unit_esc(fmt, strlen(fmt));
    CHECK_INT_CTX(rc, 0, ctx);
    if (rc != 0) {
        fprintf(stderr, "  error at %zu: %s\n", err.pos, err.msg);
        return;
    }
    size_t nw = 0;
    while (w[nw].kind >= 0)
        nw++;
    CHECK_INT_CTX(f.n, nw, ctx);
    for (size_t i = 0; i < f.n && i < nw; i++) {
        CHECK_INT_CTX(f.items[i].kind, w[i].kind, ctx);
        if (w[i].text) {
            size_t wl = strlen(w[i].text);
            CHECK_INT_CTX(f.items[i].text != NULL, 1, ctx);
            if (f.items[i].text) {
                CHECK_MEM_CTX(f.items[i].text, f.items[i].len, w[i].text, wl, ctx);
                CHECK_INT_CTX(f.items[i].text[f.items[i].len], 0, ctx);   /* NUL-terminated */
            }
        } else {
            CHECK_INT_CTX(f.items[i].text == NULL, 1, ctx);
            CHECK_INT_CTX(f.items[i].len, 0, ctx);
        }
    }
    srv_logfmt_free(&f);
    CHECK_INT_CTX(f.items == NULL && f.n == 0, 1, ctx);
}

static void check_error(const char *fmt, size_t pos, const char *msg)
{
    srv_logfmt f;
    srv_logfmt_error err = {0, ""};
    memset(&f, 0xaa, sizeof f);
    int rc = srv_logfmt_compile(fmt, &f, &err);
    const char *ctx = unit_esc(fmt, strlen(fmt));
    CHECK_INT_CTX(rc, -1, ctx);
    if (rc == 0) {
        srv_logfmt_free(&f);
        return;
    }
    CHECK_INT_CTX(err.pos, pos, ctx);
    CHECK_MEM_CTX(err.msg, strlen(err.msg), msg, strlen(msg), ctx);
    CHECK_INT_CTX(f.items == NULL && f.n == 0, 1, ctx);   /* left empty */
}

static void test_directives(void)
{
    static const struct { char ch; int kind; } d[] = {
        {'h', SRV_LOGFMT_REMOTE}, {'l', SRV_LOGFMT_DASH}, {'u', SRV_LOGFMT_DASH},
        {'t', SRV_LOGFMT_TIME}, {'r', SRV_LOGFMT_REQUEST_LINE}, {'s', SRV_LOGFMT_STATUS},
        {'b', SRV_LOGFMT_BYTES_CLF}, {'B', SRV_LOGFMT_BYTES}, {'D', SRV_LOGFMT_MICROS},
        {'T', SRV_LOGFMT_SECONDS}, {'P', SRV_LOGFMT_PID}, {'m', SRV_LOGFMT_METHOD},
        {'U', SRV_LOGFMT_PATH}, {'q', SRV_LOGFMT_QUERY}, {'H', SRV_LOGFMT_PROTOCOL},
        {'R', SRV_LOGFMT_REQUEST_ID},
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        char fmt[8];
        snprintf(fmt, sizeof fmt, "%%%c", d[i].ch);
        check_items(fmt, (want[]){{d[i].kind, NULL}, END});
        snprintf(fmt, sizeof fmt, "%%>%c", d[i].ch);          /* Apache's "final" */
        check_items(fmt, (want[]){{d[i].kind, NULL}, END});
        snprintf(fmt, sizeof fmt, "<%%%c>", d[i].ch);
        check_items(fmt, (want[]){{T, "<"}, {d[i].kind, NULL}, {T, ">"}, END});
    }
    /* every other printable letter and sign is unknown */
    int known = 0;
    for (int ch = 0x21; ch < 0x7f; ch++) {
        if (ch == '%' || ch == '{' || ch == '>' || strchr("hlutrsbBDTPmUqHR", ch))
            continue;
        char fmt[8], msg[40];
        snprintf(fmt, sizeof fmt, "ab%%%c", ch);
        snprintf(msg, sizeof msg, "unknown directive '%%%c'", ch);
        check_error(fmt, 2, msg);
        known++;
    }
    CHECK_INT(known, 94 - 3 - 16);
}

static void test_text(void)
{
    check_items("", (want[]){END});
    check_items("plain text", (want[]){{T, "plain text"}, END});
    check_items("%%", (want[]){{T, "%"}, END});
    check_items("%>%", (want[]){{T, "%"}, END});
    check_items("%%%%", (want[]){{T, "%%"}, END});
    /* "%%" merges with the text around it into one item */
    check_items("a%%b", (want[]){{T, "a%b"}, END});
    check_items("100%% %h%%", (want[]){{T, "100% "}, {SRV_LOGFMT_REMOTE, NULL}, {T, "%"}, END});
    check_items("%h%h", (want[]){{SRV_LOGFMT_REMOTE, NULL}, {SRV_LOGFMT_REMOTE, NULL}, END});
    /* text is copied byte for byte: quotes, tabs, raw bytes, '{' '}' */
    check_items("\"\t\xe9{}i}", (want[]){{T, "\"\t\xe9{}i}"}, END});
    /* a directive is one letter: what follows is text */
    check_items("%hh", (want[]){{SRV_LOGFMT_REMOTE, NULL}, {T, "h"}, END});
}

static void test_default_format(void)
{
    /* config.c's default, gunicorn's */
    check_items("%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"",
                (want[]){{SRV_LOGFMT_REMOTE, NULL}, {T, " "}, {SRV_LOGFMT_DASH, NULL}, {T, " "},
                         {SRV_LOGFMT_DASH, NULL}, {T, " "}, {SRV_LOGFMT_TIME, NULL}, {T, " \""},
                         {SRV_LOGFMT_REQUEST_LINE, NULL}, {T, "\" "}, {SRV_LOGFMT_STATUS, NULL},
                         {T, " "}, {SRV_LOGFMT_BYTES_CLF, NULL}, {T, " \""}, {HDR, "HTTP_REFERER"},
                         {T, "\" \""}, {HDR, "HTTP_USER_AGENT"}, {T, "\""}, END});
}

static void test_headers(void)
{
    check_items("%{User-Agent}i", (want[]){{HDR, "HTTP_USER_AGENT"}, END});
    check_items("%>{User-Agent}i", (want[]){{HDR, "HTTP_USER_AGENT"}, END});
    check_items("%{x-request-id}i", (want[]){{HDR, "HTTP_X_REQUEST_ID"}, END});
    check_items("%{Content-Type}i", (want[]){{HDR, "CONTENT_TYPE"}, END});
    check_items("%{content-length}i", (want[]){{HDR, "CONTENT_LENGTH"}, END});
    /* '_' maps like '-' (the environ holds HTTP_X_ID from an X-Id field) */
    check_items("%{X_Id}i", (want[]){{HDR, "HTTP_X_ID"}, END});
    check_items("%{Content_Type}i", (want[]){{HDR, "HTTP_CONTENT_TYPE"}, END});
    check_items("%{X-B3-SpanId2}i", (want[]){{HDR, "HTTP_X_B3_SPANID2"}, END});
    check_items("%{}i", (want[]){{HDR, "HTTP_"}, END});
    /* the name runs to the first '}', whatever it holds */
    check_items("%{a%h{b}i", (want[]){{HDR, "HTTP_A%H{B"}, END});
    check_items("%{a b}i", (want[]){{HDR, "HTTP_A B"}, END});
    check_items("[%{A}i%{B}i]", (want[]){{T, "["}, {HDR, "HTTP_A"}, {HDR, "HTTP_B"}, {T, "]"}, END});
    check_items("%{A}ii", (want[]){{HDR, "HTTP_A"}, {T, "i"}, END});
    check_items("%{A}i}i", (want[]){{HDR, "HTTP_A"}, {T, "}i"}, END});
}

static void test_long_names(void)
{
    char fmt[300], key[300];
    for (size_t n = 248; n <= 252; n++) {
        memcpy(fmt, "x%{", 3);
        memset(fmt + 3, 'a', n);
        memcpy(fmt + 3 + n, "}i", 3);
        if (n <= SRV_LOGFMT_MAX_NAME) {
            memcpy(key, "HTTP_", 5);
            memset(key + 5, 'A', n);
            key[5 + n] = '\0';
            check_items(fmt, (want[]){{T, "x"}, {HDR, key}, END});
        } else {
            check_error(fmt, 1, "a %{Header}i name is longer than 250 bytes");
        }
    }
    CHECK_INT(SRV_LOGFMT_MAX_NAME, 250);
}

static void test_errors(void)
{
    /* a '%' (or "%>") at the end */
    check_error("%", 0, "unknown directive '% '");
    check_error("abc %", 4, "unknown directive '% '");
    check_error("%h %>", 3, "unknown directive '% '");
    check_error("%h%%%", 4, "unknown directive '% '");
    /* unknown letters, after '>' too */
    check_error("%x", 0, "unknown directive '%x'");
    check_error("%h %>x", 3, "unknown directive '%x'");
    check_error("%a", 0, "unknown directive '%a'");
    check_error("% h", 0, "unknown directive '% '");
    check_error("%>>s", 0, "unknown directive '%>'");
    check_error("%}", 0, "unknown directive '%}'");
    check_error("%\xe9", 0, "unknown directive '%\xe9'");
    /* only %{...}i takes a name; the braces must close */
    check_error("%{User-Agent", 0, "only %{Header}i takes a name");
    check_error("%{", 0, "only %{Header}i takes a name");
    check_error("ab%>{", 2, "only %{Header}i takes a name");
    check_error("%{User-Agent}", 0, "only %{Header}i takes a name");
    check_error("%{User-Agent}o", 0, "only %{Header}i takes a name");
    check_error("%{User-Agent}e", 0, "only %{Header}i takes a name");
    check_error("%{X}I", 0, "only %{Header}i takes a name");
    check_error("%{a}x}i", 0, "only %{Header}i takes a name");
    check_error("%h %{A}i %{B", 9, "only %{Header}i takes a name");
    /* the first error wins, after items were made (freed, *out left empty) */
    check_error("text %h %{A}i %% %z", 17, "unknown directive '%z'");
}

int main(void)
{
    test_directives();
    test_text();
    test_default_format();
    test_headers();
    test_long_names();
    test_errors();
    return unit_report("logfmt");
}
