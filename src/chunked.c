/*
 * chunked.c - a byte-at-a-time decoder for the chunked transfer coding.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *   ext-val      = token / quoted-string
 *
 * The decoder is a flat state machine over one byte at a time, except in
 * chunk data, which is handed to the sink in runs.  Every line ends in CRLF:
 * a bare LF or CR is an error, as in the request head (a front end that
 * splits lines differently could otherwise disagree on where the body
 * ends).  Whitespace is taken only where the grammar has BWS.  A size line
 * (size and extensions) longer than max_ext is refused, so extensions cannot
 * make srv read without bound; extensions are otherwise ignored.  Trailer
 * fields are parsed as header fields, counted against the head's limits,
 * refused if RFC 9110 6.5.1 forbids them in a trailer, and then dropped.
 */
#include "srv/chunked.h"
#include "srv/reqline.h"

#include <string.h>

enum {
    S_SIZE_FIRST, S_SIZE, S_EXT_BWS, S_EXT_NAME_BWS, S_EXT_NAME, S_EXT_NAME_END,
    S_EXT_VAL_BWS, S_EXT_VAL_TOKEN, S_EXT_QUOTED, S_EXT_QUOTED_ESC, S_EXT_AFTER_QUOTED,
    S_SIZE_LF,
    S_DATA, S_DATA_CR, S_DATA_LF,
    S_TR_LINE, S_TR_NAME, S_TR_VALUE, S_TR_LF, S_FINAL_LF, S_DONE,
};

void srv_chunked_init(srv_chunked *d, uint64_t max_body, size_t max_ext,
                      size_t max_trailer, unsigned max_trailer_fields)
{
    memset(d, 0, sizeof *d);
    d->state = S_SIZE_FIRST;
    d->max_body = max_body;
    d->max_ext = max_ext;
    d->max_trailer = max_trailer;
    d->max_trailer_fields = max_trailer_fields;
}

/* RFC 9110 6.5.1: framing, routing, request modifiers, authentication,
 * response control and the fields that say how to process the content. */
static const char *const forbidden[] = {
    "age", "authorization", "cache-control", "connection", "content-encoding",
    "content-length", "content-range", "content-type", "cookie", "date",
    "expect", "expires", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "keep-alive",
    "location", "max-forwards", "pragma", "proxy-authenticate",
    "proxy-authorization", "proxy-connection", "range", "retry-after",
    "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "vary",
    "www-authenticate",
};

int srv_trailer_forbidden(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
        if (strlen(forbidden[i]) == len && memcmp(forbidden[i], name, len) == 0)
            return 1;
    return 0;
}

static inline int ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A field-value byte: VCHAR, obs-text, SP or HTAB. */
static inline int value_char(unsigned char c)
{
    return (c > 0x20 && c != 0x7f) || ws(c);
}

/* qdtext, as RFC 9110 5.6.4 has it. */
static inline int qdtext(unsigned char c)
{
    return ws(c) || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)
           || c >= 0x80;
}

#define FAIL(status, reason) do { *why = (reason); return (status); } while (0)

/* ---- the size line: chunk-size [ chunk-ext ] CR, one state per function --- */

/* After the size: a CR ends the line, ";" or BWS begins the extensions. */
static inline int end_the_size(srv_chunked *d, unsigned char c, const char **why)
{
    if (d->state == S_SIZE_FIRST)
        FAIL(400, "invalid chunk size");
    if (d->remaining > d->max_body - d->body_seen)
        FAIL(413, "request body too large");
    if (c == '\r')
        d->state = S_SIZE_LF;
    else if (c == ';')
        d->state = S_EXT_NAME_BWS;
    else if (ws(c))
        d->state = S_EXT_BWS;
    else
        FAIL(400, "invalid chunk size");
    return 0;
}

/* S_SIZE_FIRST, S_SIZE: a hex digit adds to the size; any other byte ends it. */
static inline int read_a_size_digit(srv_chunked *d, unsigned char c, const char **why)
{
    int h = hexval(c);
    if (h < 0)
        return end_the_size(d, c, why);
    if (d->remaining > (UINT64_MAX >> 4))
        FAIL(400, "chunk size overflows");
    d->remaining = (d->remaining << 4) | (uint64_t)h;
    d->state = S_SIZE;
    return 0;
}

