/*
 * gloop.c - gevent's loop class (ILoop) on srv's libev: the loop object.
 *
 * This follows the semantics of gevent's own libev loops (corecext and
 * corecffi) so that gevent's hub and modules cannot tell the difference.
 * The module is four files (gloop_private.h has the map); this one is the
 * loop itself:
 *
 * - ev_run() runs with the GIL held and releases it only while libev polls
 *   (ev_set_loop_release_cb), so libev callbacks, srv's and gevent's, run
 *   with the GIL held and call Python directly.
 * - An exception in a callback goes to loop.handle_error(context, type,
 *   value, tb), which calls the hub's handle_error (error_handler).
 * - Each loop keeps libev watchers of its own: a prepare watcher that runs
 *   run_callback's queue before each poll (gloop_callback.c), a check
 *   watcher that runs Python-level signal handlers after it, an ev_async
 *   that run_callback_threadsafe() sends to wake it (these three do not
 *   keep the loop alive), and a zero timer that keeps the poll from
 *   blocking while callbacks are left.
 * - Watchers (gloop_watch.c, gloop_kinds.c) hold a reference to their loop;
 *   the loop keeps none to them: a started watcher holds one to itself.
 *
 * The default loop is ev_default_loop, the one srv's listeners and
 * connections use; destroy() never destroys it (srv owns it).  Loops made
 * with default=False (gevent's hubs in other threads) are ev_loop_new.
 */
#include "gloop_private.h"

#include <stddef.h>

static PyObject *hub_destroyed;  /* gevent.exceptions.HubDestroyed, once seen */

/* The thread's state while its loop polls without the GIL.  release and
 * acquire are strictly paired around one poll, so one slot per thread is
 * enough even for nested runs. */
static _Thread_local PyThreadState *polling_tstate;

static void release_gil(struct ev_loop *l) { polling_tstate = PyEval_SaveThread(); }
static void acquire_gil(struct ev_loop *l) { PyEval_RestoreThread(polling_tstate); }

/* ---- errors ------------------------------------------------------------ */

static int is_hub_destroyed(PyObject *type)
{
    if (hub_destroyed == NULL) {
        PyObject *m = PyImport_ImportModule("gevent.exceptions");
        hub_destroyed = m ? PyObject_GetAttrString(m, "HubDestroyed") : NULL;
        Py_XDECREF(m);
        if (hub_destroyed == NULL) {
            PyErr_Clear();
            return 0;
        }
    }
    return type == hub_destroyed;
}

/* loop.handle_error(context, type, value, tb): the hub's handler, or print
 * and break out of the loop.  Returns a new reference (None) or NULL. */
static PyObject *handle_error_impl(gloop *self, PyObject *context, PyObject *type,
                                   PyObject *value, PyObject *tb)
{
    if (is_hub_destroyed(type)) {
        gloop_clear_callbacks(self);
        if (self->ptr)
            ev_break(self->ptr, EVBREAK_ONE);
        Py_RETURN_NONE;
    }
    if (self->error_handler && self->error_handler != Py_None) {
        PyObject *h = PyObject_GetAttrString(self->error_handler, "handle_error");
        if (h == NULL) {
            PyErr_Clear();
            h = Py_NewRef(self->error_handler);
        }
        PyObject *r = PyObject_CallFunctionObjArgs(h, context, type, value, tb, NULL);
        Py_DECREF(h);
        return r;
    }
    PyErr_Display(type, value, tb);
    if (self->ptr)
        ev_break(self->ptr, EVBREAK_ONE);
    Py_RETURN_NONE;
}

/* The pending exception happened in `context` (a watcher, a callback or
 * None): hand it to the loop's error handling. */
void gloop_report_error(gloop *self, PyObject *context)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb == NULL)
        tb = Py_NewRef(Py_None);
    if (v == NULL)
        v = Py_NewRef(Py_None);
    PyObject *r = handle_error_impl(self, context, t, v, tb);
    if (r == NULL)
        PyErr_WriteUnraisable(context);
    Py_XDECREF(r);
    Py_XDECREF(t);
    Py_DECREF(v);
    Py_DECREF(tb);
}

