/*
 * hub.c - the greenlet hub: the loop greenlet and a pool of worker greenlets.
 *
 * A fresh greenlet that runs Python is expensive (CPython 3.11 maps a new
 * data-stack chunk for each), so workers are long-lived.  Each runs
 * worker_run(): serve the connection it was handed, push itself on the idle
 * stack, switch to the loop greenlet, and go round again when dispatched.
 * The idle stack is LIFO so the warmest stacks are reused first; a timer
 * retires workers that the recent peak did not need.
 *
 * Dispatch is batched.  A parsed head does not switch at once: its
 * connection joins the ready queue (FIFO), and the first one of a pass of
 * the loop feeds ready_kick, a watcher at a priority below the io
 * watchers', so it runs once this pass's reads are all parsed.  It hands
 * the queue's head to a worker, and a worker that has served its connection
 * takes the next one from the queue before it parks.  Apps that do not wait
 * thus cost two switches per pass instead of two per request; an app that
 * does wait switches back into ready_kick's callback, which hands the next
 * connection to another worker.
 *
 * Every worker's greenlet is referenced from `workers` from creation until
 * run() has returned, whatever state it is in, so the hub is the one owner
 * of every suspended worker.  A worker that has finished is released (reaped)
 * from the loop greenlet after the switch that saw it finish.
 */
#include <Python.h>
#include <greenlet/greenlet.h>

#include "srv/config.h"
#include "srv/conn.h"
#include "srv/http1.h"
#include "srv/hub.h"
#include "srv/sched.h"
#include "srv/fault.h"
#include "srv/log.h"
#include "srv/metrics.h"

#define TRIM_INTERVAL 10.0
#define MIN_IDLE 8

typedef struct srv_worker {
    PyGreenlet *g;             /* owned */
    srv_conn *conn;            /* handed over by dispatch */
    unsigned exit:1;           /* finish at the next park */
    unsigned dead:1;           /* run() returned */
    int index;                 /* in workers[] */
    struct srv_worker *next_idle;
    struct srv_worker *next_dead;
} srv_worker;

static PyObject *run_fn;            /* owned: the builtin behind worker_run */
static srv_worker **workers;        /* all live workers */
static int nworkers, workers_cap;
static srv_worker *idle;
static int nidle;
static srv_worker *dead;            /* finished, not yet released */
static int busy_peak;               /* most busy workers since the last trim */
static srv_hub_serve_fn serve;     /* the request layer's, see srv_hub_set_serve */
static srv_worker *starting;        /* handed to the next new worker's run() */
static int stopping;
static ev_timer trim_timer;

static struct {                     /* connections waiting for a worker */
    srv_conn **conn;                /* a ring of cap slots */
    int head, n, cap;
} ready;
static ev_timer ready_kick;         /* never started: fed, see the top */


int srv_hub_exiting(void)
{
    return PyErr_ExceptionMatches(PyExc_GreenletExit);
}

static void idle_push(srv_worker *w)
{
    w->next_idle = idle;
    idle = w;
    nidle++;
}

static srv_worker *idle_pop(void)
{
    srv_worker *w = idle;
    if (w) {
        idle = w->next_idle;
        w->next_idle = NULL;
        nidle--;
    }
    return w;
}

static void idle_remove(srv_worker *w)
{
    for (srv_worker **p = &idle; *p; p = &(*p)->next_idle) {
        if (*p == w) {
            *p = w->next_idle;
            w->next_idle = NULL;
            nidle--;
            return;
        }
    }
}

/* Queues c; -1 when out of memory. */
static int ready_push(srv_conn *c)
{
    if (ready.n == ready.cap) {
        int cap = ready.cap ? ready.cap * 2 : 64;
        srv_conn **p = malloc(sizeof *p * (size_t)cap);
        if (p == NULL)
            return -1;
        for (int i = 0; i < ready.n; i++)
            p[i] = ready.conn[(ready.head + i) % ready.cap];
        free(ready.conn);
        ready.conn = p;
        ready.cap = cap;
        ready.head = 0;
    }
    ready.conn[(ready.head + ready.n++) % ready.cap] = c;
    return 0;
}

static srv_conn *ready_pop(void)
{
    if (ready.n == 0)
        return NULL;
    srv_conn *c = ready.conn[ready.head];
    ready.head = (ready.head + 1) % ready.cap;
    ready.n--;
    return c;
}

