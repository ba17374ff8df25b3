/*
 * gloop_watch.c - what every gevent watcher does (see gloop_private.h).
 *
 * A watcher is one Python object with one libev watcher inside (a union of
 * the ten kinds), made by the loop's io(), timer(), ... (gloop_kinds.c).
 * As in gevent's own libev loops:
 *
 * - A started watcher holds a reference to itself until it is stopped, so
 *   a watcher that nobody else references still fires.  When its callback
 *   returns and libev has stopped it (a one-shot timer), it is stopped at
 *   the Python level too: callback and args are dropped.
 * - ref=False watchers ev_unref() the loop while they are active (bit 4:
 *   not referenced; bit 2: libev has been told), as in gevent.
 * - An exception in the callback goes to the loop's handle_error with the
 *   watcher as context.
 *
 * The generic methods (start, stop, feed, the context manager) and
 * attributes (ref, priority, active, pending, callback, args, loop) are
 * here, on the base type _srv_gevent.watcher; each kind adds its own.
 */
#include "gloop_private.h"

/* ---- watchers ----------------------------------------------------------- */

static void ev_start_kind(gwatcher *self)
{
    struct ev_loop *l = self->loop->ptr;
    switch (self->kind) {
    case K_IO: ev_io_start(l, &self->ev.io); break;
    case K_TIMER: ev_timer_start(l, &self->ev.timer); break;
    case K_SIGNAL: ev_signal_start(l, &self->ev.signal); break;
    case K_IDLE: ev_idle_start(l, &self->ev.idle); break;
    case K_PREPARE: ev_prepare_start(l, &self->ev.prepare); break;
    case K_CHECK: ev_check_start(l, &self->ev.check); break;
    case K_FORK: ev_fork_start(l, &self->ev.fork); break;
    case K_ASYNC: ev_async_start(l, &self->ev.async); break;
    case K_CHILD: ev_child_start(l, &self->ev.child); break;
    case K_STAT: ev_stat_start(l, &self->ev.stat); break;
    }
}

static void ev_stop_kind(gwatcher *self)
{
    struct ev_loop *l = self->loop->ptr;
    switch (self->kind) {
    case K_IO: ev_io_stop(l, &self->ev.io); break;
    case K_TIMER: ev_timer_stop(l, &self->ev.timer); break;
    case K_SIGNAL: ev_signal_stop(l, &self->ev.signal); break;
    case K_IDLE: ev_idle_stop(l, &self->ev.idle); break;
    case K_PREPARE: ev_prepare_stop(l, &self->ev.prepare); break;
    case K_CHECK: ev_check_stop(l, &self->ev.check); break;
    case K_FORK: ev_fork_stop(l, &self->ev.fork); break;
    case K_ASYNC: ev_async_stop(l, &self->ev.async); break;
    case K_CHILD: ev_child_stop(l, &self->ev.child); break;
    case K_STAT: ev_stat_stop(l, &self->ev.stat); break;
    }
}

/* Stops the watcher in libev and in Python: drops callback, args and the
 * reference to itself (last: it may free self). */
void gloop_stop_watcher(gwatcher *self)
{
    if (self->loop->ptr) {
        if (self->flags & F_UNREFED) {
            ev_ref(self->loop->ptr);
            self->flags &= ~F_UNREFED;
        }
        ev_stop_kind(self);
    }
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    if (self->flags & F_HELD) {
        self->flags &= ~F_HELD;
        Py_DECREF(self);
    }
}

static void on_watcher(struct ev_loop *l, ev_watcher *w, int revents)
{
    gwatcher *self = w->data;
    if (self->callback == NULL)
        return;
    gloop *loop = self->loop;
    Py_INCREF(self);
    Py_INCREF(loop);
    PyObject *func = Py_NewRef(self->callback);
    PyObject *args;
    if (self->pass_events && self->args) {
        Py_ssize_t n = PyTuple_GET_SIZE(self->args);
        args = PyTuple_New(n + 1);
        if (args) {
            PyTuple_SET_ITEM(args, 0, PyLong_FromLong(revents));
            for (Py_ssize_t i = 0; i < n; i++)
                PyTuple_SET_ITEM(args, i + 1, Py_NewRef(PyTuple_GET_ITEM(self->args, i)));
        }
    } else {
        args = self->args ? Py_NewRef(self->args) : PyTuple_New(0);
    }
    PyObject *r = args ? PyObject_Call(func, args, NULL) : NULL;
    Py_XDECREF(args);
    Py_DECREF(func);
    if (r == NULL)
        gloop_report_error(loop, (PyObject *)self);
    Py_XDECREF(r);
    /* libev stopped it (a one-shot timer) and the callback did not start it
     * again: stop it in Python too. */
    if (self->callback && !ev_is_active(w) && !ev_is_pending(w))
        gloop_stop_watcher(self);
    Py_DECREF(loop);
    Py_DECREF(self);
}

