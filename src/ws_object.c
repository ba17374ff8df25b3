/*
 * ws_object.c - the wsgi.websocket object, with gevent-websocket's API, and
 * srv.WebSocketError (see ws_private.h).
 */
#include "ws_private.h"
#include "srv/log.h"
#include "srv/metrics.h"
#include "srv/ws_frame.h"
#include "srv/hub.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

PyObject *WebSocketError;   /* owned: srv.WebSocketError */

/* ---- the Python object -------------------------------------------------- */

static int raise_closed(void)
{
    ws_rebase_error();
    PyErr_SetString(WebSocketError, "the WebSocket is closed");
    return -1;
}

static PyObject *ws_receive(WebSocketObject *ws, PyObject *unused)
{
    if (ws->conn && !ws->opened && ws->open(ws) < 0)
        return NULL;
    for (;;) {
        if (ws->qhead && !ws->local_close) {
            ws_msg *m = ws->qhead;
            ws->qhead = m->next;
            if (ws->qhead == NULL)
                ws->qtail = NULL;
            ws->qbytes -= m->size + 64;
            PyObject *data = m->data;   /* the queue's reference, now the caller's */
            free(m);
            if (ws->paused && ws->qhead == NULL && ws->conn && !ws->read_done && !ws->out_paused) {
                ws->paused = 0;
                ev_io_start(srv_loop, &ws->conn->rio);
                ev_feed_event(srv_loop, &ws->conn->rio, EV_READ);
            }
            return data;
        }
        if (ws->read_done || ws->local_close || ws->conn == NULL) {
            ws_reply_to_close(ws);   /* the app has read all that came before it */
            ws_discard_queue(ws);
            if (ws->eof_given) {
                raise_closed();
                return NULL;
            }
            ws->eof_given = 1;
            Py_RETURN_NONE;
        }
        if (ws->receiver) {
            PyErr_SetString(PyExc_RuntimeError, "another greenlet is already receiving on this WebSocket");
            return NULL;
        }
        if (ws_wait_as_receiver(ws) < 0)
            return NULL;
    }
}

