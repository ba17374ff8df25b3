/*
 * accesslog.c - one line per request, in an Apache-style format.
 *
 * The format is compiled once, by logfmt.c (pure code, unit-tested), into a
 * list of items (literal text, or a directive such as %h or %{User-Agent}i);
 * here each header item gets its interned environ key.  Values come from the request's
 * environ, which already holds REMOTE_ADDR after proxy headers were applied,
 * and from the response's status and byte count.  Request header values are
 * latin-1 str, whose bytes are written as they are; characters that could
 * forge a log line (control characters, '"' and '\') are escaped.
 *
 * Lines accumulate in a buffer that a timer flushes every second; a full
 * buffer is flushed at once, and the worker flushes at exit.  The loop thus
 * makes one write(2) per batch of requests, not one per request.
 */
#include "srv/accesslog.h"
#include "srv/clock.h"
#include "srv/buffer.h"
#include "srv/config.h"
#include "srv/hub.h"
#include "srv/log.h"
#include "srv/logfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_AT (64 * 1024)
#define FLUSH_INTERVAL 1.0

/* A compiled item (logfmt.h) with the Python key a header item looks up. */
typedef struct item {
    int kind;            /* enum srv_logfmt_kind */
    const char *text;    /* SRV_LOGFMT_TEXT: in fmt's items */
    size_t len;
    PyObject *key;       /* SRV_LOGFMT_HEADER: the environ key, owned */
} item;

int srv_access_log_enabled;

static srv_logfmt fmt;   /* kept for the process: items' text points into it */
static item *items;
static size_t nitems;
static int fd = -1;
static srv_buf out;
static ev_timer flush_timer;
static unsigned long long next_id;
static PyObject *k_remote_addr, *k_method, *k_raw_uri, *k_protocol, *k_query, *k_request_id;

/* Compiles the format (logfmt.c) and interns its header keys. */
static int compile(const char *format)
{
    srv_logfmt_error err;
    if (srv_logfmt_compile(format, &fmt, &err) < 0) {
        fprintf(stderr, "srv: error: --access-log-format: %s\n", err.msg);
        return -1;
    }
    items = calloc(fmt.n ? fmt.n : 1, sizeof *items);
    if (items == NULL) {
        fprintf(stderr, "srv: error: --access-log-format: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < fmt.n; i++) {
        const srv_logfmt_item *f = &fmt.items[i];
        items[i].kind = f->kind;
        items[i].text = f->text;
        items[i].len = f->len;
        if (f->kind == SRV_LOGFMT_HEADER
            && (items[i].key = PyUnicode_InternFromString(f->text)) == NULL) {
            fprintf(stderr, "srv: error: --access-log-format: a %%{Header}i name is not UTF-8\n");
            PyErr_Clear();
            return -1;
        }
    }
    nitems = fmt.n;
    return 0;
}

static void flush_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    srv_access_log_flush();
}

SRV_EV_CALLBACK(on_flush, ev_timer, flush_cb)

int srv_access_log_open(void)
{
    if (srv_cfg.access_log == NULL)
        return 0;
    struct { PyObject **var; const char *s; } keys[] = {
        {&k_remote_addr, "REMOTE_ADDR"}, {&k_method, "REQUEST_METHOD"}, {&k_raw_uri, "RAW_URI"},
        {&k_protocol, "SERVER_PROTOCOL"}, {&k_query, "QUERY_STRING"},
        {&k_request_id, "HTTP_X_REQUEST_ID"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((*keys[i].var = PyUnicode_InternFromString(keys[i].s)) == NULL)
            return -1;
    if (compile(srv_cfg.access_log_format) < 0)
        return -1;
    if (strcmp(srv_cfg.access_log, "-") == 0) {
        fd = STDOUT_FILENO;
    } else {
        fd = open(srv_cfg.access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "srv: error: --access-log %s: %s\n", srv_cfg.access_log, strerror(errno));
            return -1;
        }
    }
    ev_timer_init(&flush_timer, on_flush, FLUSH_INTERVAL, FLUSH_INTERVAL);
    ev_timer_start(srv_loop, &flush_timer);
    ev_unref(srv_loop);
    srv_access_log_enabled = 1;
    return 0;
}

void srv_access_log_flush(void)
{
    size_t off = 0;
    while (off < out.len) {
        ssize_t w = write(fd, out.data + off, out.len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;   /* a full disk must not stop the server */
        }
        off += (size_t)w;
    }
    out.len = 0;
}

static inline int needs_escape(unsigned char ch)
{
    return ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\';
}

/* Appends text, escaping what could forge or break a line; runs of plain
 * bytes are copied in one go. */
static void put_escaped(const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!needs_escape(ch))
            continue;
        srv_buf_append(&out, s + run, i - run);
        char esc[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
        srv_buf_append(&out, esc, 4);
        run = i + 1;
    }
    srv_buf_append(&out, s + run, n - run);
}

