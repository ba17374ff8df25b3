/*
 * aio.c - asyncio on srv's libev loop, and srv.run_async().
 *
 * srv.EventLoop is asyncio's own SelectorEventLoop, so call_soon, timers,
 * tasks, sock_*, transports, streams, getaddrinfo and run_in_executor are
 * asyncio's tested code; only its selector is srv's.  The selector (a C
 * type) keeps one ev_io per registered fd on srv's loop and never blocks the
 * thread: the asyncio loop runs run_forever() in a greenlet of its own, and
 * its select(timeout) arms one ev_timer (none for None, a zero one for 0, so
 * that the loop still turns), then waits in the hub like a request greenlet.
 * An io watcher or the timer switches it back in.  call_soon_threadsafe's
 * self-pipe is just another registered fd; call_soon and call_at made by
 * other greenlets while it waits go through "wakers" that kick it.
 *
 * The greenlet is created by the selector's timer callback, that is from the
 * loop greenlet, which so becomes its parent.  An io event that comes while
 * the asyncio greenlet cannot be resumed (in gevent mode a coroutine may
 * block on gevent) stops its watcher until select() has collected it, so a
 * level-triggered fd never makes the loop spin.
 *
 * srv.run_async() from any greenlet but the loop greenlet wraps the
 * awaitable in a Task, adds a Waiter as its done callback and waits in the
 * hub.  The Waiter runs in the asyncio greenlet, so it never switches itself:
 * it starts a zero ev_timer whose callback, in the loop greenlet, resumes
 * the request.  An exception thrown into the waiting request (RequestTimeout,
 * GreenletExit) cancels the Task.  Called in the loop greenlet while srv's
 * loop is not running (at import time), run_async runs the asyncio loop in
 * place: select() then runs srv's loop itself, one iteration at a time.
 *
 * Once made, the asyncio loop is the thread's running loop (asyncio keeps it
 * per thread, not per greenlet), so asyncio.get_running_loop() works in every
 * request.
 */
#include "srv/aio.h"
#include "srv/config.h"
#include "srv/hub.h"
#include "srv/log.h"

#include <greenlet/greenlet.h>
#include <stdlib.h>

/* ---- Python side --------------------------------------------------------- */

static const char glue_src[] =
    "import asyncio\n"
    "import traceback\n"
    "from asyncio import events as _events\n"
    "\n"
    "_NO_SIGNALS = ('srv: the master process owns signals; add_signal_handler and '\n"
    "               'remove_signal_handler are not available in srv workers')\n"
    "\n"
    "class EventLoop(asyncio.SelectorEventLoop):\n"
    "    '''asyncio's selector event loop on srv's libev loop: get it with\n"
    "    srv.get_event_loop() or asyncio.get_event_loop().'''\n"
    "\n"
    "    def add_signal_handler(self, sig, callback, *args):\n"
    "        raise NotImplementedError(_NO_SIGNALS)\n"
    "\n"
    "    def remove_signal_handler(self, sig):\n"
    "        raise NotImplementedError(_NO_SIGNALS)\n"
    "\n"
    "    # In a request, the loop already runs in its own greenlet: wait for\n"
    "    # the future there, suspending only the request (srv.run_async).\n"
    "    def run_until_complete(self, future):\n"
    "        if _in_request():\n"
    "            return _run_async(future)\n"
    "        return super().run_until_complete(future)\n"
    "\n"
    "    def default_exception_handler(self, context):\n"
    "        _log(_describe(context))\n"

    "\n"
    "def _describe(context):\n"
    "    lines = ['asyncio: ' + (context.get('message') or 'unhandled exception')]\n"
    "    for key in sorted(context):\n"
    "        if key not in ('message', 'exception'):\n"
    "            try:\n"
    "                value = repr(context[key])\n"
    "            except Exception:\n"
    "                value = '<repr failed>'\n"
    "            lines.append('  %s: %s' % (key, value))\n"
    "    exc = context.get('exception')\n"
    "    if exc is not None:\n"
    "        lines.append(''.join(traceback.format_exception(exc)).rstrip('\\n'))\n"
    "    return '\\n'.join(lines)\n"
    "\n"
    "class _Policy(asyncio.DefaultEventLoopPolicy):\n"
    "    def get_event_loop(self):\n"
    "        if _other_thread():\n"
    "            return super().get_event_loop()\n"
    "        return _get_loop()\n"
    "\n"
    "def _install_policy():\n"
    "    if not isinstance(asyncio.get_event_loop_policy(), _Policy):\n"
    "        asyncio.set_event_loop_policy(_Policy())\n"
    "\n"
    "def _runner(loop):\n"
    "    def run():\n"
    "        _events._set_running_loop(None)\n"
    "        loop.run_forever()\n"
    "    return run\n"
    "\n"
    "def _submit(loop, aw, timeout):\n"
    "    if timeout is not None:\n"
    "        aw = asyncio.wait_for(aw, timeout)\n"
    "    return asyncio.ensure_future(aw, loop=loop)\n"
    "\n"
    "def _run_here(loop, aw, timeout):\n"
    "    _events._set_running_loop(None)\n"
    "    try:\n"
    "        return loop.run_until_complete(_submit(loop, aw, timeout))\n"
    "    finally:\n"
    "        _events._set_running_loop(loop)\n"
    "\n"
    "def _pending(loop):\n"
    "    return len(asyncio.all_tasks(loop))\n"
    "\n"
    "def _cancel_all(loop):\n"
    "    tasks = asyncio.all_tasks(loop)\n"
    "    for t in tasks:\n"
    "        t.cancel()\n"
    "    return tasks\n"
    "\n"
    "def _finish(loop, tasks):\n"
    "    if tasks:\n"
    "        loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))\n"
    "    loop.close()\n"
    "    _events._set_running_loop(None)\n";

