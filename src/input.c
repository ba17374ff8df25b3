/*
 * input.c - wsgi.input: the request body, read as it arrives.
 *
 * The parser decodes body bytes (de-chunking them) into c->req.body; this
 * object hands them out.  When the app asks for more than is buffered,
 * srv_input_fill() feeds the parser what is in the read buffer and then
 * reads from the socket, which makes the calling greenlet wait while the
 * loop serves everyone else.  The object holds a borrowed pointer to the
 * connection that the gateway clears when the request ends, so a wsgi.input
 * kept past its request reads b"" instead of another request's body.
 */
#include "srv/input.h"
#include "srv/conn.h"
#include "srv/response.h"
#include "srv/wsgi.h"

#include <string.h>

#define DRAIN_MAX (1u << 20)   /* srv_input_drain reads at most this much */

typedef struct {
    PyObject_HEAD
    srv_conn *conn;   /* borrowed; NULL once the request is over */
} InputObject;

static size_t avail(const srv_request *req)
{
    return req->body.len - req->body_pos;
}

/* The body broke the rules (bad chunk, over --max-body).  The connection
 * cannot be reused, but it still works: if the app lets the exception
 * through, the client gets req->error_status (413 or 400) instead of a 500. */
static int body_error(srv_conn *c)
{
    srv_request *req = &c->req;
    srv_response_set_close(srv_conn_response(c));   /* the body cannot be read on */
    if (req->error_status == 413)
        PyErr_SetString(PyExc_ValueError, "request body too large");
    else
        PyErr_Format(PyExc_ValueError, "malformed request body: %s",
                     req->error_reason ? req->error_reason : "parse error");
    return -1;
}

int srv_input_fill(srv_conn *c, size_t want)
{
    srv_request *req = &c->req;
    while (avail(req) < want && !req->message_done) {
        if (c->rpos < c->rbuf.len) {
            if (srv_http_feed(req, &c->rbuf, &c->rpos) == SRV_PARSE_ERROR)
                return body_error(c);
            continue;
        }
        if (req->expect_continue && srv_response_send_continue(c) < 0)
            goto gone;
        if (req->body_pos > 0 && req->body_pos == req->body.len)
            req->body.len = req->body_pos = 0;
        ssize_t n = srv_conn_read_more(c);
        if (n > 0)
            continue;
        if (n == 0) {
            c->broken = 1;
            PyErr_SetString(PyExc_OSError, "client closed the connection before the body ended");
            return -1;
        }
        goto gone;
    }
    return 0;
gone:
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_OSError, "client disconnected or too slow while sending the body");
    return -1;
}

static PyObject *take(srv_request *req, size_t n)
{
    if (n == 0)
        return PyBytes_FromStringAndSize("", 0);   /* body.data may be NULL */
    PyObject *b = PyBytes_FromStringAndSize(req->body.data + req->body_pos, (Py_ssize_t)n);
    if (b == NULL)
        return NULL;
    req->body_pos += n;
    if (req->body_pos == req->body.len)
        req->body.len = req->body_pos = 0;
    return b;
}

static Py_ssize_t size_arg(PyObject *const *args, Py_ssize_t nargs, const char *fname)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument", fname);
        return -2;
    }
    if (nargs == 0 || args[0] == Py_None)
        return -1;
    Py_ssize_t n = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return -2;
    return n < 0 ? -1 : n;
}

static PyObject *input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size = size_arg(args, nargs, "read");
    if (size == -2)
        return NULL;
    srv_conn *c = ((InputObject *)self)->conn;
    if (c == NULL || size == 0)
        return PyBytes_FromStringAndSize("", 0);
    srv_request *req = &c->req;
    size_t want = size < 0 ? SIZE_MAX : (size_t)size;
    if (srv_input_fill(c, want) < 0)
        return NULL;
    size_t n = avail(req);
    return take(req, n < want ? n : want);
}

static PyObject *readline(InputObject *self, Py_ssize_t limit)
{
    srv_conn *c = self->conn;
    if (c == NULL || limit == 0)
        return PyBytes_FromStringAndSize("", 0);
    srv_request *req = &c->req;
    size_t scanned = 0;
    for (;;) {
        size_t n = avail(req);
        const char *p = n ? req->body.data + req->body_pos : NULL;
        const char *nl = n > scanned ? memchr(p + scanned, '\n', n - scanned) : NULL;
        if (nl) {
            size_t len = (size_t)(nl - p) + 1;
            return take(req, limit >= 0 && (size_t)limit < len ? (size_t)limit : len);
        }
        if (limit >= 0 && n >= (size_t)limit)
            return take(req, (size_t)limit);
        if (req->message_done)
            return take(req, n);
        scanned = n;
        if (srv_input_fill(c, n + 1) < 0)
            return NULL;
    }
}

static PyObject *input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t limit = size_arg(args, nargs, "readline");
    if (limit == -2)
        return NULL;
    return readline((InputObject *)self, limit);
}

static PyObject *input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t hint = size_arg(args, nargs, "readlines");
    if (hint == -2)
        return NULL;
    PyObject *lines = PyList_New(0);
    if (lines == NULL)
        return NULL;
    Py_ssize_t total = 0;
    for (;;) {
        PyObject *line = readline((InputObject *)self, -1);
        if (line == NULL) {
            Py_DECREF(lines);
            return NULL;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n == 0) {
            Py_DECREF(line);
            break;
        }
        int rc = PyList_Append(lines, line);
        Py_DECREF(line);
        if (rc < 0) {
            Py_DECREF(lines);
            return NULL;
        }
        total += n;
        if (hint > 0 && total >= hint)
            break;
    }
    return lines;
}

static PyObject *input_iternext(PyObject *self)
{
    PyObject *line = readline((InputObject *)self, -1);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL;   /* StopIteration */
    }
    return line;
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
     "read(size=-1): up to size bytes of the body; all of it if size < 0"},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
     "readline(size=-1): one line, at most size bytes"},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
     "readlines(hint=-1): the remaining lines"},
    {NULL, NULL, 0, NULL},
};

static void input_dealloc(PyObject *self)
{
    PyObject_Free(self);
}

PyTypeObject srv_InputType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.Input",
    .tp_basicsize = sizeof(InputObject),
    .tp_dealloc = input_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = input_iternext,
    .tp_methods = input_methods,
};

PyObject *srv_input_new(srv_conn *c)
{
    InputObject *in = PyObject_New(InputObject, &srv_InputType);
    if (in)
        in->conn = c;
    return (PyObject *)in;
}

int srv_input_reattach(PyObject *input, srv_conn *c)
{
    if (Py_REFCNT(input) != 1)
        return 0;
    ((InputObject *)input)->conn = c;
    return 1;
}

void srv_input_detach(PyObject *input)
{
    ((InputObject *)input)->conn = NULL;
}

int srv_input_drain(srv_conn *c)
{
    srv_request *req = &c->req;
    if (req->message_done)
        return 1;
    if (req->expect_continue && !srv_response_continue_sent(srv_conn_response(c)))
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
