/*
 * wsgi.c - the WSGI gateway's request driver, and loading the app.
 *
 * Per request, a worker greenlet runs handle_request():
 *
 *   1. srv_environ_build() (environ.c): the listener's template dict copied,
 *      plus the request's keys.
 *   2. The app is called with the environ and this request's start_response
 *      (start_response.c), which validates and serialises the head at once.
 *   3. srv_response_send_result() (response.c) frames and sends the body.
 *   4. The iterable's close() is called, an unread body is drained or the
 *      connection given up, and keep-alive is decided.
 *
 * Errors: an exception before the head is sent becomes a 500 (or the status
 * a body-limit error asked for) with the traceback in the error log; after
 * the head is sent the connection is closed, so the client sees a truncated
 * response rather than a wrong one.
 */
#include "srv/clock.h"
#include "srv/wsgi.h"
#include "srv/accesslog.h"
#include "srv/aio.h"
#include "srv/config.h"
#include "srv/conn.h"
#include "srv/filewrap.h"
#include "srv/geventmode.h"
#include "srv/input.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/metrics.h"
#include "srv/ws.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include "srv/environ.h"
#include "srv/response.h"
#include "srv/start_response.h"
#include "srv/http1.h"
#include "srv/hub.h"
#include "srv/http.h"

static PyObject *app;           /* owned: the WSGI callable */
void (*srv_wsgi_on_request_done)(void);
static PyObject *s_gr_context;  /* owned: interned "gr_context" */

/* obj.name = value through the attribute's data descriptor on obj's type,
 * looked up once per type: a worker greenlet's gr_context is reset on every
 * request, and the generic setattr would search the type's MRO each time. */
static int set_through_descriptor(PyObject *obj, PyObject *name, PyObject *value)
{
    static PyTypeObject *type;   /* borrowed: types of live greenlets stay */
    static PyObject *descr;      /* owned */
    if (Py_TYPE(obj) != type) {
        PyObject *d = PyObject_GetAttr((PyObject *)Py_TYPE(obj), name);
        if (d == NULL || Py_TYPE(d)->tp_descr_set == NULL) {
            PyErr_Clear();
            Py_XDECREF(d);
            return PyObject_SetAttr(obj, name, value);
        }
        Py_XSETREF(descr, d);
        type = Py_TYPE(obj);
    }
    return Py_TYPE(descr)->tp_descr_set(descr, obj, value);
}

/* A pooled worker serves many requests: nothing the app kept in a
 * ContextVar or in gevent.local may be seen by the next one. */
static void forget_request_locals(void)
{
    PyObject *self = (PyObject *)srv_hub_current();
    if (set_through_descriptor(self, s_gr_context, Py_None) < 0)
        srv_log_pyerr("cannot reset the greenlet's context");
    if (srv_gevent_active)
        srv_gevent_reset_locals(self);
    Py_DECREF(self);
}


/* The connection's exchange, made for its first request; NULL when out of
 * memory. */
static srv_exchange *exchange_of(srv_conn *c)
{
    srv_exchange *x = c->exchange;
    if (x == NULL) {
        x = calloc(1, sizeof *x);
        if (x == NULL || (x->resp = srv_response_new()) == NULL) {
            free(x);
            return NULL;
        }
        c->exchange = x;
    } else {
        srv_response_reset(x->resp);
    }
    return x;
}

/* The app's part: called with *environ and start_response, its result
 * sent (or, for a WebSocket, run through).  *environ is let go after the
 * call unless the access log needs it.  Returns 0, or -1 when it failed,
 * with the exception logged, or cleared; *killed: the greenlet is being
 * killed (GreenletExit). */
static int run_app(srv_conn *c, PyObject **environ, PyObject *start_response, int ws_offered,
                   int *killed)
{
    int failed = 0;
    PyObject *argv[2] = {*environ, start_response};
    PyObject *result = PyObject_Vectorcall(app, argv, 2, NULL);
    if (!srv_access_log_enabled)
        Py_CLEAR(*environ);   /* only the access log needs it after the call */
    int took = ws_offered ? srv_ws_end(c, result == NULL) : 0;
    if (took != 0) {
        /* The response was the WebSocket.  Like gevent-websocket, run the
         * iterable through and discard it. */
        failed = took < 0 || result == NULL || srv_response_discard_result(result) < 0;
    } else if (result == NULL) {
        failed = 1;
    } else if (srv_response_send_result(c, result) < 0) {
        failed = PyErr_Occurred() != NULL;
    }
    if (failed) {
        if ((*killed = srv_hub_exiting()))
            PyErr_Clear();
        else if (!c->broken || !(PyErr_ExceptionMatches(PyExc_OSError)))
            srv_log_pyerr("error in the WSGI app for %s",
                          c->listener->name ? c->listener->name : "request");
        else
            PyErr_Clear();
    }
    if (result) {
        if (srv_response_close_result(result) < 0 && !*killed) {
            *killed = srv_hub_exiting();
            failed = 1;
        }
        Py_DECREF(result);
    }
    return failed ? -1 : 0;
}

/* One of the per-request objects c's exchange keeps in *kept (wsgi.input,
 * start_response) for this request: the same one re-attached to c, or a new
 * one if the app kept the last.  Borrowed (*kept owns it); NULL with an
 * exception. */