static PyObject *glue;          /* owned: the glue's globals */
static PyObject *s_create_task, *s_add_done_callback, *s_remove_done_callback,
                *s_result, *s_cancel, *s_close, *s_call_soon, *s_call_at;   /* interned */
static unsigned long loop_thread;   /* the thread that runs srv's loop */
static PyObject *the_loop;      /* owned: srv's asyncio loop, once made */
static PyObject *key_type;      /* owned: selectors.SelectorKey */

/* ---- the selector -------------------------------------------------------- */

typedef struct entry {
    ev_io io;
    struct selector *sel;
    PyObject *key;          /* owned: the SelectorKey */
    int events;             /* EV_READ | EV_WRITE, the same bits as selectors' */
    int revents;            /* seen, not yet collected by select() */
    unsigned queued:1;      /* its fd is in sel->ready */
    unsigned paused:1;      /* watcher stopped until collected */
} entry;

typedef struct selector {
    PyObject_HEAD
    ev_timer timer;         /* select()'s timeout; also the kick that starts or wakes g */
    entry **fds;            /* by fd */
    int nfds;
    int *ready;             /* fds with events to collect */
    int nready, ready_cap;
    PyGreenlet *g;          /* owned: the greenlet running the asyncio loop */
    PyObject *run;          /* owned: what g runs */
    unsigned waiting:1;     /* g waits in select() */
    unsigned inplace:1;     /* the asyncio loop runs in the loop greenlet */
    unsigned fired:1;       /* the timer fired */
    unsigned kicked:1;      /* the timer is armed to fire at once */
    unsigned closed:1;
    int restarts;           /* greenlets started since the last select() */
} selector;

static selector *the_sel;       /* borrowed: the_loop owns it */

static entry *lookup(selector *s, int fd)
{
    return fd >= 0 && fd < s->nfds ? s->fds[fd] : NULL;
}

static void kick(selector *s);
static void forget_dead_greenlet(selector *s);
static void wakers_set(int on);

#define MAX_RESTARTS 3

/* Switches to the asyncio greenlet until it waits again.  If run_forever()
 * ended instead (a SystemExit or KeyboardInterrupt out of a callback ends
 * it, and the hub logs it), a fresh greenlet runs what is left: a few
 * times in a row at most, so that a loop that cannot run does not spin. */
static void resume_loop_greenlet(selector *s)
{
    Py_INCREF(s);   /* the switch may close the loop */
    srv_hub_resume(s->g);
    if (s->g && PyGreenlet_STARTED(s->g) && !PyGreenlet_ACTIVE(s->g)) {
        forget_dead_greenlet(s);
        if (++s->restarts <= MAX_RESTARTS)
            kick(s);
        else
            srv_error("srv's asyncio loop keeps stopping; it runs again at the next call");
    }
    Py_DECREF(s);
}

/* run_forever() ended (a SystemExit or KeyboardInterrupt from a callback
 * propagates out of it): forget the greenlet, so that the next kick starts
 * a fresh one rather than leaving every run_async waiting. */
static void forget_dead_greenlet(selector *s)
{
    if (s->g && PyGreenlet_STARTED(s->g) && !PyGreenlet_ACTIVE(s->g)) {
        srv_error("srv's asyncio loop stopped running; starting it again");
        Py_CLEAR(s->g);
        s->waiting = 0;
        wakers_set(1);
    }
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    selector *s = (selector *)((char *)t - offsetof(selector, timer));
    s->fired = 1;
    s->kicked = 0;
    if (s->inplace || s->closed)
        return;
    forget_dead_greenlet(s);
    if (s->g == NULL) {
        s->g = PyGreenlet_New(s->run, NULL);   /* child of the loop greenlet */
        if (s->g == NULL) {
            srv_log_pyerr("cannot start the asyncio loop's greenlet");
            return;
        }
        resume_loop_greenlet(s);
    } else if (s->waiting) {
        resume_loop_greenlet(s);
    }
}

SRV_EV_CALLBACK(on_timer, ev_timer, timer_cb)

