/*
 * aio_core.c - the hot half of srv's asyncio loop, in C: handles, the ready
 * ring, timers as libev watchers, and _run_once (see aio_private.h).
 *
 * asyncio's BaseEventLoop keeps the callbacks that are ready in a deque and
 * its timers in a heap, both in Python, and walks them in Python at every
 * turn.  On srv's asyncio loop these methods are C instead, installed on
 * srv.EventLoop as method descriptors (aio_core_install):
 *
 *   call_soon, _call_soon   make a Handle (callback, args, context) and push
 *                           it on the selector's ready ring;
 *   call_at, call_later     make a TimerHandle whose ev_timer runs on srv's
 *                           loop: when it fires the handle joins the ring;
 *                           cancel() stops the watcher, so cancelled timers
 *                           never linger in a heap;
 *   _add_callback           pushes asyncio's own reader/writer handles;
 *   _run_once               selects (at once if something is ready, else it
 *                           waits in the hub), lets asyncio's Python
 *                           _process_events turn io events into handles, then
 *                           runs what was ready, each in its context;
 *   _write_to_self, time    call_soon_threadsafe wakes srv's loop by an
 *                           ev_async (no self-pipe); time() is the
 *                           monotonic clock, as time.monotonic();
 *   create_task, create_future  asyncio.Task and asyncio.Future, without
 *                           a Python frame.
 *
 * Whatever is pushed from outside the asyncio greenlet (a request's
 * create_task, a timer, an io event) kicks that greenlet (aio_kick), which
 * so runs once per turn of srv's loop for everything that became ready in
 * that turn.  Called on any instance but srv's own loop (a user may make a
 * srv.EventLoop() of their own), each method hands over to
 * SelectorEventLoop's.
 *
 * References: the ring owns one reference to each handle in it; an armed
 * timer owns one to its handle (dropped when it fires, is cancelled, or the
 * loop closes), so a fire-and-forget call_later needs no other owner.
 */
#include "aio_private.h"
#include "srv/clock.h"
#include "srv/log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- handles -------------------------------------------------------------- */

typedef struct aio_handle {
    PyObject_HEAD
    PyObject *callback;         /* owned; NULL once cancelled */
    PyObject *args;             /* owned tuple; NULL once cancelled */
    PyObject *ctx;              /* owned: the contextvars.Context it runs in */
    PyObject *weakrefs;
    ev_timer timer;             /* TimerHandle: fires on srv's loop */
    double when;                /* TimerHandle: on time()'s clock */
    selector *sel;              /* borrowed, while armed: whose list it is in */
    struct aio_handle *prev, *next;   /* armed timers, through the selector */
    unsigned cancelled:1;
    unsigned armed:1;           /* the timer runs and owns a reference */
} aio_handle;

#define HANDLE_OF_TIMER(t) ((aio_handle *)((char *)(t) - offsetof(aio_handle, timer)))

static PyTypeObject HandleType, TimerHandleType;

static int is_handle(PyObject *o)
{
    return Py_IS_TYPE(o, &HandleType) || Py_IS_TYPE(o, &TimerHandleType);
}

static PyObject *glue;                  /* borrowed: aio.c's glue globals */
static PyObject *base_loop;             /* owned: asyncio.SelectorEventLoop */
static PyObject *s_stopping, *s_process_events, *s_cancelled, *s_run,
                *s_callback_failed, *s_run_debug, *s_handle_repr, *s_debug_check;

static PyObject *glue_fn(PyObject *name)
{
    PyObject *fn = PyDict_GetItemWithError(glue, name);   /* borrowed */
    if (fn == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_RuntimeError, "srv's asyncio glue has no %U", name);
    return fn;
}

