/*
 * wsgi.c - the WSGI gateway: environ, start_response, response framing.
 *
 * Per request, a worker greenlet runs handle_request():
 *
 *   1. build_environ(): copy the listener's template dict (the constant keys)
 *      and add the request's keys.  Keys are interned once; HTTP_* keys come
 *      from a small cache keyed by the normalised header name, so a request
 *      with common headers creates no key strings.
 *   2. Call the app with the environ and this request's StartResponse.
 *      start_response validates the status and headers and serialises them
 *      at once into resp->head, so that later mutation of the list by the app
 *      cannot smuggle anything into the response.
 *   3. Send the body.  The framing is chosen when the first bytes go out:
 *      the app's Content-Length, else a length srv can count (a list or
 *      tuple), else chunked on HTTP/1.1, else close-delimited.  The head and
 *      the first chunk leave in one writev.  A write that would block makes
 *      the greenlet wait; nothing is buffered beyond the chunk in hand.
 *   4. Call the iterable's close(), drain an unread body or give up the
 *      connection, and decide on keep-alive.
 *
 * Errors: an exception before the head is sent becomes a 500 (or the status
 * a body-limit error asked for) with the traceback in the error log; after
 * the head is sent the connection is closed, so the client sees a truncated
 * response rather than a wrong one.
 */
#include "srv/clock.h"
#include "srv/fault.h"
#include "srv/wsgi.h"
#include "srv/accesslog.h"
#include "srv/aio.h"
#include "srv/config.h"
#include "srv/conn.h"
#include "srv/filewrap.h"
#include "srv/geventmode.h"
#include "srv/hub.h"
#include "srv/input.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/master.h"
#include "srv/metrics.h"
#include "srv/proxy.h"
#include "srv/pymod.h"
#include "srv/reqline.h"
#include "srv/worker.h"
#include "srv/ws.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define DRAIN_MAX (1u << 20)

static PyObject *app;          /* owned: the WSGI callable */

/* Interned environ keys and constant values, owned for the process. */
static PyObject *k_request_method, *k_script_name, *k_path_info, *k_query_string,
    *k_content_type, *k_content_length, *k_server_name, *k_server_port,
    *k_server_protocol, *k_remote_addr, *k_remote_port, *k_raw_uri, *k_request_uri,
    *k_wsgi_version, *k_wsgi_url_scheme, *k_wsgi_input, *k_wsgi_errors,
    *k_wsgi_multithread, *k_wsgi_multiprocess, *k_wsgi_run_once,
    *k_wsgi_input_terminated, *k_wsgi_file_wrapper, *k_server_software, *k_http_host;
static PyObject *v_http10, *v_http11, *v_empty, *v_http, *v_https;
static PyObject *method_names[64];
static PyObject *s_close, *s_gr_context;

/* ---- environ keys for request headers ---------------------------------- */

#define KEY_CACHE_SLOTS 512
#define KEY_CACHE_MAX 256
#define KEY_NAME_MAX 64

typedef struct {
    uint32_t hash;
    uint32_t len;
    char name[KEY_NAME_MAX];   /* "HTTP_USER_AGENT" */
    PyObject *key;             /* owned, interned */
} key_slot;

static key_slot key_cache[KEY_CACHE_SLOTS];
static int key_cache_used;