static int ready_push(selector *s, int fd)
{
    if (s->nready == s->ready_cap) {
        int cap = s->ready_cap ? s->ready_cap * 2 : 64;
        int *p = realloc(s->ready, sizeof *p * (size_t)cap);
        if (p == NULL)
            return -1;
        s->ready = p;
        s->ready_cap = cap;
    }
    s->ready[s->nready++] = fd;
    return 0;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    entry *e = (entry *)w;
    selector *s = e->sel;
    /* EV_ERROR (a closed fd): let asyncio try and see the error. */
    e->revents |= (revents & EV_ERROR) ? e->events : (revents & (EV_READ | EV_WRITE));
    if (!e->queued) {
        if (ready_push(s, e->io.fd) < 0) {
            srv_error("asyncio selector: out of memory");
            return;
        }
        e->queued = 1;
    }
    if (s->waiting && !s->inplace) {
        resume_loop_greenlet(s);   /* e may be gone after this */
    } else if (!s->inplace && ev_is_active(w)) {
        ev_io_stop(loop, w);       /* until select() collects it */
        e->paused = 1;
    }
}

SRV_EV_CALLBACK(on_io, ev_io, io_cb)

static void timer_stop(selector *s)
{
    ev_timer_stop(srv_loop, &s->timer);
    s->kicked = 0;
}

/* Wakes the asyncio greenlet, or starts it, so that it runs what was just
 * scheduled.  Running elsewhere (or in place), it will see it by itself. */
static void kick(selector *s)
{
    if (s->g && PyGreenlet_STARTED(s->g) && !PyGreenlet_ACTIVE(s->g))
        s->restarts = 0;   /* someone new needs the loop: try again */
    forget_dead_greenlet(s);
    if (s->closed || s->inplace || (s->g && !s->waiting) || s->kicked)
        return;
    timer_stop(s);
    s->kicked = 1;
    ev_timer_set(&s->timer, 0., 0.);
    ev_timer_start(srv_loop, &s->timer);
}

static int parse_events(PyObject *o, int *events)
{
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v == 0 || (v & ~(long)(EV_READ | EV_WRITE))) {
        PyErr_Format(PyExc_ValueError, "Invalid events: %R", o);
        return -1;
    }
    *events = (int)v;
    return 0;
}

static PyObject *make_key(PyObject *fileobj, int fd, int events, PyObject *data)
{
    return PyObject_CallFunction(key_type, "OiiO", fileobj, fd, events, data);
}

static int grow_fds(selector *s, int fd)
{
    if (fd < s->nfds)
        return 0;
    int n = s->nfds ? s->nfds : 64;
    while (n <= fd)
        n *= 2;
    entry **p = realloc(s->fds, sizeof *p * (size_t)n);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = s->nfds; i < n; i++)
        p[i] = NULL;
    s->fds = p;
    s->nfds = n;
    return 0;
}

static PyObject *sel_register(selector *s, PyObject *args, PyObject *kw)
{
    static char *names[] = {"fileobj", "events", "data", NULL};
    PyObject *fileobj, *events_o, *data = Py_None;
    int events;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:register", names, &fileobj, &events_o, &data))
        return NULL;
    int fd = PyObject_AsFileDescriptor(fileobj);
    if (fd < 0 || parse_events(events_o, &events) < 0)
        return NULL;
    if (s->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the selector is closed");
        return NULL;
    }
    if (lookup(s, fd)) {
        PyErr_Format(PyExc_KeyError, "%R (FD %d) is already registered", fileobj, fd);
        return NULL;
    }
    if (grow_fds(s, fd) < 0)
        return NULL;
    entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return PyErr_NoMemory();
    e->key = make_key(fileobj, fd, events, data);
    if (e->key == NULL) {
        free(e);
        return NULL;
    }
    e->sel = s;
    e->events = events;
    ev_io_init(&e->io, on_io, fd, events);
    ev_io_start(srv_loop, &e->io);
    s->fds[fd] = e;
    return Py_NewRef(e->key);
}

static void entry_free(selector *s, entry *e)
{
    ev_io_stop(srv_loop, &e->io);
    s->fds[e->io.fd] = NULL;
    Py_DECREF(e->key);
    free(e);
}

static entry *entry_of(selector *s, PyObject *fileobj)
{
    int fd = PyObject_AsFileDescriptor(fileobj);
    if (fd < 0)
        return NULL;
    entry *e = lookup(s, fd);
    if (e == NULL)
        PyErr_Format(PyExc_KeyError, "%R is not registered", fileobj);
    return e;
}

static PyObject *sel_unregister(selector *s, PyObject *fileobj)
{
    entry *e = entry_of(s, fileobj);
    if (e == NULL)
        return NULL;
    PyObject *key = Py_NewRef(e->key);
    entry_free(s, e);
    return key;
}