/* Appends a decimal number without printf. */
static void put_u64(unsigned long long v)
{
    char buf[24];
    size_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    srv_buf_append(&out, buf + i, sizeof buf - i);
}

/* The latin-1 bytes of environ[key], or NULL. */
static const char *env_str(PyObject *env, PyObject *key, Py_ssize_t *len)
{
    PyObject *v = PyDict_GetItemWithError(env, key);   /* borrowed */
    if (v == NULL || !PyUnicode_Check(v) || PyUnicode_KIND(v) != PyUnicode_1BYTE_KIND) {
        PyErr_Clear();
        return NULL;
    }
    *len = PyUnicode_GET_LENGTH(v);
    return (const char *)PyUnicode_1BYTE_DATA(v);
}

static void put_env(PyObject *env, PyObject *key, int dash)
{
    Py_ssize_t n = 0;
    const char *s = env_str(env, key, &n);
    if (s && n > 0)
        put_escaped(s, (size_t)n);
    else if (dash)
        srv_buf_append(&out, "-", 1);
}

static void put_time(void)
{
    static time_t cached = -1;
    static char text[40];
    static size_t len;
    time_t now = time(NULL);
    if (now != cached) {
        text[0] = '[';
        len = 1 + srv_format_clf_date(text + 1, now);
        text[len++] = ']';
        cached = now;
    }
    srv_buf_append(&out, text, len);
}

static void put_request_line(PyObject *env)
{
    put_env(env, k_method, 1);
    srv_buf_append(&out, " ", 1);
    put_env(env, k_raw_uri, 1);
    srv_buf_append(&out, " ", 1);
    put_env(env, k_protocol, 1);
}

/* %U: the raw target up to its query. */
static void put_path(PyObject *env)
{
    Py_ssize_t len = 0;
    const char *s = env_str(env, k_raw_uri, &len);
    const char *q = s ? memchr(s, '?', (size_t)len) : NULL;
    if (s)
        put_escaped(s, q ? (size_t)(q - s) : (size_t)len);
}

/* %q: "?" and the query, or nothing. */
static void put_query(PyObject *env)
{
    Py_ssize_t len = 0;
    const char *s = env_str(env, k_query, &len);
    if (s && len > 0) {
        srv_buf_append(&out, "?", 1);
        put_escaped(s, (size_t)len);
    }
}

/* %R: the client's X-Request-ID, else one made up: pid and a counter. */
static void put_request_id(PyObject *env)
{
    Py_ssize_t len = 0;
    const char *s = env_str(env, k_request_id, &len);
    if (s && len > 0) {
        put_escaped(s, (size_t)len);
    } else {
        char num[64];
        int n = snprintf(num, sizeof num, "%08x%08llx", (unsigned)getpid(), ++next_id);
        srv_buf_append(&out, num, (size_t)n);
    }
}

static void put_item(const item *it, const srv_access_entry *e)
{
    PyObject *env = e->environ;
    switch (it->kind) {
    case SRV_LOGFMT_TEXT: srv_buf_append(&out, it->text, it->len); break;
    case SRV_LOGFMT_REMOTE: put_env(env, k_remote_addr, 1); break;
    case SRV_LOGFMT_DASH: srv_buf_append(&out, "-", 1); break;
    case SRV_LOGFMT_TIME: put_time(); break;
    case SRV_LOGFMT_REQUEST_LINE: put_request_line(env); break;
    case SRV_LOGFMT_STATUS: put_u64((unsigned)e->status); break;
    case SRV_LOGFMT_BYTES_CLF:
        if (e->body_bytes == 0)
            srv_buf_append(&out, "-", 1);
        else
            put_u64(e->body_bytes);
        break;
    case SRV_LOGFMT_BYTES: put_u64(e->body_bytes); break;
    case SRV_LOGFMT_MICROS: put_u64((unsigned long long)(e->seconds * 1e6)); break;
    case SRV_LOGFMT_SECONDS: put_u64((unsigned long long)e->seconds); break;
    case SRV_LOGFMT_PID: put_u64((unsigned long long)getpid()); break;
    case SRV_LOGFMT_METHOD: put_env(env, k_method, 1); break;
    case SRV_LOGFMT_PATH: put_path(env); break;
    case SRV_LOGFMT_QUERY: put_query(env); break;
    case SRV_LOGFMT_PROTOCOL: put_env(env, k_protocol, 1); break;
    case SRV_LOGFMT_HEADER: put_env(env, it->key, 1); break;
    case SRV_LOGFMT_REQUEST_ID: put_request_id(env); break;
    }
}

void srv_access_log_write(const srv_access_entry *e)
{
    srv_buf_reserve(&out, 512);
    for (size_t i = 0; i < nitems; i++)
        put_item(&items[i], e);
    srv_buf_append(&out, "\n", 1);
    if (out.len >= FLUSH_AT)
        srv_access_log_flush();
}