static aio_handle *handle_new(PyTypeObject *type, PyObject *callback, PyObject *args,
                              PyObject *context)
{
    aio_handle *h = PyObject_GC_New(aio_handle, type);
    if (h == NULL)
        return NULL;
    h->callback = Py_NewRef(callback);
    h->args = Py_NewRef(args);
    h->ctx = context && context != Py_None ? Py_NewRef(context) : PyContext_CopyCurrent();
    h->weakrefs = NULL;
    h->when = 0;
    h->sel = NULL;
    h->prev = h->next = NULL;
    h->cancelled = 0;
    h->armed = 0;
    if (h->ctx == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    PyObject_GC_Track(h);
    return h;
}

static void timer_disarm(aio_handle *h);

/* The pending exception, normalised, with its traceback (a new reference). */
static PyObject *take_exception(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value ? value : Py_NewRef(Py_None);
}

/* Runs the handle's callback in its context.  0, or -1 for SystemExit and
 * KeyboardInterrupt, which end run_forever() as in asyncio; any other
 * exception goes to the loop's exception handler. */
static int handle_run(aio_handle *h, PyObject *loop)
{
    if (h->cancelled)
        return 0;
    /* cancel() during the call drops the handle's own references. */
    PyObject *cb = Py_NewRef(h->callback), *args = Py_NewRef(h->args);
    PyObject *r = NULL;
    if (PyContext_Enter(h->ctx) == 0) {
        r = PyObject_Vectorcall(cb, &PyTuple_GET_ITEM(args, 0),
                                (size_t)PyTuple_GET_SIZE(args), NULL);
        if (PyContext_Exit(h->ctx) < 0)
            Py_CLEAR(r);
    }
    int rc = 0;
    if (r) {
        Py_DECREF(r);
    } else if (PyErr_ExceptionMatches(PyExc_SystemExit)
               || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        rc = -1;
    } else {
        PyObject *exc = take_exception();
        PyObject *fn = glue_fn(s_callback_failed);
        PyObject *argv[5] = {loop, (PyObject *)h, cb, args, exc};
        PyObject *res = fn ? PyObject_Vectorcall(fn, argv, 5, NULL) : NULL;
        if (res == NULL)
            srv_log_pyerr("asyncio: the exception handler failed");
        Py_XDECREF(res);
        Py_DECREF(exc);
    }
    Py_DECREF(cb);
    Py_DECREF(args);
    return rc;
}

static PyObject *handle_cancel(aio_handle *h, PyObject *unused)
{
    if (!h->cancelled) {
        h->cancelled = 1;
        timer_disarm(h);    /* the caller's reference keeps h alive */
        Py_CLEAR(h->callback);
        Py_CLEAR(h->args);
    }
    Py_RETURN_NONE;
}

static PyObject *handle_cancelled(aio_handle *h, PyObject *unused)
{
    return PyBool_FromLong(h->cancelled);
}

static PyObject *handle_get_context(aio_handle *h, PyObject *unused)
{
    return Py_NewRef(h->ctx);
}

static PyObject *handle_when(aio_handle *h, PyObject *unused)
{
    return PyFloat_FromDouble(h->when);
}

/* Handle._run(): for asyncio code that runs a handle itself. */
static PyObject *handle_run_method(aio_handle *h, PyObject *unused)
{
    if (handle_run(h, aio_loop ? aio_loop : Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *handle_repr(aio_handle *h)
{
    PyObject *fn = glue_fn(s_handle_repr);
    return fn ? PyObject_CallOneArg(fn, (PyObject *)h) : NULL;
}

static PyObject *get_callback(aio_handle *h, void *c) { return Py_NewRef(h->callback ? h->callback : Py_None); }
static PyObject *get_args(aio_handle *h, void *c) { return Py_NewRef(h->args ? h->args : Py_None); }
static PyObject *get_cancelled(aio_handle *h, void *c) { return PyBool_FromLong(h->cancelled); }
static PyObject *get_loop(aio_handle *h, void *c) { return Py_NewRef(aio_loop ? aio_loop : Py_None); }
static PyObject *get_none(aio_handle *h, void *c) { Py_RETURN_NONE; }
static PyObject *get_when(aio_handle *h, void *c) { return PyFloat_FromDouble(h->when); }
static PyObject *get_scheduled(aio_handle *h, void *c) { return PyBool_FromLong(h->armed); }

static PyGetSetDef handle_getset[] = {
    {"_callback", (getter)get_callback, NULL, NULL, NULL},
    {"_args", (getter)get_args, NULL, NULL, NULL},
    {"_cancelled", (getter)get_cancelled, NULL, NULL, NULL},
    {"_context", (getter)handle_get_context, NULL, NULL, NULL},
    {"_loop", (getter)get_loop, NULL, NULL, NULL},
    {"_source_traceback", (getter)get_none, NULL, NULL, NULL},
    {"_repr", (getter)get_none, NULL, NULL, NULL},
    {NULL},
};

static PyGetSetDef timer_getset[] = {
    {"_when", (getter)get_when, NULL, NULL, NULL},
    {"_scheduled", (getter)get_scheduled, NULL, NULL, NULL},
    {NULL},
};

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS, NULL},
    {"get_context", (PyCFunction)handle_get_context, METH_NOARGS, NULL},
    {"_run", (PyCFunction)handle_run_method, METH_NOARGS, NULL},
    {NULL},
};

static PyMethodDef timer_methods[] = {
    {"when", (PyCFunction)handle_when, METH_NOARGS, NULL},
    {NULL},
};

static int handle_traverse(aio_handle *h, visitproc visit, void *arg)
{
    Py_VISIT(h->callback);
    Py_VISIT(h->args);
    Py_VISIT(h->ctx);
    return 0;
}

static int handle_clear(aio_handle *h)
{
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);
    Py_CLEAR(h->ctx);
    return 0;
}

static void handle_dealloc(aio_handle *h)
{
    PyObject_GC_UnTrack(h);
    if (h->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)h);
    handle_clear(h);
    PyObject_GC_Del(h);
}

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.Handle",
    .tp_doc = "asyncio.Handle's interface for callbacks on srv's asyncio loop",
    .tp_basicsize = sizeof(aio_handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_weaklistoffset = offsetof(aio_handle, weakrefs),
    .tp_traverse = (traverseproc)handle_traverse,
    .tp_clear = (inquiry)handle_clear,
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_repr = (reprfunc)handle_repr,
    .tp_methods = handle_methods,
    .tp_getset = handle_getset,
};