/* ---- the loop's own watchers ---------------------------------------------- */

static void on_check(struct ev_loop *l, ev_check *w, int revents)
{
    gloop *self = w->data;
    /* Python-level signal handlers (signal.signal) run here, in the main
     * thread, as with gevent's own loops. */
    if (self->is_default && PyErr_CheckSignals() < 0)
        gloop_report_error(self, Py_None);
}

static void on_noop(struct ev_loop *l, ev_watcher *w, int revents) {}

/* ---- the loop ------------------------------------------------------------ */

static PyObject *loop_run(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"nowait", "once", NULL};
    int nowait = 0, once = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp:run", kwlist, &nowait, &once))
        return NULL;
    if (!loop_alive(self))
        return NULL;
    Py_INCREF(self);
    ev_run(self->ptr, (nowait ? EVRUN_NOWAIT : 0) | (once ? EVRUN_ONCE : 0));
    Py_DECREF(self);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *loop_break(gloop *self, PyObject *args)
{
    int how = EVBREAK_ONE;
    if (!PyArg_ParseTuple(args, "|i:break_", &how) || !loop_alive(self))
        return NULL;
    ev_break(self->ptr, how);
    Py_RETURN_NONE;
}

static void stop_aux(gloop *self)
{
    if (self->ptr == NULL)
        return;
    ev_ref(self->ptr);
    ev_prepare_stop(self->ptr, &self->prepare);
    ev_ref(self->ptr);
    ev_check_stop(self->ptr, &self->check);
    ev_ref(self->ptr);
    ev_async_stop(self->ptr, &self->wake);
    ev_timer_stop(self->ptr, &self->timer0);
    if (ev_userdata(self->ptr) == self) {
        ev_set_userdata(self->ptr, NULL);
        ev_set_loop_release_cb(self->ptr, NULL, NULL);
    }
}