static PyObject *sel_modify(selector *s, PyObject *args, PyObject *kw)
{
    static char *names[] = {"fileobj", "events", "data", NULL};
    PyObject *fileobj, *events_o, *data = Py_None;
    int events;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:modify", names, &fileobj, &events_o, &data))
        return NULL;
    entry *e = entry_of(s, fileobj);
    if (e == NULL || parse_events(events_o, &events) < 0)
        return NULL;
    PyObject *key = make_key(fileobj, e->io.fd, events, data);
    if (key == NULL)
        return NULL;
    Py_SETREF(e->key, key);
    if (events != e->events) {
        ev_io_stop(srv_loop, &e->io);
        ev_io_set(&e->io, e->io.fd, events);
        e->events = events;
        e->revents &= events;
        e->paused = 0;
        ev_io_start(srv_loop, &e->io);
    }
    return Py_NewRef(e->key);
}

static PyObject *sel_get_key(selector *s, PyObject *fileobj)
{
    entry *e = entry_of(s, fileobj);
    return e ? Py_NewRef(e->key) : NULL;
}

static PyObject *sel_get_map(selector *s, PyObject *unused)
{
    PyObject *map = PyDict_New();
    for (int fd = 0; map && fd < s->nfds; fd++) {
        entry *e = s->fds[fd];
        if (e == NULL)
            continue;
        PyObject *fileobj = PyTuple_GetItem(e->key, 0);   /* borrowed */
        if (fileobj == NULL || PyDict_SetItem(map, fileobj, e->key) < 0)
            Py_CLEAR(map);
    }
    return map;
}

/* The events seen since the last call, as selectors' [(key, events)]. */
static PyObject *collect(selector *s)
{
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    int n = s->nready;
    s->nready = 0;
    for (int i = 0; i < n; i++) {
        entry *e = lookup(s, s->ready[i]);
        if (e == NULL || !e->queued)
            continue;   /* unregistered (or re-registered) since */
        int ev = e->revents & e->events;
        e->revents = 0;
        e->queued = 0;
        if (e->paused) {
            e->paused = 0;
            ev_io_start(srv_loop, &e->io);
        }
        if (ev == 0)
            continue;
        PyObject *pair = Py_BuildValue("(Oi)", e->key, ev);
        if (pair == NULL || PyList_Append(list, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(pair);
    }
    return list;
}

static void timer_arm(selector *s, double timeout)
{
    timer_stop(s);
    s->fired = 0;
    if (timeout >= 0) {
        ev_timer_set(&s->timer, timeout, 0.);
        ev_timer_start(srv_loop, &s->timer);
    }
}

/* In place (srv's loop is not running): run it here until something is
 * ready or the timeout passed.  The GIL stays held: the loop's release
 * callback gives it up while libev polls (worker.c, gloop.c). */
static int wait_in_place(selector *s, double timeout)
{
    timer_arm(s, timeout);
    do {
        ev_run(srv_loop, timeout == 0 ? EVRUN_NOWAIT : EVRUN_ONCE);
    } while (timeout != 0 && s->nready == 0 && !s->fired);
    timer_stop(s);
    return 0;
}

/* In the asyncio greenlet: let srv's loop turn until an event or the
 * timer switches us back. */
static int wait_in_greenlet(selector *s, double timeout)
{
    timer_arm(s, timeout);
    s->waiting = 1;
    s->restarts = 0;
    wakers_set(1);
    int rc = srv_hub_wait();
    wakers_set(0);
    s->waiting = 0;
    timer_stop(s);
    return rc;
}

static PyObject *sel_select(selector *s, PyObject *args, PyObject *kw)
{
    static char *names[] = {"timeout", NULL};
    PyObject *timeout_o = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:select", names, &timeout_o))
        return NULL;
    double timeout = -1;
    if (timeout_o != Py_None) {
        timeout = PyFloat_AsDouble(timeout_o);
        if (timeout == -1 && PyErr_Occurred())
            return NULL;
        if (timeout < 0)
            timeout = 0;
    }
    if (s->nready == 0) {
        int rc;
        if (s->inplace)
            rc = wait_in_place(s, timeout);
        else if (srv_hub_in_loop()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "srv's asyncio loop cannot run in srv's loop greenlet while "
                            "srv's loop runs");
            return NULL;
        } else
            rc = wait_in_greenlet(s, timeout);
        if (rc < 0)
            return NULL;
    }
    return collect(s);
}

static void sel_stop_all(selector *s)
{
    for (int fd = 0; fd < s->nfds; fd++)
        if (s->fds[fd])
            entry_free(s, s->fds[fd]);
    s->nready = 0;
    if (srv_loop)
        timer_stop(s);
}

static PyObject *sel_close(selector *s, PyObject *unused)
{
    sel_stop_all(s);
    s->closed = 1;
    Py_RETURN_NONE;
}

static PyObject *sel_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    if (srv_loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "srv's loop is not set up yet");
        return NULL;
    }
    selector *s = (selector *)type->tp_alloc(type, 0);
    if (s)
        ev_init(&s->timer, on_timer);
    return (PyObject *)s;
}