static PyTypeObject TimerHandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.TimerHandle",
    .tp_doc = "asyncio.TimerHandle's interface for timers on srv's asyncio loop",
    .tp_basicsize = sizeof(aio_handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_base = &HandleType,
    .tp_traverse = (traverseproc)handle_traverse,
    .tp_clear = (inquiry)handle_clear,
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_methods = timer_methods,
    .tp_getset = timer_getset,
};

/* ---- the ready ring ------------------------------------------------------- */

/* Pushes o (the reference is stolen).  -1 with MemoryError set. */
static int ring_push(selector *s, PyObject *o)
{
    if (s->rq_len == s->rq_cap) {
        size_t cap = s->rq_cap ? s->rq_cap * 2 : 256;
        PyObject **p = malloc(sizeof *p * cap);
        if (p == NULL) {
            Py_DECREF(o);
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < s->rq_len; i++)
            p[i] = s->rq[(s->rq_head + i) & (s->rq_cap - 1)];
        free(s->rq);
        s->rq = p;
        s->rq_cap = cap;
        s->rq_head = 0;
    }
    s->rq[(s->rq_head + s->rq_len) & (s->rq_cap - 1)] = o;
    s->rq_len++;
    return 0;
}

/* A new reference to the oldest entry; the ring must not be empty. */
static PyObject *ring_pop(selector *s)
{
    PyObject *o = s->rq[s->rq_head];
    s->rq_head = (s->rq_head + 1) & (s->rq_cap - 1);
    s->rq_len--;
    return o;
}

/* ---- timers --------------------------------------------------------------- */

static void timer_link(selector *s, aio_handle *h)
{
    h->sel = s;
    h->prev = NULL;
    h->next = s->timers;
    if (s->timers)
        s->timers->prev = h;
    s->timers = h;
}

static void timer_unlink(aio_handle *h)
{
    selector *s = h->sel;
    if (h->prev)
        h->prev->next = h->next;
    else if (s->timers == h)
        s->timers = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->prev = h->next = NULL;
    h->sel = NULL;
}