static PyObject *worker_run(PyObject *unused, PyObject *args)
{
    srv_worker *w = starting;
    starting = NULL;
    for (;;) {
        srv_conn *c = w->conn;
        w->conn = NULL;
        int killed = 0;
        while (c && !(killed = serve(c) < 0))
            c = w->exit || stopping ? NULL : ready_pop();   /* the next one, no switch */
        if (killed)
            break;                      /* killed: finish this greenlet */
        if (w->exit || stopping)
            break;
        idle_push(w);
        if (srv_sched_switch_to_loop() < 0) {   /* parked: not counted as suspended */
            idle_remove(w);
            if (PyErr_ExceptionMatches(PyExc_GreenletExit))
                PyErr_Clear();
            else
                srv_log_pyerr("parked worker greenlet interrupted");
            break;
        }
    }
    w->dead = 1;
    w->next_dead = dead;
    dead = w;
    Py_RETURN_NONE;
}

static PyMethodDef run_def = {"srv_worker", worker_run, METH_VARARGS, NULL};

/* Releases the workers whose run() has returned (called from the loop
 * greenlet, after the switch that saw them finish). */
static void reap(void)
{
    while (dead) {
        srv_worker *w = dead;
        dead = w->next_dead;
        workers[w->index] = workers[--nworkers];
        workers[w->index]->index = w->index;
        Py_DECREF(w->g);
        free(w);
        srv_my_metrics->greenlets_pooled = nworkers;
    }
}


static srv_worker *worker_new(void)
{
    if (nworkers == workers_cap) {
        int cap = workers_cap ? workers_cap * 2 : 64;
        srv_worker **p = realloc(workers, sizeof *p * (size_t)cap);
        if (p == NULL)
            return NULL;
        workers = p;
        workers_cap = cap;
    }
    srv_worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->g = PyGreenlet_New(run_fn, (PyGreenlet *)srv_sched_loop_task());
    if (w->g == NULL) {
        free(w);
        return NULL;
    }
    w->index = nworkers;
    workers[nworkers++] = w;
    srv_my_metrics->greenlets_pooled = nworkers;
    return w;
}

/* The switch into w failed before w took c (a greenlet that could not
 * start, out of memory): c is answered 503 and closed rather than left
 * busy forever, and w goes back to the pool, or away if it never ran. */
static void dispatch_failed(srv_worker *w, srv_conn *c)
{
    srv_log_pyerr("cannot switch into a worker greenlet");
    w->conn = NULL;
    if (starting == w) {
        starting = NULL;
        workers[w->index] = workers[--nworkers];
        workers[w->index]->index = w->index;
        srv_my_metrics->greenlets_pooled = nworkers;
        Py_DECREF(w->g);
        free(w);
    } else {
        idle_push(w);   /* still parked where it was */
    }
    srv_http1_refuse(c, 503, "no worker greenlet");
}

/* Hands c to a parked (or new) worker and switches to it. */
static void dispatch_now(srv_conn *c)
{
    srv_worker *w = idle_pop();
    if (w == NULL) {
        w = worker_new();
        if (w == NULL) {
            srv_log_pyerr("cannot create a worker greenlet");
            srv_http1_refuse(c, 503, "no worker greenlet");
            return;
        }
        starting = w;
    }
    int busy = nworkers - nidle;
    if (busy > busy_peak)
        busy_peak = busy;
    w->conn = c;
    PyObject *r = srv_fault("worker_switch") ? PyErr_NoMemory()
                                             : PyGreenlet_Switch(w->g, NULL, NULL);
    if (r == NULL && w->conn == c)
        dispatch_failed(w, c);   /* the worker never took c */
    else
        srv_sched_switched_back(r);
}

/* ready_kick: the queue is handed out.  Each switch returns when the
 * worker parks (it took what else was queued) or waits. */
static void run_ready_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    srv_conn *c;
    while ((c = ready_pop()) != NULL)
        dispatch_now(c);
}

SRV_EV_CALLBACK(on_ready_kick, ev_timer, run_ready_cb)

void srv_hub_dispatch(srv_conn *c)
{
    if (ready_push(c) < 0) {
        dispatch_now(c);   /* no room to queue it: serve it without batching */
        return;
    }
    if (!ev_is_pending(&ready_kick))
        ev_feed_event(srv_loop, &ready_kick, EV_TIMER);
}

void srv_hub_throw(PyGreenlet *g, PyObject *exc_type)
{
    srv_sched_switched_back(PyGreenlet_Throw(g, exc_type, NULL, NULL));
}

/* Retires parked workers beyond what the recent peak needed. */
static void trim_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    int keep = busy_peak > MIN_IDLE ? busy_peak : MIN_IDLE;
    while (nidle > keep) {
        srv_worker *w = idle_pop();
        w->exit = 1;
        srv_sched_switched_back(PyGreenlet_Switch(w->g, NULL, NULL));
    }
    busy_peak = nworkers - nidle;
}

SRV_EV_CALLBACK(on_trim, ev_timer, trim_cb)