gwatcher *gloop_watcher_new(PyTypeObject *type, gloop *loop, int kind, PyObject *ref,
                             PyObject *priority)
{
    if (!loop_alive(loop))
        return NULL;
    int noref = ref ? !PyObject_IsTrue(ref) : 0;
    long prio = 0;
    if (priority && priority != Py_None) {
        prio = PyLong_AsLong(priority);
        if (prio == -1 && PyErr_Occurred())
            return NULL;
    }
    gwatcher *self = PyObject_GC_New(gwatcher, type);
    if (self == NULL)
        return NULL;
    self->loop = (gloop *)Py_NewRef(loop);
    self->callback = self->args = self->path = NULL;
    self->kind = (unsigned char)kind;
    self->flags = noref ? F_NOREF : 0;
    self->pass_events = 0;
    memset(&self->ev, 0, sizeof self->ev);
    ev_init(&self->ev.w, on_watcher);
    self->ev.w.data = self;
    if (prio)
        ev_set_priority(&self->ev.w, prio);
    PyObject_GC_Track(self);
    return self;
}

int gloop_watcher_traverse(gwatcher *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    return 0;
}

int gloop_watcher_clear(gwatcher *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    return 0;
}

void gloop_watcher_dealloc(gwatcher *self)
{
    PyObject_GC_UnTrack(self);
    /* Never active here: an active watcher holds a reference to itself. */
    if (self->loop && self->loop->ptr && ev_is_active(&self->ev.w)) {
        if (self->flags & F_UNREFED)
            ev_ref(self->loop->ptr);
        ev_stop_kind(self);
    }
    gloop_watcher_clear(self);
    Py_CLEAR(self->path);
    Py_CLEAR(self->loop);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* start(callback, *args): kwargs are the kind's options, parsed by callers. */
int gloop_set_callback_args(gwatcher *self, PyObject *args)
{
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "start() needs a callback");
        return -1;
    }
    PyObject *cb = PyTuple_GET_ITEM(args, 0);
    if (cb == Py_None || !PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError, "callback must be callable, not %R", cb);
        return -1;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (rest == NULL)
        return -1;
    Py_XSETREF(self->callback, Py_NewRef(cb));
    Py_XSETREF(self->args, rest);
    return 0;
}

int gloop_kw_true(PyObject *kwargs, const char *name, int dflt)
{
    PyObject *v = kwargs ? PyDict_GetItemString(kwargs, name) : NULL;
    if (v == NULL || v == Py_None)
        return dflt;
    return PyObject_IsTrue(v);
}

static PyObject *watcher_start(gwatcher *self, PyObject *args, PyObject *kwargs)
{
    if (!loop_alive(self->loop) || gloop_set_callback_args(self, args) < 0)
        return NULL;
    if (self->kind == K_IO)
        self->pass_events = gloop_kw_true(kwargs, "pass_events", 0) > 0;
    if (self->kind == K_TIMER && gloop_kw_true(kwargs, "update", self->loop->may_update) > 0)
        ev_now_update(self->loop->ptr);
    ev_start_kind(self);
    unref_if_needed(self);
    hold(self);
    Py_RETURN_NONE;
}

static PyObject *watcher_stop(gwatcher *self, PyObject *unused)
{
    gloop_stop_watcher(self);
    Py_RETURN_NONE;
}

static PyObject *watcher_enter(gwatcher *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *watcher_exit(gwatcher *self, PyObject *args)
{
    gloop_stop_watcher(self);
    Py_RETURN_NONE;
}

static PyObject *watcher_feed(gwatcher *self, PyObject *args)
{
    if (!loop_alive(self->loop))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < 2) {
        PyErr_SetString(PyExc_TypeError, "feed(revents, callback, *args)");
        return NULL;
    }
    int revents = PyLong_AsLong(PyTuple_GET_ITEM(args, 0));
    if (revents == -1 && PyErr_Occurred())
        return NULL;
    PyObject *rest = PyTuple_GetSlice(args, 1, n);
    int rc = rest ? gloop_set_callback_args(self, rest) : -1;
    Py_XDECREF(rest);
    if (rc < 0)
        return NULL;
    unref_if_needed(self);
    ev_feed_event(self->loop->ptr, &self->ev.w, revents);
    hold(self);
    Py_RETURN_NONE;
}

static PyObject *watcher_get_ref(gwatcher *self, void *unused)
{
    return PyBool_FromLong(!(self->flags & F_NOREF));
}