/* Stops an armed timer and drops the reference it owned. */
static void timer_disarm(aio_handle *h)
{
    if (!h->armed)
        return;
    ev_timer_stop(srv_loop, &h->timer);
    h->armed = 0;
    timer_unlink(h);
    Py_DECREF(h);
}

static void timer_fired(struct ev_loop *loop, ev_timer *t, int revents)
{
    aio_handle *h = HANDLE_OF_TIMER(t);
    /* libev counts from the time its turn began, which may be a little
     * behind: never run a timer before its time. */
    double left = h->when - srv_monotonic();
    if (left > 0) {
        ev_timer_set(t, left, 0.);
        ev_timer_start(loop, t);
        return;
    }
    selector *s = h->sel;
    h->armed = 0;
    timer_unlink(h);
    if (ring_push(s, (PyObject *)h) < 0) {   /* the timer's reference moves */
        srv_log_pyerr("srv's asyncio loop: cannot queue a timer");
        return;
    }
    aio_kick(s);
}

SRV_EV_CALLBACK(on_timer_fired, ev_timer, timer_fired)

/* Stops every armed timer and empties the ring: the loop closes. */
void aio_core_clear(selector *s)
{
    while (s->timers) {
        aio_handle *h = s->timers;
        timer_unlink(h);
        ev_timer_stop(srv_loop, &h->timer);
        h->armed = 0;
        Py_DECREF(h);
    }
    while (s->rq_len) {
        PyObject *o = ring_pop(s);
        Py_DECREF(o);
    }
}

/* ---- the methods ---------------------------------------------------------- */

/* srv's asyncio selector if self is srv's asyncio loop, else NULL. */
static selector *mine(PyObject *self)
{
    return self == aio_loop && aio_sel ? aio_sel : NULL;
}

/* Hands a call over to SelectorEventLoop's method of that name. */
static PyObject *call_base(const char *name, PyObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *fn = PyObject_GetAttrString(base_loop, name);
    if (fn == NULL)
        return NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *small[8], **argv = small;
    if (nargs + nkw + 1 > 8 && (argv = PyMem_Malloc(sizeof *argv * (size_t)(nargs + nkw + 1))) == NULL) {
        Py_DECREF(fn);
        return PyErr_NoMemory();
    }
    argv[0] = self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++)
        argv[i + 1] = args[i];
    PyObject *r = PyObject_Vectorcall(fn, argv, (size_t)nargs + 1, kwnames);
    if (argv != small)
        PyMem_Free(argv);
    Py_DECREF(fn);
    return r;
}

static int check_open(selector *s)
{
    if (s->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* context= is the only keyword call_soon and call_at take. */
static int parse_context(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames, PyObject **context)
{
    *context = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (!PyUnicode_Check(k) || PyUnicode_CompareWithASCIIString(k, "context") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, k);
            return -1;
        }
        *context = args[nargs + i];
    }
    return 0;
}

/* In debug mode, asyncio's own checks: the thread, and no coroutine. */
static int debug_check(selector *s, PyObject *self, PyObject *callback, const char *method)
{
    if (!s->debug)
        return 0;
    PyObject *fn = glue_fn(s_debug_check);
    PyObject *name = fn ? PyUnicode_FromString(method) : NULL;
    PyObject *argv[3] = {self, callback, name};
    PyObject *r = name ? PyObject_Vectorcall(fn, argv, 3, NULL) : NULL;
    Py_XDECREF(name);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Something was pushed: wake the asyncio greenlet if it waits (never from
 * another thread: libev is not thread-safe, _write_to_self wakes it). */
static void wake(selector *s)
{
    if (PyThread_get_thread_ident() == aio_loop_thread)
        aio_kick(s);
}

/* The callback's arguments, as the tuple a handle keeps. */
static PyObject *tuple_of(PyObject *const *items, Py_ssize_t n)
{
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef(items[i]));
    return t;
}

