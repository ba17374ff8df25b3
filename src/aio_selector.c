/*
 * aio_selector.c - the selector of srv's asyncio loop (see aio_private.h).
 *
 * selectors.BaseSelector's interface in C: one ev_io per registered fd on
 * srv's loop.  It never blocks the thread: the asyncio loop runs
 * run_forever() in a greenlet of its own, and its select(timeout) waits in
 * the hub like a request greenlet (a zero timeout arms a zero ev_timer, so
 * that srv's loop still turns once; None arms nothing: timers are libev
 * watchers of their own, aio_core.c).
 *
 * Whatever becomes ready for the asyncio loop while its greenlet waits (an
 * io event, a timer, a callback from a request) kicks it.  A kick is an
 * ev_timer that is never started but fed to libev: from srv's own
 * callbacks (timers, io) at the lowest priority, so that it runs after
 * every other event of the same pass and the asyncio loop takes all of
 * them at once; from a request greenlet (run_async's create_task) at the
 * highest, so that the coroutine starts as soon as the request yields
 * rather than at the end of the pass (B8: median 101.5 ms rather than
 * 103.8-104.8).  Outside ev_run (at start-up) the kick is the zero timer
 * instead.  The first kick creates the greenlet, from the loop greenlet,
 * which so becomes its parent.
 *
 * An io event that comes while the asyncio greenlet cannot be resumed (in
 * gevent mode a coroutine may block on gevent) stops its watcher until
 * select() has collected it, so a level-triggered fd never makes the loop
 * spin.  If run_forever() ends (a SystemExit out of a callback), the next
 * kick starts a fresh greenlet, a few times in a row at most.
 */
#include "aio_private.h"

#include <greenlet/greenlet.h>
#include "srv/log.h"

#include <stddef.h>
#include <stdlib.h>

/* ---- the selector -------------------------------------------------------- */

static entry *lookup(selector *s, int fd)
{
    return fd >= 0 && fd < s->nfds ? s->fds[fd] : NULL;
}

static void forget_dead_greenlet(selector *s);

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
            aio_kick(s);
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
    }
}

/* Starts the asyncio greenlet, or resumes it if it waits in select(). */
static void wake_greenlet(selector *s)
{
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

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    selector *s = (selector *)((char *)t - offsetof(selector, timer));
    s->fired = 1;
    s->kicked = 0;
    wake_greenlet(s);
}

SRV_EV_CALLBACK(on_timer, ev_timer, timer_cb)

static void kick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    selector *s = (selector *)((char *)t - offsetof(selector, kick));
    s->fed = 0;
    wake_greenlet(s);
}

SRV_EV_CALLBACK(on_kick, ev_timer, kick_cb)

static void kick_now_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    selector *s = (selector *)((char *)t - offsetof(selector, kick_now));
    s->fed_now = 0;
    wake_greenlet(s);
}

SRV_EV_CALLBACK(on_kick_now, ev_timer, kick_now_cb)

/* call_soon_threadsafe from another thread (aio_core.c's _write_to_self). */
static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    aio_kick((selector *)((char *)w - offsetof(selector, async)));
}

SRV_EV_CALLBACK(on_async, ev_async, async_cb)

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
        aio_kick(s);
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
void aio_kick(selector *s)
{
    if (s->g && PyGreenlet_STARTED(s->g) && !PyGreenlet_ACTIVE(s->g))
        s->restarts = 0;   /* someone new needs the loop: try again */
    forget_dead_greenlet(s);
    if (s->closed || s->inplace || (s->g && !s->waiting) || s->kicked)
        return;
    if (ev_depth(srv_loop) > 0) {   /* in a callback of srv's loop */
        if (!srv_hub_in_loop()) {   /* a request: run it next */
            if (!s->fed_now) {
                s->fed_now = 1;
                ev_feed_event(srv_loop, &s->kick_now, EV_TIMER);
            }
        } else if (!s->fed) {       /* a timer, io: after this pass's others */
            s->fed = 1;
            ev_feed_event(srv_loop, &s->kick, EV_TIMER);
        }
        return;
    }
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
    return PyObject_CallFunction(aio_key_type, "OiiO", fileobj, fd, events, data);
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
    } while (timeout != 0 && s->nready == 0 && s->rq_len == 0 && !s->fired);
    timer_stop(s);
    return 0;
}

/* select(0) with callbacks ready: may the asyncio greenlet take another
 * turn in this pass of srv's loop, after its other pending events (a chain
 * like timer, task wake-up, done callback then costs one pass, not three)?
 * A few turns per pass at most: then the zero timer lets srv's loop poll,
 * so that a task that is always ready does not starve everyone else. */
#define TURNS_PER_PASS 4

static int same_pass_turn(selector *s)
{
    if (ev_depth(srv_loop) == 0)
        return 0;
    unsigned it = ev_iteration(srv_loop);
    if (it != s->pass) {
        s->pass = it;
        s->turns = 0;
    }
    return ++s->turns <= TURNS_PER_PASS;
}

/* In the asyncio greenlet: let srv's loop turn until an event or the
 * timer switches us back. */
static int wait_in_greenlet(selector *s, double timeout)
{
    if (timeout == 0 && same_pass_turn(s)) {
        s->fed = 1;     /* after this pass's other events, not after a poll */
        ev_feed_event(srv_loop, &s->kick, EV_TIMER);
    } else {
        timer_arm(s, timeout);
    }
    s->waiting = 1;
    s->restarts = 0;
    int rc = srv_hub_wait();
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
    return aio_select(s, timeout);
}

PyObject *aio_select(selector *s, double timeout)
{
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
    aio_core_clear(s);
    if (srv_loop) {
        timer_stop(s);
        ev_clear_pending(srv_loop, &s->kick);
        ev_clear_pending(srv_loop, &s->kick_now);
        s->fed = s->fed_now = 0;
        if (ev_is_active(&s->async)) {
            ev_ref(srv_loop);
            ev_async_stop(srv_loop, &s->async);
        }
    }
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
    if (s == NULL)
        return NULL;
    ev_init(&s->timer, on_timer);
    ev_init(&s->kick, on_kick);
    ev_set_priority(&s->kick, EV_MINPRI);
    ev_init(&s->kick_now, on_kick_now);
    ev_set_priority(&s->kick_now, EV_MAXPRI);
    ev_async_init(&s->async, on_async);
    ev_async_start(srv_loop, &s->async);
    ev_unref(srv_loop);     /* it alone does not keep srv's loop running */
    return (PyObject *)s;
}

static void sel_dealloc(selector *s)
{
    sel_stop_all(s);
    free(s->fds);
    free(s->ready);
    free(s->rq);
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

PyTypeObject AioSelectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv._Selector",
    .tp_doc = "selectors.BaseSelector's interface on libev io watchers of srv's loop",
    .tp_basicsize = sizeof(selector),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = sel_new,
    .tp_dealloc = (destructor)sel_dealloc,
    .tp_methods = sel_methods,
};

/* ---- start-up -------------------------------------------------------------- */

int aio_selector_init(void)
{
    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL)
        return -1;
    if (PyType_Ready(&AioSelectorType) < 0)
        return -1;
    return 0;
}