static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* A new reference to the environ key for header `name`. */
static PyObject *header_key(const char *name, size_t len)
{
    char buf[KEY_NAME_MAX];
    if (len + 5 > sizeof buf) {
        char *big = malloc(len + 5);
        if (big == NULL)
            return PyErr_NoMemory();
        memcpy(big, "HTTP_", 5);
        for (size_t i = 0; i < len; i++)
            big[5 + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
        PyObject *k = PyUnicode_DecodeLatin1(big, (Py_ssize_t)(len + 5), NULL);
        free(big);
        return k;
    }
    memcpy(buf, "HTTP_", 5);
    for (size_t i = 0; i < len; i++)
        buf[5 + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    len += 5;
    uint32_t h = fnv1a(buf, len);
    for (uint32_t i = 0; i < KEY_CACHE_SLOTS; i++) {
        key_slot *s = &key_cache[(h + i) & (KEY_CACHE_SLOTS - 1)];
        if (s->key == NULL) {
            PyObject *k = PyUnicode_DecodeLatin1(buf, (Py_ssize_t)len, NULL);
            if (k == NULL || key_cache_used >= KEY_CACHE_MAX)
                return k;
            PyUnicode_InternInPlace(&k);
            s->hash = h;
            s->len = (uint32_t)len;
            memcpy(s->name, buf, len);
            s->key = k;
            key_cache_used++;
            Py_INCREF(k);
            return k;
        }
        if (s->hash == h && s->len == len && memcmp(s->name, buf, len) == 0) {
            Py_INCREF(s->key);
            return s->key;
        }
    }
    return PyUnicode_DecodeLatin1(buf, (Py_ssize_t)len, NULL);
}

/* ---- environ ------------------------------------------------------------- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* PATH_INFO: the percent-decoded path, as a latin-1 str (PEP 3333). */
static PyObject *decode_path(const char *p, size_t n)
{
    const char *pct = memchr(p, '%', n);
    if (pct == NULL)
        return PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
    char stackbuf[1024] = "";
    char *out = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (out == NULL)
        return PyErr_NoMemory();
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
    PyObject *s = PyUnicode_DecodeLatin1(out, (Py_ssize_t)o, NULL);
    if (out != stackbuf)
        free(out);
    return s;
}

/* Sets key to a new latin-1 str; steals nothing. */
static int set_latin1(PyObject *env, PyObject *key, const char *p, size_t n)
{
    PyObject *v = PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItem(env, key, v);
    Py_DECREF(v);
    return rc;
}

static int set_remote(srv_conn *c, PyObject *env)
{
    if (c->remote_addr == NULL) {
        char host[INET6_ADDRSTRLEN] = "";
        int port = -1;
        if (c->peer.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&c->peer;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            port = ntohs(a->sin_port);
        } else if (c->peer.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&c->peer;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            port = ntohs(a->sin6_port);
        }
        c->remote_addr = PyUnicode_FromString(host);
        c->remote_port = srv_fault("remote_addr") ? PyErr_NoMemory()
                         : port >= 0 ? PyUnicode_FromFormat("%d", port) : PyUnicode_FromString("");
        if (c->remote_addr == NULL || c->remote_port == NULL) {
            /* Both or neither: the next request must not find one NULL. */
            Py_CLEAR(c->remote_addr);
            Py_CLEAR(c->remote_port);
            return -1;
        }
    }
    if (PyDict_SetItem(env, k_remote_addr, c->remote_addr) < 0)
        return -1;
    return PyDict_SetItem(env, k_remote_port, c->remote_port);
}

/* Adds one request header, joining repeats with "," ("; " for Cookie). */
static int add_header(PyObject *env, const char *name, size_t nlen, const char *val, size_t vlen)
{
    if (memchr(name, '_', nlen))
        return 0;   /* could spoof a '-' header: dropped, as nginx does */
    PyObject *key;
    if (nlen == 12 && strncasecmp(name, "content-type", 12) == 0) {
        key = k_content_type;
        Py_INCREF(key);
    } else if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0) {
        key = k_content_length;
        Py_INCREF(key);
    } else {
        key = header_key(name, nlen);
        if (key == NULL)
            return -1;
    }
    PyObject *v = PyUnicode_DecodeLatin1(val, (Py_ssize_t)vlen, NULL);
    if (v == NULL) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *old = PyDict_SetDefault(env, key, v);   /* borrowed */
    int rc = 0;
    if (old == NULL) {
        rc = -1;
    } else if (old != v) {
        const char *sep = (nlen == 6 && strncasecmp(name, "cookie", 6) == 0) ? "; " : ",";
        PyObject *joined = PyUnicode_FromFormat("%U%s%U", old, sep, v);
        rc = joined ? PyDict_SetItem(env, key, joined) : -1;
        Py_XDECREF(joined);
    }
    Py_DECREF(v);
    Py_DECREF(key);
    return rc;
}

/* Where a proxy told us who the client is (used only if the peer is trusted). */
typedef struct {
    int any;
    const char *xff, *xfp, *fwd;
    size_t xff_len, xfp_len, fwd_len;
} forwarded_info;

static void note_forwarding(forwarded_info *f, const char *name, size_t n, const char *v, size_t vlen)
{
    if (n == 15 && strncasecmp(name, "x-forwarded-for", 15) == 0) {
        f->xff = v;          /* a repeat: the last line wins, like the last entry */
        f->xff_len = vlen;
    } else if (n == 17 && strncasecmp(name, "x-forwarded-proto", 17) == 0) {
        f->xfp = v;
        f->xfp_len = vlen;
    } else if (n == 9 && strncasecmp(name, "forwarded", 9) == 0) {
        f->fwd = v;
        f->fwd_len = vlen;
    } else {
        return;
    }
    f->any = 1;
}

static int set_scheme(PyObject *env, const char *proto, size_t n)
{
    if (n == 5 && strncasecmp(proto, "https", 5) == 0)
        return PyDict_SetItem(env, k_wsgi_url_scheme, v_https);
    if (n == 4 && strncasecmp(proto, "http", 4) == 0)
        return PyDict_SetItem(env, k_wsgi_url_scheme, v_http);
    return 0;
}

/* From a trusted proxy: X-Forwarded-For/-Proto, else RFC 7239 Forwarded. */
static int apply_forwarding(PyObject *env, const forwarded_info *f)
{
    const char *addr = NULL, *proto = f->xfp;
    size_t alen = 0, plen = f->xfp_len;
    if (f->xff) {
        alen = srv_proxy_xff_last(f->xff, f->xff_len, &addr);
    } else if (f->fwd) {
        const char *fproto = NULL;
        size_t fplen = 0;
        srv_proxy_forwarded_last(f->fwd, f->fwd_len, &addr, &alen, &fproto, &fplen);
        if (!proto) {
            proto = fproto;
            plen = fplen;
        }
    }
    if (alen > 0 && set_latin1(env, k_remote_addr, addr, alen) < 0)
        return -1;
    if (proto && set_scheme(env, proto, plen) < 0)
        return -1;
    return 0;
}

static PyObject *method_str(srv_request *req, const char *base)
{
    unsigned m = req->method_id;
    if (m < 64 && method_names[m]) {
        Py_INCREF(method_names[m]);
        return method_names[m];
    }
    return PyUnicode_DecodeLatin1(base + req->method.off, req->method.len, NULL);
}

/* RFC 9112 3.2.2: an absolute-form target's authority replaces Host. */
static int set_authority(PyObject *env, const char *base, const srv_request *req)
{
    const char *a = base + req->authority.off;
    size_t alen = req->authority.len;
    if (set_latin1(env, k_http_host, a, alen) < 0)
        return -1;
    return set_latin1(env, k_server_name, a, srv_authority_host_len(a, alen));
}

/* A request line that did not parse, logged as sent (the log escapes it):
 * split at its first two spaces, as far as it goes, at most 1 KiB. */
static int set_raw_line(PyObject *env, const char *p, size_t n)
{
    const char *eol = memchr(p, '\n', n);
    if (eol)
        n = (size_t)(eol - p);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n > 1024)
        n = 1024;
    PyObject *keys[3] = {k_request_method, k_raw_uri, k_server_protocol};
    for (int i = 0; i < 3 && n > 0; i++) {
        const char *sp = i < 2 ? memchr(p, ' ', n) : NULL;
        size_t len = sp ? (size_t)(sp - p) : n;
        if (set_latin1(env, keys[i], p, len) < 0)
            return -1;
        p += len;
        n -= len;
        if (sp) {
            p++;
            n--;
        }
    }
    return 0;
}

/* The access-log line of a request srv refused itself (400, 408, 413, 414,
 * 417, 431, 501, 505): what of the head was parsed, in an environ of its
 * own, so that every format directive works as for an app's request. */
