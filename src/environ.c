/*
 * environ.c - each request's environ (PEP 3333), built in C.
 *
 * A per-listener template dict holds the keys that never change (and
 * placeholders for those every request sets); a request's environ is a
 * PyDict_Copy() of it plus the request's keys: the method, the target split
 * by reqline.c and pathinfo.c into PATH_INFO (percent-decoded, latin-1) and
 * QUERY_STRING, the peer, the headers as HTTP_* keys (hdrkey.c maps the
 * names; a small cache of interned key strings means that common headers
 * create none), and what trusted
 * proxies say (X-Forwarded-For/-Proto, Forwarded).  The access-log line of
 * a request srv refused itself is built here too, from what of its head
 * was parsed.
 */
#include "srv/environ.h"
#include "srv/fault.h"
#include "srv/http1.h"
#include "srv/wsgi.h"
#include "srv/accesslog.h"
#include "srv/config.h"
#include "srv/conn.h"
#include "srv/filewrap.h"
#include "srv/hdrkey.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/pathinfo.h"
#include "srv/proxy.h"
#include "srv/reqline.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* Interned environ keys and constant values, owned for the process. */
static PyObject *k_request_method, *k_script_name, *k_path_info, *k_query_string,
    *k_content_type, *k_content_length, *k_server_name, *k_server_port,
    *k_server_protocol, *k_remote_addr, *k_remote_port, *k_raw_uri, *k_request_uri,
    *k_wsgi_version, *k_wsgi_url_scheme, *k_wsgi_input, *k_wsgi_errors,
    *k_wsgi_multithread, *k_wsgi_multiprocess, *k_wsgi_run_once,
    *k_wsgi_input_terminated, *k_wsgi_file_wrapper, *k_server_software, *k_http_host;
static PyObject *v_http10, *v_http11, *v_empty, *v_http, *v_https;
static PyObject *method_names[64];

/* ---- environ keys for request headers ---------------------------------- */

/* A cache from a field name, as the client spelled it, to its environ key:
 * clients send the same names in the same case on every request, so a hit
 * costs a hash and a compare of the name, and hdrkey.c maps a name only the
 * first time it is seen.  Each spelling ("Host", "host") has a slot of its
 * own; all of them hold the same interned key. */
#define KEY_CACHE_SLOTS 512
#define KEY_CACHE_MAX 256
#define KEY_NAME_MAX 64

/* The longest value a slot remembers: Host, User-Agent, Accept and the like
 * repeat from request to request; cookies and tokens differ per client. */
#define VALUE_CACHE_MAX 128

