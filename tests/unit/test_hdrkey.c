/*
 * test_hdrkey.c - unit tests for src/hdrkey.c: a request header field's
 * name to its CGI environ key, the '_' rule and the join separator.
 * Every key is written into an exactly sized heap buffer, so that ASan sees
 * any write past SRV_HDRKEY_MAX(n).  Linked with src/hdrkey.c only.
 */
#include "srv/hdrkey.h"
#include "unit.h"

#include <stdlib.h>

#define S(lit) (lit), (sizeof(lit) - 1)

/* Maps name[0..n) and checks the kind and the key bytes. */
static void check_key(const char *name, size_t n, int kind, const char *want, size_t wn)
{
    char *out = malloc(SRV_HDRKEY_MAX(n));
    size_t len = (size_t)-1;
    int k = srv_hdrkey_make(name, n, out, &len);
    const char *ctx = unit_esc(name, n);
    CHECK_INT_CTX(k, kind, ctx);
    CHECK_MEM_CTX(out, len <= SRV_HDRKEY_MAX(n) ? len : 0, want, wn, ctx);
    CHECK_INT_CTX(len <= SRV_HDRKEY_MAX(n), 1, ctx);
    free(out);
}

static void test_common(void)
{
    check_key(S("Host"), SRV_HDRKEY_HTTP, S("HTTP_HOST"));
    check_key(S("host"), SRV_HDRKEY_HTTP, S("HTTP_HOST"));
    check_key(S("User-Agent"), SRV_HDRKEY_HTTP, S("HTTP_USER_AGENT"));
    check_key(S("X-Forwarded-For"), SRV_HDRKEY_HTTP, S("HTTP_X_FORWARDED_FOR"));
    check_key(S("accept-ENCODING"), SRV_HDRKEY_HTTP, S("HTTP_ACCEPT_ENCODING"));
    check_key(S("Cookie"), SRV_HDRKEY_HTTP, S("HTTP_COOKIE"));
    check_key(S("x"), SRV_HDRKEY_HTTP, S("HTTP_X"));
    check_key(S(""), SRV_HDRKEY_HTTP, S("HTTP_"));
}

static void test_content(void)
{
    check_key(S("Content-Type"), SRV_HDRKEY_CONTENT_TYPE, S("CONTENT_TYPE"));
    check_key(S("content-type"), SRV_HDRKEY_CONTENT_TYPE, S("CONTENT_TYPE"));
    check_key(S("CONTENT-TYPE"), SRV_HDRKEY_CONTENT_TYPE, S("CONTENT_TYPE"));
    check_key(S("Content-Length"), SRV_HDRKEY_CONTENT_LENGTH, S("CONTENT_LENGTH"));
    check_key(S("cOnTeNt-LeNgTh"), SRV_HDRKEY_CONTENT_LENGTH, S("CONTENT_LENGTH"));
    /* only those two exact names */
    check_key(S("Content-Types"), SRV_HDRKEY_HTTP, S("HTTP_CONTENT_TYPES"));
    check_key(S("Content-Typ"), SRV_HDRKEY_HTTP, S("HTTP_CONTENT_TYP"));
    check_key(S("Content-Encoding"), SRV_HDRKEY_HTTP, S("HTTP_CONTENT_ENCODING"));
    check_key(S("Content-MD5"), SRV_HDRKEY_HTTP, S("HTTP_CONTENT_MD5"));
    check_key(S("X-Content-Type"), SRV_HDRKEY_HTTP, S("HTTP_X_CONTENT_TYPE"));
    /* the '_' spelling is not Content-Type: dropped, with its HTTP_ key */
    check_key(S("Content_Type"), SRV_HDRKEY_DROP, S("HTTP_CONTENT_TYPE"));
    check_key(S("content_length"), SRV_HDRKEY_DROP, S("HTTP_CONTENT_LENGTH"));
}

