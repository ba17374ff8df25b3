/*
 * logfmt.c - compiling an access-log format into items.
 *
 * The format is read once, at start-up, left to right: text up to the next
 * '%' is a literal item (merged with the one before it, so that "%%" and
 * the text around it cost one append per line, not three), then an
 * optional '>', then either "{Name}i" or one directive letter.  An unknown
 * letter, a '%' at the end, and a "{...}" not closed by "}i" are errors
 * reported with the offset of their '%' and the message srv prints.
 *
 * A header's environ key is worked out here, with hdrkey.c's mapping, so
 * that %{User-Agent}i finds HTTP_USER_AGENT and %{Content-Type}i finds
 * CONTENT_TYPE; a name with '_' (%{X_Id}i) maps to HTTP_X_ID as well, which
 * the environ holds from an "X-Id" field.  Nothing here runs per request:
 * accesslog.c keeps the items and makes its Python keys from them.
 */
#include "srv/logfmt.h"
#include "srv/hdrkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(srv_logfmt_error *err, size_t pos, const char *msg)
{
    err->pos = pos;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
    return -1;
}

/* A new item, or NULL if out of memory. */
static srv_logfmt_item *push(srv_logfmt *f, int kind)
{
    srv_logfmt_item *p = realloc(f->items, sizeof *p * (f->n + 1));
    if (p == NULL)
        return NULL;
    f->items = p;
    p += f->n++;
    p->kind = kind;
    p->text = NULL;
    p->len = 0;
    return p;
}

/* Appends literal text, to the last item if that is text too. */
static int add_text(srv_logfmt *f, const char *s, size_t n)
{
    srv_logfmt_item *it = f->n && f->items[f->n - 1].kind == SRV_LOGFMT_TEXT
        ? &f->items[f->n - 1] : push(f, SRV_LOGFMT_TEXT);
    if (it == NULL)
        return -1;
    char *t = realloc(it->text, it->len + n + 1);
    if (t == NULL)
        return -1;
    memcpy(t + it->len, s, n);
    it->len += n;
    t[it->len] = '\0';
    it->text = t;
    return 0;
}

static int add_header(srv_logfmt *f, const char *name, size_t n)
{
    char *key = malloc(SRV_HDRKEY_MAX(n) + 1);
    srv_logfmt_item *it = key ? push(f, SRV_LOGFMT_HEADER) : NULL;
    if (it == NULL) {
        free(key);
        return -1;
    }
    srv_hdrkey_make(name, n, key, &it->len);
    key[it->len] = '\0';
    it->text = key;
    return 0;
}

/* The item kind of directive letter ch, or -1. */
static int directive(char ch)
{
    switch (ch) {
    case 'h': return SRV_LOGFMT_REMOTE;
    case 'l': case 'u': return SRV_LOGFMT_DASH;
    case 't': return SRV_LOGFMT_TIME;
    case 'r': return SRV_LOGFMT_REQUEST_LINE;
    case 's': return SRV_LOGFMT_STATUS;
    case 'b': return SRV_LOGFMT_BYTES_CLF;
    case 'B': return SRV_LOGFMT_BYTES;
    case 'D': return SRV_LOGFMT_MICROS;
    case 'T': return SRV_LOGFMT_SECONDS;
    case 'P': return SRV_LOGFMT_PID;
    case 'm': return SRV_LOGFMT_METHOD;
    case 'U': return SRV_LOGFMT_PATH;
    case 'q': return SRV_LOGFMT_QUERY;
    case 'H': return SRV_LOGFMT_PROTOCOL;
    case 'R': return SRV_LOGFMT_REQUEST_ID;
    default: return -1;
    }
}

/* Compiles the directive whose '%' is at *pp; moves *pp past it. */
static int compile_directive(const char *fmt, const char **pp, srv_logfmt *f,
                             srv_logfmt_error *err)
{
    const char *pct = *pp, *p = pct + 1;
    size_t pos = (size_t)(pct - fmt);
    if (*p == '>')
        p++;
    if (*p == '{') {
        const char *close = strchr(p, '}');
        if (close == NULL || close[1] != 'i')
            return fail(err, pos, "only %{Header}i takes a name");
        size_t n = (size_t)(close - p - 1);
        if (n > SRV_LOGFMT_MAX_NAME)
            return fail(err, pos, "a %{Header}i name is longer than 250 bytes");
        if (add_header(f, p + 1, n) < 0)
            return fail(err, pos, "out of memory");
        *pp = close + 2;
        return 0;
    }
    int kind = *p == '%' ? SRV_LOGFMT_TEXT : directive(*p);
    if (kind < 0) {
        char msg[40];
        snprintf(msg, sizeof msg, "unknown directive '%%%c'", *p ? *p : ' ');
        return fail(err, pos, msg);
    }
    if ((kind == SRV_LOGFMT_TEXT ? add_text(f, "%", 1) : push(f, kind) ? 0 : -1) < 0)
        return fail(err, pos, "out of memory");
    *pp = p + 1;
    return 0;
}

int srv_logfmt_compile(const char *fmt, srv_logfmt *out, srv_logfmt_error *err)
{
    srv_logfmt f = {NULL, 0};
    const char *p = fmt;
    while (*p) {
        const char *pct = strchr(p, '%');
        size_t n = pct ? (size_t)(pct - p) : strlen(p);
        if (n > 0 && add_text(&f, p, n) < 0) {
            fail(err, (size_t)(p - fmt), "out of memory");
            goto error;
        }
        if (pct == NULL)
            break;
        p = pct;
        if (compile_directive(fmt, &p, &f, err) < 0)
            goto error;
    }
    *out = f;
    return 0;
error:
    srv_logfmt_free(&f);
    *out = f;
    return -1;
}

void srv_logfmt_free(srv_logfmt *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i].text);
    free(f->items);
    f->items = NULL;
    f->n = 0;
}