static PyObject *loop_destroy(gloop *self, PyObject *unused)
{
    if (self->ptr) {
        gloop_clear_callbacks(self);
        stop_aux(self);
        if (!self->is_default)
            ev_loop_destroy(self->ptr);   /* the default loop is srv's */
        self->ptr = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *loop_reinit(gloop *self, PyObject *unused)
{
    if (!loop_alive(self))
        return NULL;
    ev_loop_fork(self->ptr);
    Py_RETURN_NONE;
}

static PyObject *loop_ref(gloop *self, PyObject *unused)
{
    if (!loop_alive(self))
        return NULL;
    ev_ref(self->ptr);
    Py_RETURN_NONE;
}

static PyObject *loop_unref(gloop *self, PyObject *unused)
{
    if (!loop_alive(self))
        return NULL;
    ev_unref(self->ptr);
    Py_RETURN_NONE;
}

static PyObject *loop_now(gloop *self, PyObject *unused)
{
    if (!loop_alive(self))
        return NULL;
    return PyFloat_FromDouble(ev_now(self->ptr));
}

static PyObject *loop_update_now(gloop *self, PyObject *unused)
{
    if (!loop_alive(self))
        return NULL;
    ev_now_update(self->ptr);
    Py_RETURN_NONE;
}

static PyObject *loop_verify(gloop *self, PyObject *unused)
{
    if (!loop_alive(self))
        return NULL;
    ev_verify(self->ptr);
    Py_RETURN_NONE;
}

static PyObject *loop_closing_fd(gloop *self, PyObject *arg)
{
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0 || !loop_alive(self))
        return NULL;
    unsigned before = ev_pending_count(self->ptr);
    ev_feed_fd_event(self->ptr, fd, 0xFFFF);
    return PyBool_FromLong(ev_pending_count(self->ptr) > before);
}

static PyObject *loop_noop(gloop *self, PyObject *unused)
{
    /* install_sigchld/reset_sigchld: libev's default loop keeps its own
     * SIGCHLD watcher; nothing to install. */
    Py_RETURN_NONE;
}

static PyObject *loop_fileno(gloop *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyObject *loop_handle_error(gloop *self, PyObject *args)
{
    PyObject *context, *type, *value, *tb;
    if (!PyArg_ParseTuple(args, "OOOO:handle_error", &context, &type, &value, &tb))
        return NULL;
    return handle_error_impl(self, context, type, value, tb);
}

static PyObject *loop_format(gloop *self, PyObject *unused)
{
    if (self->ptr == NULL)
        return PyUnicode_FromString("destroyed");
    return PyUnicode_FromFormat("srv libev %d.%d%s pending=%u callbacks=%zd",
                                ev_version_major(), ev_version_minor(),
                                self->is_default ? " default" : "",
                                ev_pending_count(self->ptr), self->ncallbacks);
}

static PyObject *loop_repr(gloop *self)
{
    PyObject *f = loop_format(self, NULL);
    PyObject *r = f ? PyUnicode_FromFormat("<_srv_gevent.loop at %p %U>", self, f) : NULL;
    Py_XDECREF(f);
    return r;
}

static PyMethodDef loop_methods[] = {
#define KW(name, fn) {name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, NULL}
    KW("io", gloop_new_io), KW("timer", gloop_new_timer), KW("signal", gloop_new_signal),
    KW("idle", gloop_new_idle), KW("prepare", gloop_new_prepare), KW("check", gloop_new_check),
    KW("fork", gloop_new_fork), KW("async_", gloop_new_async), KW("child", gloop_new_child),
    KW("stat", gloop_new_stat), KW("run", loop_run),
#undef KW
    {"run_callback", (PyCFunction)gloop_run_callback, METH_VARARGS, NULL},
    {"run_callback_threadsafe", (PyCFunction)gloop_run_callback_threadsafe, METH_VARARGS, NULL},
    {"break_", (PyCFunction)loop_break, METH_VARARGS, NULL},
    {"destroy", (PyCFunction)loop_destroy, METH_NOARGS, NULL},
    {"reinit", (PyCFunction)loop_reinit, METH_NOARGS, NULL},
    {"ref", (PyCFunction)loop_ref, METH_NOARGS, NULL},
    {"unref", (PyCFunction)loop_unref, METH_NOARGS, NULL},
    {"now", (PyCFunction)loop_now, METH_NOARGS, NULL},
    {"update_now", (PyCFunction)loop_update_now, METH_NOARGS, NULL},
    {"update", (PyCFunction)loop_update_now, METH_NOARGS, NULL},
    {"verify", (PyCFunction)loop_verify, METH_NOARGS, NULL},
    {"closing_fd", (PyCFunction)loop_closing_fd, METH_O, NULL},
    {"install_sigchld", (PyCFunction)loop_noop, METH_NOARGS, NULL},
    {"reset_sigchld", (PyCFunction)loop_noop, METH_NOARGS, NULL},
    {"fileno", (PyCFunction)loop_fileno, METH_NOARGS, NULL},
    {"handle_error", (PyCFunction)loop_handle_error, METH_VARARGS, NULL},
    {"_format", (PyCFunction)loop_format, METH_NOARGS, NULL},
    {NULL}
};

static PyObject *loop_get_default(gloop *self, void *unused)
{
    return PyBool_FromLong(self->ptr && self->is_default);
}

static PyObject *loop_get_ptr(gloop *self, void *unused)
{
    return PyLong_FromVoidPtr(self->ptr);
}

static PyObject *loop_get_int(gloop *self, void *which)
{
    const char *w = which;
    if (!loop_alive(self))
        return NULL;
    switch (w[0]) {
    case 'i': return PyLong_FromUnsignedLong(ev_iteration(self->ptr));
    case 'd': return PyLong_FromUnsignedLong(ev_depth(self->ptr));
    case 'b': return PyLong_FromUnsignedLong(ev_backend(self->ptr));
    case 'p': return PyLong_FromUnsignedLong(ev_pending_count(self->ptr));
    default: return PyLong_FromLong(-1);    /* activecnt: libev does not say */
    }
}

static PyObject *loop_get_backend(gloop *self, void *unused)
{
    if (!loop_alive(self))
        return NULL;
    switch (ev_backend(self->ptr)) {
    case EVBACKEND_EPOLL: return PyUnicode_FromString("epoll");
    case EVBACKEND_POLL: return PyUnicode_FromString("poll");
    case EVBACKEND_SELECT: return PyUnicode_FromString("select");
    default: return PyLong_FromUnsignedLong(ev_backend(self->ptr));
    }
}

static PyObject *loop_get_error_handler(gloop *self, void *unused)
{
    return Py_NewRef(self->error_handler ? self->error_handler : Py_None);
}

static int loop_set_error_handler(gloop *self, PyObject *value, void *unused)
{
    Py_XSETREF(self->error_handler, value ? Py_NewRef(value) : NULL);
    return 0;
}

static PyObject *loop_get_may_update(gloop *self, void *unused)
{
    return PyBool_FromLong(self->may_update);
}

static int loop_set_may_update(gloop *self, PyObject *value, void *unused)
{
    int v = value ? PyObject_IsTrue(value) : 0;
    if (v < 0)
        return -1;
    self->may_update = v;
    return 0;
}

static PyObject *loop_get_const(gloop *self, void *which)
{
    const char *w = which;
    if (w[0] == 'r')
        return PyFloat_FromDouble(0.00001);   /* approx_timer_resolution */
    return PyLong_FromLong(w[1] == 'A' ? EV_MAXPRI : w[1] == 'I' ? EV_MINPRI : -1);
}

static PyGetSetDef loop_getset[] = {
    {"default", (getter)loop_get_default, NULL, NULL, NULL},
    {"ptr", (getter)loop_get_ptr, NULL, NULL, NULL},
    {"iteration", (getter)loop_get_int, NULL, NULL, "i"},
    {"depth", (getter)loop_get_int, NULL, NULL, "d"},
    {"backend_int", (getter)loop_get_int, NULL, NULL, "b"},
    {"pendingcnt", (getter)loop_get_int, NULL, NULL, "p"},
    {"activecnt", (getter)loop_get_int, NULL, NULL, "a"},
    {"backend", (getter)loop_get_backend, NULL, NULL, NULL},
    {"error_handler", (getter)loop_get_error_handler, (setter)loop_set_error_handler, NULL, NULL},
    {"starting_timer_may_update_loop_time", (getter)loop_get_may_update,
     (setter)loop_set_may_update, NULL, NULL},
    {"approx_timer_resolution", (getter)loop_get_const, NULL, NULL, "r"},
    {"MAXPRI", (getter)loop_get_const, NULL, NULL, "MAX"},
    {"MINPRI", (getter)loop_get_const, NULL, NULL, "MIN"},
    {"sigfd", (getter)loop_get_const, NULL, NULL, "s-"},
    {NULL}
};

static double switch_interval(void)
{
    PyObject *sys = PyImport_ImportModule("sys");
    PyObject *r = sys ? PyObject_CallMethod(sys, "getswitchinterval", NULL) : NULL;
    double v = r ? PyFloat_AsDouble(r) : -1.;
    Py_XDECREF(r);
    Py_XDECREF(sys);
    if (v < 0) {
        PyErr_Clear();
        v = 0.005;
    }
    return v;
}

static PyObject *loop_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"flags", "default", NULL};
    PyObject *flags = NULL, *dflt = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:loop", kwlist, &flags, &dflt))
        return NULL;
    int is_default = dflt == Py_None ? 1 : PyObject_IsTrue(dflt);
    if (is_default < 0)
        return NULL;
    struct ev_loop *ptr = is_default ? ev_default_loop(EVFLAG_AUTO) : ev_loop_new(EVFLAG_AUTO);
    if (ptr == NULL)
        return PyErr_Format(PyExc_SystemError, "cannot create a libev loop");
    gloop *self = (gloop *)type->tp_alloc(type, 0);
    if (self == NULL) {
        if (!is_default)
            ev_loop_destroy(ptr);
        return NULL;
    }
    self->ptr = ptr;
    self->is_default = is_default;
    self->switch_interval = switch_interval();
    ev_prepare_init(&self->prepare, gloop_on_prepare);
    self->prepare.data = self;
    ev_prepare_start(ptr, &self->prepare);
    ev_unref(ptr);
    ev_check_init(&self->check, on_check);
    self->check.data = self;
    ev_check_start(ptr, &self->check);
    ev_unref(ptr);
    ev_async_init(&self->wake, (void (*)(struct ev_loop *, ev_async *, int))on_noop);
    ev_async_start(ptr, &self->wake);
    ev_unref(ptr);
    ev_timer_init(&self->timer0, (void (*)(struct ev_loop *, ev_timer *, int))on_noop, 0., 0.);
    ev_set_userdata(ptr, self);
    ev_set_loop_release_cb(ptr, release_gil, acquire_gil);
    return (PyObject *)self;
}

