/*
 * start_response.c - the start_response and write() callables (PEP 3333).
 *
 * start_response validates the status and the headers (str, latin-1, no
 * control characters, a well-formed status, the exc_info rules) and
 * serialises them at once into the response's head, so that later mutation
 * of the list by the app cannot smuggle anything into the response; it
 * notes the headers srv frames by (Content-Length, Date, Server).  write()
 * sends body bytes at once, through response.c.
 */
#include "srv/start_response.h"
#include "srv/response.h"
#include "srv/conn.h"
#include "srv/http.h"
#include "srv/wsgi.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* ---- start_response and write() ----------------------------------------- */

typedef struct WriteObject WriteObject;

typedef struct {
    PyObject_HEAD
    srv_conn *conn;   /* NULL once the request is over */
    vectorcallfunc vectorcall;
    WriteObject *write;   /* owned, or NULL until start_response is called */
} StartResponseObject;

/* The write() callable start_response returns.  It borrows its
 * StartResponse, which owns it and clears `sr` when it goes, so neither
 * type takes part in a reference cycle and neither needs the cyclic GC. */
struct WriteObject {
    PyObject_HEAD
    StartResponseObject *sr;   /* borrowed; NULL once that is gone */
    vectorcallfunc vectorcall;
};

/* RFC 9110 token characters, for header names. */
static unsigned char tchar[256];

static void srv_start_response_init_tables(void)
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

/* Notes what srv must know about one of the app's headers.  Returns 1 to
 * keep the header, 0 to drop it, -1 on error. */
static int note_header(srv_response *r, const char *name, Py_ssize_t nlen,
                       const char *val, Py_ssize_t vlen, PyObject *vobj)
{
    if (SRV_FIELD_NAME_IS(name, nlen, "content-length")) {
        int64_t n = 0;
        if (vlen == 0 || vlen > 18)
            goto bad_length;
        for (Py_ssize_t i = 0; i < vlen; i++) {
            if (val[i] < '0' || val[i] > '9')
                goto bad_length;
            n = n * 10 + (val[i] - '0');
        }
        srv_response_set_length(r, n);
        return 1;
    bad_length:
        PyErr_Format(PyExc_ValueError, "invalid Content-Length header: %R", vobj);
        return -1;
    }
    if (SRV_FIELD_NAME_IS(name, nlen, "transfer-encoding")) {
        if (vlen == 7 && strncasecmp(val, "chunked", 7) == 0)
            return 0;   /* srv frames the body itself */
        PyErr_Format(PyExc_ValueError, "unsupported Transfer-Encoding from the app: %R", vobj);
        return -1;
    }
    if (SRV_FIELD_NAME_IS(name, nlen, "connection")) {
        for (Py_ssize_t i = 0; i + 5 <= vlen; i++)
            if (strncasecmp(val + i, "close", 5) == 0)
                srv_response_set_close(r);
        return 0;   /* srv writes its own Connection header */
    }
    return 1;   /* Date and Server: srv_response_add_header notes them */
}

/* Validates status and headers and makes them r's head. */
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
    int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (srv_response_begin_head(r, s, (size_t)slen, code) < 0)
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
        if (keep && srv_response_add_header(r, name, (size_t)nlen, val, (size_t)vlen) < 0) {
            Py_DECREF(seq);
            goto nomem;
        }
    }
    Py_DECREF(seq);
    srv_response_head_done(r);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
nomem:
    PyErr_NoMemory();
    return -1;
}

static PyObject *write_of(StartResponseObject *sr);

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
    srv_response *r = srv_conn_response(c);
    if (exc_info != Py_None) {
        if (srv_response_head_sent(r)) {
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
    } else if (srv_response_started(r)) {
        PyErr_SetString(PyExc_RuntimeError, "start_response called a second time without exc_info");
        return NULL;
    }
    if (set_status_and_headers(r, status, headers) < 0) {
        srv_response_head_cancel(r);
        return NULL;
    }
    return write_of((StartResponseObject *)self);
}

static void start_response_dealloc(PyObject *self)
{
    StartResponseObject *sr = (StartResponseObject *)self;
    if (sr->write != NULL) {
        sr->write->sr = NULL;   /* a write() the app kept now raises */
        Py_DECREF(sr->write);
    }
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


static PyObject *write_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "write() takes exactly one argument, the bytes to send");
        return NULL;
    }
    PyObject *data = args[0];
    StartResponseObject *sr = ((WriteObject *)self)->sr;
    srv_conn *c = sr ? sr->conn : NULL;
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
    int rc = srv_response_send_body(c, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), 0);
    Py_DECREF(data);
    if (rc < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OSError, "client disconnected");
        return NULL;
    }
    Py_RETURN_NONE;
}

static void write_dealloc(PyObject *self)
{
    PyObject_Free(self);
}

static PyTypeObject WriteType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.Write",
    .tp_basicsize = sizeof(WriteObject),
    .tp_dealloc = write_dealloc,
    .tp_vectorcall_offset = offsetof(WriteObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "write(data): send body bytes now (PEP 3333)",
};

/* sr's write(), made at its first start_response: a new reference. */
static PyObject *write_of(StartResponseObject *sr)
{
    if (sr->write == NULL) {
        WriteObject *w = PyObject_New(WriteObject, &WriteType);
        if (w == NULL)
            return NULL;
        w->sr = sr;
        w->vectorcall = write_vectorcall;
        sr->write = w;
    }
    return Py_NewRef((PyObject *)sr->write);
}

/* ---- for the request driver ---------------------------------------------- */

PyObject *srv_start_response_new(srv_conn *c)
{
    StartResponseObject *sr = PyObject_New(StartResponseObject, &StartResponseType);
    if (sr == NULL)
        return NULL;
    sr->conn = c;
    sr->vectorcall = start_response_vectorcall;
    sr->write = NULL;
    return (PyObject *)sr;
}

int srv_start_response_reattach(PyObject *obj, srv_conn *c)
{
    StartResponseObject *sr = (StartResponseObject *)obj;
    if (Py_REFCNT(obj) != 1 || (sr->write != NULL && Py_REFCNT(sr->write) != 1))
        return 0;   /* the app kept it, or its write(): those stay detached */
    sr->conn = c;
    return 1;
}

void srv_start_response_detach(PyObject *sr)
{
    ((StartResponseObject *)sr)->conn = NULL;
}

int srv_start_response_init(void)
{
    srv_start_response_init_tables();
    return PyType_Ready(&StartResponseType) < 0 || PyType_Ready(&WriteType) < 0 ? -1 : 0;
}