/* The bytes of a message: str as UTF-8, or any bytes-like object. */
static int message_bytes(PyObject *msg, Py_buffer *view, int *is_str)
{
    *is_str = PyUnicode_Check(msg);
    if (*is_str) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(msg, &n);
        if (s == NULL)
            return -1;
        return PyBuffer_FillInfo(view, msg, (void *)s, n, 1, PyBUF_SIMPLE);
    }
    if (PyObject_GetBuffer(msg, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "a WebSocket message must be str or bytes-like, not %.100s",
                     Py_TYPE(msg)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *send_message(WebSocketObject *ws, PyObject *msg, int opcode)
{
    if (ws->conn && !ws->opened && ws->open(ws) < 0)
        return NULL;
    if (ws->conn == NULL || ws->close_sent || ws->failed) {
        raise_closed();
        return NULL;
    }
    Py_buffer view;
    int is_str;
    if (message_bytes(msg, &view, &is_str) < 0)
        return NULL;
    if (opcode < 0)
        opcode = is_str ? SRV_WS_OP_TEXT : SRV_WS_OP_BINARY;
    int rc = ws_write_frame(ws, opcode, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (rc < 0) {
        raise_closed();
        return NULL;
    }
    srv_my_metrics->ws_messages_sent++;
    Py_INCREF(ws);
    rc = ws_pending(ws) > WRITE_HIGH ? ws_wait_for_output(ws, 0) : 0;
    int dead = ws->failed || ws->conn == NULL;
    Py_DECREF(ws);
    if (rc < 0)
        return NULL;
    if (dead) {
        raise_closed();
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *ws_send(WebSocketObject *ws, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"message", "binary", NULL};
    PyObject *msg, *binary = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:send", kwlist, &msg, &binary))
        return NULL;
    int opcode = -1;
    if (binary != Py_None) {
        int b = PyObject_IsTrue(binary);
        if (b < 0)
            return NULL;
        opcode = b ? SRV_WS_OP_BINARY : SRV_WS_OP_TEXT;
    }
    return send_message(ws, msg, opcode);
}

static PyObject *ws_send_frame(WebSocketObject *ws, PyObject *args)
{
    PyObject *msg;
    int opcode;
    if (!PyArg_ParseTuple(args, "Oi:send_frame", &msg, &opcode))
        return NULL;
    if (opcode != SRV_WS_OP_TEXT && opcode != SRV_WS_OP_BINARY && opcode != SRV_WS_OP_PING && opcode != SRV_WS_OP_PONG) {
        PyErr_Format(PyExc_ValueError, "send_frame: unsupported opcode %d (use close() to close)", opcode);
        return NULL;
    }
    return send_message(ws, msg, opcode);
}

static PyObject *ws_close(WebSocketObject *ws, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"code", "message", NULL};
    int code = 1000;
    PyObject *message = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iO:close", kwlist, &code, &message))
        return NULL;
    if (!srv_ws_close_code_valid(code)) {   /* 1005, 1006, 1015 are never sent */
        PyErr_Format(PyExc_ValueError, "invalid WebSocket close code %d", code);
        return NULL;
    }
    if (ws->conn && !ws->opened && ws->open(ws) < 0) {
        PyErr_Clear();   /* refused: nothing to close */
        Py_RETURN_NONE;
    }
    ws->local_close = 1;
    if (ws->conn == NULL || ws->close_sent) {
        ws_start_kick(ws);
        Py_RETURN_NONE;
    }
    Py_buffer view = {0};
    int is_str;
    if (message && message != Py_None && message_bytes(message, &view, &is_str) < 0)
        return NULL;
    ws_send_close(ws, code, view.buf ? view.buf : "", (size_t)(view.buf ? view.len : 0));
    if (view.obj)
        PyBuffer_Release(&view);
    ws_shut_if_done(ws);
    ws_start_kick(ws);   /* a reader in another greenlet gets None */
    Py_INCREF(ws);
    int rc = ws_wait_for_output(ws, 1);
    Py_DECREF(ws);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *ws_get_closed(WebSocketObject *ws, void *unused)
{
    return PyBool_FromLong(ws->conn == NULL || ws->close_sent || ws->read_done || ws->refused);
}

static PyObject *ws_get_environ(WebSocketObject *ws, void *unused)
{
    PyObject *e = ws->environ ? ws->environ : Py_None;
    Py_INCREF(e);
    return e;
}

static PyObject *environ_get(WebSocketObject *ws, const char *key)
{
    PyObject *v = ws->environ ? PyDict_GetItemString(ws->environ, key) : NULL;
    if (v == NULL)
        v = Py_None;
    Py_INCREF(v);
    return v;
}

static PyObject *ws_get_path(WebSocketObject *ws, void *u) { return environ_get(ws, "PATH_INFO"); }
static PyObject *ws_get_origin(WebSocketObject *ws, void *u) { return environ_get(ws, "HTTP_ORIGIN"); }
static PyObject *ws_get_version(WebSocketObject *ws, void *u) { return environ_get(ws, "HTTP_SEC_WEBSOCKET_VERSION"); }

static PyObject *ws_get_protocol(WebSocketObject *ws, void *u)
{
    if (ws->protocol) {
        Py_INCREF(ws->protocol);
        return ws->protocol;
    }
    return environ_get(ws, "HTTP_SEC_WEBSOCKET_PROTOCOL");
}

static PyObject *ws_get_none(WebSocketObject *ws, void *u) { Py_RETURN_NONE; }

static void ws_dealloc(WebSocketObject *ws)
{
    /* No connection refers to us (it holds a reference), no kick is
     * pending (it holds one too) and no greenlet waits (it is in a
     * method of ours, so its caller holds one). */
    ws_discard_queue(ws);
    Py_XDECREF(ws->environ);
    Py_XDECREF(ws->protocol);
    free(ws->msg);
    free(ws->out);
    free(ws->writers);
    PyObject_Free(ws);
}

static PyMethodDef ws_methods[] = {
    {"receive", (PyCFunction)ws_receive, METH_NOARGS,
     "receive() -> str, bytes or None: the next message; None once the socket is closed"},
    {"read_message", (PyCFunction)ws_receive, METH_NOARGS, "the same as receive()"},
    {"send", (PyCFunction)(void (*)(void))ws_send, METH_VARARGS | METH_KEYWORDS,
     "send(message, binary=None): a text frame for str, binary for bytes, unless binary says"},
    {"send_frame", (PyCFunction)ws_send_frame, METH_VARARGS,
     "send_frame(message, opcode): one frame with the given opcode"},
    {"close", (PyCFunction)(void (*)(void))ws_close, METH_VARARGS | METH_KEYWORDS,
     "close(code=1000, message=b''): start the closing handshake"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef ws_getset[] = {
    {"closed", (getter)ws_get_closed, NULL, "True once either side has closed", NULL},
    {"environ", (getter)ws_get_environ, NULL, "the request's environ (None after the end)", NULL},
    {"path", (getter)ws_get_path, NULL, "PATH_INFO", NULL},
    {"origin", (getter)ws_get_origin, NULL, "the Origin header", NULL},
    {"protocol", (getter)ws_get_protocol, NULL, "the subprotocol", NULL},
    {"version", (getter)ws_get_version, NULL, "the WebSocket version", NULL},
    {"handler", (getter)ws_get_none, NULL, "None: there is no gevent-websocket handler", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject WebSocketType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.WebSocket",
    .tp_basicsize = sizeof(WebSocketObject),
    .tp_dealloc = (destructor)ws_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A WebSocket connection, with gevent-websocket's API.",
    .tp_methods = ws_methods,
    .tp_getset = ws_getset,
};

/* srv.WebSocketError derives from gevent-websocket's WebSocketError, so
 * that apps written for it (its Resource class among them) catch srv's
 * errors unchanged.  In gevent mode it is imported at once.  In native mode
 * importing it would import gevent, so the error starts from a private
 * OSError subclass and is re-based the first time it is raised after the
 * app has imported gevent-websocket itself.  (A Python-level subclass has
 * the layout __bases__ assignment needs.) */
static int rebase_pending;

static PyObject *error_base(void)
{
    PyObject *modules = PyImport_GetModuleDict();   /* borrowed */
    if (PyDict_GetItemString(modules, "gevent") != NULL) {
        PyObject *m = PyImport_ImportModule("geventwebsocket.exceptions");
        if (m) {
            PyObject *base = PyObject_GetAttrString(m, "WebSocketError");
            Py_DECREF(m);
            if (base && PyType_Check(base))
                return base;
            Py_XDECREF(base);
        }
        PyErr_Clear();
    }
    rebase_pending = 1;
    return PyErr_NewException("srv._WebSocketErrorBase", PyExc_OSError, NULL);
}

void ws_rebase_error(void)
{
    if (!rebase_pending)
        return;
    PyObject *m = PyDict_GetItemString(PyImport_GetModuleDict(), "geventwebsocket.exceptions");
    if (m == NULL)
        return;
    rebase_pending = 0;
    PyObject *base = PyObject_GetAttrString(m, "WebSocketError");
    PyObject *bases = base ? PyTuple_Pack(1, base) : NULL;
    if (bases == NULL || PyObject_SetAttrString(WebSocketError, "__bases__", bases) < 0)
        srv_log_pyerr("srv.WebSocketError cannot derive from gevent-websocket's");
    Py_XDECREF(bases);
    Py_XDECREF(base);
}

int srv_ws_add_to_module(PyObject *module)
{
    if (PyType_Ready(&WebSocketType) < 0)
        return -1;
    if (WebSocketError == NULL) {
        PyObject *base = error_base();
        WebSocketError = PyErr_NewExceptionWithDoc(
            "srv.WebSocketError", "A WebSocket operation on a closed or failed socket.", base, NULL);
        Py_DECREF(base);
        if (WebSocketError == NULL)
            return -1;
    }
    Py_INCREF(&WebSocketType);
    if (PyModule_AddObject(module, "WebSocket", (PyObject *)&WebSocketType) < 0) {
        Py_DECREF(&WebSocketType);
        return -1;
    }
    Py_INCREF(WebSocketError);
    if (PyModule_AddObject(module, "WebSocketError", WebSocketError) < 0) {
        Py_DECREF(WebSocketError);
        return -1;
    }
    return 0;
}
