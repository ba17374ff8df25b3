/*
 * pathinfo.c - splitting a request target's path from its query, and
 * percent-decoding the path.
 *
 * Both run for every request, so neither allocates nor copies more than it
 * must: the split only finds two offsets (memchr), and the decoder writes
 * into the caller's buffer in one pass, which environ.c only asks for when
 * the path holds a '%' at all.  The decoding is RFC 3986's 2.1 and nothing
 * more: no '+' to space, no check that the result is UTF-8 (PEP 3333 hands
 * the bytes to the app latin-1-decoded), no dot-segment removal.
 */
#include "srv/pathinfo.h"

#include <string.h>

void srv_pathinfo_split(const char *p, size_t n, srv_pathinfo_parts *out)
{
    const char *hash = memchr(p, '#', n);
    if (hash)
        n = (size_t)(hash - p);
    const char *qmark = memchr(p, '?', n);
    if (qmark) {
        out->path_len = (size_t)(qmark - p);
        out->query = qmark + 1;
        out->query_len = n - out->path_len - 1;
    } else {
        out->path_len = n;
        out->query = NULL;
        out->query_len = 0;
    }
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

size_t srv_pathinfo_decode(const char *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n
            && (hi = hexval((unsigned char)p[i + 1])) >= 0
            && (lo = hexval((unsigned char)p[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = p[i];
        }
    }
    return o;
}
