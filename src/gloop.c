/*
 * gloop.c - gevent's loop class (ILoop) and watchers on srv's libev.
 *
 * This follows the semantics of gevent's own libev loops (corecext and
 * corecffi) so that gevent's hub and modules cannot tell the difference:
 *
 * - A started watcher holds a reference to itself until it is stopped, so
 *   a watcher that nobody else references still fires.  When its callback
 *   returns and libev has stopped it (a one-shot timer), it is stopped at
 *   the Python level too: callback and args are dropped.
 * - ref=False watchers ev_unref() the loop while they are active (bit 4:
 *   not referenced; bit 2: libev has been told), as in gevent.
 * - run_callback() queues a callback object and ev_ref()s the loop; a
 *   prepare watcher runs the queue before each poll (bounded by the switch
 *   interval), and a zero timer keeps the poll from blocking while some are
 *   left.  run_callback_threadsafe() also wakes the loop (ev_async).
 * - An exception in a callback goes to loop.handle_error(context, type,
 *   value, tb), which calls the hub's handle_error (error_handler).
 * - ev_run() runs with the GIL held and releases it only while libev polls
 *   (ev_set_loop_release_cb), so libev callbacks, srv's and gevent's, run
 *   with the GIL held and call Python directly.
 *
 * The default loop is ev_default_loop, the one srv's listeners and
 * connections use; destroy() never destroys it (srv owns it).  Loops made
 * with default=False (gevent's hubs in other threads) are ev_loop_new.
 */
#include "srv/gloop.h"

#include <structmember.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#define CALLBACK_CHECK_COUNT 50
#define F_HELD 1          /* we hold a reference to ourselves (started) */
#define F_UNREFED 2       /* ev_unref() done for this watcher */
#define F_NOREF 4         /* ref=False */

enum kind { K_IO, K_TIMER, K_SIGNAL, K_IDLE, K_PREPARE, K_CHECK, K_FORK, K_ASYNC,
            K_CHILD, K_STAT };

typedef struct gcallback {
    PyObject_HEAD
    PyObject *callback;
    PyObject *args;
    struct gcallback *next;     /* in the loop's queue (which owns a ref) */
} gcallback;

typedef struct gloop {
    PyObject_HEAD
    struct ev_loop *ptr;        /* NULL once destroyed */
    int is_default;
    int may_update;             /* starting_timer_may_update_loop_time */
    double switch_interval;
    PyObject *error_handler;
    PyObject *dict;
    gcallback *head, *tail;
    Py_ssize_t ncallbacks;
    ev_prepare prepare;
    ev_check check;
    ev_timer timer0;
    ev_async wake;
} gloop;

typedef struct gwatcher {
    PyObject_HEAD
    gloop *loop;                /* owned */
    PyObject *callback;
    PyObject *args;
    PyObject *path;             /* stat: the encoded path (bytes) */
    unsigned char kind, flags, pass_events;
    union {
        ev_watcher w;
        ev_io io;
        ev_timer timer;
        ev_signal signal;
        ev_idle idle;
        ev_prepare prepare;
        ev_check check;
        ev_fork fork;
        ev_async async;
        ev_child child;
        ev_stat stat;
    } ev;
} gwatcher;

static PyTypeObject loop_type, callback_type, watcher_type;
static PyTypeObject io_type, timer_type, signal_type, idle_type, prepare_type,
    check_type, fork_type, async_type, child_type, stat_type;
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

static void clear_callbacks(gloop *self)
{
    while (self->head) {
        gcallback *cb = self->head;
        self->head = cb->next;
        cb->next = NULL;
        if (self->ptr)
            ev_unref(self->ptr);
        Py_DECREF(cb);
    }
    self->tail = NULL;
    self->ncallbacks = 0;
}

/* loop.handle_error(context, type, value, tb): the hub's handler, or print
 * and break out of the loop.  Returns a new reference (None) or NULL. */