static void log_refused(srv_conn *c, int status, size_t body_bytes)
{
    if (!srv_access_log_enabled)
        return;
    srv_request *req = &c->req;
    const char *base = c->rbuf.data;
    PyObject *env = PyDict_New();
    if (env == NULL)
        goto fail;
    if (set_remote(c, env) < 0)
        goto fail;
    if (req->line_done && req->head_live) {
        PyObject *method = method_str(req, base);
        if (method == NULL || PyDict_SetItem(env, k_request_method, method) < 0) {
            Py_XDECREF(method);
            goto fail;
        }
        Py_DECREF(method);
        if (set_latin1(env, k_raw_uri, base + req->url.off, req->url.len) < 0
            || PyDict_SetItem(env, k_server_protocol, req->http_minor ? v_http11 : v_http10) < 0)
            goto fail;
    } else if (c->rpos < c->rbuf.len && set_raw_line(env, base + c->rpos,
                                                     c->rbuf.len - c->rpos) < 0) {
        goto fail;
    }
    srv_access_entry e = {env, status, body_bytes,
                          req->head_live ? ev_now(srv_loop) - c->head_start : 0};
    srv_access_log_write(&e);
    Py_DECREF(env);
    return;
fail:
    Py_XDECREF(env);
    srv_log_pyerr("access log of a refused request");
}

static PyObject *build_environ(srv_conn *c)
{
    srv_request *req = &c->req;
    const char *base = c->rbuf.data;
    PyObject *env = PyDict_Copy(c->listener->environ_template);
    if (env == NULL)
        return NULL;

    PyObject *method = method_str(req, base);
    if (method == NULL || PyDict_SetItem(env, k_request_method, method) < 0) {
        Py_XDECREF(method);
        goto fail;
    }
    Py_DECREF(method);

    /* The request target: origin-form, absolute-form or asterisk-form. */
    const char *url = base + req->url.off;
    size_t ulen = req->url.len;
    PyObject *raw = PyUnicode_DecodeLatin1(url, (Py_ssize_t)ulen, NULL);
    if (raw == NULL || PyDict_SetItem(env, k_raw_uri, raw) < 0
        || PyDict_SetItem(env, k_request_uri, raw) < 0) {
        Py_XDECREF(raw);
        goto fail;
    }
    Py_DECREF(raw);
    /* reqline.c split the target: absolute-form loses its scheme and
     * authority here, and its authority stands for Host below. */
    const char *path = base + req->path.off;
    size_t plen = req->path.len;
    const char *hash = memchr(path, '#', plen);
    if (hash)
        plen = (size_t)(hash - path);
    const char *qmark = memchr(path, '?', plen);
    size_t path_len = qmark ? (size_t)(qmark - path) : plen;
    PyObject *path_info = decode_path(path, path_len);
    if (path_info == NULL || PyDict_SetItem(env, k_path_info, path_info) < 0) {
        Py_XDECREF(path_info);
        goto fail;
    }
    Py_DECREF(path_info);
    if (qmark) {
        if (set_latin1(env, k_query_string, qmark + 1, plen - path_len - 1) < 0)
            goto fail;
    } else if (PyDict_SetItem(env, k_query_string, v_empty) < 0) {
        goto fail;
    }

    if (PyDict_SetItem(env, k_server_protocol, req->http_minor ? v_http11 : v_http10) < 0)
        goto fail;
    if (set_remote(c, env) < 0)
        goto fail;

    forwarded_info fwd = {0};
    for (int i = 0; i < req->nheaders; i++) {
        const srv_header *h = &req->headers[i];
        const char *name = base + h->name.off;
        const char *v = base + h->value.off;
        size_t vlen = h->value.len;
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        note_forwarding(&fwd, name, h->name.len, v, vlen);
        if (add_header(env, name, h->name.len, v, vlen) < 0)
            goto fail;
    }
    if (req->target_form == SRV_TARGET_ABSOLUTE && set_authority(env, base, req) < 0)
        goto fail;
    if (fwd.any && srv_proxy_trusted(&c->peer) && apply_forwarding(env, &fwd) < 0)
        goto fail;

    PyObject *input = srv_input_new(c);
    if (input == NULL)
        goto fail;
    c->resp->input = input;   /* the response holds it; detached at the end */
    if (PyDict_SetItem(env, k_wsgi_input, input) < 0)
        goto fail;
    return env;
fail:
    Py_DECREF(env);
    return NULL;
}

/* ---- start_response and write() ----------------------------------------- */

typedef struct {
    PyObject_HEAD
    srv_conn *conn;   /* NULL once the request is over */
    vectorcallfunc vectorcall;
} StartResponseObject;

/* RFC 9110 token characters, for header names. */
static unsigned char tchar[256];

static void init_tchar(void)
{
    for (int ch = 0; ch < 256; ch++)
        tchar[ch] = isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static inline int is_tchar(unsigned char ch)
{
    return tchar[ch];
}

/* The latin-1 bytes of a str, or NULL with ValueError/TypeError set. */
static const char *latin1_of(PyObject *s, Py_ssize_t *len, const char *what)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(s)->tp_name);
        return NULL;
    }
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_ValueError, "%s is not latin-1: %R", what, s);
        return NULL;
    }
    *len = PyUnicode_GET_LENGTH(s);
    return (const char *)PyUnicode_1BYTE_DATA(s);
}

static int check_field_value(const char *v, Py_ssize_t n, const char *what, PyObject *obj)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            PyErr_Format(PyExc_ValueError, "%s contains a control character: %R", what, obj);
            return -1;
        }
    }
    return 0;
}

#define header_is(name, n, lower) \
    ((size_t)(n) == sizeof(lower) - 1 && strncasecmp((name), (lower), sizeof(lower) - 1) == 0)

/* Notes what srv must know about one of the app's headers.  Returns 1 to
 * keep the header, 0 to drop it, -1 on error. */
