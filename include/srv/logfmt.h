/*
 * logfmt.h - the access-log format (--access-log-format) compiled into a
 * list of items: pure code, no Python, no libev.
 *
 * Owns the format's syntax, gunicorn's and Apache's subset that srv knows:
 * literal text, "%%", and the directives listed with enum srv_logfmt_kind,
 * each of which may be written with a '>' after the '%' (Apache's "final
 * status", the only one srv has), and %{Name}i, a request header, looked up
 * in the environ under the key that hdrkey.c gives the name.  accesslog.c
 * turns the items into its Python keys and writes the lines.
 */
#ifndef SRV_LOGFMT_H
#define SRV_LOGFMT_H

#include <stddef.h>

enum srv_logfmt_kind {
    SRV_LOGFMT_TEXT,          /* literal text ("%%" is a '%') */
    SRV_LOGFMT_REMOTE,        /* %h  REMOTE_ADDR */
    SRV_LOGFMT_DASH,          /* %l %u  always "-" */
    SRV_LOGFMT_TIME,          /* %t  [day/Mon/year:hh:mm:ss +zone] */
    SRV_LOGFMT_REQUEST_LINE,  /* %r  method, raw target, protocol */
    SRV_LOGFMT_STATUS,        /* %s */
    SRV_LOGFMT_BYTES_CLF,     /* %b  body bytes, "-" for none */
    SRV_LOGFMT_BYTES,         /* %B  body bytes */
    SRV_LOGFMT_MICROS,        /* %D */
    SRV_LOGFMT_SECONDS,       /* %T */
    SRV_LOGFMT_PID,           /* %P */
    SRV_LOGFMT_METHOD,        /* %m */
    SRV_LOGFMT_PATH,          /* %U  the raw target up to '?' */
    SRV_LOGFMT_QUERY,         /* %q  "?" and QUERY_STRING, or nothing */
    SRV_LOGFMT_PROTOCOL,      /* %H */
    SRV_LOGFMT_HEADER,        /* %{Name}i */
    SRV_LOGFMT_REQUEST_ID,    /* %R  X-Request-ID, or one made up */
};

/* Header names longer than this are refused. */
#define SRV_LOGFMT_MAX_NAME 250

typedef struct srv_logfmt_item {
    int kind;                 /* enum srv_logfmt_kind */
    char *text;               /* TEXT: the text; HEADER: the environ key
                                 ("HTTP_USER_AGENT"); else NULL.  Owned,
                                 NUL-terminated */
    size_t len;               /* of text */
} srv_logfmt_item;

typedef struct srv_logfmt {
    srv_logfmt_item *items;   /* owned; adjacent literal text is one item */
    size_t n;
} srv_logfmt;

typedef struct srv_logfmt_error {
    size_t pos;               /* offset in the format of the bad '%' */
    char msg[80];             /* e.g. "unknown directive '%x'" */
} srv_logfmt_error;

/* Compiles the NUL-terminated format fmt into *out.  Returns 0, or -1 with
 * *err filled in and *out empty. */
int srv_logfmt_compile(const char *fmt, srv_logfmt *out, srv_logfmt_error *err);

/* Frees what srv_logfmt_compile() allocated; *f is left empty. */
void srv_logfmt_free(srv_logfmt *f);

#endif