static PyObject *handle_error_impl(gloop *self, PyObject *context, PyObject *type,
                                   PyObject *value, PyObject *tb)
{
    if (is_hub_destroyed(type)) {
        clear_callbacks(self);
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
static void report_error(gloop *self, PyObject *context)
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

/* ---- callbacks (run_callback) ------------------------------------------ */

static int callback_traverse(gcallback *self, visitproc visit, void *arg)
{
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    return 0;
}

static int callback_clear(gcallback *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    return 0;
}

static void callback_dealloc(gcallback *self)
{
    PyObject_GC_UnTrack(self);
    callback_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *callback_stop(gcallback *self, PyObject *unused)
{
    callback_clear(self);
    Py_RETURN_NONE;
}

static PyObject *callback_pending(gcallback *self, void *unused)
{
    return PyBool_FromLong(self->callback != NULL);
}

static int callback_bool(gcallback *self)
{
    return self->args != NULL;
}

static PyMethodDef callback_methods[] = {
    {"stop", (PyCFunction)callback_stop, METH_NOARGS, "do not run (if not run yet)"},
    {"close", (PyCFunction)callback_stop, METH_NOARGS, "alias of stop"},
    {NULL}
};

static PyMemberDef callback_members[] = {
    {"callback", T_OBJECT, offsetof(gcallback, callback), 0, NULL},
    {"args", T_OBJECT, offsetof(gcallback, args), 0, NULL},
    {NULL}
};

static PyGetSetDef callback_getset[] = {
    {"pending", (getter)callback_pending, NULL, "not run yet", NULL},
    {NULL}
};

static PyNumberMethods callback_as_number = {.nb_bool = (inquiry)callback_bool};

static gcallback *queue_callback(gloop *self, PyObject *func, PyObject *args)
{
    gcallback *cb = PyObject_GC_New(gcallback, &callback_type);
    if (cb == NULL)
        return NULL;
    cb->callback = Py_NewRef(func);
    cb->args = Py_NewRef(args);
    cb->next = NULL;
    PyObject_GC_Track(cb);
    Py_INCREF(cb);                       /* the queue's reference */
    if (self->tail)
        self->tail->next = cb;
    else
        self->head = cb;
    self->tail = cb;
    self->ncallbacks++;
    ev_ref(self->ptr);                   /* the loop must turn for it */
    return cb;
}

static void run_callbacks(gloop *self)
{
    if (self->head == NULL)
        return;
    struct ev_loop *ptr = self->ptr;
    int count = CALLBACK_CHECK_COUNT, out_of_time = 0;
    double expiration = ev_now(ptr) + self->switch_interval;
    self->may_update = 1;
    ev_timer_stop(ptr, &self->timer0);
    Py_INCREF(self);
    while (self->head && self->ptr) {
        gcallback *cb = self->head;
        self->head = cb->next;
        if (self->head == NULL)
            self->tail = NULL;
        cb->next = NULL;
        self->ncallbacks--;
        ev_unref(ptr);
        PyObject *func = cb->callback, *args = cb->args;
        cb->callback = NULL;             /* not pending any more */
        if (func && args) {
            PyObject *r = PyObject_Call(func, args, NULL);
            if (r == NULL)
                report_error(self, (PyObject *)cb);
            Py_XDECREF(r);
        }
        Py_XDECREF(func);
        Py_CLEAR(cb->args);
        Py_DECREF(cb);
        if (--count == 0 && self->head) {
            count = CALLBACK_CHECK_COUNT;
            ev_now_update(ptr);
            if (ev_now(ptr) >= expiration) {
                out_of_time = 1;
                break;
            }
        }
    }
    if (self->ptr) {
        if (!out_of_time)
            ev_now_update(ptr);
        if (self->head)
            ev_timer_start(ptr, &self->timer0);
    }
    self->may_update = 0;
    Py_DECREF(self);
}

static void on_prepare(struct ev_loop *l, ev_prepare *w, int revents)
{
    run_callbacks(w->data);
}

static void on_check(struct ev_loop *l, ev_check *w, int revents)
{
    gloop *self = w->data;
    /* Python-level signal handlers (signal.signal) run here, in the main
     * thread, as with gevent's own loops. */
    if (self->is_default && PyErr_CheckSignals() < 0)
        report_error(self, Py_None);
}

static void on_noop(struct ev_loop *l, ev_watcher *w, int revents) {}

/* ---- watchers ----------------------------------------------------------- */

static int loop_alive(gloop *loop)
{
    if (loop->ptr == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return 0;
    }
    return 1;
}

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

/* After ev_*_start: a ref=False watcher stops counting for the loop. */
static void unref_if_needed(gwatcher *self)
{
    if ((self->flags & (F_NOREF | F_UNREFED)) == F_NOREF) {
        ev_unref(self->loop->ptr);
        self->flags |= F_UNREFED;
    }
}

static void hold(gwatcher *self)
{
    if (!(self->flags & F_HELD)) {
        Py_INCREF(self);
        self->flags |= F_HELD;
    }
}

/* Stops the watcher in libev and in Python: drops callback, args and the
 * reference to itself (last: it may free self). */
static void watcher_stop_impl(gwatcher *self)
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
        report_error(loop, (PyObject *)self);
    Py_XDECREF(r);
    /* libev stopped it (a one-shot timer) and the callback did not start it
     * again: stop it in Python too. */
    if (self->callback && !ev_is_active(w) && !ev_is_pending(w))
        watcher_stop_impl(self);
    Py_DECREF(loop);
    Py_DECREF(self);
}

static gwatcher *watcher_new(PyTypeObject *type, gloop *loop, int kind, PyObject *ref,
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

static int watcher_traverse(gwatcher *self, visitproc visit, void *arg)
{
    Py_VISIT(self->loop);
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    return 0;
}

static int watcher_clear(gwatcher *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    return 0;
}

static void watcher_dealloc(gwatcher *self)
{
    PyObject_GC_UnTrack(self);
    /* Never active here: an active watcher holds a reference to itself. */
    if (self->loop && self->loop->ptr && ev_is_active(&self->ev.w)) {
        if (self->flags & F_UNREFED)
            ev_ref(self->loop->ptr);
        ev_stop_kind(self);
    }
    watcher_clear(self);
    Py_CLEAR(self->path);
    Py_CLEAR(self->loop);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* start(callback, *args): kwargs are the kind's options, parsed by callers. */
static int set_callback_args(gwatcher *self, PyObject *args)
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

static int kw_true(PyObject *kwargs, const char *name, int dflt)
{
    PyObject *v = kwargs ? PyDict_GetItemString(kwargs, name) : NULL;
    if (v == NULL || v == Py_None)
        return dflt;
    return PyObject_IsTrue(v);
}

static PyObject *watcher_start(gwatcher *self, PyObject *args, PyObject *kwargs)
{
    if (!loop_alive(self->loop) || set_callback_args(self, args) < 0)
        return NULL;
    if (self->kind == K_IO)
        self->pass_events = kw_true(kwargs, "pass_events", 0) > 0;
    if (self->kind == K_TIMER && kw_true(kwargs, "update", self->loop->may_update) > 0)
        ev_now_update(self->loop->ptr);
    ev_start_kind(self);
    unref_if_needed(self);
    hold(self);
    Py_RETURN_NONE;
}

static PyObject *watcher_stop(gwatcher *self, PyObject *unused)
{
    watcher_stop_impl(self);
    Py_RETURN_NONE;
}

static PyObject *watcher_enter(gwatcher *self, PyObject *unused)
{
    return Py_NewRef(self);
}

static PyObject *watcher_exit(gwatcher *self, PyObject *args)
{
    watcher_stop_impl(self);
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
    int rc = rest ? set_callback_args(self, rest) : -1;
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

/* io */

static PyObject *io_get_fd(gwatcher *self, void *unused)
{
    return PyLong_FromLong(self->ev.io.fd);
}

static int fd_valid(int fd)
{
    if (fd < 0) {
        PyErr_Format(PyExc_ValueError, "fd must be non-negative: %d", fd);
        return 0;
    }
    if (fcntl(fd, F_GETFD) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return 0;
    }
    return 1;
}

static int io_set_events(gwatcher *self, int fd, int events)
{
    if (events & ~(EV__IOFDSET | EV_READ | EV_WRITE)) {
        PyErr_Format(PyExc_ValueError, "illegal event mask: %d", events);
        return -1;
    }
    if (ev_is_active(&self->ev.w)) {
        PyErr_SetString(PyExc_AttributeError, "cannot change an active io watcher");
        return -1;
    }
    if (!fd_valid(fd))
        return -1;
    ev_io_set(&self->ev.io, fd, events);
    return 0;
}

static int io_set_fd(gwatcher *self, PyObject *value, void *unused)
{
    int fd = value ? PyObject_AsFileDescriptor(value) : -1;
    if (fd < 0 && PyErr_Occurred())
        return -1;
    return io_set_events(self, fd, self->ev.io.events & (EV_READ | EV_WRITE));
}

static PyObject *io_get_events(gwatcher *self, void *unused)
{
    return PyLong_FromLong(self->ev.io.events & (EV_READ | EV_WRITE));
}

static int io_set_events_attr(gwatcher *self, PyObject *value, void *unused)
{
    long ev = value ? PyLong_AsLong(value) : 0;
    if (ev == -1 && PyErr_Occurred())
        return -1;
    return io_set_events(self, self->ev.io.fd, (int)ev);
}

static PyObject *io_get_events_str(gwatcher *self, void *unused)
{
    int e = self->ev.io.events;
    return PyUnicode_FromString((e & EV_READ) && (e & EV_WRITE) ? "READ|WRITE"
                                : (e & EV_READ) ? "READ" : (e & EV_WRITE) ? "WRITE" : "0");
}

static PyGetSetDef io_getset[] = {
    {"fd", (getter)io_get_fd, (setter)io_set_fd, NULL, NULL},
    {"events", (getter)io_get_events, (setter)io_set_events_attr, NULL, NULL},
    {"events_str", (getter)io_get_events_str, NULL, NULL, NULL},
    {NULL}
};

/* timer */

static PyObject *timer_again(gwatcher *self, PyObject *args, PyObject *kwargs)
{
    if (!loop_alive(self->loop) || set_callback_args(self, args) < 0)
        return NULL;
    if (kw_true(kwargs, "update", self->loop->may_update) > 0)
        ev_now_update(self->loop->ptr);
    ev_timer_again(self->loop->ptr, &self->ev.timer);
    if (!ev_is_active(&self->ev.w)) {       /* repeat 0: again() stopped it */
        watcher_stop_impl(self);
        Py_RETURN_NONE;
    }
    unref_if_needed(self);
    hold(self);
    Py_RETURN_NONE;
}

static PyObject *timer_get_at(gwatcher *self, void *unused)
{
    return PyFloat_FromDouble(self->ev.timer.at);
}

static PyObject *timer_get_repeat(gwatcher *self, void *unused)
{
    return PyFloat_FromDouble(self->ev.timer.repeat);
}

static PyMethodDef timer_methods[] = {
    {"again", (PyCFunction)(void (*)(void))timer_again, METH_VARARGS | METH_KEYWORDS,
     "again(callback, *args): restart with the repeat interval"},
    {NULL}
};

static PyGetSetDef timer_getset[] = {
    {"at", (getter)timer_get_at, NULL, NULL, NULL},
    {"repeat", (getter)timer_get_repeat, NULL, NULL, NULL},
    {NULL}
};

/* signal */

static PyObject *signal_get_signum(gwatcher *self, void *unused)
{
    return PyLong_FromLong(self->ev.signal.signum);
}

static PyGetSetDef signal_getset[] = {
    {"signum", (getter)signal_get_signum, NULL, NULL, NULL},
    {NULL}
};

/* async */

static PyObject *async_send(gwatcher *self, PyObject *unused)
{
    if (!loop_alive(self->loop))
        return NULL;
    ev_async_send(self->loop->ptr, &self->ev.async);
    Py_RETURN_NONE;
}

static PyMethodDef async_methods[] = {
    {"send", (PyCFunction)async_send, METH_NOARGS, "wake the loop (any thread)"},
    {"send_ignoring_arg", (PyCFunction)async_send, METH_O, "send(), for rawlink"},
    {NULL}
};

/* child */

static PyObject *child_get(gwatcher *self, void *which)
{
    const char *w = which;
    return PyLong_FromLong(w[0] == 'p' ? self->ev.child.pid
                           : w[1] == 'p' ? self->ev.child.rpid : self->ev.child.rstatus);
}

static int child_set(gwatcher *self, PyObject *value, void *which)
{
    long v = value ? PyLong_AsLong(value) : 0;
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (((const char *)which)[1] == 'p')
        self->ev.child.rpid = (int)v;
    else
        self->ev.child.rstatus = (int)v;
    return 0;
}

static PyGetSetDef child_getset[] = {
    {"pid", (getter)child_get, NULL, NULL, "pid"},
    {"rpid", (getter)child_get, (setter)child_set, NULL, "rpid"},
    {"rstatus", (getter)child_get, (setter)child_set, NULL, "rstatus"},
    {NULL}
};

/* stat */

static PyObject *stat_result(const ev_statdata *st)
{
    if (st->st_nlink == 0)
        Py_RETURN_NONE;
    PyObject *os = PyImport_ImportModule("os");
    PyObject *cls = os ? PyObject_GetAttrString(os, "stat_result") : NULL;
    Py_XDECREF(os);
    if (cls == NULL)
        return NULL;
    PyObject *r = PyObject_CallFunction(cls, "((iKKKiiLddd))", (int)st->st_mode,
                                        (unsigned long long)st->st_ino,
                                        (unsigned long long)st->st_dev,
                                        (unsigned long long)st->st_nlink, (int)st->st_uid,
                                        (int)st->st_gid, (long long)st->st_size,
                                        (double)st->st_atime, (double)st->st_mtime,
                                        (double)st->st_ctime);
    Py_DECREF(cls);
    return r;
}

static PyObject *stat_get_attr(gwatcher *self, void *unused)
{
    return stat_result(&self->ev.stat.attr);
}

static PyObject *stat_get_prev(gwatcher *self, void *unused)
{
    return stat_result(&self->ev.stat.prev);
}

static PyObject *stat_get_path(gwatcher *self, void *unused)
{
    return PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(self->path));
}

static PyObject *stat_get_interval(gwatcher *self, void *unused)
{
    return PyFloat_FromDouble(self->ev.stat.interval);
}

static PyGetSetDef stat_getset[] = {
    {"attr", (getter)stat_get_attr, NULL, NULL, NULL},
    {"prev", (getter)stat_get_prev, NULL, NULL, NULL},
    {"path", (getter)stat_get_path, NULL, NULL, NULL},
    {"interval", (getter)stat_get_interval, NULL, NULL, NULL},
    {NULL}
};

/* ---- the loop ------------------------------------------------------------ */

static PyObject *loop_io(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fd", "events", "ref", "priority", NULL};
    int fd, events;
    PyObject *ref = NULL, *prio = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ii|OO:io", kwlist, &fd, &events, &ref, &prio))
        return NULL;
    gwatcher *w = watcher_new(&io_type, self, K_IO, ref, prio);
    if (w && io_set_events(w, fd, events) < 0)
        Py_CLEAR(w);
    return (PyObject *)w;
}

static PyObject *loop_timer(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"after", "repeat", "ref", "priority", NULL};
    double after = 0., repeat = 0.;
    PyObject *ref = NULL, *prio = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|ddOO:timer", kwlist, &after, &repeat, &ref,
                                     &prio))
        return NULL;
    if (repeat < 0.) {
        PyErr_Format(PyExc_ValueError, "repeat must be positive or zero: %R",
                     PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1) : Py_None);
        return NULL;
    }
    gwatcher *w = watcher_new(&timer_type, self, K_TIMER, ref, prio);
    if (w)
        ev_timer_set(&w->ev.timer, after, repeat);
    return (PyObject *)w;
}