/* S_EXT_BWS: BWS that must lead to ";". */
static inline int wait_for_a_semicolon(srv_chunked *d, unsigned char c, const char **why)
{
    if (c == ';')
        d->state = S_EXT_NAME_BWS;
    else if (!ws(c))
        FAIL(400, "invalid chunk extension");
    return 0;
}

/* S_EXT_NAME_BWS: BWS, then the first byte of an extension's name. */
static inline int start_an_extension_name(srv_chunked *d, unsigned char c, const char **why)
{
    if (srv_is_tchar(c))
        d->state = S_EXT_NAME;
    else if (!ws(c))
        FAIL(400, "invalid chunk extension name");
    return 0;
}

/* S_EXT_NAME, S_EXT_VAL_TOKEN, S_EXT_AFTER_QUOTED: a token goes on (not
 * after a quoted value); CR, ";", "=" (after a name) or BWS end it. */
static inline int continue_or_end_a_token(srv_chunked *d, unsigned char c, const char **why)
{
    if (srv_is_tchar(c) && d->state != S_EXT_AFTER_QUOTED)
        return 0;
    if (c == '\r')
        d->state = S_SIZE_LF;
    else if (c == ';')
        d->state = S_EXT_NAME_BWS;
    else if (c == '=' && d->state == S_EXT_NAME)
        d->state = S_EXT_VAL_BWS;
    else if (ws(c))
        d->state = d->state == S_EXT_NAME ? S_EXT_NAME_END : S_EXT_BWS;
    else
        FAIL(400, "invalid chunk extension");
    return 0;
}

/* S_EXT_NAME_END: BWS after a name, then "=" or ";". */
static inline int wait_for_equals_or_semicolon(srv_chunked *d, unsigned char c, const char **why)
{
    if (c == '=')
        d->state = S_EXT_VAL_BWS;
    else if (c == ';')
        d->state = S_EXT_NAME_BWS;
    else if (!ws(c))
        FAIL(400, "invalid chunk extension");
    return 0;
}

/* S_EXT_VAL_BWS: BWS, then a quoted string or a token. */
static inline int start_an_extension_value(srv_chunked *d, unsigned char c, const char **why)
{
    if (c == '"')
        d->state = S_EXT_QUOTED;
    else if (srv_is_tchar(c))
        d->state = S_EXT_VAL_TOKEN;
    else if (!ws(c))
        FAIL(400, "invalid chunk extension value");
    return 0;
}

/* S_EXT_QUOTED: qdtext, up to the closing quote or a backslash. */
static inline int read_a_quoted_byte(srv_chunked *d, unsigned char c, const char **why)
{
    if (c == '"')
        d->state = S_EXT_AFTER_QUOTED;
    else if (c == '\\')
        d->state = S_EXT_QUOTED_ESC;
    else if (!qdtext(c))
        FAIL(400, "invalid quoted chunk extension value");
    return 0;
}

/* S_EXT_QUOTED_ESC: the byte a backslash quotes. */
static inline int read_an_escaped_byte(srv_chunked *d, unsigned char c, const char **why)
{
    if (!value_char(c))
        FAIL(400, "invalid quoted chunk extension value");
    d->state = S_EXT_QUOTED;
    return 0;
}

/* One byte of a size line, from the size to the CR (the LF is
 * srv_chunked_decode's), counted against max_ext. */
static int size_line_byte(srv_chunked *d, unsigned char c, const char **why)
{
    if (++d->ext_len > d->max_ext)
        FAIL(400, "chunk size line (extensions) too long");
    switch (d->state) {
    case S_SIZE_FIRST:
    case S_SIZE:
        return read_a_size_digit(d, c, why);
    case S_EXT_BWS:
        return wait_for_a_semicolon(d, c, why);
    case S_EXT_NAME_BWS:
        return start_an_extension_name(d, c, why);
    case S_EXT_NAME:
    case S_EXT_VAL_TOKEN:
    case S_EXT_AFTER_QUOTED:
        return continue_or_end_a_token(d, c, why);
    case S_EXT_NAME_END:
        return wait_for_equals_or_semicolon(d, c, why);
    case S_EXT_VAL_BWS:
        return start_an_extension_value(d, c, why);
    case S_EXT_QUOTED:
        return read_a_quoted_byte(d, c, why);
    case S_EXT_QUOTED_ESC:
        return read_an_escaped_byte(d, c, why);
    }
    FAIL(400, "chunk decoder state");
}