static int note_header(srv_response *r, const char *name, Py_ssize_t nlen,
                       const char *val, Py_ssize_t vlen, PyObject *vobj)
{
    if (header_is(name, nlen, "content-length")) {
        int64_t n = 0;
        if (vlen == 0 || vlen > 18)
            goto bad_length;
        for (Py_ssize_t i = 0; i < vlen; i++) {
            if (val[i] < '0' || val[i] > '9')
                goto bad_length;
            n = n * 10 + (val[i] - '0');
        }
        r->content_length = n;
        return 1;
    bad_length:
        PyErr_Format(PyExc_ValueError, "invalid Content-Length header: %R", vobj);
        return -1;
    }
    if (header_is(name, nlen, "transfer-encoding")) {
        if (vlen == 7 && strncasecmp(val, "chunked", 7) == 0)
            return 0;   /* srv frames the body itself */
        PyErr_Format(PyExc_ValueError, "unsupported Transfer-Encoding from the app: %R", vobj);
        return -1;
    }
    if (header_is(name, nlen, "connection")) {
        for (Py_ssize_t i = 0; i + 5 <= vlen; i++)
            if (strncasecmp(val + i, "close", 5) == 0)
                r->close = 1;
        return 0;   /* srv writes its own Connection header */
    }
    if (header_is(name, nlen, "date"))
        r->has_date = 1;
    else if (header_is(name, nlen, "server"))
        r->has_server = 1;
    return 1;
}

/* Validates status and headers and serialises them into r->head. */
static int set_status_and_headers(srv_response *r, PyObject *status, PyObject *headers)
{
    Py_ssize_t slen;
    const char *s = latin1_of(status, &slen, "status");
    if (s == NULL)
        return -1;
    if (slen < 4 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1])
        || !isdigit((unsigned char)s[2]) || s[3] != ' ' || s[0] == '0') {
        PyErr_Format(PyExc_ValueError, "malformed status %R: expected e.g. '200 OK'", status);
        return -1;
    }
    if (check_field_value(s, slen, "status", status) < 0)
        return -1;
    if (!PyList_Check(headers) && !PyTuple_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "headers must be a list, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    r->head.len = 0;
    r->content_length = -1;
    r->close = r->has_date = r->has_server = 0;
    r->status_code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (srv_buf_append(&r->head, "HTTP/1.1 ", 9) < 0 || srv_buf_append(&r->head, s, (size_t)slen) < 0
        || srv_buf_append(&r->head, "\r\n", 2) < 0)
        goto nomem;

    PyObject *seq = PySequence_Fast(headers, "headers must be a list");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "each header must be a (name, value) tuple, not %R", item);
            goto fail;
        }
        PyObject *nobj = PyTuple_GET_ITEM(item, 0), *vobj = PyTuple_GET_ITEM(item, 1);
        Py_ssize_t nlen, vlen;
        const char *name = latin1_of(nobj, &nlen, "header name");
        if (name == NULL)
            goto fail;
        const char *val = latin1_of(vobj, &vlen, "header value");
        if (val == NULL)
            goto fail;
        if (nlen == 0) {
            PyErr_SetString(PyExc_ValueError, "empty header name");
            goto fail;
        }
        for (Py_ssize_t j = 0; j < nlen; j++) {
            if (!is_tchar((unsigned char)name[j])) {
                PyErr_Format(PyExc_ValueError, "invalid header name %R", nobj);
                goto fail;
            }
        }
        if (check_field_value(val, vlen, "header value", vobj) < 0)
            goto fail;
        int keep = note_header(r, name, nlen, val, vlen, vobj);
        if (keep < 0)
            goto fail;
        if (keep && (srv_buf_append(&r->head, name, (size_t)nlen) < 0
                     || srv_buf_append(&r->head, ": ", 2) < 0
                     || srv_buf_append(&r->head, val, (size_t)vlen) < 0
                     || srv_buf_append(&r->head, "\r\n", 2) < 0)) {
            Py_DECREF(seq);
            goto nomem;
        }
    }
    Py_DECREF(seq);
    r->started = 1;
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
nomem:
    PyErr_NoMemory();
    return -1;
}

static PyObject *write_callable(PyObject *self, PyObject *data);
static PyMethodDef write_def = {"write", write_callable, METH_O, "write(data): send body bytes now"};

/* start_response(status, headers, exc_info=None), called the vectorcall
 * way: no argument tuple is built on the hot path. */
static PyObject *start_response_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames)
{
    static const char *const names[] = {"status", "headers", "exc_info"};
    PyObject *argv[3] = {NULL, NULL, Py_None};
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "start_response() takes at most 3 arguments (%zd given)", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        argv[i] = args[i];
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int slot = -1;
        for (int j = 0; j < 3; j++)
            if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0)
                slot = j;
        if (slot < 0 || (slot < nargs)) {
            PyErr_Format(PyExc_TypeError, "start_response() got an unexpected or repeated "
                         "keyword argument %R", name);
            return NULL;
        }
        argv[slot] = args[nargs + k];
    }
    if (argv[0] == NULL || argv[1] == NULL) {
        PyErr_SetString(PyExc_TypeError, "start_response() needs status and headers");
        return NULL;
    }
    PyObject *status = argv[0], *headers = argv[1], *exc_info = argv[2];
    srv_conn *c = ((StartResponseObject *)self)->conn;
    if (c == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called after the request ended");
        return NULL;
    }
    srv_response *r = c->resp;
    if (exc_info != Py_None) {
        if (r->headers_sent) {
            /* PEP 3333: too late to change the response; re-raise. */
            if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
                PyErr_SetString(PyExc_TypeError, "exc_info must be a 3-tuple");
                return NULL;
            }
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb == Py_None ? (Py_DECREF(tb), NULL) : tb);
            return NULL;
        }
    } else if (r->started) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called a second time without exc_info");
        return NULL;
    }
    if (set_status_and_headers(r, status, headers) < 0) {
        r->started = 0;
        r->head.len = 0;
        return NULL;
    }
    return PyCFunction_New(&write_def, self);
}

static void start_response_dealloc(PyObject *self)
{
    PyObject_Free(self);
}

static PyTypeObject StartResponseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.StartResponse",
    .tp_basicsize = sizeof(StartResponseObject),
    .tp_dealloc = start_response_dealloc,
    .tp_vectorcall_offset = offsetof(StartResponseObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "start_response(status, headers, exc_info=None) for one request",
};

