/*
 * pymod.c - the `srv` module for applications.
 *
 * srv.RequestTimeout is what --request-timeout raises in a slow request.
 * srv.sleep(seconds) suspends the calling greenlet on a libev timer and
 * lets the loop serve everyone else.  The timer lives on the heap, never on
 * the greenlet's stack, because a suspended greenlet's stack is copied away
 * while others run.  Called outside any request (at import time, from the
 * loop greenlet itself) it sleeps for real, as time.sleep would.
 */
#include "srv/pymod.h"
#include "srv/response.h"
#include "srv/aio.h"
#include "srv/gloop.h"
#include "srv/hub.h"
#include "srv/ws.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    ev_timer timer;
    PyGreenlet *waiter;   /* owned by srv_sleep() for the wait */
} sleeper;

static void wake_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sleeper *s = (sleeper *)t;
    srv_hub_resume(s->waiter);
}

SRV_EV_CALLBACK(on_wake, ev_timer, wake_cb)

static PyObject *srv_sleep(PyObject *module, PyObject *arg)
{
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred())
        return NULL;
    if (!isfinite(seconds) || seconds < 0) {
        PyErr_SetString(PyExc_ValueError, "sleep length must be a non-negative number");
        return NULL;
    }
    if (srv_loop == NULL || srv_hub_in_loop()) {
        struct timespec ts = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
        Py_BEGIN_ALLOW_THREADS
        nanosleep(&ts, NULL);
        Py_END_ALLOW_THREADS
        Py_RETURN_NONE;
    }
    sleeper *s = malloc(sizeof *s);
    if (s == NULL)
        return PyErr_NoMemory();
    s->waiter = srv_hub_current();
    /* libev counts a timer from ev_now(), the start of the loop's pass; the
     * app may have run long since then, and sleep must not end early. */
    ev_now_update(srv_loop);
    ev_timer_init(&s->timer, on_wake, seconds, 0.);
    ev_timer_start(srv_loop, &s->timer);
    int rc = srv_hub_wait();
    ev_timer_stop(srv_loop, &s->timer);
    Py_DECREF(s->waiter);
    free(s);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef srv_methods[] = {
    {"sleep", srv_sleep, METH_O,
     "sleep(seconds): suspend this greenlet; the server keeps serving"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef srv_module = {
    PyModuleDef_HEAD_INIT, "srv", "Helpers for applications served by srv.", -1, srv_methods,
};


static PyObject *init_srv_module(void)
{
    PyObject *m = PyModule_Create(&srv_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddStringConstant(m, "__version__", SRV_VERSION) < 0)
        goto fail;
    if (srv_ws_add_to_module(m) < 0)
        goto fail;
    if (srv_aio_add_to_module(m) < 0)
        goto fail;
    PyObject *timeout = srv_response_timeout_error();   /* borrowed */
    if (timeout == NULL)
        goto fail;
    Py_INCREF(timeout);
    if (PyModule_AddObject(m, "RequestTimeout", timeout) < 0) {
        Py_DECREF(timeout);
        goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}

int srv_pymod_import(void)
{
    PyObject *m = PyImport_ImportModule("srv");
    if (m == NULL)
        return -1;
    Py_DECREF(m);   /* sys.modules keeps it, and it keeps RequestTimeout */
    return 0;
}

/* Handed over (handover.h), the interpreter runs already and its built-in
 * modules are fixed: srv's two are found by a finder first on
 * sys.meta_path instead, which creates each the first time it is imported,
 * as the built-in would be. */
static const char finder_code[] =
    "import sys, importlib.machinery as _m\n"
    "class SrvModules:\n"
    "    \"srv's modules, created on first import (srv's handover.h)\"\n"
    "    def __init__(self, create):\n"
    "        self.create = create\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        return _m.ModuleSpec(name, self, origin='built-in') if name in self.create else None\n"
    "    def create_module(self, spec):\n"
    "        return self.create[spec.name]()\n"
    "    def exec_module(self, module):\n"
    "        pass\n"
    "sys.meta_path.insert(0, SrvModules(create))\n";

static PyObject *create_srv(PyObject *self, PyObject *unused)
{
    return init_srv_module();
}

static PyObject *create_gloop(PyObject *self, PyObject *unused)
{
    return srv_gloop_create_module();
}

static PyMethodDef create_defs[] = {
    {"srv", create_srv, METH_NOARGS, NULL},
    {"_srv_gevent", create_gloop, METH_NOARGS, NULL},
};

static int add_finder(void)
{
    PyObject *create = PyDict_New(), *globals = PyDict_New(), *r = NULL;
    if (create == NULL || globals == NULL)
        goto done;
    for (size_t i = 0; i < sizeof create_defs / sizeof create_defs[0]; i++) {
        PyObject *f = PyCFunction_New(&create_defs[i], NULL);
        int bad = f == NULL || PyDict_SetItemString(create, create_defs[i].ml_name, f) < 0;
        Py_XDECREF(f);
        if (bad)
            goto done;
    }
    if (PyDict_SetItemString(globals, "create", create) < 0
        || PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0)
        goto done;
    r = PyRun_String(finder_code, Py_file_input, globals, globals);
done:
    Py_XDECREF(create);
    Py_XDECREF(globals);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

int srv_pymod_register(void)
{
    if (Py_IsInitialized())
        return add_finder();
    if (srv_gloop_register() < 0)   /* _srv_gevent: gevent's loop class */
        return -1;
    return PyImport_AppendInittab("srv", init_srv_module);
}
