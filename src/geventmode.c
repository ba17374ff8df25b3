/*
 * geventmode.c - srv on gevent's hub.
 *
 * srv gives gevent its loop: before gevent's hub exists, gevent.config.loop
 * is set to _srv_gevent.loop (gloop.c), a loop class implemented in C on
 * srv's ev_default_loop.  gevent's hub then runs srv's loop, whichever libev
 * gevent itself was built with (Debian's links the system libev, pip's
 * wheels embed their own, which simply goes unused): srv's listeners,
 * connection watchers and timers and gevent's watchers are watchers of one
 * libev loop, and a worker that waits on gevent (a patched socket,
 * time.sleep, a Queue) and a worker that waits on srv's own socket both
 * just switch to the hub.  No Python object is made per connection for
 * srv's I/O.  A gevent that does not let a program choose its loop class
 * (older than 1.3) is refused with a one-line error.
 *
 * Pooled workers outlive their requests, so gevent.local (the patched
 * threading.local) would carry one request's values into the next.  After
 * each request srv_gevent_reset_locals() removes the current greenlet's
 * entries, through the weak-reference callbacks gevent registers for exactly
 * that purpose when a greenlet dies.
 */
#include "srv/geventmode.h"
#include "srv/grlock.h"
#include "srv/config.h"
#include "srv/gloop.h"
#include "srv/hub.h"
#include "srv/log.h"

#include <Python.h>

int srv_gevent_active;

static PyObject *hub;            /* owned: gevent's hub greenlet */
static PyObject *main_greenlet;  /* owned */
static PyObject *reset_fn;       /* owned: the Python helper below */

static const char reset_src[] =
    "import weakref\n"
    "_prefix = '_gevent_local_localimpl_'\n"
    "def reset(g):\n"
    "    d = g.__dict__\n"
    "    if not d:\n"
    "        return\n"
    "    for key in [k for k in d if k.startswith(_prefix)]:\n"
    "        del d[key]\n"
    "    for r in weakref.getweakrefs(g):\n"
    "        cb = r.__callback__\n"
    "        if cb is not None and type(cb).__name__ == '_greenlet_deleted':\n"
    "            cb(r)\n";

int srv_gevent_importable(void)
{
    PyObject *m = PyImport_ImportModule("gevent");
    if (m == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(m);
    return 1;
}

static void refuse(const char *why)
{
    srv_die_usage("--mode gevent: %s; use gevent >= 1.3 (pip install gevent, or Debian's "
                  "python3-gevent), or --mode native", why);
}

static PyObject *import_attr(const char *module, const char *attr)
{
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL)
        return NULL;
    PyObject *a = PyObject_GetAttrString(m, attr);
    Py_DECREF(m);
    return a;
}

static void make_reset_fn(void)
{
    PyObject *globals = PyDict_New();
    PyObject *builtins = PyEval_GetBuiltins();   /* borrowed */
    if (globals && PyDict_SetItemString(globals, "__builtins__", builtins) == 0) {
        PyObject *r = PyRun_String(reset_src, Py_file_input, globals, globals);
        Py_XDECREF(r);
        if (r)
            reset_fn = PyDict_GetItemString(globals, "reset");
        Py_XINCREF(reset_fn);
    }
    Py_XDECREF(globals);
    if (reset_fn == NULL) {
        PyErr_Print();
        srv_die_usage("--mode gevent: cannot set up gevent.local resets");
    }
}

/* gevent.config.loop = _srv_gevent.loop, before anything creates the hub.
 * Returns a new reference to the class. */
static PyObject *give_gevent_our_loop(void)
{
    PyObject *cls = srv_gloop_class();
    PyObject *config = cls ? import_attr("gevent", "config") : NULL;
    if (config == NULL) {
        PyErr_Clear();
        Py_XDECREF(cls);
        refuse("this gevent has no gevent.config, so srv cannot give it its loop");
    }
    int rc = PyObject_SetAttrString(config, "loop", cls);
    Py_DECREF(config);
    if (rc < 0) {
        PyErr_Clear();
        Py_DECREF(cls);
        refuse("this gevent does not accept a loop class in gevent.config.loop");
    }
    return cls;
}

struct ev_loop *srv_gevent_setup(int monkey_patch)
{
    PyObject *loop_class = give_gevent_our_loop();
    if (monkey_patch) {
        PyObject *patch_all = import_attr("gevent.monkey", "patch_all");
        PyObject *r = patch_all ? PyObject_CallNoArgs(patch_all) : NULL;
        Py_XDECREF(patch_all);
        if (r == NULL) {
            PyErr_Print();
            srv_die_usage("--mode gevent: gevent.monkey.patch_all() failed");
        }
        Py_DECREF(r);
        if (srv_grlock_install() < 0) {
            PyErr_Print();
            srv_die_usage("--mode gevent: cannot install srv's RLock");
        }
    }

    PyObject *get_hub = import_attr("gevent", "get_hub");
    hub = get_hub ? PyObject_CallNoArgs(get_hub) : NULL;
    Py_XDECREF(get_hub);
    PyObject *loop = hub ? PyObject_GetAttrString(hub, "loop") : NULL;
    if (loop == NULL) {
        PyErr_Print();
        srv_die_usage("--mode gevent: cannot start gevent's hub");
    }
    int ours = PyObject_TypeCheck(loop, (PyTypeObject *)loop_class);
    Py_DECREF(loop);
    Py_DECREF(loop_class);
    if (!ours)
        refuse("gevent's hub was created before srv could give it its loop");
    struct ev_loop *mine = ev_default_loop(0);

    PyObject *getcurrent = import_attr("greenlet", "getcurrent");
    main_greenlet = getcurrent ? PyObject_CallNoArgs(getcurrent) : NULL;
    Py_XDECREF(getcurrent);
    if (main_greenlet == NULL) {
        PyErr_Print();
        srv_die_usage("--mode gevent: cannot import greenlet");
    }
    make_reset_fn();
    srv_gevent_active = 1;
    return mine;
}

void srv_gevent_run(void)
{
    if (srv_hub_set_loop_greenlet((PyGreenlet *)hub) < 0) {
        srv_log_pyerr("cannot make gevent's hub the loop greenlet");
        return;
    }
    /* hub.join() returns once srv_loop_stop() has broken the loop. */
    PyObject *r = PyObject_CallMethod(hub, "join", NULL);
    if (r == NULL)
        srv_log_pyerr("gevent's hub stopped with an error");
    Py_XDECREF(r);
}

void srv_gevent_reset_locals(PyObject *g)
{
    /* gevent.local registers in the greenlet's __dict__: an empty dict means
     * there is nothing to forget (the common case).  A worker greenlet is
     * long-lived, so the dict the first call makes is made once. */
    PyObject *dict = PyObject_GenericGetDict(g, NULL);   /* greenlets have one */
    Py_ssize_t used = dict && PyDict_Check(dict) ? PyDict_GET_SIZE(dict) : 0;
    if (dict == NULL)
        PyErr_Clear();
    Py_XDECREF(dict);
    if (used == 0)
        return;
    PyObject *r = PyObject_CallOneArg(reset_fn, g);
    if (r == NULL)
        srv_log_pyerr("cannot reset gevent.local state");
    Py_XDECREF(r);
}

void srv_gevent_detach(void)
{
    if (main_greenlet && srv_hub_set_loop_greenlet((PyGreenlet *)main_greenlet) < 0)
        srv_log_pyerr("cannot hand the workers back to the main greenlet");
}
