/*
 * reqline.c - the request line, the request target and Host values.
 *
 * The request line is scanned once it is whole (it ends in CRLF); until
 * then only its limits are checked, so that a client cannot make srv buffer
 * a target longer than --max-uri.  The grammar is RFC 9112's, strictly:
 * one SP between the three parts, a token for the method, "HTTP/" DIGIT "."
 * DIGIT for the version, and a target of visible characters.  Bytes above
 * 0x7f in a target are taken (nginx and gunicorn do, and PEP 3333 hands
 * them to the app latin-1-decoded); control characters are not.
 *
 * The target's form decides what it may be used with (RFC 9112 3.2):
 * origin-form with any method but CONNECT, asterisk-form with OPTIONS,
 * authority-form with CONNECT only, absolute-form for http and https.
 */
#include "srv/reqline.h"

#include <string.h>
#include <strings.h>

enum { C_TCHAR = 1, C_UNRESERVED = 2, C_SUBDELIM = 4, C_HEX = 8, C_DIGIT = 16,
       C_SCHEME = 32 };

static unsigned char cls[256];

static void init_classes(void)
{
    for (int c = 0; c < 256; c++) {
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        int digit = c >= '0' && c <= '9';
        unsigned char k = 0;
        if (alpha || digit || (c && strchr("!#$%&'*+-.^_`|~", c)))
            k |= C_TCHAR;
        if (alpha || digit || (c && strchr("-._~", c)))
            k |= C_UNRESERVED;
        if (c && strchr("!$&'()*+,;=", c))
            k |= C_SUBDELIM;
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            k |= C_HEX;
        if (digit)
            k |= C_DIGIT;
        if (alpha || digit || (c && strchr("+-.", c)))
            k |= C_SCHEME;
        cls[c] = k;
    }
}

/* The table is filled on first use, by each public entry point: the
 * per-byte lookups below are plain loads. */
static inline void ensure_classes(void)
{
    if (__builtin_expect(!cls['a'], 0))
        init_classes();
}

static inline int is(unsigned char c, int k)
{
    return (cls[c] & k) != 0;
}

int srv_is_tchar(unsigned char c)
{
    ensure_classes();
    return is(c, C_TCHAR);
}

/* A target byte: VCHAR or obs-text. */
static inline int target_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

long srv_reqline_skip_empty(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == '\n')
            return -1;
        if (p[i] != '\r' || i + 1 >= n || p[i + 1] != '\n')
            break;
        i += 2;
    }
    return (long)i;
}

/* ---- Host and authority ------------------------------------------------- */

static int port_valid(const char *p, size_t n)
{
    if (n > 5)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is((unsigned char)p[i], C_DIGIT))
            return 0;
    return 1;
}

/* Length of a valid uri-host at a[0..n), stopping before ":port"; -1 if the
 * host is invalid. */
static long host_part(const char *a, size_t n)
{
    size_t i = 0;
    if (n > 0 && a[0] == '[') {
        /* IP-literal: IPv6address or IPvFuture, checked by character. */
        for (i = 1; i < n && a[i] != ']'; i++) {
            unsigned char c = (unsigned char)a[i];
            if (!(is(c, C_UNRESERVED | C_SUBDELIM) || c == ':'))
                return -1;
        }
        if (i >= n || i == 1)
            return -1;
        return (long)i + 1;
    }
    while (i < n && a[i] != ':') {
        unsigned char c = (unsigned char)a[i];
        if (c == '%') {
            if (i + 2 >= n || !is((unsigned char)a[i + 1], C_HEX)
                || !is((unsigned char)a[i + 2], C_HEX))
                return -1;
            i += 3;
            continue;
        }
        /* ',' is a sub-delim, but in a Host it is what two Host fields
         * merged into a list look like: a single host has none. */
        if (!is(c, C_UNRESERVED | C_SUBDELIM) || c == ',')
            return -1;
        i++;
    }
    return (long)i;
}

/* host [":" port] with a non-empty host; with need_port the port must be
 * there and non-empty (CONNECT). */
static int authority_valid(const char *a, size_t n, int need_port)
{
    long h = host_part(a, n);
    if (h <= 0)
        return 0;
    if ((size_t)h == n)
        return !need_port;
    if (a[h] != ':')
        return 0;
    size_t plen = n - (size_t)h - 1;
    if (need_port && plen == 0)
        return 0;
    return port_valid(a + h + 1, plen);
}

int srv_host_valid(const char *v, size_t n)
{
    ensure_classes();
    if (n == 0)
        return 1;   /* RFC 9112 3.2: empty when the target has no authority */
    return authority_valid(v, n, 0);
}

size_t srv_authority_host_len(const char *a, size_t n)
{
    ensure_classes();
    long h = host_part(a, n);
    return h < 0 ? n : (size_t)h;
}

/* ---- the request target -------------------------------------------------- */

static int is_method(const char *m, size_t mlen, const char *name)
{
    return mlen == strlen(name) && memcmp(m, name, mlen) == 0;
}

