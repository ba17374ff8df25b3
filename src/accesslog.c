/*
 * accesslog.c - one line per request, in an Apache-style format.
 *
 * The format is compiled once into a list of items (literal text, or a
 * directive such as %h or %{User-Agent}i).  Values come from the request's
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

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_AT (64 * 1024)
#define FLUSH_INTERVAL 1.0

enum item_kind {
    IT_TEXT, IT_REMOTE, IT_DASH, IT_TIME, IT_REQUEST_LINE, IT_STATUS, IT_BYTES_CLF,
    IT_BYTES, IT_MICROS, IT_SECONDS, IT_PID, IT_METHOD, IT_PATH, IT_QUERY, IT_PROTOCOL,
    IT_HEADER, IT_REQUEST_ID,
};

typedef struct item {
    int kind;
    char *text;          /* IT_TEXT */
    size_t len;
    PyObject *key;       /* IT_HEADER: the environ key, owned */
} item;

int srv_access_log_enabled;

static item *items;
static int nitems;
static int fd = -1;
static srv_buf out;
static ev_timer flush_timer;
static unsigned long long next_id;
static PyObject *k_remote_addr, *k_method, *k_raw_uri, *k_protocol, *k_query, *k_request_id;

static int add_item(int kind, const char *text, size_t len, PyObject *key)
{
    item *p = realloc(items, sizeof *items * (size_t)(nitems + 1));
    if (p == NULL)
        return -1;
    items = p;
    items[nitems].kind = kind;
    items[nitems].text = text ? strndup(text, len) : NULL;
    items[nitems].len = len;
    items[nitems].key = key;
    nitems++;
    return 0;
}

/* "%{User-Agent}i" -> environ key "HTTP_USER_AGENT". */
static PyObject *header_key(const char *name, size_t n)
{
    char buf[256];
    if (n + 6 > sizeof buf)
        return NULL;
    size_t o = 0;
    if (!(n == 12 && strncasecmp(name, "content-type", 12) == 0)
        && !(n == 14 && strncasecmp(name, "content-length", 14) == 0)) {
        memcpy(buf, "HTTP_", 5);
        o = 5;
    }
    for (size_t i = 0; i < n; i++)
        buf[o++] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    return PyUnicode_InternFromString((buf[o] = '\0', buf));
}

static int compile(const char *fmt)
{
    const char *p = fmt;
    while (*p) {
        const char *pct = strchr(p, '%');
        if (pct == NULL) {
            return add_item(IT_TEXT, p, strlen(p), NULL);
        }
        if (pct > p && add_item(IT_TEXT, p, (size_t)(pct - p), NULL) < 0)
            return -1;
        p = pct + 1;
        if (*p == '>')
            p++;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL || close[1] != 'i') {
                fprintf(stderr, "srv: error: --access-log-format: only %%{Header}i takes a name\n");
                return -1;
            }
            PyObject *key = header_key(p + 1, (size_t)(close - p - 1));
            if (key == NULL || add_item(IT_HEADER, NULL, 0, key) < 0)
                return -1;
            p = close + 2;
            continue;
        }
        int kind;
        switch (*p) {
        case 'h': kind = IT_REMOTE; break;
        case 'l': case 'u': kind = IT_DASH; break;
        case 't': kind = IT_TIME; break;
        case 'r': kind = IT_REQUEST_LINE; break;
        case 's': kind = IT_STATUS; break;
        case 'b': kind = IT_BYTES_CLF; break;
        case 'B': kind = IT_BYTES; break;
        case 'D': kind = IT_MICROS; break;
        case 'T': kind = IT_SECONDS; break;
        case 'P': kind = IT_PID; break;
        case 'm': kind = IT_METHOD; break;
        case 'U': kind = IT_PATH; break;
        case 'q': kind = IT_QUERY; break;
        case 'H': kind = IT_PROTOCOL; break;
        case 'R': kind = IT_REQUEST_ID; break;
        case '%':
            if (add_item(IT_TEXT, "%", 1, NULL) < 0)
                return -1;
            p++;
            continue;
        default:
            fprintf(stderr, "srv: error: --access-log-format: unknown directive '%%%c'\n",
                    *p ? *p : ' ');
            return -1;
        }
        if (add_item(kind, NULL, 0, NULL) < 0)
            return -1;
        p++;
    }
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

void srv_access_log_write(const srv_access_entry *e)
{
    char num[64];
    int n;
    PyObject *env = e->environ;
    srv_buf_reserve(&out, 512);
    for (int i = 0; i < nitems; i++) {
        const item *it = &items[i];
        switch (it->kind) {
        case IT_TEXT: srv_buf_append(&out, it->text, it->len); break;
        case IT_REMOTE: put_env(env, k_remote_addr, 1); break;
        case IT_DASH: srv_buf_append(&out, "-", 1); break;
        case IT_TIME: put_time(); break;
        case IT_REQUEST_LINE:
            put_env(env, k_method, 1);
            srv_buf_append(&out, " ", 1);
            put_env(env, k_raw_uri, 1);
            srv_buf_append(&out, " ", 1);
            put_env(env, k_protocol, 1);
            break;
        case IT_STATUS:
            put_u64((unsigned)e->status);
            break;
        case IT_BYTES_CLF:
        case IT_BYTES:
            if (e->body_bytes == 0 && it->kind == IT_BYTES_CLF)
                srv_buf_append(&out, "-", 1);
            else
                put_u64(e->body_bytes);
            break;
        case IT_MICROS:
            put_u64((unsigned long long)(e->seconds * 1e6));
            break;
        case IT_SECONDS:
            put_u64((unsigned long long)e->seconds);
            break;
        case IT_PID:
            put_u64((unsigned long long)getpid());
            break;
        case IT_METHOD: put_env(env, k_method, 1); break;
        case IT_PATH: {
            Py_ssize_t len = 0;
            const char *s = env_str(env, k_raw_uri, &len);
            const char *q = s ? memchr(s, '?', (size_t)len) : NULL;
            if (s)
                put_escaped(s, q ? (size_t)(q - s) : (size_t)len);
            break;
        }
        case IT_QUERY: {
            Py_ssize_t len = 0;
            const char *s = env_str(env, k_query, &len);
            if (s && len > 0) {
                srv_buf_append(&out, "?", 1);
                put_escaped(s, (size_t)len);
            }
            break;
        }
        case IT_PROTOCOL: put_env(env, k_protocol, 1); break;
        case IT_HEADER: {
            Py_ssize_t len = 0;
            const char *s = env_str(env, it->key, &len);
            if (s && len > 0)
                put_escaped(s, (size_t)len);
            else
                srv_buf_append(&out, "-", 1);
            break;
        }
        case IT_REQUEST_ID: {
            Py_ssize_t len = 0;
            const char *s = env_str(env, k_request_id, &len);
            if (s && len > 0) {
                put_escaped(s, (size_t)len);
            } else {
                n = snprintf(num, sizeof num, "%08x%08llx", (unsigned)getpid(), ++next_id);
                srv_buf_append(&out, num, (size_t)n);
            }
            break;
        }
        }
    }
    srv_buf_append(&out, "\n", 1);
    if (out.len >= FLUSH_AT)
        srv_access_log_flush();
}