static int loop_traverse(gloop *self, visitproc visit, void *arg)
{
    Py_VISIT(self->error_handler);
    Py_VISIT(self->dict);
    for (gcallback *cb = self->head; cb; cb = cb->next)
        Py_VISIT(cb);
    return 0;
}

static int loop_clear(gloop *self)
{
    Py_CLEAR(self->error_handler);
    Py_CLEAR(self->dict);
    gloop_clear_callbacks(self);
    return 0;
}

static void loop_dealloc(gloop *self)
{
    PyObject_GC_UnTrack(self);
    PyObject *r = loop_destroy(self, NULL);
    Py_XDECREF(r);
    loop_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- its type and the module ---------------------------------------------------- */

PyTypeObject gloop_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_srv_gevent.loop",
    .tp_doc = "gevent's loop (ILoop) on the libev srv links",
    .tp_basicsize = sizeof(gloop),
    .tp_dictoffset = offsetof(gloop, dict),
    .tp_flags = GC_FLAGS | Py_TPFLAGS_BASETYPE,
    .tp_new = loop_new,
    .tp_dealloc = (destructor)loop_dealloc,
    .tp_traverse = (traverseproc)loop_traverse,
    .tp_clear = (inquiry)loop_clear,
    .tp_repr = (reprfunc)loop_repr,
    .tp_methods = loop_methods,
    .tp_getset = loop_getset,
};

