/*
 * response.c - framing and sending a response, and what follows it.
 *
 * The framing is chosen when the first bytes go out: the app's
 * Content-Length, else a length srv can count (a list or tuple), else
 * chunked on HTTP/1.1, else close-delimited.  The head and the first chunk
 * leave in one writev; a write that would block makes the greenlet wait,
 * and nothing is buffered beyond the chunk in hand.  Also here: the
 * iterable's close(), srv's own error statuses once the app has run, the
 * draining of a body the app did not read, keep-alive, and the
 * --request-timeout deadline.
 */
#include "srv/response.h"
#include "srv/config.h"
#include "srv/conn.h"
#include "srv/filewrap.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/metrics.h"
#include "srv/http.h"
#include "srv/hub.h"
#include "srv/wsgi.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

static PyObject *s_close;   /* owned: interned "close" */

struct srv_response {
    srv_buf head;              /* status line and the app's headers */
    int status_code;
    int status_sent;           /* what went out: the app's or an error's */
    int64_t content_length;    /* the app's Content-Length, or -1 */
    int64_t known_length;      /* what srv worked out (a list), or -1 */
    uint64_t body_sent;
    unsigned started:1;        /* start_response was called */
    unsigned headers_sent:1;
    unsigned chunked:1;
    unsigned close:1;          /* close the connection after this response */
    unsigned no_body:1;        /* HEAD, 1xx, 204, 304 */
    unsigned has_date:1;
    unsigned has_server:1;
    unsigned continue_sent:1;  /* "100 Continue" went out */
    unsigned truncated:1;      /* the app sent more than its Content-Length */
    unsigned timed_out:1;      /* --request-timeout passed */
    ev_timer deadline;         /* --request-timeout */
    PyGreenlet *worker;        /* borrowed (the hub owns it): the deadline's target */
};

/* ---- the head, as start_response.c builds it ----------------------------- */

int srv_response_begin_head(srv_response *r, const char *status, size_t len, int code)
{
    r->head.len = 0;
    r->content_length = -1;
    r->close = r->has_date = r->has_server = 0;
    r->status_code = code;
    if (srv_buf_append(&r->head, "HTTP/1.1 ", 9) < 0 || srv_buf_append(&r->head, status, len) < 0
        || srv_buf_append(&r->head, "\r\n", 2) < 0)
        return -1;
    return 0;
}

int srv_response_add_header(srv_response *r, const char *name, size_t nlen,
                            const char *value, size_t vlen)
{
    if (SRV_FIELD_NAME_IS(name, nlen, "date"))
        r->has_date = 1;
    else if (SRV_FIELD_NAME_IS(name, nlen, "server"))
        r->has_server = 1;
    size_t at = r->head.len;
    if (srv_buf_reserve(&r->head, nlen + vlen + 4) < 0)
        return -1;
    char *p = r->head.data + at;
    memcpy(p, name, nlen);
    p[nlen] = ':';
    p[nlen + 1] = ' ';
    memcpy(p + nlen + 2, value, vlen);
    p[nlen + 2 + vlen] = '\r';
    p[nlen + 3 + vlen] = '\n';
    r->head.len = at + nlen + vlen + 4;
    return 0;
}

void srv_response_set_length(srv_response *r, int64_t length) { r->content_length = length; }
void srv_response_set_close(srv_response *r) { r->close = 1; }
void srv_response_head_done(srv_response *r) { r->started = 1; }

void srv_response_head_cancel(srv_response *r)
{
    r->started = 0;
    r->head.len = 0;
}

/* ---- what has happened so far -------------------------------------------- */

int srv_response_started(const srv_response *r) { return r->started; }
int srv_response_head_sent(const srv_response *r) { return r->headers_sent; }
int srv_response_status(const srv_response *r) { return r->status_code; }
int srv_response_status_sent(const srv_response *r) { return r->status_sent; }
uint64_t srv_response_body_sent(const srv_response *r) { return r->body_sent; }
int srv_response_continue_sent(const srv_response *r) { return r->continue_sent; }

const srv_buf *srv_response_app_head(const srv_response *r, int *has_date, int *has_server)
{
    *has_date = r->started && r->has_date;
    *has_server = r->started && r->has_server;
    return r->started ? &r->head : NULL;
}

void srv_response_upgraded(srv_response *r)
{
    r->headers_sent = 1;
    r->status_sent = 101;
    r->close = 1;
    srv_response_deadline_stop(r);   /* a WebSocket is not a slow request */
    srv_buf_release(&r->head);
}

/* ---- sending the response ------------------------------------------------ */

int srv_response_keep_alive(srv_conn *c)
{
    return c->req.keep_alive && !srv_conn_response(c)->close && !c->broken && !srv_loop_stopping();
}