static PyObject *soon(selector *s, PyObject *callback, PyObject *args, PyObject *context)
{
    aio_handle *h = handle_new(&HandleType, callback, args, context);
    if (h == NULL)
        return NULL;
    if (ring_push(s, Py_NewRef(h)) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    wake(s);
    return (PyObject *)h;
}

/* call_soon(callback, *args, context=None) */
static PyObject *core_call_soon(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    selector *s = mine(self);
    if (s == NULL)
        return call_base("call_soon", self, args, nargs, kwnames);
    PyObject *context;
    if (parse_context("call_soon", args, nargs, kwnames, &context) < 0 || check_open(s) < 0)
        return NULL;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "call_soon() missing the callback");
        return NULL;
    }
    if (debug_check(s, self, args[0], "call_soon") < 0)
        return NULL;
    PyObject *cargs = tuple_of(args + 1, nargs - 1);
    if (cargs == NULL)
        return NULL;
    PyObject *h = soon(s, args[0], cargs, context);
    Py_DECREF(cargs);
    return h;
}

/* _call_soon(callback, args, context): what call_soon_threadsafe uses. */
static PyObject *core__call_soon(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    selector *s = mine(self);
    if (s == NULL || kwnames || nargs != 3 || !PyTuple_Check(args[1]))
        return call_base("_call_soon", self, args, nargs, kwnames);
    return soon(s, args[0], args[1], args[2]);
}

static PyObject *timer_new(selector *s, PyObject *self, double when, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *context, const char *method)
{
    if (check_open(s) < 0 || debug_check(s, self, args[0], method) < 0)
        return NULL;
    if (PyThread_get_thread_ident() != aio_loop_thread) {
        PyErr_Format(PyExc_RuntimeError, "Non-thread-safe operation invoked on an event loop "
                     "other than the current one (%s from another thread: use "
                     "call_soon_threadsafe)", method);
        return NULL;
    }
    PyObject *cargs = tuple_of(args + 1, nargs - 1);
    if (cargs == NULL)
        return NULL;
    aio_handle *h = handle_new(&TimerHandleType, args[0], cargs, context);
    Py_DECREF(cargs);
    if (h == NULL)
        return NULL;
    h->when = when;
    double after = when - srv_monotonic();
    ev_timer_init(&h->timer, on_timer_fired, after > 0 ? after : 0., 0.);
    ev_timer_start(srv_loop, &h->timer);
    h->armed = 1;
    Py_INCREF(h);   /* the armed timer's reference */
    timer_link(s, h);
    return (PyObject *)h;
}

static int parse_time(PyObject *o, double *t)
{
    *t = PyFloat_AsDouble(o);
    return *t == -1 && PyErr_Occurred() ? -1 : 0;
}

/* call_at(when, ...) and call_later(delay, ...): args[0] is the time,
 * absolute or from now; the callback and its arguments follow. */
static PyObject *schedule(const char *method, int from_now, PyObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    selector *s = mine(self);
    if (s == NULL || nargs < 2)
        return call_base(method, self, args, nargs, kwnames);
    PyObject *context;
    double t;
    if (parse_context(method, args, nargs, kwnames, &context) < 0 || parse_time(args[0], &t) < 0)
        return NULL;
    double when = from_now ? srv_monotonic() + t : t;
    return timer_new(s, self, when, args + 1, nargs - 1, context, method);
}

/* call_at(when, callback, *args, context=None) */
static PyObject *core_call_at(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    return schedule("call_at", 0, self, args, nargs, kwnames);
}

/* call_later(delay, callback, *args, context=None) */
static PyObject *core_call_later(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    return schedule("call_later", 1, self, args, nargs, kwnames);
}

/* asyncio's own handles: is handle._cancelled true?  1, 0, or -1. */
static int foreign_cancelled(PyObject *handle)
{
    PyObject *c = PyObject_GetAttr(handle, s_cancelled);
    int cancelled = c ? PyObject_IsTrue(c) : -1;
    Py_XDECREF(c);
    return cancelled;
}