/* ---- sending the response ------------------------------------------------ */

static int keep_alive_after(srv_conn *c)
{
    return c->req.keep_alive && !c->resp->close && !c->broken && !srv_loop_stopping();
}

/* Completes r->head with srv's own headers and the framing. */
static int finish_head(srv_conn *c, int at_end, size_t total)
{
    srv_response *r = c->resp;
    char line[64];
    int code = r->status_code;
    r->no_body = (code < 200 || code == 204 || code == 304 || c->req.method_id == HTTP_HEAD);
    if (r->content_length < 0 && !(code < 200 || code == 204 || code == 304)) {
        int64_t len = r->known_length >= 0 ? r->known_length : (at_end ? (int64_t)total : -1);
        if (len >= 0) {
            int n = snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)len);
            if (srv_buf_append(&r->head, line, (size_t)n) < 0)
                return -1;
            r->content_length = len;
        } else if (r->no_body) {
            /* HEAD of a streamed body: no length to give. */
        } else if (c->req.http_minor >= 1) {
            r->chunked = 1;
            if (srv_buf_puts(&r->head, "Transfer-Encoding: chunked\r\n") < 0)
                return -1;
        } else {
            r->close = 1;   /* HTTP/1.0: the end of the body is the close */
        }
    }
    if (srv_cfg.server_header && !r->has_server && srv_buf_puts(&r->head, "Server: srv\r\n") < 0)
        return -1;
    if (!r->has_date) {
        size_t dlen;
        const char *date = srv_http_date_header(ev_now(srv_loop), &dlen);
        if (srv_buf_append(&r->head, date, dlen) < 0)
            return -1;
    }
    if (!keep_alive_after(c)) {
        if (srv_buf_puts(&r->head, "Connection: close\r\n") < 0)
            return -1;
    } else if (c->req.http_minor == 0) {
        if (srv_buf_puts(&r->head, "Connection: keep-alive\r\n") < 0)
            return -1;
    }
    return srv_buf_append(&r->head, "\r\n", 2);
}

/* Sends body bytes (the head first, if it has not gone yet).  `at_end` says
 * these are the last bytes.  Returns 0, or -1 if the client is gone (no
 * Python exception) or on a Python error (exception set). */