static PyObject *loop_signal(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"signum", "ref", "priority", NULL};
    int signum;
    PyObject *ref = NULL, *prio = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|OO:signal", kwlist, &signum, &ref, &prio))
        return NULL;
    if (signum < 1 || signum >= NSIG) {
        PyErr_Format(PyExc_ValueError, "illegal signal number: %d", signum);
        return NULL;
    }
    gwatcher *w = watcher_new(&signal_type, self, K_SIGNAL, ref, prio);
    if (w)
        ev_signal_set(&w->ev.signal, signum);
    return (PyObject *)w;
}

static PyObject *simple_watcher(gloop *self, PyObject *args, PyObject *kw, PyTypeObject *type,
                                int kind)
{
    static char *kwlist[] = {"ref", "priority", NULL};
    PyObject *ref = NULL, *prio = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO", kwlist, &ref, &prio))
        return NULL;
    return (PyObject *)watcher_new(type, self, kind, ref, prio);
}

static PyObject *loop_idle(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &idle_type, K_IDLE);
}

static PyObject *loop_prepare(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &prepare_type, K_PREPARE);
}

static PyObject *loop_check(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &check_type, K_CHECK);
}

static PyObject *loop_fork(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &fork_type, K_FORK);
}

static PyObject *loop_async(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &async_type, K_ASYNC);
}