static void sel_dealloc(selector *s)
{
    sel_stop_all(s);
    free(s->fds);
    free(s->ready);
    Py_XDECREF(s->g);
    Py_XDECREF(s->run);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef sel_methods[] = {
    {"register", (PyCFunction)(void (*)(void))sel_register, METH_VARARGS | METH_KEYWORDS, NULL},
    {"unregister", (PyCFunction)sel_unregister, METH_O, NULL},
    {"modify", (PyCFunction)(void (*)(void))sel_modify, METH_VARARGS | METH_KEYWORDS, NULL},
    {"select", (PyCFunction)(void (*)(void))sel_select, METH_VARARGS | METH_KEYWORDS, NULL},
    {"get_key", (PyCFunction)sel_get_key, METH_O, NULL},
    {"get_map", (PyCFunction)sel_get_map, METH_NOARGS, NULL},
    {"close", (PyCFunction)sel_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SelectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv._Selector",
    .tp_doc = "selectors.BaseSelector's interface on libev io watchers of srv's loop",
    .tp_basicsize = sizeof(selector),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = sel_new,
    .tp_dealloc = (destructor)sel_dealloc,
    .tp_methods = sel_methods,
};

/* ---- wakers: call_soon and call_at while the asyncio greenlet waits ----- */

/* Called from another greenlet (a request's create_task or call_later),
 * call_soon and call_at must wake the asyncio greenlet, which may wait in
 * select() with no timeout or a later one.  Rather than wrapping every call
 * (most come from the asyncio greenlet itself, which needs no wake-up),
 * the loop instance's call_soon and call_at are shadowed by wakers only
 * while that greenlet is not running: a waker calls the loop's own method,
 * then kicks. */

typedef struct {
    PyObject_HEAD
    PyObject *method;       /* owned: the loop's own bound method */
    vectorcallfunc vectorcall;
} waker;

static PyObject *waker_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames)
{
    PyObject *r = PyObject_Vectorcall(((waker *)self)->method, args, nargsf, kwnames);
    /* From another thread (call_soon is not thread-safe anyway) libev must
     * not be touched: call_soon_threadsafe wakes the loop by its pipe. */
    if (r && the_sel && PyThread_get_thread_ident() == loop_thread)
        kick(the_sel);
    return r;
}

static void waker_dealloc(waker *k)
{
    Py_XDECREF(k->method);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static PyTypeObject WakerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv._Waker",
    .tp_basicsize = sizeof(waker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(waker, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = (destructor)waker_dealloc,
};

#define NWAKERS 2
static PyObject **waker_names[NWAKERS] = {&s_call_soon, &s_call_at};
static PyObject *wakers[NWAKERS];   /* owned */
static int wakers_on;

static int wakers_make(PyObject *loop)
{
    for (int i = 0; i < NWAKERS; i++) {
        waker *k = PyObject_New(waker, &WakerType);
        if (k == NULL)
            return -1;
        k->vectorcall = waker_vectorcall;
        k->method = PyObject_GetAttr(loop, *waker_names[i]);
        wakers[i] = (PyObject *)k;
        if (k->method == NULL)
            return -1;
    }
    return 0;
}

/* Shadows (on) or unshadows the loop's call_soon and call_at. */
static void wakers_set(int on)
{
    if (the_loop == NULL || wakers[NWAKERS - 1] == NULL || wakers_on == on)
        return;
    wakers_on = on;
    for (int i = 0; i < NWAKERS; i++) {
        int rc = on ? PyObject_SetAttr(the_loop, *waker_names[i], wakers[i])
                    : PyObject_DelAttr(the_loop, *waker_names[i]);
        if (rc < 0)
            srv_log_pyerr("srv's asyncio loop: cannot %s its wake-ups", on ? "set" : "clear");
    }
}

static void wakers_free(void)
{
    wakers_set(0);
    for (int i = 0; i < NWAKERS; i++)
        Py_CLEAR(wakers[i]);
}

/* ---- the waiter: resumes a request greenlet when its task is done -------- */

typedef struct {
    PyObject_HEAD
    ev_timer timer;
    PyGreenlet *g;          /* owned while someone waits */
    int done;
} waiter;

static void waiter_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    waiter *w = (waiter *)((char *)t - offsetof(waiter, timer));
    if (w->g)
        srv_hub_resume(w->g);
}

SRV_EV_CALLBACK(on_waiter, ev_timer, waiter_cb)

/* The task's done callback, run by the asyncio loop in its greenlet. */
static PyObject *waiter_call(waiter *w, PyObject *args, PyObject *kw)
{
    w->done = 1;
    if (w->g && !ev_is_active(&w->timer)) {
        ev_timer_set(&w->timer, 0., 0.);
        ev_timer_start(srv_loop, &w->timer);
    }
    Py_RETURN_NONE;
}

static void waiter_dealloc(waiter *w)
{
    ev_timer_stop(srv_loop, &w->timer);
    Py_XDECREF(w->g);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyTypeObject WaiterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv._Waiter",
    .tp_basicsize = sizeof(waiter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_call = (ternaryfunc)waiter_call,
    .tp_dealloc = (destructor)waiter_dealloc,
};

/* ---- the loop ------------------------------------------------------------ */

static PyObject *glue_call(const char *name, PyObject *const *args, size_t n)
{
    PyObject *fn = PyDict_GetItemString(glue, name);   /* borrowed */
    if (fn == NULL) {
        PyErr_Format(PyExc_RuntimeError, "srv's asyncio glue has no %s", name);
        return NULL;
    }
    return PyObject_Vectorcall(fn, args, n, NULL);
}

static PyObject *aio_log(PyObject *module, PyObject *text)
{
    const char *s = PyUnicode_AsUTF8(text);
    if (s == NULL)
        return NULL;
    srv_error("%s", s);
    Py_RETURN_NONE;
}

static PyObject *aio_get_event_loop(PyObject *module, PyObject *unused);

/* Would srv.run_async suspend the calling greenlet (rather than run the
 * loop in place or refuse)? */
static PyObject *aio_in_request(PyObject *module, PyObject *unused)
{
    if (the_sel == NULL || srv_loop == NULL || PyThread_get_thread_ident() != loop_thread
        || srv_hub_in_loop())
        Py_RETURN_FALSE;
    PyGreenlet *cur = srv_hub_current();
    int in_aio = cur == the_sel->g;
    Py_DECREF(cur);
    return PyBool_FromLong(!in_aio);
}

static PyObject *aio_run_async(PyObject *module, PyObject *args, PyObject *kw);

/* Is this a thread other than the one that made srv's loop? */
static PyObject *aio_other_thread(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(PyThread_get_thread_ident() != loop_thread);
}

static PyMethodDef glue_defs[] = {
    {"_log", aio_log, METH_O, NULL},
    {"_get_loop", aio_get_event_loop, METH_NOARGS, NULL},
    {"_in_request", aio_in_request, METH_NOARGS, NULL},
    {"_other_thread", aio_other_thread, METH_NOARGS, NULL},
    {"_run_async", (PyCFunction)(void (*)(void))aio_run_async, METH_VARARGS | METH_KEYWORDS, NULL},
};

static int load_glue(void)
{
    if (glue)
        return 0;
    PyObject *g = PyDict_New();
    if (g == NULL)
        return -1;
    PyObject *name = PyUnicode_FromString("srv");
    int bad = name == NULL || PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0
              || PyDict_SetItemString(g, "__name__", name) < 0;
    Py_XDECREF(name);
    if (bad)
        goto fail;
    for (size_t i = 0; i < sizeof glue_defs / sizeof glue_defs[0]; i++) {
        PyObject *f = PyCFunction_New(&glue_defs[i], NULL);
        int rc = f ? PyDict_SetItemString(g, glue_defs[i].ml_name, f) : -1;
        Py_XDECREF(f);
        if (rc < 0)
            goto fail;
    }
    PyObject *r = PyRun_String(glue_src, Py_file_input, g, g);
    if (r == NULL)
        goto fail;
    Py_DECREF(r);
    PyObject *sel_mod = PyImport_ImportModule("selectors");
    key_type = sel_mod ? PyObject_GetAttrString(sel_mod, "SelectorKey") : NULL;
    Py_XDECREF(sel_mod);
    if (key_type == NULL)
        goto fail;
    glue = g;
    return 0;
fail:
    Py_DECREF(g);
    return -1;
}

static PyObject *install_policy(void)
{
    if (load_glue() < 0)
        return NULL;
    return glue_call("_install_policy", NULL, 0);
}

/* srv's asyncio loop, made on first use (borrowed). */
static PyObject *ensure_loop(void)
{
    if (PyThread_get_thread_ident() != loop_thread) {
        PyErr_SetString(PyExc_RuntimeError,
                        "srv's asyncio loop belongs to the thread that runs srv's loop; from "
                        "another thread use asyncio.run_coroutine_threadsafe(coro, loop)");
        return NULL;
    }
    if (the_loop)
        return the_loop;
    PyObject *r = install_policy();
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    PyObject *cls = PyDict_GetItemString(glue, "EventLoop");   /* borrowed */
    PyObject *sel = PyObject_CallNoArgs((PyObject *)&SelectorType);
    if (cls == NULL || sel == NULL) {
        Py_XDECREF(sel);
        return NULL;
    }
    PyObject *loop = PyObject_CallOneArg(cls, sel);
    if (loop == NULL) {
        Py_DECREF(sel);
        return NULL;
    }
    selector *s = (selector *)sel;
    s->run = glue_call("_runner", &loop, 1);
    PyObject *events = PyImport_ImportModule("asyncio.events");
    PyObject *set = events ? PyObject_CallMethod(events, "_set_running_loop", "O", loop) : NULL;
    Py_XDECREF(events);
    if (s->run == NULL || set == NULL) {
        Py_DECREF(sel);
        Py_DECREF(loop);
        return NULL;
    }
    Py_DECREF(set);
    if (wakers_make(loop) < 0) {
        wakers_free();
        Py_DECREF(sel);
        Py_DECREF(loop);
        return NULL;
    }
    the_sel = s;
    Py_DECREF(sel);     /* the loop keeps its selector */
    the_loop = loop;
    wakers_set(1);      /* until its greenlet runs */
    kick(s);            /* the greenlet starts at the loop's next turn */
    return the_loop;
}

static PyObject *aio_get_event_loop(PyObject *module, PyObject *unused)
{
    PyObject *loop = ensure_loop();
    return loop ? Py_NewRef(loop) : NULL;
}

/* In the loop greenlet while srv's loop does not run: run it here. */
static PyObject *run_in_place(PyObject *loop, PyObject *aw, PyObject *timeout)
{
    if (the_sel->g) {
        PyErr_SetString(PyExc_RuntimeError,
                        "srv.run_async: srv's loop is not running and its asyncio "
                        "loop is suspended");
        return NULL;
    }
    the_sel->inplace = 1;
    PyObject *argv[3] = {loop, aw, timeout};
    PyObject *r = glue_call("_run_here", argv, 3);
    the_sel->inplace = 0;
    kick(the_sel);
    return r;
}


/* The request gave up waiting (an exception was thrown in): cancel. */
static void abandon(PyObject *task, waiter *w)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = PyObject_CallMethodOneArg(task, s_remove_done_callback, (PyObject *)w);
    Py_XDECREF(r);
    r = r ? PyObject_CallMethodNoArgs(task, s_cancel) : NULL;
    Py_XDECREF(r);
    if (r == NULL)
        srv_log_pyerr("srv.run_async: cannot cancel the task");
    else
        kick(the_sel);
    PyErr_Restore(type, value, tb);
}

static PyObject *aio_run_async(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *names[] = {"awaitable", "timeout", NULL};
    PyObject *aw, *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:run_async", names, &aw, &timeout))
        return NULL;
    PyObject *loop = ensure_loop();
    if (loop == NULL)
        return NULL;
    if (srv_hub_in_loop())
        return run_in_place(loop, aw, timeout);
    PyGreenlet *cur = srv_hub_current();
    int nested = cur == the_sel->g;
    if (nested) {
        Py_DECREF(cur);
        if (PyCoro_CheckExact(aw)) {   /* it will never run: no "never awaited" warning */
            PyObject *r = PyObject_CallMethodNoArgs(aw, s_close);
            Py_XDECREF(r);
            PyErr_Clear();
        }
        PyErr_SetString(PyExc_RuntimeError,
                        "srv.run_async cannot be called from a coroutine running on srv's "
                        "loop: await the awaitable instead");
        return NULL;
    }
    PyObject *task;
    if (timeout == Py_None && PyCoro_CheckExact(aw)) {
        task = PyObject_CallMethodOneArg(loop, s_create_task, aw);   /* the common case */
    } else {
        PyObject *argv[3] = {loop, aw, timeout};
        task = glue_call("_submit", argv, 3);
    }
    waiter *w = task ? PyObject_New(waiter, &WaiterType) : NULL;
    if (w == NULL) {
        Py_DECREF(cur);
        Py_XDECREF(task);
        return NULL;
    }
    ev_init(&w->timer, on_waiter);
    w->g = cur;   /* the reference from srv_hub_current() */
    w->done = 0;
    PyObject *r = PyObject_CallMethodOneArg(task, s_add_done_callback, (PyObject *)w);
    int rc = r ? 0 : -1;
    Py_XDECREF(r);
    if (rc == 0) {
        kick(the_sel);
        do
            rc = srv_hub_wait();
        while (rc == 0 && !w->done);
    }
    ev_timer_stop(srv_loop, &w->timer);
    Py_CLEAR(w->g);
    PyObject *result = NULL;
    if (rc < 0)
        abandon(task, w);
    else
        result = PyObject_CallMethodNoArgs(task, s_result);
    Py_DECREF(w);
    Py_DECREF(task);
    return result;
}

static PyObject *aio_getattr(PyObject *module, PyObject *name)
{
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "EventLoop") == 0) {
        if (load_glue() < 0)
            return NULL;
        PyObject *cls = PyDict_GetItemString(glue, "EventLoop");
        return Py_XNewRef(cls);
    }
    PyErr_Format(PyExc_AttributeError, "module 'srv' has no attribute %R", name);
    return NULL;
}