static int send_body(srv_conn *c, const char *data, size_t len, int at_end)
{
    srv_response *r = c->resp;
    struct iovec iov[4];
    int n = 0;
    char chunk_head[24];
    if (!r->started) {
        PyErr_SetString(PyExc_RuntimeError, "the app returned a body before calling start_response");
        return -1;
    }
    if (!r->headers_sent) {
        if (finish_head(c, at_end, len) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        iov[n++] = (struct iovec){r->head.data, r->head.len};
        r->headers_sent = 1;
        r->status_sent = r->status_code;
    }
    if (r->no_body)
        len = 0;
    if (r->content_length >= 0 && r->body_sent + len > (uint64_t)r->content_length) {
        if (!r->truncated)
            srv_warn("app sent more than its Content-Length of %lld bytes; truncated",
                     (long long)r->content_length);
        r->truncated = 1;
        r->close = 1;
        len = (size_t)((uint64_t)r->content_length - r->body_sent);
    }
    if (len > 0) {
        if (r->chunked) {
            iov[n++] = (struct iovec){chunk_head, srv_http_chunk_header(chunk_head, len)};
            iov[n++] = (struct iovec){(void *)data, len};
            iov[n++] = (struct iovec){at_end ? "\r\n0\r\n\r\n" : "\r\n", at_end ? 7 : 2};
        } else {
            iov[n++] = (struct iovec){(void *)data, len};
        }
    } else if (at_end && r->chunked) {
        iov[n++] = (struct iovec){"0\r\n\r\n", 5};
    }
    if (n == 0)
        return 0;
    r->body_sent += len;
    if (srv_conn_writev(c, iov, n) < 0)
        return -1;
    return 0;
}

static PyObject *write_callable(PyObject *self, PyObject *data)
{
    srv_conn *c = ((StartResponseObject *)self)->conn;
    if (c == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after the request ended");
        return NULL;
    }
    if (c->state == SRV_CONN_UPGRADED) {
        PyErr_SetString(PyExc_RuntimeError, "write() on an open WebSocket: use its send()");
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "write() takes bytes, not %.100s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    Py_INCREF(data);   /* the caller may drop it while we wait to write */
    int rc = send_body(c, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), 0);
    Py_DECREF(data);
    if (rc < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OSError, "client disconnected");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Sends one item of the response iterable. */
static int send_item(srv_conn *c, PyObject *item, int at_end)
{
    if (!PyBytes_Check(item)) {
        PyErr_Format(PyExc_TypeError, "response items must be bytes, not %.100s",
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    if (PyBytes_GET_SIZE(item) == 0 && !at_end)
        return 0;   /* PEP 3333: an empty item does not send the head */
    return send_body(c, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item), at_end);
}

static int send_file(srv_conn *c, PyObject *result, int fd, off_t offset, size_t size)
{
    srv_response *r = c->resp;
    if (r->content_length >= 0 && (uint64_t)r->content_length < size)
        size = (size_t)r->content_length;
    r->known_length = r->content_length >= 0 ? r->content_length : (int64_t)size;
    if (send_body(c, "", 0, 0) < 0)     /* the head alone */
        return -1;
    if (r->no_body || size == 0)
        return 1;
    int rc = srv_conn_sendfile(c, fd, offset, size);
    if (rc == -2)
        return 0;   /* not sendfile-able after all: iterate */
    if (rc < 0)
        return -1;
    r->body_sent += size;
    return 1;
}

/* Iterates result and sends it.  Returns 0, or -1 (client gone or Python
 * error, told apart by PyErr_Occurred). */
static int send_result(srv_conn *c, PyObject *result)
{
    srv_response *r = c->resp;
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        PyObject *seq = result;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        int64_t total = 0;
        for (Py_ssize_t i = 0; i < n && total >= 0; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            total = PyBytes_Check(item) ? total + PyBytes_GET_SIZE(item) : -1;
        }
        if (r->content_length < 0 && total >= 0)
            r->known_length = total;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            Py_INCREF(item);
            int rc = send_item(c, item, i == PySequence_Fast_GET_SIZE(seq) - 1);
            Py_DECREF(item);
            if (rc < 0)
                return -1;
        }
        if (n == 0)
            return send_body(c, "", 0, 1);
        return 0;
    }

    int fd;
    off_t offset;
    size_t size;
    if (srv_filewrap_sendable(result, &fd, &offset, &size)) {
        int rc = send_file(c, result, fd, offset, size);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }

    PyObject *it = PyObject_GetIter(result);
    if (it == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        int rc = send_item(c, item, 0);
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return -1;
    return send_body(c, "", 0, 1);
}

/* *out = o.name, or NULL when o has no such attribute; -1 on another
 * error.  PyObject_GetOptionalAttr() from 3.13 on; before, the public
 * GetAttr and a cleared AttributeError. */
static int lookup_optional_attr(PyObject *o, PyObject *name, PyObject **out)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(o, name, out);
#else
    *out = PyObject_GetAttr(o, name);
    if (*out != NULL)
        return 1;
    if (!PyErr_ExceptionMatches(PyExc_AttributeError))
        return -1;
    PyErr_Clear();
    return 0;
#endif
}

/* Calls result.close() if it has one.  Returns -1 if it raised (logged). */
static int close_result(PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        return 0;
    PyObject *meth;
    if (lookup_optional_attr(result, s_close, &meth) < 0) {
        srv_log_pyerr("error looking up close() of the response iterable");
        return -1;
    }
    if (meth == NULL)
        return 0;
    PyObject *rv = PyObject_CallNoArgs(meth);
    Py_DECREF(meth);
    if (rv == NULL) {
        srv_log_pyerr("error in close() of the response iterable");
        return -1;
    }
    Py_DECREF(rv);
    return 0;
}

/* Iterates a result whose bytes are not sent (a WebSocket request's). */
static int discard_result(PyObject *result)
{
    PyObject *it = PyObject_GetIter(result);
    if (it == NULL)
        return -1;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL)
        Py_DECREF(item);
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* Sends an error status in place of a response whose head has not gone. */
static void send_error_status(srv_conn *c, int status)
{
    char buf[512];
    /* After a 500 the connection may be reused (an unread body is drained);
     * a 413 or a broken body means the rest of the stream is not trusted. */
    int keep = status == 500 && keep_alive_after(c);
    if (!keep)
        c->resp->close = 1;
    size_t n = srv_http_error_response(buf, sizeof buf, status, keep, ev_now(srv_loop));
    struct iovec iov = {buf, n};
    c->resp->headers_sent = 1;
    c->resp->status_sent = status;
    if (status == c->req.error_status)
        srv_metrics_parse_error(status);   /* a bad body: 400 or 413 */
    if (srv_conn_writev(c, &iov, 1) < 0)
        c->broken = 1;
}

/* Reads and discards the rest of a body the app did not read, so that it is
 * never parsed as a request.  Returns 1 when the connection can be reused. */
static int drain_body(srv_conn *c)
{
    srv_request *req = &c->req;
    if (req->message_done)
        return 1;
    if (req->expect_continue && !c->resp->continue_sent)
        return 0;   /* the client is waiting for our word: it will not send */
    uint64_t start = req->body_seen;
    while (!req->message_done) {
        req->body.len = req->body_pos = 0;
        if (req->body_seen - start > DRAIN_MAX)
            return 0;
        if (srv_input_fill(c, 1) < 0) {
            PyErr_Clear();
            return 0;
        }
    }
    req->body.len = req->body_pos = 0;
    return 1;
}

/* A pooled worker serves many requests: nothing the app kept in a
 * ContextVar or in gevent.local may be seen by the next one. */
static void forget_request_locals(void)
{
    PyObject *self = (PyObject *)srv_hub_current();
    /* the interned name: no string made and hashed per request */
    if (PyObject_SetAttr(self, s_gr_context, Py_None) < 0)
        srv_log_pyerr("cannot reset the greenlet's context");
    Py_DECREF(self);
    if (srv_gevent_active)
        srv_gevent_reset_locals();
}

static srv_response *response_reset(srv_conn *c)
{
    srv_response *r = c->resp;
    if (r == NULL) {
        r = c->resp = calloc(1, sizeof *r);
        if (r == NULL)
            return NULL;
    }
    srv_buf head = r->head;
    memset(r, 0, sizeof *r);
    r->head = head;
    r->head.len = 0;
    r->content_length = -1;
    r->known_length = -1;
    return r;
}

static void response_detach(srv_response *r)
{
    if (r->start_response) {
        ((StartResponseObject *)r->start_response)->conn = NULL;
        Py_CLEAR(r->start_response);
    }
    if (r->input) {
        srv_input_detach(r->input);
        Py_CLEAR(r->input);
    }
    srv_buf_release(&r->head);   /* back to the pool: idle connections hold none */
}

/* --request-timeout: raise srv.RequestTimeout where the request waits. */
static void deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    srv_response *r = (srv_response *)((char *)t - offsetof(srv_response, deadline));
    r->timed_out = 1;
    srv_warn("a request ran past --request-timeout (%g s): raising srv.RequestTimeout",
             srv_cfg.request_timeout);
    srv_hub_throw(r->worker, srv_RequestTimeout);
}

SRV_EV_CALLBACK(on_deadline, ev_timer, deadline_cb)

static void deadline_start(srv_response *r)
{
    if (srv_cfg.request_timeout <= 0)
        return;
    PyGreenlet *self = srv_hub_current();
    r->worker = self;   /* the hub owns its workers: kept borrowed */
    Py_DECREF(self);
    ev_timer_init(&r->deadline, on_deadline, srv_cfg.request_timeout, 0.);
    ev_timer_start(srv_loop, &r->deadline);
}