static PyObject *loop_child(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"pid", "trace", "ref", NULL};
    int pid, trace = 0;
    PyObject *ref = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|iO:child", kwlist, &pid, &trace, &ref))
        return NULL;
    if (!self->is_default) {
        PyErr_SetString(PyExc_TypeError, "child watchers are only available on the default loop");
        return NULL;
    }
    gwatcher *w = watcher_new(&child_type, self, K_CHILD, ref, NULL);
    if (w)
        ev_child_set(&w->ev.child, pid, trace);
    return (PyObject *)w;
}

static PyObject *loop_stat(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "interval", "ref", "priority", NULL};
    PyObject *path, *ref = NULL, *prio = NULL;
    double interval = 0.;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|dOO:stat", kwlist, PyUnicode_FSConverter,
                                     &path, &interval, &ref, &prio))
        return NULL;
    gwatcher *w = watcher_new(&stat_type, self, K_STAT, ref, prio);
    if (w == NULL) {
        Py_DECREF(path);
        return NULL;
    }
    w->path = path;
    ev_stat_set(&w->ev.stat, PyBytes_AS_STRING(path), interval);
    return (PyObject *)w;
}

static PyObject *loop_run_callback(gloop *self, PyObject *args)
{
    if (!loop_alive(self))
        return NULL;
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "run_callback(func, *args)");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (rest == NULL)
        return NULL;
    gcallback *cb = queue_callback(self, PyTuple_GET_ITEM(args, 0), rest);
    Py_DECREF(rest);
    return (PyObject *)cb;
}

