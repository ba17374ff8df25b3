/*
 * hdrkey.c - a request header field's name to its CGI environ key.
 *
 * One pass over the name both maps it (ASCII letters upper-cased, '-' to
 * '_') and notes any '_', which makes the field one the environ drops;
 * Content-Type and Content-Length, matched case-insensitively first, get
 * their CGI keys without the HTTP_ prefix.  The caller gives the buffer (on
 * its stack for common names), so mapping a field allocates nothing: this
 * runs for every field of every request, before environ.c looks the bytes
 * up in its cache of interned keys.
 */
#include "srv/hdrkey.h"

#include <string.h>
#include <strings.h>

/* Each byte of a name as it is in a key: a table, so that the loop below
 * costs a load and a store per byte (this runs for every field). */
#define KEYCHAR(c) ((c) == '-' ? '_' : (c) >= 'a' && (c) <= 'z' ? (c) - ('a' - 'A') : (c))
#define K4(c) KEYCHAR(c), KEYCHAR((c) + 1), KEYCHAR((c) + 2), KEYCHAR((c) + 3)
#define K16(c) K4(c), K4((c) + 4), K4((c) + 8), K4((c) + 12)
#define K64(c) K16(c), K16((c) + 16), K16((c) + 32), K16((c) + 48)
static const unsigned char keychar[256] = {K64(0), K64(64), K64(128), K64(192)};

int srv_hdrkey_make(const char *name, size_t n, char *out, size_t *keylen)
{
    if (n == 12 && strncasecmp(name, "content-type", 12) == 0) {
        memcpy(out, "CONTENT_TYPE", 12);
        *keylen = 12;
        return SRV_HDRKEY_CONTENT_TYPE;
    }
    if (n == 14 && strncasecmp(name, "content-length", 14) == 0) {
        memcpy(out, "CONTENT_LENGTH", 14);
        *keylen = 14;
        return SRV_HDRKEY_CONTENT_LENGTH;
    }
    memcpy(out, "HTTP_", 5);
    char *o = out + 5;
    unsigned underscore = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        underscore |= c == '_';
        o[i] = (char)keychar[c];
    }
    *keylen = n + 5;
    return underscore ? SRV_HDRKEY_DROP : SRV_HDRKEY_HTTP;
}

const char *srv_hdrkey_separator(const char *name, size_t n)
{
    return n == 6 && strncasecmp(name, "cookie", 6) == 0 ? "; " : ",";
}