static void test_underscore(void)
{
    check_key(S("X_Forwarded_For"), SRV_HDRKEY_DROP, S("HTTP_X_FORWARDED_FOR"));
    check_key(S("_"), SRV_HDRKEY_DROP, S("HTTP__"));
    check_key(S("a_"), SRV_HDRKEY_DROP, S("HTTP_A_"));
    check_key(S("_a"), SRV_HDRKEY_DROP, S("HTTP__A"));
    check_key(S("X-Real_IP"), SRV_HDRKEY_DROP, S("HTTP_X_REAL_IP"));
    /* '-' alone is fine */
    check_key(S("-"), SRV_HDRKEY_HTTP, S("HTTP__"));
    check_key(S("--a--"), SRV_HDRKEY_HTTP, S("HTTP___A__"));
}

static void test_other_bytes(void)
{
    /* digits and the token's other characters are kept as they are */
    check_key(S("X-B3-TraceId"), SRV_HDRKEY_HTTP, S("HTTP_X_B3_TRACEID"));
    check_key(S("0123456789"), SRV_HDRKEY_HTTP, S("HTTP_0123456789"));
    check_key(S("a!#$%&'*+.^`|~z"), SRV_HDRKEY_HTTP, S("HTTP_A!#$%&'*+.^`|~Z"));
    /* only ASCII letters change case: bytes around them and above 0x7f do not */
    check_key(S("@[`{az"), SRV_HDRKEY_HTTP, S("HTTP_@[`{AZ"));
    check_key(S("\xe9\xff\x80x"), SRV_HDRKEY_HTTP, S("HTTP_\xe9\xff\x80X"));
    check_key(S("a\0b"), SRV_HDRKEY_HTTP, S("HTTP_A\0B"));
    /* every lower-case letter */
    check_key(S("abcdefghijklmnopqrstuvwxyz"), SRV_HDRKEY_HTTP,
              S("HTTP_ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
    check_key(S("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), SRV_HDRKEY_HTTP,
              S("HTTP_ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
}

static void test_long(void)
{
    /* around environ.c's 64-byte cache slot, and far beyond */
    size_t lens[] = {58, 59, 60, 64, 250, 251, 4096};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        char *name = malloc(n), *want = malloc(n + 5);
        memcpy(want, "HTTP_", 5);
        for (size_t j = 0; j < n; j++) {
            name[j] = j % 7 == 3 ? '-' : (char)('a' + j % 26);
            want[5 + j] = j % 7 == 3 ? '_' : (char)('A' + j % 26);
        }
        check_key(name, n, SRV_HDRKEY_HTTP, want, n + 5);
        name[n - 1] = '_';
        want[n + 4] = '_';
        check_key(name, n, SRV_HDRKEY_DROP, want, n + 5);
        free(name);
        free(want);
    }
}

static void test_separator(void)
{
    CHECK(strcmp(srv_hdrkey_separator(S("Cookie")), "; ") == 0);
    CHECK(strcmp(srv_hdrkey_separator(S("cookie")), "; ") == 0);
    CHECK(strcmp(srv_hdrkey_separator(S("COOKIE")), "; ") == 0);
    CHECK(strcmp(srv_hdrkey_separator(S("Cookie2")), ",") == 0);
    CHECK(strcmp(srv_hdrkey_separator(S("Cooki")), ",") == 0);
    CHECK(strcmp(srv_hdrkey_separator(S("Set-Cookie")), ",") == 0);
    CHECK(strcmp(srv_hdrkey_separator(S("Accept")), ",") == 0);
    CHECK(strcmp(srv_hdrkey_separator(S("")), ",") == 0);
    /* the length decides, not a NUL */
    CHECK(strcmp(srv_hdrkey_separator("cookies", 6), "; ") == 0);
}

int main(void)
{
    test_common();
    test_content();
    test_underscore();
    test_other_bytes();
    test_long();
    test_separator();
    return unit_report("hdrkey");
}