static int watcher_set_ref(gwatcher *self, PyObject *value, void *unused)
{
    int ref = value ? PyObject_IsTrue(value) : 1;
    if (ref < 0)
        return -1;
    if (ref) {
        if (!(self->flags & F_NOREF))
            return 0;
        if ((self->flags & F_UNREFED) && self->loop->ptr)
            ev_ref(self->loop->ptr);
        self->flags &= ~(F_NOREF | F_UNREFED);
    } else {
        if (self->flags & F_NOREF)
            return 0;
        self->flags |= F_NOREF;
        if (ev_is_active(&self->ev.w) && self->loop->ptr) {
            ev_unref(self->loop->ptr);
            self->flags |= F_UNREFED;
        }
    }
    return 0;
}

static PyObject *watcher_get_priority(gwatcher *self, void *unused)
{
    return PyLong_FromLong(ev_priority(&self->ev.w));
}

static int watcher_set_priority(gwatcher *self, PyObject *value, void *unused)
{
    if (ev_is_active(&self->ev.w)) {
        PyErr_SetString(PyExc_AttributeError, "Cannot set priority of an active watcher");
        return -1;
    }
    long p = value ? PyLong_AsLong(value) : 0;
    if (p == -1 && PyErr_Occurred())
        return -1;
    ev_set_priority(&self->ev.w, p);
    return 0;
}

static PyObject *watcher_get_active(gwatcher *self, void *unused)
{
    return PyBool_FromLong(ev_is_active(&self->ev.w));
}

static PyObject *watcher_get_pending(gwatcher *self, void *unused)
{
    if (self->kind == K_ASYNC)
        return PyBool_FromLong(ev_async_pending(&self->ev.async));
    return PyBool_FromLong(ev_is_pending(&self->ev.w));
}

static PyObject *watcher_get_callback(gwatcher *self, void *unused)
{
    return Py_NewRef(self->callback ? self->callback : Py_None);
}

static int watcher_set_callback(gwatcher *self, PyObject *value, void *unused)
{
    if (value && value != Py_None && !PyCallable_Check(value)) {
        PyErr_Format(PyExc_TypeError, "Expected callable, not %R", value);
        return -1;
    }
    Py_XSETREF(self->callback, value && value != Py_None ? Py_NewRef(value) : NULL);
    return 0;
}

static PyObject *watcher_get_args(gwatcher *self, void *unused)
{
    return Py_NewRef(self->args ? self->args : Py_None);
}

static int watcher_set_args(gwatcher *self, PyObject *value, void *unused)
{
    if (value && value != Py_None && !PyTuple_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "args must be a tuple or None");
        return -1;
    }
    Py_XSETREF(self->args, value && value != Py_None ? Py_NewRef(value) : NULL);
    return 0;
}

static PyObject *watcher_get_loop(gwatcher *self, void *unused)
{
    return Py_NewRef(self->loop);
}

static PyObject *watcher_repr(gwatcher *self)
{
    return PyUnicode_FromFormat("<%s at %p%s%s>", Py_TYPE(self)->tp_name, self,
                                ev_is_active(&self->ev.w) ? " active" : "",
                                ev_is_pending(&self->ev.w) ? " pending" : "");
}

static PyMethodDef watcher_methods[] = {
    {"start", (PyCFunction)(void (*)(void))watcher_start, METH_VARARGS | METH_KEYWORDS,
     "start(callback, *args)"},
    {"stop", (PyCFunction)watcher_stop, METH_NOARGS, "stop watching"},
    {"close", (PyCFunction)watcher_stop, METH_NOARGS, "stop; the watcher is done"},
    {"feed", (PyCFunction)watcher_feed, METH_VARARGS, "feed(revents, callback, *args)"},
    {"__enter__", (PyCFunction)watcher_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)watcher_exit, METH_VARARGS, NULL},
    {NULL}
};

static PyGetSetDef watcher_getset[] = {
    {"ref", (getter)watcher_get_ref, (setter)watcher_set_ref, NULL, NULL},
    {"priority", (getter)watcher_get_priority, (setter)watcher_set_priority, NULL, NULL},
    {"active", (getter)watcher_get_active, NULL, NULL, NULL},
    {"pending", (getter)watcher_get_pending, NULL, NULL, NULL},
    {"callback", (getter)watcher_get_callback, (setter)watcher_set_callback, NULL, NULL},
    {"args", (getter)watcher_get_args, (setter)watcher_set_args, NULL, NULL},
    {"loop", (getter)watcher_get_loop, NULL, NULL, NULL},
    {NULL}
};

/* ---- the base type ---------------------------------------------------------- */

PyTypeObject gloop_watcher_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_srv_gevent.watcher",
    .tp_basicsize = sizeof(gwatcher),
    .tp_flags = GC_FLAGS | Py_TPFLAGS_BASETYPE,
    .tp_dealloc = (destructor)gloop_watcher_dealloc,
    .tp_traverse = (traverseproc)gloop_watcher_traverse,
    .tp_clear = (inquiry)gloop_watcher_clear,
    .tp_repr = (reprfunc)watcher_repr,
    .tp_methods = watcher_methods,
    .tp_getset = watcher_getset,
};