static struct PyModuleDef gloop_module = {
    PyModuleDef_HEAD_INIT, "_srv_gevent",
    "gevent's event loop on srv's libev (gevent.config.loop = _srv_gevent.loop).", -1, NULL,
};

static PyObject *init_gloop_module(void)
{
    PyTypeObject *types[] = {&gloop_type, &gloop_callback_type, &gloop_watcher_type, &gloop_io_type, &gloop_timer_type,
                             &gloop_signal_type, &gloop_idle_type, &gloop_prepare_type, &gloop_check_type, &gloop_fork_type,
                             &gloop_async_type, &gloop_child_type, &gloop_stat_type};
    PyObject *m = PyModule_Create(&gloop_module);
    if (m == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        const char *name = strrchr(types[i]->tp_name, '.') + 1;
        if (PyType_Ready(types[i]) < 0 || PyModule_AddType(m, types[i]) < 0
            || (strcmp(name, "async_") == 0 && PyModule_AddObjectRef(m, "async",
                                                                      (PyObject *)types[i]) < 0)) {
            Py_DECREF(m);
            return NULL;
        }
    }
    /* Loop methods named after the keyword: getattr(loop, 'async'). */
    if (PyDict_SetItemString(gloop_type.tp_dict, "async",
                             PyDict_GetItemString(gloop_type.tp_dict, "async_")) < 0
        || PyModule_AddObject(m, "__all__", Py_BuildValue("[s]", "loop")) < 0
        || PyModule_AddIntConstant(m, "READ", EV_READ) < 0
        || PyModule_AddIntConstant(m, "WRITE", EV_WRITE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyType_Modified(&gloop_type);
    return m;
}

int srv_gloop_register(void)
{
    return PyImport_AppendInittab("_srv_gevent", init_gloop_module);
}

PyObject *srv_gloop_create_module(void)
{
    return init_gloop_module();
}

PyObject *srv_gloop_class(void)
{
    PyObject *m = PyImport_ImportModule("_srv_gevent");
    PyObject *cls = m ? PyObject_GetAttrString(m, "loop") : NULL;
    Py_XDECREF(m);
    return cls;
}