/* absolute-form: "http" / "https" "://" authority path-abempty [ "?" query ] */
static int parse_absolute(const char *t, size_t n, size_t base, srv_reqline *out)
{
    size_t i = 0;
    while (i < n && is((unsigned char)t[i], C_SCHEME))
        i++;
    if (i + 3 > n || memcmp(t + i, "://", 3) != 0)
        return 0;
    if (!((i == 4 && strncasecmp(t, "http", 4) == 0)
          || (i == 5 && strncasecmp(t, "https", 5) == 0)))
        return 0;
    size_t a = i + 3, e = a;
    while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#')
        e++;
    if (!authority_valid(t + a, e - a, 0))
        return 0;
    out->form = SRV_TARGET_ABSOLUTE;
    out->authority_off = base + a;
    out->authority_len = e - a;
    out->path_off = base + e;
    out->path_len = n - e;
    return 1;
}

/* Classifies the target and checks it against the method; 0 or 400. */
static int check_target(const char *line, srv_reqline *out, const char **why)
{
    const char *m = line, *t = line + out->target_off;
    size_t mlen = out->method_len, n = out->target_len;
    int connect = is_method(m, mlen, "CONNECT");
    out->path_off = out->target_off;
    out->path_len = n;
    out->authority_off = out->authority_len = 0;
    if (connect) {
        if (!authority_valid(t, n, 1)) {
            *why = "CONNECT needs an authority-form target (host:port)";
            return 400;
        }
        out->form = SRV_TARGET_AUTHORITY;
        out->authority_off = out->target_off;
        out->authority_len = n;
        return 0;   /* PATH_INFO is the authority, as gunicorn has it */
    }
    if (t[0] == '/') {
        out->form = SRV_TARGET_ORIGIN;
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (!is_method(m, mlen, "OPTIONS")) {
            *why = "asterisk-form target with a method other than OPTIONS";
            return 400;
        }
        out->form = SRV_TARGET_ASTERISK;
        return 0;
    }
    if (parse_absolute(t, n, out->target_off, out))
        return 0;
    *why = "request target is not in origin-, absolute- or asterisk-form";
    return 400;
}

/* ---- the request line ---------------------------------------------------- */

/* Is v[0..n) a prefix of "HTTP/" DIGIT "." DIGIT? */
static int version_prefix(const char *v, size_t n)
{
    static const char shape[] = "HTTP/0.0";
    if (n > 8)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (shape[i] == '0' ? !is((unsigned char)v[i], C_DIGIT) : v[i] != shape[i])
            return 0;
    }
    return 1;
}

/* Checks what there is of a line without its CRLF: its bytes so far, and
 * its limits, so that a bad or endless line is refused as it arrives. */
static int check_partial(const char *p, size_t n, const srv_reqline_limits *lim,
                         const char **why)
{
    size_t i = 0;
    while (i < n && is((unsigned char)p[i], C_TCHAR))
        i++;
    if (i > lim->max_method) {
        *why = "method too long";
        return 501;
    }
    if (i == n)
        return SRV_REQLINE_MORE;
    if (i == 0 || p[i] != ' ') {
        *why = "malformed method";
        return 400;
    }
    size_t t = ++i;
    while (i < n && target_char((unsigned char)p[i]))
        i++;
    if (i - t > lim->max_target) {
        *why = "request target too long";
        return 414;
    }
    if (i == n)
        return SRV_REQLINE_MORE;
    if (i == t || p[i] != ' ') {
        *why = "malformed request target";
        return 400;
    }
    if (!version_prefix(p + i + 1, n - i - 1)) {
        *why = "malformed HTTP version";
        return 400;
    }
    return SRV_REQLINE_MORE;
}

static int parse_version(const char *v, size_t n, srv_reqline *out, const char **why)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !is((unsigned char)v[5], C_DIGIT)
        || v[6] != '.' || !is((unsigned char)v[7], C_DIGIT)) {
        *why = "malformed HTTP version";
        return 400;
    }
    if (v[5] != '1' || v[7] > '1') {
        *why = "unsupported HTTP version";
        return 505;
    }
    out->http_minor = v[7] - '0';
    return 0;
}

int srv_reqline_parse(const char *p, size_t n, const srv_reqline_limits *lim,
                      srv_reqline *out, const char **why)
{
    ensure_classes();
    const char *lf = memchr(p, '\n', n);
    if (lf == NULL) {
        if (n > 0 && p[n - 1] == '\r')
            n--;   /* the LF may be in the next read */
        return check_partial(p, n, lim, why);
    }
    size_t end = (size_t)(lf - p);   /* the LF */
    if (end == 0 || p[end - 1] != '\r') {
        *why = "request line does not end in CRLF";
        return 400;
    }
    size_t len = end - 1;            /* without CRLF */
    int st = check_partial(p, len, lim, why);
    if (st != SRV_REQLINE_MORE)
        return st;
    /* check_partial vouched for the bytes: find the two SP. */
    const char *sp1 = memchr(p, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - p)) : NULL;
    if (sp2 == NULL) {
        *why = "request line without an HTTP version";
        return 400;
    }
    size_t i = (size_t)(sp2 - p);
    out->method_len = (size_t)(sp1 - p);
    out->target_off = out->method_len + 1;
    out->target_len = i - out->target_off;
    st = parse_version(p + i + 1, len - i - 1, out, why);
    if (st)
        return st;
    st = check_target(p, out, why);
    if (st)
        return st;
    out->line_len = end + 1;
    return SRV_REQLINE_DONE;
}