static PyMethodDef aio_methods[] = {
    {"run_async", (PyCFunction)(void (*)(void))aio_run_async, METH_VARARGS | METH_KEYWORDS,
     "run_async(awaitable, timeout=None): run the awaitable on srv's asyncio loop and "
     "suspend only the calling greenlet until it is done; returns its result or raises "
     "its exception (TimeoutError after `timeout` seconds).  Outside a request (at "
     "import time) it runs the loop until the awaitable is done."},
    {"get_event_loop", aio_get_event_loop, METH_NOARGS,
     "get_event_loop(): srv's asyncio loop in this worker (made on first use)"},
    {"__getattr__", aio_getattr, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

int srv_aio_add_to_module(PyObject *module)
{
    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL)
        return -1;
    if (PyType_Ready(&SelectorType) < 0 || PyType_Ready(&WaiterType) < 0
        || PyType_Ready(&WakerType) < 0)
        return -1;
    loop_thread = PyThread_get_thread_ident();   /* the worker's main thread */
    struct { PyObject **s; const char *name; } names[] = {
        {&s_create_task, "create_task"}, {&s_add_done_callback, "add_done_callback"},
        {&s_remove_done_callback, "remove_done_callback"}, {&s_result, "result"},
        {&s_cancel, "cancel"}, {&s_close, "close"}, {&s_call_soon, "call_soon"},
        {&s_call_at, "call_at"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (*names[i].s == NULL && (*names[i].s = PyUnicode_InternFromString(names[i].name)) == NULL)
            return -1;
    return PyModule_AddFunctions(module, aio_methods);
}

/* ---- start-up and shut-down ---------------------------------------------- */

static int is_coroutine_app(PyObject *app)
{
    PyObject *inspect = PyImport_ImportModule("inspect");
    PyObject *check = inspect ? PyObject_GetAttrString(inspect, "iscoroutinefunction") : NULL;
    Py_XDECREF(inspect);
    if (check == NULL)
        return -1;
    int found = 0;
    PyObject *r = PyObject_CallOneArg(check, app);
    if (r && !(found = PyObject_IsTrue(r)) && !PyFunction_Check(app)
        && PyObject_HasAttrString(app, "__call__")) {
        PyObject *call = PyObject_GetAttrString(app, "__call__");
        Py_DECREF(r);
        r = call ? PyObject_CallOneArg(check, call) : NULL;
        Py_XDECREF(call);
        if (r)
            found = PyObject_IsTrue(r);
    }
    Py_XDECREF(r);
    Py_DECREF(check);
    return r == NULL ? -1 : found;
}

void srv_aio_app_loaded(PyObject *app, const char *spec)
{
    int coro = is_coroutine_app(app);
    if (coro < 0) {
        PyErr_Clear();
    } else if (coro) {
        srv_die_usage("the app %s is a coroutine function (async def): srv is a WSGI server "
                      "and calls the app synchronously; make it a plain "
                      "def app(environ, start_response) and await coroutines inside it "
                      "with srv.run_async(...)", spec);
    }
    PyObject *modules = PyImport_GetModuleDict();   /* borrowed */
    if (PyDict_GetItemString(modules, "asyncio") == NULL)
        return;
    PyObject *r = install_policy();
    if (r == NULL)
        srv_log_pyerr("cannot install srv's asyncio event loop policy");
    Py_XDECREF(r);
}

int srv_aio_pending_tasks(void)
{
    if (the_loop == NULL)
        return 0;
    PyObject *r = glue_call("_pending", &the_loop, 1);
    long n = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (n < 0) {
        srv_log_pyerr("cannot count asyncio tasks");
        return 0;
    }
    return (int)n;
}

void srv_aio_shutdown(void)
{
    if (the_loop == NULL)
        return;
    selector *s = the_sel;
    wakers_free();
    PyObject *tasks = glue_call("_cancel_all", &the_loop, 1);
    Py_ssize_t n = tasks ? PySet_Size(tasks) : -1;
    if (n > 0)
        srv_warn("stopping: cancelling %zd asyncio task(s) still pending", n);
    else if (n < 0)
        srv_log_pyerr("cannot cancel the asyncio tasks");
    /* End run_forever() in its greenlet, with us as its parent. */
    if (s->g && PyGreenlet_ACTIVE(s->g)) {
        PyObject *r = PyObject_CallMethod(the_loop, "stop", NULL);
        Py_XDECREF(r);
        PyGreenlet *cur = srv_hub_current();
        s->inplace = 1;
        if (r == NULL || PyGreenlet_SetParent(s->g, cur) < 0)
            srv_log_pyerr("cannot stop the asyncio loop");
        else {
            r = PyGreenlet_Switch(s->g, NULL, NULL);
            if (r == NULL)
                srv_log_pyerr("the asyncio loop stopped with an error");
            Py_XDECREF(r);
        }
        Py_DECREF(cur);
    }
    s->inplace = 1;
    if (tasks) {
        PyObject *argv[2] = {the_loop, tasks};
        PyObject *r = glue_call("_finish", argv, 2);
        if (r == NULL)
            srv_log_pyerr("cannot close the asyncio loop");
        Py_XDECREF(r);
    }
    Py_XDECREF(tasks);
    Py_CLEAR(s->g);
    Py_CLEAR(the_loop);
    the_sel = NULL;
}