static void deadline_stop(srv_response *r)
{
    if (ev_is_active(&r->deadline))
        ev_timer_stop(srv_loop, &r->deadline);
}

/* Serves the request whose head is parsed.  Returns 1 to keep the
 * connection, 0 to close it, -1 if the greenlet is being killed. */
static int handle_request(srv_conn *c)
{
    srv_response *r = response_reset(c);
    if (r == NULL)
        return 0;
    int killed = 0, failed = 0;
    PyObject *result = NULL;
    double started = srv_access_log_enabled ? srv_monotonic() : 0;
    double metrics_began = srv_metrics_request_begin();
    PyObject *environ = build_environ(c);
    srv_http_release_head(&c->req);
    /* Nothing left to parse: give the read buffer back while the app runs,
     * so that thousands of suspended requests do not pin a block each. */
    if (c->rpos == c->rbuf.len) {
        srv_buf_release(&c->rbuf);
        c->rpos = 0;
    }
    if (environ == NULL) {
        srv_log_pyerr("cannot build the environ");
        failed = 1;
        goto respond;
    }
    StartResponseObject *sr = PyObject_New(StartResponseObject, &StartResponseType);
    if (sr == NULL) {
        Py_CLEAR(environ);
        srv_log_pyerr("cannot create start_response");
        failed = 1;
        goto respond;
    }
    sr->conn = c;
    sr->vectorcall = start_response_vectorcall;
    r->start_response = (PyObject *)sr;
    if (c->req.upgrade) {
        int offer = srv_ws_offer(c, environ, app);
        if (offer == -1)
            goto respond;   /* srv refused the handshake itself */
        if (offer == -2) {
            srv_log_pyerr("cannot set up the WebSocket");
            failed = 1;
            goto respond;
        }
    }
    deadline_start(r);

    PyObject *argv[2] = {environ, (PyObject *)sr};
    result = PyObject_Vectorcall(app, argv, 2, NULL);
    if (!srv_access_log_enabled)
        Py_CLEAR(environ);
    if (c->ws) {
        int took = srv_ws_end(c, result == NULL);
        if (took != 0) {
            /* The response was the WebSocket.  Like gevent-websocket, run
             * the iterable through and discard it. */
            if (took < 0 || result == NULL || discard_result(result) < 0)
                failed = 1;
            goto finished;
        }
    }
    if (result == NULL) {
        failed = 1;
    } else if (send_result(c, result) < 0) {
        failed = PyErr_Occurred() != NULL;
    }
finished:
    if (failed) {
        if ((killed = srv_hub_exiting()))
            PyErr_Clear();
        else if (!c->broken || !(PyErr_ExceptionMatches(PyExc_OSError)))
            srv_log_pyerr("error in the WSGI app for %s",
                          c->listener->name ? c->listener->name : "request");
        else
            PyErr_Clear();
    }
    if (result) {
        if (close_result(result) < 0 && !killed) {
            if (srv_hub_exiting())
                killed = 1;
            failed = 1;
        }
        Py_CLEAR(result);
    }
respond:
    deadline_stop(r);
    if (failed && !killed && !c->broken) {
        if (!r->headers_sent)
            send_error_status(c, r->timed_out ? 504
                                 : c->req.error_status ? c->req.error_status : 500);
        else
            c->broken = 1;   /* cannot take back what was sent: cut it short */
    }
    if (!c->broken && r->content_length >= 0 && r->body_sent < (uint64_t)r->content_length
        && !r->no_body) {
        srv_warn("app sent %llu of the %lld bytes its Content-Length promised; closing",
                 (unsigned long long)r->body_sent, (long long)r->content_length);
        r->close = 1;
    }
    if (environ) {
        srv_access_entry e = {environ, r->status_sent, r->body_sent, srv_monotonic() - started};
        srv_access_log_write(&e);
        Py_CLEAR(environ);
    }
    srv_metrics_request_end(r->status_sent, metrics_began);
    int keep = keep_alive_after(c) && !killed;
    if (keep && !c->req.message_done)
        keep = drain_body(c);
    response_detach(r);
    forget_request_locals();
    if (killed)
        return -1;
    return keep;
}

int srv_wsgi_serve(srv_conn *c)
{
    for (;;) {
        int keep = handle_request(c);
        c->requests_served++;
        srv_worker_request_done();
        if (keep < 0) {
            srv_conn_close(c);
            return -1;
        }
        if (!keep) {
            srv_conn_release(c, 0);
            return 0;
        }
        srv_request_next(&c->req);
        if (c->rpos == c->rbuf.len)
            c->rbuf.len = c->rpos = 0;
        switch (srv_http_feed(&c->req, &c->rbuf, &c->rpos)) {
        case SRV_PARSE_HEAD_DONE:
            continue;   /* pipelined: serve it in this greenlet */
        case SRV_PARSE_ERROR:
            srv_conn_fail(c);
            return 0;
        default:
            srv_conn_release(c, 1);
            return 0;
        }
    }
}

/* ---- set-up -------------------------------------------------------------- */

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