typedef struct {
    uint32_t hash;
    uint32_t len;              /* 0: a free slot (a field name is never empty) */
    char name[KEY_NAME_MAX];   /* the name as sent: "User-Agent" */
    int kind;                  /* enum srv_hdrkey_kind */
    int secret;                /* credentials: their values are not kept */
    PyObject *key;             /* owned, interned: "HTTP_USER_AGENT"; NULL
                                * for a field the environ drops */
    PyObject *value;           /* owned or NULL: the last short value of this
                                * field, handed out again while the next
                                * request's value has the same bytes */
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

/* Maps the field name[0..len) with hdrkey.c: its kind, and in *key a new
 * reference to its environ key (interned), or NULL for a dropped field.
 * Returns -1 with an exception. */
static int map_name(const char *name, size_t len, int *kind, PyObject **key)
{
    char stackbuf[SRV_HDRKEY_MAX(KEY_NAME_MAX)];
    char *buf = stackbuf;
    if (SRV_HDRKEY_MAX(len) > sizeof stackbuf && (buf = malloc(SRV_HDRKEY_MAX(len))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t klen;
    *key = NULL;
    switch ((*kind = srv_hdrkey_make(name, len, buf, &klen))) {
    case SRV_HDRKEY_CONTENT_TYPE: *key = Py_NewRef(k_content_type); break;
    case SRV_HDRKEY_CONTENT_LENGTH: *key = Py_NewRef(k_content_length); break;
    case SRV_HDRKEY_HTTP:
        if ((*key = PyUnicode_DecodeLatin1(buf, (Py_ssize_t)klen, NULL)) != NULL)
            PyUnicode_InternInPlace(key);
        break;
    case SRV_HDRKEY_DROP: break;   /* could spoof a '-' field: dropped, as nginx does */
    }
    if (buf != stackbuf)
        free(buf);
    return *key == NULL && *kind != SRV_HDRKEY_DROP ? -1 : 0;
}

/* Fields that carry credentials: the cache never keeps their values, so a
 * token stays in memory no longer than its request. */
static int is_credential(const char *name, size_t len)
{
    return SRV_FIELD_NAME_IS(name, len, "authorization")
           || SRV_FIELD_NAME_IS(name, len, "proxy-authorization")
           || SRV_FIELD_NAME_IS(name, len, "cookie");
}

/* The cache slot of the field name[0..len), filled in on first sight;
 * NULL with an exception, or NULL without one when the name is too long for
 * the cache or the cache is full (the caller maps the name itself). */
static key_slot *name_slot(const char *name, size_t len)
{
    if (len > KEY_NAME_MAX)
        return NULL;
    uint32_t h = fnv1a(name, len);
    for (uint32_t i = 0; i < KEY_CACHE_SLOTS; i++) {
        key_slot *s = &key_cache[(h + i) & (KEY_CACHE_SLOTS - 1)];
        if (s->len == 0) {
            if (key_cache_used >= KEY_CACHE_MAX)
                return NULL;
            if (map_name(name, len, &s->kind, &s->key) < 0)
                return NULL;
            s->hash = h;
            s->len = (uint32_t)len;
            memcpy(s->name, name, len);
            s->secret = is_credential(name, len);
            key_cache_used++;
            return s;
        }
        if (s->hash == h && s->len == len && memcmp(s->name, name, len) == 0)
            return s;
    }
    return NULL;
}

/* A new reference to a header's value val[0..vlen) as a latin-1 str.  The
 * key's slot keeps the last short value it was given, so a value that
 * repeats (the same Host, User-Agent or Accept on every request) is one
 * shared str rather than a new one per request: no allocation on the hot
 * path, and fewer bytes per waiting request.  A str is immutable, so
 * sharing it is invisible to the app.  Credentials are never kept. */
static PyObject *header_value(key_slot *slot, const char *val, size_t vlen)
{
    if (slot == NULL || slot->secret || vlen > VALUE_CACHE_MAX)
        return PyUnicode_DecodeLatin1(val, (Py_ssize_t)vlen, NULL);
    PyObject *last = slot->value;
    /* Every cached value came from PyUnicode_DecodeLatin1: one byte per
     * character, so equal bytes mean an equal str. */
    if (last != NULL && (size_t)PyUnicode_GET_LENGTH(last) == vlen
        && memcmp(PyUnicode_1BYTE_DATA(last), val, vlen) == 0)
        return Py_NewRef(last);
    PyObject *v = PyUnicode_DecodeLatin1(val, (Py_ssize_t)vlen, NULL);
    if (v != NULL)
        Py_XSETREF(slot->value, Py_NewRef(v));
    return v;
}

/* A new reference to the environ key of header name[0..len) (hdrkey.c
 * maps it); NULL with an exception, or NULL without one for a field that
 * the environ drops.  *slot: the name's cache slot, or NULL. */
static PyObject *header_key(const char *name, size_t len, key_slot **slot)
{
    key_slot *s = *slot = name_slot(name, len);
    if (s != NULL)
        return Py_XNewRef(s->key);
    if (PyErr_Occurred())
        return NULL;
    int kind;
    PyObject *key;
    return map_name(name, len, &kind, &key) < 0 ? NULL : key;
}

/* ---- environ ------------------------------------------------------------- */

/* PATH_INFO: the percent-decoded path, as a latin-1 str (PEP 3333). */
static PyObject *decode_path(const char *p, size_t n)
{
    if (memchr(p, '%', n) == NULL)
        return PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
    char stackbuf[1024];
    char *out = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (out == NULL)
        return PyErr_NoMemory();
    size_t o = srv_pathinfo_decode(p, n, out);
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

void srv_peer_names_clear(srv_peer_names *p)
{
    Py_CLEAR(p->addr);
    Py_CLEAR(p->port);
}

/* The text of the last peer address seen, kept for the process: behind a
 * proxy every connection comes from the same address, and inet_ntop() costs
 * ~2,300 instructions per connection (B2).  Owns one reference to text. */
static struct {
    sa_family_t family;
    unsigned char addr[16];
    PyObject *text;
} last_peer;

/* REMOTE_ADDR's text for an AF_INET/AF_INET6 address (in_addr/in6_addr of
 * len bytes): a new reference. */
static PyObject *peer_addr_text(sa_family_t family, const void *addr, size_t len)
{
    if (last_peer.text != NULL && last_peer.family == family
        && memcmp(last_peer.addr, addr, len) == 0)
        return Py_NewRef(last_peer.text);
    char host[INET6_ADDRSTRLEN] = "";
    inet_ntop(family, addr, host, sizeof host);
    PyObject *text = PyUnicode_FromString(host);
    if (text != NULL) {
        last_peer.family = family;
        memcpy(last_peer.addr, addr, len);
        Py_XSETREF(last_peer.text, Py_NewRef(text));
    }
    return text;
}

/* REMOTE_ADDR and REMOTE_PORT, made once per connection and kept on its
 * exchange (a refusal before any request has none: made for the once). */
static int set_remote(srv_conn *c, PyObject *env)
{
    srv_peer_names once = {NULL, NULL};
    srv_peer_names *names = c->exchange ? &c->exchange->peer : &once;
    if (names->addr == NULL) {
        int port = -1;
        if (c->peer.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&c->peer;
            names->addr = peer_addr_text(AF_INET, &a->sin_addr, sizeof a->sin_addr);
            port = ntohs(a->sin_port);
        } else if (c->peer.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&c->peer;
            names->addr = peer_addr_text(AF_INET6, &a->sin6_addr, sizeof a->sin6_addr);
            port = ntohs(a->sin6_port);
        } else {
            names->addr = Py_NewRef(v_empty);   /* a unix socket's peer */
        }
        if (names->addr == NULL)
            return -1;
        char digits[8];   /* a port: at most 5 digits */
        size_t nd = 0;
        for (int p = port; p > 0 || (port == 0 && nd == 0); p /= 10)
            digits[sizeof digits - 1 - nd++] = (char)('0' + p % 10);
        /* PyUnicode_FromFormat would cost ~1,200 instructions per connection */
        names->port = srv_fault("remote_addr") ? PyErr_NoMemory()
                      : PyUnicode_FromStringAndSize(digits + sizeof digits - nd, (Py_ssize_t)nd);
        if (names->port == NULL) {
            /* Both or neither: the next request must not find one NULL. */
            srv_peer_names_clear(names);
            return -1;
        }
    }
    int rc = PyDict_SetItem(env, k_remote_addr, names->addr) < 0
             || PyDict_SetItem(env, k_remote_port, names->port) < 0 ? -1 : 0;
    srv_peer_names_clear(&once);
    return rc;
}

/* Adds one request header, joining repeats with "," ("; " for Cookie). */
static int add_header(PyObject *env, const char *name, size_t nlen, const char *val, size_t vlen)
{
    key_slot *slot;
    PyObject *key = header_key(name, nlen, &slot);
    if (key == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *v = header_value(slot, val, vlen);
    if (v == NULL) {
        Py_DECREF(key);
        return -1;
    }
    /* Whether v went in is told by the size, not by old == v: a repeated
     * field with the same short value gets the very same str back. */
    Py_ssize_t before = PyDict_GET_SIZE(env);
    PyObject *old = PyDict_SetDefault(env, key, v);   /* borrowed */
    int rc = 0;
    if (old == NULL) {
        rc = -1;
    } else if (PyDict_GET_SIZE(env) == before) {
        PyObject *joined = PyUnicode_FromFormat("%U%s%U", old,
                                                srv_hdrkey_separator(name, nlen), v);
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

PyObject *srv_environ_build(srv_conn *c, PyObject *input)
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
    /* reqline.c split the target: absolute-form loses its scheme and
     * authority here, and its authority stands for Host below. */
    const char *path = base + req->path.off;
    size_t plen = req->path.len;
    srv_pathinfo_parts parts;
    srv_pathinfo_split(path, plen, &parts);
    /* A target that is its own path ("/", "/api/items": no query, nothing
     * percent-encoded) shares RAW_URI's str. */
    PyObject *path_info = path == url && parts.path_len == ulen && memchr(path, '%', ulen) == NULL
                              ? Py_NewRef(raw) : decode_path(path, parts.path_len);
    Py_DECREF(raw);
    if (path_info == NULL || PyDict_SetItem(env, k_path_info, path_info) < 0) {
        Py_XDECREF(path_info);
        goto fail;
    }
    Py_DECREF(path_info);
    if (parts.query) {
        if (set_latin1(env, k_query_string, parts.query, parts.query_len) < 0)
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

    if (PyDict_SetItem(env, k_wsgi_input, input) < 0)
        goto fail;
    return env;
fail:
    Py_DECREF(env);
    return NULL;
}


/* The template is created with room for a typical request's keys, and holds
 * placeholders for the keys every request sets: PyDict_Copy() clones its
 * table as it is, so filling in a request never resizes the dict.  42 is
 * the most a 64-slot table holds (CPython 3.11 fills 2/3 of it); 48 took a
 * 128-slot table, 1,096 more bytes for every waiting request. */
#define ENVIRON_PRESIZE 42

PyObject *srv_environ_template(srv_listener *l, const char *host, const char *port)
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

/* ---- set-up -------------------------------------------------------------- */

int srv_environ_init(void)
{
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
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((*keys[i].var = PyUnicode_InternFromString(keys[i].s)) == NULL)
            return -1;
#define INTERN_METHOD(num, name, string) \
    if (num < 64 && method_names[num] == NULL \
        && (method_names[num] = PyUnicode_InternFromString(#string)) == NULL) \
        return -1;
    HTTP_METHOD_MAP(INTERN_METHOD)
#undef INTERN_METHOD
    srv_http1_on_refused = log_refused;   /* http1.c tells us of its refusals */
    return 0;
}
