/*
 * geventmode.c - srv on gevent's hub.
 *
 * Debian's gevent links the system libev.so.4, the library srv links, so
 * gevent's default loop *is* srv's ev_default_loop: srv's listeners,
 * connection watchers and timers are plain libev watchers on the loop that
 * gevent's hub runs, and a worker that waits on gevent (a patched socket,
 * time.sleep, a Queue) and a worker that waits on srv's own socket both just
 * switch to the hub.  No Python object is made per connection for srv's I/O.
 *
 * A gevent with a private libev (pip wheels build one in: LIBEV_EMBED is
 * true), the CFFI backend or libuv has a loop srv cannot put watchers on.
 * srv refuses to start in that case with a one-line error naming the fixes
 * (Debian's python3-gevent, or --mode native), rather than falling back to
 * gevent's Python watcher API: a fallback would be a second, slower server
 * to keep correct, and mixing watchers of two libevs corrupts both.
 *
 * Pooled workers outlive their requests, so gevent.local (the patched
 * threading.local) would carry one request's values into the next.  After
 * each request srv_gevent_reset_locals() removes the current greenlet's
 * entries, through the weak-reference callbacks gevent registers for exactly
 * that purpose when a greenlet dies.
 */
#include "srv/geventmode.h"
#include "srv/config.h"
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
    srv_die_usage("--mode gevent: %s; srv can only share gevent's loop when gevent uses the "
                  "system libev (Debian's python3-gevent); use that, or --mode native", why);
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

struct ev_loop *srv_gevent_setup(int monkey_patch)
{
    if (monkey_patch) {
        PyObject *patch_all = import_attr("gevent.monkey", "patch_all");
        PyObject *r = patch_all ? PyObject_CallNoArgs(patch_all) : NULL;
        Py_XDECREF(patch_all);
        if (r == NULL) {
            PyErr_Print();
            srv_die_usage("--mode gevent: gevent.monkey.patch_all() failed");
        }
        Py_DECREF(r);
    }

    PyObject *embed = import_attr("gevent.libev.corecext", "LIBEV_EMBED");
    if (embed == NULL) {
        PyErr_Clear();
        refuse("gevent has no libev C extension (gevent.libev.corecext)");
    }
    int embedded = PyObject_IsTrue(embed);
    Py_DECREF(embed);
    if (embedded)
        refuse("this gevent embeds its own copy of libev (LIBEV_EMBED is true)");

    PyObject *get_hub = import_attr("gevent", "get_hub");
    hub = get_hub ? PyObject_CallNoArgs(get_hub) : NULL;
    Py_XDECREF(get_hub);
    PyObject *loop = hub ? PyObject_GetAttrString(hub, "loop") : NULL;
    if (loop == NULL) {
        PyErr_Print();
        srv_die_usage("--mode gevent: cannot start gevent's hub");
    }
    PyObject *loop_type = import_attr("gevent.libev.corecext", "loop");
    int is_cext = loop_type && PyObject_TypeCheck(loop, (PyTypeObject *)loop_type);
    Py_XDECREF(loop_type);
    PyErr_Clear();
    if (!is_cext) {
        Py_DECREF(loop);
        refuse("gevent's hub does not run a libev C-extension loop (GEVENT_LOOP is set to another backend?)");
    }
    PyObject *ptr = PyObject_GetAttrString(loop, "ptr");
    Py_DECREF(loop);
    void *hub_loop = ptr ? PyLong_AsVoidPtr(ptr) : NULL;
    Py_XDECREF(ptr);
    PyErr_Clear();
    struct ev_loop *mine = ev_default_loop(0);
    if (hub_loop == NULL || hub_loop != (void *)mine)
        refuse("gevent's loop is not the ev_default_loop of the libev srv links");

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

void srv_gevent_reset_locals(void)
{
    PyObject *g = (PyObject *)srv_hub_current();
    /* gevent.local registers in the greenlet's __dict__: an empty or absent
     * dict means there is nothing to forget (the common case). */
    PyObject **dictptr = _PyObject_GetDictPtr(g);
    if (dictptr == NULL || *dictptr == NULL || PyDict_GET_SIZE(*dictptr) == 0) {
        Py_DECREF(g);
        return;
    }
    PyObject *r = PyObject_CallOneArg(reset_fn, g);
    Py_DECREF(g);
    if (r == NULL)
        srv_log_pyerr("cannot reset gevent.local state");
    Py_XDECREF(r);
}

void srv_gevent_detach(void)
{
    if (main_greenlet && srv_hub_set_loop_greenlet((PyGreenlet *)main_greenlet) < 0)
        srv_log_pyerr("cannot hand the workers back to the main greenlet");
}