/* Does the imported greenlet export the C API srv was compiled against
 * (greenlet.h: PyGreenlet_API_pointers slots in a fixed order)?  Its table
 * must hold greenlet's own type, exceptions and current greenlet.  Returns
 * NULL, or what is wrong. */
static const char *api_mismatch(PyObject *mod)
{
    PyObject *type = PyObject_GetAttrString(mod, "greenlet");
    PyObject *exit = PyObject_GetAttrString(mod, "GreenletExit");
    PyObject *err = PyObject_GetAttrString(mod, "error");
    PyObject *cur = PyObject_CallMethod(mod, "getcurrent", NULL);
    const char *why = NULL;
    if (type == NULL || exit == NULL || err == NULL || cur == NULL)
        why = "its module lacks greenlet, GreenletExit, error or getcurrent";
    else if ((PyObject *)&PyGreenlet_Type != type || PyExc_GreenletExit != exit
             || PyExc_GreenletError != err)
        why = "its C API table does not hold its own types";
    else {
        PyGreenlet *c = PyGreenlet_GetCurrent();
        if ((PyObject *)c != cur || !PyGreenlet_MAIN(c) || PyGreenlet_GET_PARENT(c) != NULL)
            why = "its C API table does not hold its own functions";
        Py_XDECREF(c);
    }
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(exit);
    Py_XDECREF(err);
    Py_XDECREF(cur);
    return why;
}

static void check_greenlet_api(void)
{
    PyObject *mod = PyImport_ImportModule("greenlet");
    PyObject *ver = mod ? PyObject_GetAttrString(mod, "__version__") : NULL;
    const char *v = ver && PyUnicode_Check(ver) ? PyUnicode_AsUTF8(ver) : "?";
    PyErr_Clear();
    const char *why = mod ? api_mismatch(mod) : "it does not import";
    if (why)
        srv_die_usage("greenlet %s does not match the greenlet C API srv was compiled against "
                      "(greenlet.h, %d entries): %s; rebuild srv with this greenlet installed",
                      v ? v : "?", PyGreenlet_API_pointers, why);
    Py_XDECREF(ver);
    Py_XDECREF(mod);
}

void srv_hub_set_serve(srv_hub_serve_fn fn)
{
    serve = fn;
}

int srv_hub_init(struct ev_loop *loop)
{
    PyGreenlet_Import();   /* greenlet.h's API table is per source file */
    if (_PyGreenlet_API == NULL)
        return -1;
    check_greenlet_api();   /* before anything calls through the table */
    if (srv_sched_init(loop) < 0)
        return -1;
    srv_sched_after_switch = reap;
    srv_http1_on_head = srv_hub_dispatch;   /* a parsed head goes to a worker */
    run_fn = PyCFunction_New(&run_def, NULL);
    if (run_fn == NULL)
        return -1;
    ev_init(&ready_kick, on_ready_kick);
    ev_set_priority(&ready_kick, EV_MINPRI + 1);   /* after the io watchers (0) */
    ev_timer_init(&trim_timer, on_trim, TRIM_INTERVAL, TRIM_INTERVAL);
    ev_timer_start(loop, &trim_timer);
    ev_unref(loop);   /* the trim timer alone does not keep the loop alive */
    return 0;
}

int srv_hub_set_loop_greenlet(PyGreenlet *g)
{
    for (int i = 0; i < nworkers; i++)
        if (PyGreenlet_SetParent(workers[i]->g, g) < 0)
            return -1;
    srv_sched_set_loop_task((srv_task *)g);
    return 0;
}

void srv_hub_shutdown(void)
{
    stopping = 1;
    if (ev_is_active(&trim_timer)) {
        ev_ref(srv_loop);
        ev_timer_stop(srv_loop, &trim_timer);
    }
    while (nidle > 0) {
        srv_worker *w = idle_pop();
        w->exit = 1;
        srv_sched_switched_back(PyGreenlet_Switch(w->g, NULL, NULL));
    }
    /* Busy workers: throw GreenletExit in; each ends its connection. */
    for (int round = 0; round < 3 && nworkers > 0; round++) {
        for (int i = nworkers - 1; i >= 0; i--) {
            if (i >= nworkers)
                continue;
            srv_worker *w = workers[i];
            if (w->dead || !PyGreenlet_ACTIVE(w->g))
                continue;
            w->exit = 1;
            srv_sched_switched_back(PyGreenlet_Throw(w->g, PyExc_GreenletExit, NULL, NULL));
        }
    }
    /* Heads parsed but never handed out: closed, like the busy ones. */
    srv_conn *c;
    while ((c = ready_pop()) != NULL)
        srv_conn_close(c);
    reap();
}