/* _add_callback(handle): asyncio's reader and writer handles. */
static PyObject *core_add_callback(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    selector *s = mine(self);
    if (s == NULL || nargs != 1 || kwnames)
        return call_base("_add_callback", self, args, nargs, kwnames);
    int cancelled = foreign_cancelled(args[0]);
    if (cancelled < 0 || (!cancelled && ring_push(s, Py_NewRef(args[0])) < 0))
        return NULL;
    Py_RETURN_NONE;
}

/* Runs one entry of the ring: one of ours, or one of asyncio's handles. */
static int run_entry(selector *s, PyObject *self, PyObject *o)
{
    if (s->debug) {
        PyObject *fn = glue_fn(s_run_debug);
        PyObject *argv[2] = {self, o};
        PyObject *r = fn ? PyObject_Vectorcall(fn, argv, 2, NULL) : NULL;
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    if (is_handle(o))
        return handle_run((aio_handle *)o, self);
    int cancelled = foreign_cancelled(o);
    if (cancelled)
        return cancelled < 0 ? -1 : 0;
    PyObject *r = PyObject_CallMethodNoArgs(o, s_run);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* _run_once(): one turn of the asyncio loop. */
static PyObject *core_run_once(PyObject *self, PyObject *unused)
{
    selector *s = mine(self);
    if (s == NULL)
        return call_base("_run_once", self, NULL, 0, NULL);
    double timeout = -1;    /* wait: timers and io wake us */
    if (s->rq_len) {
        timeout = 0;
    } else {
        PyObject *stopping = PyObject_GetAttr(self, s_stopping);
        int stop = stopping ? PyObject_IsTrue(stopping) : -1;
        Py_XDECREF(stopping);
        if (stop < 0)
            return NULL;
        if (stop)
            timeout = 0;
    }
    PyObject *events = aio_select(s, timeout);
    if (events == NULL)
        return NULL;
    if (PyList_GET_SIZE(events) > 0) {
        PyObject *r = PyObject_CallMethodOneArg(self, s_process_events, events);
        if (r == NULL) {
            Py_DECREF(events);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(events);
    /* Only what is ready now: what these callbacks schedule runs after the
     * next select, as in asyncio. */
    for (size_t todo = s->rq_len; todo > 0 && s->rq_len > 0; todo--) {
        PyObject *o = ring_pop(s);
        int rc = run_entry(s, self, o);
        Py_DECREF(o);
        if (rc < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* _write_to_self(): call_soon_threadsafe's wake-up, from any thread. */
static PyObject *core_write_to_self(PyObject *self, PyObject *unused)
{
    selector *s = mine(self);
    if (s == NULL)
        return call_base("_write_to_self", self, NULL, 0, NULL);
    if (!s->closed)
        ev_async_send(srv_loop, &s->async);
    Py_RETURN_NONE;
}

static PyObject *core_time(PyObject *self, PyObject *unused)
{
    return PyFloat_FromDouble(srv_monotonic());
}

/* _srv_set_debug(flag): set_debug()'s news for the C side. */
static PyObject *core_set_debug(PyObject *self, PyObject *flag)
{
    selector *s = mine(self);
    int on = PyObject_IsTrue(flag);
    if (on < 0)
        return NULL;
    if (s)
        s->debug = on;
    Py_RETURN_NONE;
}

static PyObject *future_type, *task_type;   /* owned: asyncio.Future, asyncio.Task */
static PyObject *kw_loop, *kw_task;        /* ("loop",), ("loop", "name", "context") */
static PyObject *s_task_factory;

/* create_future(): asyncio.Future(loop=self), without a Python frame. */
static PyObject *core_create_future(PyObject *self, PyObject *unused)
{
    if (mine(self) == NULL)
        return call_base("create_future", self, NULL, 0, NULL);
    return PyObject_Vectorcall(future_type, &self, 0, kw_loop);
}

/* create_task(coro, *, name=None, context=None) */
static PyObject *core_create_task(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    selector *s = mine(self);
    if (s == NULL || nargs != 1)
        return call_base("create_task", self, args, nargs, kwnames);
    PyObject *name = Py_None, *context = Py_None;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_Check(k) && PyUnicode_CompareWithASCIIString(k, "name") == 0)
            name = args[nargs + i];
        else if (PyUnicode_Check(k) && PyUnicode_CompareWithASCIIString(k, "context") == 0)
            context = args[nargs + i];
        else
            return call_base("create_task", self, args, nargs, kwnames);
    }
    if (check_open(s) < 0)
        return NULL;
    PyObject *factory = PyObject_GetAttr(self, s_task_factory);
    if (factory == NULL)
        return NULL;
    int plain = factory == Py_None;
    Py_DECREF(factory);
    if (!plain || s->debug)     /* a task factory, or debug's tracebacks */
        return call_base("create_task", self, args, nargs, kwnames);
    PyObject *argv[4] = {args[0], self, name, context};
    return PyObject_Vectorcall(task_type, argv, 1, kw_task);
}

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef core_methods[] = {
    {"call_soon", (PyCFunction)(void (*)(void))core_call_soon, FASTKW,
     "call_soon(callback, *args, context=None): run callback(*args) at the loop's next turn"},
    {"_call_soon", (PyCFunction)(void (*)(void))core__call_soon, FASTKW, NULL},
    {"call_at", (PyCFunction)(void (*)(void))core_call_at, FASTKW,
     "call_at(when, callback, *args, context=None): run it at time() == when (a libev timer)"},
    {"call_later", (PyCFunction)(void (*)(void))core_call_later, FASTKW,
     "call_later(delay, callback, *args, context=None): run it after delay seconds"},
    {"_add_callback", (PyCFunction)(void (*)(void))core_add_callback, FASTKW, NULL},
    {"_run_once", core_run_once, METH_NOARGS, NULL},
    {"create_future", core_create_future, METH_NOARGS,
     "create_future(): an asyncio.Future on this loop"},
    {"create_task", (PyCFunction)(void (*)(void))core_create_task, FASTKW,
     "create_task(coro, *, name=None, context=None): an asyncio.Task on this loop"},
    {"_write_to_self", core_write_to_self, METH_NOARGS, NULL},
    {"_srv_set_debug", core_set_debug, METH_O, NULL},
    {"time", core_time, METH_NOARGS, "time(): the loop's clock, time.monotonic()"},
    {NULL, NULL, 0, NULL},
};

/* ---- start-up ------------------------------------------------------------- */

int aio_core_install(PyObject *globals, PyObject *cls)
{
    if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&TimerHandleType) < 0)
        return -1;
    struct { PyObject **s; const char *name; } names[] = {
        {&s_stopping, "_stopping"}, {&s_process_events, "_process_events"},
        {&s_cancelled, "_cancelled"}, {&s_run, "_run"},
        {&s_callback_failed, "_callback_failed"}, {&s_run_debug, "_run_debug"},
        {&s_handle_repr, "_handle_repr"}, {&s_debug_check, "_debug_check"},
        {&s_task_factory, "_task_factory"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (*names[i].s == NULL && (*names[i].s = PyUnicode_InternFromString(names[i].name)) == NULL)
            return -1;
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    if (asyncio == NULL)
        return -1;
    base_loop = PyObject_GetAttrString(asyncio, "SelectorEventLoop");
    future_type = PyObject_GetAttrString(asyncio, "Future");
    task_type = PyObject_GetAttrString(asyncio, "Task");
    Py_DECREF(asyncio);
    kw_loop = Py_BuildValue("(s)", "loop");
    kw_task = Py_BuildValue("(sss)", "loop", "name", "context");
    if (base_loop == NULL || future_type == NULL || task_type == NULL || kw_loop == NULL
        || kw_task == NULL)
        return -1;
    for (PyMethodDef *m = core_methods; m->ml_name; m++) {
        PyObject *d = PyDescr_NewMethod((PyTypeObject *)cls, m);
        int rc = d ? PyObject_SetAttrString(cls, m->ml_name, d) : -1;
        Py_XDECREF(d);
        if (rc < 0)
            return -1;
    }
    glue = globals;
    return 0;
}