/* One byte of the trailer section, from the last chunk's LF to the end. */
static int trailer_byte(srv_chunked *d, unsigned char c, const char **why)
{
    if (++d->trailer_bytes > d->max_trailer)
        FAIL(431, "trailer section too large");
    switch (d->state) {
    case S_TR_LINE:
        if (c == '\r') {
            d->state = S_FINAL_LF;
            return 0;
        }
        if (!srv_is_tchar(c))
            FAIL(400, ws(c) ? "obs-fold in a trailer field" : "invalid trailer field name");
        if (++d->trailer_fields > d->max_trailer_fields)
            FAIL(431, "too many trailer fields");
        d->name_len = 0;
        d->state = S_TR_NAME;
        __attribute__((fallthrough));   /* c is the name's first byte */
    case S_TR_NAME:
        if (c == ':') {
            if (d->name_len <= sizeof d->name
                && srv_trailer_forbidden(d->name, d->name_len))
                FAIL(400, "a field that must not be sent in a trailer");
            d->state = S_TR_VALUE;
            return 0;
        }
        if (!srv_is_tchar(c))
            FAIL(400, "invalid trailer field name");
        if (d->name_len < sizeof d->name)
            d->name[d->name_len] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        d->name_len++;
        return 0;
    case S_TR_VALUE:
        if (c == '\r')
            d->state = S_TR_LF;
        else if (!value_char(c))
            FAIL(400, "invalid character in a trailer field");
        return 0;
    case S_TR_LF:
    case S_FINAL_LF:
        if (c != '\n')
            FAIL(400, "bare CR in the trailer section");
        d->state = d->state == S_TR_LF ? S_TR_LINE : S_DONE;
        return 0;
    }
    FAIL(400, "chunk decoder state");
}

int srv_chunked_decode(srv_chunked *d, const char *p, size_t n, size_t *used,
                       srv_chunked_sink sink, void *ctx, const char **why)
{
    size_t i = 0;
    int st = 0;
    while (i < n && d->state != S_DONE) {
        unsigned char c = (unsigned char)p[i];
        switch (d->state) {
        case S_DATA: {
            size_t take = n - i;
            if (take > d->remaining)
                take = (size_t)d->remaining;
            if ((st = sink(ctx, p + i, take)) != 0) {
                *why = "request body refused";
                goto out;
            }
            d->body_seen += take;
            d->remaining -= take;
            i += take;
            if (d->remaining == 0)
                d->state = S_DATA_CR;
            continue;
        }
        case S_DATA_CR:
            if (c != '\r') {
                st = 400;
                *why = "chunk data not followed by CRLF";
                goto out;
            }
            d->state = S_DATA_LF;
            break;
        case S_DATA_LF:
        case S_SIZE_LF:
            if (c != '\n') {
                st = 400;
                *why = "bare CR in chunk framing";
                goto out;
            }
            if (d->state == S_DATA_LF)
                d->state = S_SIZE_FIRST;
            else
                d->state = d->remaining ? S_DATA : S_TR_LINE;
            d->ext_len = 0;
            break;
        case S_TR_LINE: case S_TR_NAME: case S_TR_VALUE: case S_TR_LF: case S_FINAL_LF:
            if ((st = trailer_byte(d, c, why)) != 0)
                goto out;
            break;
        default:
            if ((st = size_line_byte(d, c, why)) != 0)
                goto out;
            break;
        }
        i++;
    }
out:
    *used = i;
    if (st)
        return st;
    return d->state == S_DONE ? SRV_CHUNKED_DONE : SRV_CHUNKED_MORE;
}