static PyObject *kept_for(srv_conn *c, PyObject **kept,
                          int (*reattach)(PyObject *, srv_conn *),
                          PyObject *(*make)(srv_conn *))
{
    if (*kept == NULL || !reattach(*kept, c)) {
        PyObject *o = make(c);
        if (o == NULL)
            return NULL;
        Py_XSETREF(*kept, o);
    }
    return *kept;
}

/* Before the app: its start_response, and the WebSocket handshake if the
 * request asks for one.  0, 1 (a WebSocket was offered), or -1: failed
 * (logged) or refused (answered); *failed tells which. */
static int prepare_app(srv_conn *c, PyObject *environ, PyObject **start_response, int *failed)
{
    *start_response = kept_for(c, &c->exchange->start_response,
                               srv_start_response_reattach, srv_start_response_new);
    if (*start_response == NULL) {
        srv_log_pyerr("cannot create start_response");
        *failed = 1;
        return -1;
    }
    if (!c->req.upgrade)
        return 0;
    int offer = srv_ws_offer(c, environ, app);
    if (offer == -2) {
        srv_log_pyerr("cannot set up the WebSocket");
        *failed = 1;
    }
    return offer == 1 ? 1 : offer == 0 ? 0 : -1;
}

/* Serves the request whose head c has parsed.  Returns 1 to keep the
 * connection, 0 to close it, -1 if the greenlet is being killed. */
static int handle_request(srv_conn *c)
{
    srv_exchange *x = exchange_of(c);
    if (x == NULL)
        return 0;
    int killed = 0, failed = 0;
    double started = srv_access_log_enabled ? srv_monotonic() : 0;
    double metrics_began = srv_metrics_request_begin();
    PyObject *start_response = NULL;
    PyObject *input = kept_for(c, &x->input, srv_input_reattach, srv_input_new);
    PyObject *environ = input ? srv_environ_build(c, input) : NULL;
    srv_http_release_head(&c->req);
    srv_conn_consumed(c, c->rpos);   /* nothing left to parse: no buffer while the app runs */
    if (environ == NULL) {
        srv_log_pyerr("cannot build the environ");
        failed = 1;
    } else {
        int ws_offered = prepare_app(c, environ, &start_response, &failed);
        if (ws_offered >= 0) {
            srv_response_deadline_start(x->resp);
            failed = run_app(c, &environ, start_response, ws_offered, &killed) < 0;
            srv_response_deadline_stop(x->resp);
        }
    }
    srv_response_finish(c, failed && !killed);
    if (environ && srv_access_log_enabled) {
        srv_access_entry e = {environ, srv_response_status_sent(x->resp),
                              srv_response_body_sent(x->resp), srv_monotonic() - started};
        srv_access_log_write(&e);
    }
    Py_XDECREF(environ);
    srv_metrics_request_end(srv_response_status_sent(x->resp), metrics_began);
    int keep = srv_response_keep_alive(c) && !killed;
    if (keep && !c->req.message_done)
        keep = srv_input_drain(c);
    if (start_response)
        srv_start_response_detach(start_response);
    if (input)
        srv_input_detach(input);
    srv_response_end(x->resp);
    forget_request_locals();
    return killed ? -1 : keep;
}

int srv_wsgi_serve(srv_conn *c)
{
    for (;;) {
        int keep = handle_request(c);
        if (srv_wsgi_on_request_done)
            srv_wsgi_on_request_done();
        if (keep < 0) {
            srv_conn_close(c);
            return -1;
        }
        if (!keep) {
            srv_conn_release(c, 0);
            return 0;
        }
        srv_conn_next_request(c);
        switch (srv_http_feed(&c->req, &c->rbuf, &c->rpos)) {
        case SRV_PARSE_HEAD_DONE:
            continue;   /* pipelined: serve it in this greenlet */
        case SRV_PARSE_ERROR:
            srv_http1_refuse(c, 0, NULL);
            return 0;
        default:
            srv_conn_release(c, 1);
            return 0;
        }
    }
}


/* ---- set-up -------------------------------------------------------------- */

/* conn.c frees c: what the request layer keeps on it goes too. */
static void forget_connection(srv_conn *c)
{
    srv_exchange *x = c->exchange;
    if (x) {
        srv_peer_names_clear(&x->peer);
        Py_CLEAR(x->start_response);
        Py_CLEAR(x->input);
        srv_response_free(x->resp);
        free(x);
        c->exchange = NULL;
    }
}

int srv_wsgi_init(void)
{
    if (srv_environ_init() < 0 || srv_start_response_init() < 0 || srv_response_init() < 0)
        return -1;
    if (PyType_Ready(&srv_InputType) < 0 || PyType_Ready(&srv_FileWrapperType) < 0)
        return -1;
    s_gr_context = PyUnicode_InternFromString("gr_context");
    if (s_gr_context == NULL)
        return -1;
    srv_hub_set_serve(srv_wsgi_serve);
    srv_conn_default_handler = &srv_http1_handler;   /* srv speaks HTTP/1 */
    srv_conn_on_free = forget_connection;
    return 0;
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