static PyObject *loop_run_callback_threadsafe(gloop *self, PyObject *args)
{
    PyObject *cb = loop_run_callback(self, args);
    if (cb)
        ev_async_send(self->ptr, &self->wake);
    return cb;
}

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
        clear_callbacks(self);
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
    KW("io", loop_io), KW("timer", loop_timer), KW("signal", loop_signal),
    KW("idle", loop_idle), KW("prepare", loop_prepare), KW("check", loop_check),
    KW("fork", loop_fork), KW("async_", loop_async), KW("child", loop_child),
    KW("stat", loop_stat), KW("run", loop_run),
#undef KW
    {"run_callback", (PyCFunction)loop_run_callback, METH_VARARGS, NULL},
    {"run_callback_threadsafe", (PyCFunction)loop_run_callback_threadsafe, METH_VARARGS, NULL},
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
    ev_prepare_init(&self->prepare, on_prepare);
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
    clear_callbacks(self);
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

/* ---- types and module ------------------------------------------------------- */

#define GC_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC)

static PyTypeObject callback_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_srv_gevent.callback",
    .tp_basicsize = sizeof(gcallback),
    .tp_flags = GC_FLAGS,
    .tp_dealloc = (destructor)callback_dealloc,
    .tp_traverse = (traverseproc)callback_traverse,
    .tp_clear = (inquiry)callback_clear,
    .tp_methods = callback_methods,
    .tp_members = callback_members,
    .tp_getset = callback_getset,
    .tp_as_number = &callback_as_number,
};

