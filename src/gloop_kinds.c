/*
 * gloop_kinds.c - the ten kinds of gevent watchers (see gloop_private.h).
 *
 * For each kind: the loop's method that makes one (loop.io(fd, events),
 * loop.timer(after, repeat), ...: it checks the arguments gevent's own
 * loops check and sets the libev watcher up), the attributes and methods
 * only that kind has (io.fd, timer.again(), async_.send(), stat.attr ...),
 * and its type, a subtype of _srv_gevent.watcher.  child watchers exist on
 * the default loop only, which keeps libev's SIGCHLD watcher.
 */
#include "gloop_private.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

/* ---- attributes and methods of each kind ------------------------------------ */

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
    if (!loop_alive(self->loop) || gloop_set_callback_args(self, args) < 0)
        return NULL;
    if (gloop_kw_true(kwargs, "update", self->loop->may_update) > 0)
        ev_now_update(self->loop->ptr);
    ev_timer_again(self->loop->ptr, &self->ev.timer);
    if (!ev_is_active(&self->ev.w)) {       /* repeat 0: again() stopped it */
        gloop_stop_watcher(self);
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

/* ---- the loop's methods that make them -------------------------------------- */

PyObject *gloop_new_io(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fd", "events", "ref", "priority", NULL};
    int fd, events;
    PyObject *ref = NULL, *prio = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ii|OO:io", kwlist, &fd, &events, &ref, &prio))
        return NULL;
    gwatcher *w = gloop_watcher_new(&gloop_io_type, self, K_IO, ref, prio);
    if (w && io_set_events(w, fd, events) < 0)
        Py_CLEAR(w);
    return (PyObject *)w;
}

PyObject *gloop_new_timer(gloop *self, PyObject *args, PyObject *kw)
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
    gwatcher *w = gloop_watcher_new(&gloop_timer_type, self, K_TIMER, ref, prio);
    if (w)
        ev_timer_set(&w->ev.timer, after, repeat);
    return (PyObject *)w;
}

PyObject *gloop_new_signal(gloop *self, PyObject *args, PyObject *kw)
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
    gwatcher *w = gloop_watcher_new(&gloop_signal_type, self, K_SIGNAL, ref, prio);
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
    return (PyObject *)gloop_watcher_new(type, self, kind, ref, prio);
}

PyObject *gloop_new_idle(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &gloop_idle_type, K_IDLE);
}

PyObject *gloop_new_prepare(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &gloop_prepare_type, K_PREPARE);
}

PyObject *gloop_new_check(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &gloop_check_type, K_CHECK);
}

PyObject *gloop_new_fork(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &gloop_fork_type, K_FORK);
}

PyObject *gloop_new_async(gloop *self, PyObject *args, PyObject *kw)
{
    return simple_watcher(self, args, kw, &gloop_async_type, K_ASYNC);
}

PyObject *gloop_new_child(gloop *self, PyObject *args, PyObject *kw)
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
    gwatcher *w = gloop_watcher_new(&gloop_child_type, self, K_CHILD, ref, NULL);
    if (w)
        ev_child_set(&w->ev.child, pid, trace);
    return (PyObject *)w;
}

PyObject *gloop_new_stat(gloop *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "interval", "ref", "priority", NULL};
    PyObject *path, *ref = NULL, *prio = NULL;
    double interval = 0.;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|dOO:stat", kwlist, PyUnicode_FSConverter,
                                     &path, &interval, &ref, &prio))
        return NULL;
    gwatcher *w = gloop_watcher_new(&gloop_stat_type, self, K_STAT, ref, prio);
    if (w == NULL) {
        Py_DECREF(path);
        return NULL;
    }
    w->path = path;
    ev_stat_set(&w->ev.stat, PyBytes_AS_STRING(path), interval);
    return (PyObject *)w;
}

/* ---- their types -------------------------------------------------------------- */

#define WATCHER_KIND(var, name, methods, getset)          \
    PyTypeObject var = {                                  \
        PyVarObject_HEAD_INIT(NULL, 0)                    \
        .tp_name = "_srv_gevent." name,                   \
        .tp_basicsize = sizeof(gwatcher),                 \
        .tp_flags = GC_FLAGS,                             \
        .tp_base = &gloop_watcher_type,                         \
        .tp_dealloc = (destructor)gloop_watcher_dealloc,        \
        .tp_traverse = (traverseproc)gloop_watcher_traverse,    \
        .tp_clear = (inquiry)gloop_watcher_clear,               \
        .tp_methods = methods,                            \
        .tp_getset = getset,                              \
    };

WATCHER_KIND(gloop_io_type, "io", NULL, io_getset)
WATCHER_KIND(gloop_timer_type, "timer", timer_methods, timer_getset)
WATCHER_KIND(gloop_signal_type, "signal", NULL, signal_getset)
WATCHER_KIND(gloop_idle_type, "idle", NULL, NULL)
WATCHER_KIND(gloop_prepare_type, "prepare", NULL, NULL)
WATCHER_KIND(gloop_check_type, "check", NULL, NULL)
WATCHER_KIND(gloop_fork_type, "fork", NULL, NULL)
WATCHER_KIND(gloop_async_type, "async_", async_methods, NULL)
WATCHER_KIND(gloop_child_type, "child", NULL, child_getset)
WATCHER_KIND(gloop_stat_type, "stat", NULL, stat_getset)