int srv_wsgi_init(void)
{
    init_tchar();
    srv_conn_on_refused = log_refused;
    if (PyType_Ready(&StartResponseType) < 0 || PyType_Ready(&srv_InputType) < 0
        || PyType_Ready(&srv_FileWrapperType) < 0)
        return -1;
    struct { PyObject **var; const char *s; } keys[] = {
        {&k_request_method, "REQUEST_METHOD"}, {&k_script_name, "SCRIPT_NAME"},
        {&k_path_info, "PATH_INFO"}, {&k_query_string, "QUERY_STRING"},
        {&k_content_type, "CONTENT_TYPE"}, {&k_content_length, "CONTENT_LENGTH"},
        {&k_server_name, "SERVER_NAME"}, {&k_http_host, "HTTP_HOST"}, {&k_server_port, "SERVER_PORT"},
        {&k_server_protocol, "SERVER_PROTOCOL"}, {&k_remote_addr, "REMOTE_ADDR"},
        {&k_remote_port, "REMOTE_PORT"}, {&k_raw_uri, "RAW_URI"},
        {&k_request_uri, "REQUEST_URI"}, {&k_wsgi_version, "wsgi.version"},
        {&k_wsgi_url_scheme, "wsgi.url_scheme"}, {&k_wsgi_input, "wsgi.input"},
        {&k_wsgi_errors, "wsgi.errors"}, {&k_wsgi_multithread, "wsgi.multithread"},
        {&k_wsgi_multiprocess, "wsgi.multiprocess"}, {&k_wsgi_run_once, "wsgi.run_once"},
        {&k_wsgi_input_terminated, "wsgi.input_terminated"},
        {&k_wsgi_file_wrapper, "wsgi.file_wrapper"}, {&k_server_software, "SERVER_SOFTWARE"},
        {&v_http10, "HTTP/1.0"}, {&v_http11, "HTTP/1.1"}, {&v_empty, ""}, {&v_http, "http"}, {&v_https, "https"},
        {&s_close, "close"}, {&s_gr_context, "gr_context"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((*keys[i].var = intern(keys[i].s)) == NULL)
            return -1;
#define INTERN_METHOD(num, name, string) \
    if (num < 64 && method_names[num] == NULL && (method_names[num] = intern(#string)) == NULL) \
        return -1;
    HTTP_METHOD_MAP(INTERN_METHOD)
#undef INTERN_METHOD
    return 0;
}

/* The template is created with room for a typical request's keys, and holds
 * placeholders for the keys every request sets: PyDict_Copy() clones its
 * table as it is, so filling in a request never resizes the dict.  42 is
 * the most a 64-slot table holds (CPython 3.11 fills 2/3 of it); 48 took a
 * 128-slot table, 1,096 more bytes for every waiting request. */
#define ENVIRON_PRESIZE 42

PyObject *srv_wsgi_environ_template(srv_listener *l, const char *host, const char *port)
{
    PyObject *env = _PyDict_NewPresized(ENVIRON_PRESIZE);
    if (env == NULL)
        return NULL;
    PyObject *always[] = {k_request_method, k_path_info, k_query_string, k_server_protocol,
                          k_remote_addr, k_remote_port, k_raw_uri, k_request_uri, k_wsgi_input};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (PyDict_SetItem(env, always[i], Py_None) < 0) {
            Py_DECREF(env);
            return NULL;
        }
    PyObject *sys_stderr = PySys_GetObject("stderr");   /* borrowed */
    PyObject *version = Py_BuildValue("(ii)", 1, 0);
    PyObject *name = PyUnicode_FromString(host);
    PyObject *portv = PyUnicode_FromString(port);
    PyObject *software = PyUnicode_FromString("srv");
    int ok = version && name && portv && software
        && PyDict_SetItem(env, k_wsgi_version, version) == 0
        && PyDict_SetItem(env, k_wsgi_url_scheme, v_http) == 0
        && PyDict_SetItem(env, k_wsgi_errors, sys_stderr ? sys_stderr : Py_None) == 0
        && PyDict_SetItem(env, k_wsgi_multithread, Py_False) == 0
        && PyDict_SetItem(env, k_wsgi_multiprocess, srv_cfg.workers > 1 ? Py_True : Py_False) == 0
        && PyDict_SetItem(env, k_wsgi_run_once, Py_False) == 0
        && PyDict_SetItem(env, k_wsgi_input_terminated, Py_True) == 0
        && PyDict_SetItem(env, k_wsgi_file_wrapper, (PyObject *)&srv_FileWrapperType) == 0
        && PyDict_SetItem(env, k_script_name, v_empty) == 0
        && PyDict_SetItem(env, k_server_name, name) == 0
        && PyDict_SetItem(env, k_server_port, portv) == 0
        && PyDict_SetItem(env, k_server_software, software) == 0;
    Py_XDECREF(version);
    Py_XDECREF(name);
    Py_XDECREF(portv);
    Py_XDECREF(software);
    if (!ok)
        Py_CLEAR(env);
    return env;
}

/* ---- loading the app ------------------------------------------------------ */

void srv_wsgi_load_app(void)
{
    const char *spec = srv_cfg.app;
    const char *colon = strchr(spec, ':');
    char *module_name = colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
    const char *attr = colon ? colon + 1 : "application";
    if (*module_name == '\0' || *attr == '\0')
        srv_die_usage("--app: expected MODULE:CALLABLE, got '%s'", spec);

    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL) {
        PyErr_Print();
        srv_die_usage("cannot import module '%s' for --app %s", module_name, spec);
    }
    /* "factory()" calls the factory with no arguments. */
    size_t alen = strlen(attr);
    int call = alen > 2 && strcmp(attr + alen - 2, "()") == 0;
    char *name = strndup(attr, call ? alen - 2 : alen);
    PyObject *obj = module;
    Py_INCREF(obj);
    for (char *part = strtok(name, "."); part; part = strtok(NULL, ".")) {
        PyObject *next = PyObject_GetAttrString(obj, part);
        Py_DECREF(obj);
        if (next == NULL) {
            PyErr_Clear();
            srv_die_usage("module '%s' has no attribute '%s' (--app %s)", module_name, attr, spec);
        }
        obj = next;
    }
    if (call) {
        if (!PyCallable_Check(obj))
            srv_die_usage("'%s' in module '%s' is not callable (--app %s)", name, module_name, spec);
        PyObject *made = PyObject_CallNoArgs(obj);
        Py_DECREF(obj);
        if (made == NULL) {
            PyErr_Print();
            srv_die_usage("the app factory '%s' raised (--app %s)", attr, spec);
        }
        obj = made;
    }
    if (!PyCallable_Check(obj))
        srv_die_usage("the app '%s' in module '%s' is not callable (--app %s)", attr, module_name, spec);
    srv_aio_app_loaded(obj, spec);
    Py_DECREF(module);
    free(name);
    free(module_name);
    app = obj;
}

void srv_wsgi_set_app(PyObject *obj)
{
    Py_INCREF(obj);
    Py_XSETREF(app, obj);
}

void srv_wsgi_fini(void)
{
    Py_CLEAR(app);
}