static PyTypeObject watcher_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_srv_gevent.watcher",
    .tp_basicsize = sizeof(gwatcher),
    .tp_flags = GC_FLAGS | Py_TPFLAGS_BASETYPE,
    .tp_dealloc = (destructor)watcher_dealloc,
    .tp_traverse = (traverseproc)watcher_traverse,
    .tp_clear = (inquiry)watcher_clear,
    .tp_repr = (reprfunc)watcher_repr,
    .tp_methods = watcher_methods,
    .tp_getset = watcher_getset,
};

#define WATCHER_KIND(var, name, methods, getset)          \
    static PyTypeObject var = {                           \
        PyVarObject_HEAD_INIT(NULL, 0)                    \
        .tp_name = "_srv_gevent." name,                   \
        .tp_basicsize = sizeof(gwatcher),                 \
        .tp_flags = GC_FLAGS,                             \
        .tp_base = &watcher_type,                         \
        .tp_dealloc = (destructor)watcher_dealloc,        \
        .tp_traverse = (traverseproc)watcher_traverse,    \
        .tp_clear = (inquiry)watcher_clear,               \
        .tp_methods = methods,                            \
        .tp_getset = getset,                              \
    };

WATCHER_KIND(io_type, "io", NULL, io_getset)
WATCHER_KIND(timer_type, "timer", timer_methods, timer_getset)
WATCHER_KIND(signal_type, "signal", NULL, signal_getset)
WATCHER_KIND(idle_type, "idle", NULL, NULL)
WATCHER_KIND(prepare_type, "prepare", NULL, NULL)
WATCHER_KIND(check_type, "check", NULL, NULL)
WATCHER_KIND(fork_type, "fork", NULL, NULL)
WATCHER_KIND(async_type, "async_", async_methods, NULL)
WATCHER_KIND(child_type, "child", NULL, child_getset)
WATCHER_KIND(stat_type, "stat", NULL, stat_getset)

static PyTypeObject loop_type = {
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
    PyTypeObject *types[] = {&loop_type, &callback_type, &watcher_type, &io_type, &timer_type,
                             &signal_type, &idle_type, &prepare_type, &check_type, &fork_type,
                             &async_type, &child_type, &stat_type};
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
    if (PyDict_SetItemString(loop_type.tp_dict, "async",
                             PyDict_GetItemString(loop_type.tp_dict, "async_")) < 0
        || PyModule_AddObject(m, "__all__", Py_BuildValue("[s]", "loop")) < 0
        || PyModule_AddIntConstant(m, "READ", EV_READ) < 0
        || PyModule_AddIntConstant(m, "WRITE", EV_WRITE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyType_Modified(&loop_type);
    return m;
}

int srv_gloop_register(void)
{
    return PyImport_AppendInittab("_srv_gevent", init_gloop_module);
}

PyObject *srv_gloop_class(void)
{
    PyObject *m = PyImport_ImportModule("_srv_gevent");
    PyObject *cls = m ? PyObject_GetAttrString(m, "loop") : NULL;
    Py_XDECREF(m);
    return cls;
}