/* Completes r->head with srv's own headers and the framing. */
static int finish_head(srv_conn *c, int at_end, size_t total)
{
    srv_response *r = srv_conn_response(c);
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
    if (!srv_response_keep_alive(c)) {
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
int srv_response_send_body(srv_conn *c, const char *data, size_t len, int at_end)
{
    srv_response *r = srv_conn_response(c);
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
    /* The last bytes of a response the connection outlives may wait for
     * the end of the loop's pass (conn.h).  They are the last item of a
     * list, or the bytes that complete a declared Content-Length: Flask's
     * and Django's bodies are iterators, whose end srv would see only at
     * the next PyIter_Next, after the bytes had gone out alone. */
    int last = at_end || (r->content_length >= 0 && !r->no_body
                          && r->body_sent + len == (uint64_t)r->content_length);
    r->body_sent += len;
    int held = last && srv_response_keep_alive(c) && c->req.message_done;
    if ((held ? srv_conn_write_soon(c, iov, n) : srv_conn_writev(c, iov, n)) < 0)
        return -1;
    return 0;
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
    return srv_response_send_body(c, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item), at_end);
}

static int send_file(srv_conn *c, PyObject *result, int fd, off_t offset, size_t size)
{
    srv_response *r = srv_conn_response(c);
    if (r->content_length >= 0 && (uint64_t)r->content_length < size)
        size = (size_t)r->content_length;
    r->known_length = r->content_length >= 0 ? r->content_length : (int64_t)size;
    if (srv_response_send_body(c, "", 0, 0) < 0)     /* the head alone */
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
int srv_response_send_result(srv_conn *c, PyObject *result)
{
    srv_response *r = srv_conn_response(c);
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
            return srv_response_send_body(c, "", 0, 1);
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
    return srv_response_send_body(c, "", 0, 1);
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
int srv_response_close_result(PyObject *result)
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
int srv_response_discard_result(PyObject *result)
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

int srv_response_send_continue(srv_conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    srv_response *r = srv_conn_response(c);
    if (r->continue_sent || r->headers_sent)
        return 0;
    r->continue_sent = 1;
    struct iovec iov = {(void *)msg, sizeof msg - 1};
    return srv_conn_writev(c, &iov, 1);
}

void srv_response_refuse(srv_conn *c, int status, const char *extra, const char *why)
{
    char buf[768];
    srv_response *r = srv_conn_response(c);
    /* After a 500 the connection may be reused (an unread body is drained);
     * a 413 or a broken body means the rest of the stream is not trusted. */
    int keep = status == 500 && srv_response_keep_alive(c);
    if (!keep)
        r->close = 1;
    size_t n = srv_http_error_response_with(buf, sizeof buf, status, keep, ev_now(srv_loop),
                                            extra ? extra : "", why);
    struct iovec iov = {buf, n};
    r->headers_sent = 1;
    r->status_sent = status;
    if (status == c->req.error_status)
        srv_metrics_parse_error(status);   /* a bad body: 400 or 413 */
    if (srv_conn_writev(c, &iov, 1) < 0)
        c->broken = 1;
}

void srv_response_finish(srv_conn *c, int failed)
{
    srv_response *r = srv_conn_response(c);
    if (failed && !c->broken) {
        if (!r->headers_sent)
            srv_response_refuse(c, r->timed_out ? 504 : c->req.error_status ? c->req.error_status : 500,
                                NULL, NULL);
        else
            c->broken = 1;   /* cannot take back what was sent: cut it short */
    }
    if (!c->broken && r->content_length >= 0 && r->body_sent < (uint64_t)r->content_length
        && !r->no_body) {
        srv_warn("app sent %llu of the %lld bytes its Content-Length promised; closing",
                 (unsigned long long)r->body_sent, (long long)r->content_length);
        r->close = 1;
    }
}

srv_response *srv_response_new(void)
{
    srv_response *r = calloc(1, sizeof *r);
    if (r)
        srv_response_reset(r);
    return r;
}

void srv_response_reset(srv_response *r)
{
    srv_buf head = r->head;
    memset(r, 0, sizeof *r);
    r->head = head;
    r->head.len = 0;
    r->content_length = -1;
    r->known_length = -1;
}

void srv_response_end(srv_response *r)
{
    srv_buf_release(&r->head);   /* back to the pool: idle connections hold none */
}

PyObject *srv_response_timeout_error(void)
{
    static PyObject *type;   /* owned, for the life of the process */
    if (type == NULL)
        type = PyErr_NewExceptionWithDoc("srv.RequestTimeout",
                                         "Raised in a request that ran past --request-timeout.",
                                         PyExc_BaseException, NULL);
    return type;
}

/* --request-timeout: raise srv.RequestTimeout where the request waits. */
static void deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    srv_response *r = (srv_response *)((char *)t - offsetof(srv_response, deadline));
    r->timed_out = 1;
    srv_warn("a request ran past --request-timeout (%g s): raising srv.RequestTimeout",
             srv_cfg.request_timeout);
    srv_hub_throw(r->worker, srv_response_timeout_error());
}

SRV_EV_CALLBACK(on_deadline, ev_timer, deadline_cb)

void srv_response_deadline_start(srv_response *r)
{
    if (srv_cfg.request_timeout <= 0)
        return;
    PyGreenlet *self = srv_hub_current();
    r->worker = self;   /* the hub owns its workers: kept borrowed */
    Py_DECREF(self);
    ev_timer_init(&r->deadline, on_deadline, srv_cfg.request_timeout, 0.);
    ev_timer_start(srv_loop, &r->deadline);
}

void srv_response_deadline_stop(srv_response *r)
{
    if (ev_is_active(&r->deadline))
        ev_timer_stop(srv_loop, &r->deadline);
}

int srv_response_init(void)
{
    s_close = PyUnicode_InternFromString("close");
    return s_close ? 0 : -1;
}

void srv_response_free(srv_response *r)
{
    if (ev_is_active(&r->deadline))
        ev_timer_stop(srv_loop, &r->deadline);
    srv_buf_release(&r->head);
    free(r);
}
