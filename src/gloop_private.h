/*
 * gloop_private.h - what the gevent loop modules share, and nobody else sees.
 *
 * gloop.c was one file; it is four now, around the loop object:
 *   gloop.c           the loop itself (_srv_gevent.loop): making and
 *                     destroying it, running it with the GIL released
 *                     while libev polls, its methods and attributes, error
 *                     handling (handle_error), and the _srv_gevent module
 *   gloop_callback.c  run_callback: the queue, its callback objects, and
 *                     running it before each poll
 *   gloop_watch.c     what every watcher does: start, stop, feed, ref,
 *                     priority, the self-reference while started, calling
 *                     back from libev; the base type _srv_gevent.watcher
 *   gloop_kinds.c     the ten kinds (io, timer, signal, idle, prepare,
 *                     check, fork, async_, child, stat): the loop's method
 *                     that makes each, its own attributes, its type
 * Only these include this header.
 */
#ifndef SRV_GLOOP_PRIVATE_H
#define SRV_GLOOP_PRIVATE_H

#include "srv/gloop.h"

#include <ev.h>

#define F_HELD 1          /* we hold a reference to ourselves (started) */
#define F_UNREFED 2       /* ev_unref() done for this watcher */
#define F_NOREF 4         /* ref=False */

#define GC_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC)

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

static inline int loop_alive(gloop *loop)
{
    if (loop->ptr == NULL) {
        PyErr_SetString(PyExc_ValueError, "operation on destroyed loop");
        return 0;
    }
    return 1;
}

/* After ev_*_start: a ref=False watcher stops counting for the loop. */
static inline void unref_if_needed(gwatcher *self)
{
    if ((self->flags & (F_NOREF | F_UNREFED)) == F_NOREF) {
        ev_unref(self->loop->ptr);
        self->flags |= F_UNREFED;
    }
}

static inline void hold(gwatcher *self)
{
    if (!(self->flags & F_HELD)) {
        Py_INCREF(self);
        self->flags |= F_HELD;
    }
}

/* gloop.c */
extern PyTypeObject gloop_type;
void gloop_report_error(gloop *self, PyObject *context);

/* gloop_callback.c */
extern PyTypeObject gloop_callback_type;
void gloop_on_prepare(struct ev_loop *l, ev_prepare *w, int revents);
void gloop_clear_callbacks(gloop *self);
PyObject *gloop_run_callback(gloop *self, PyObject *args);
PyObject *gloop_run_callback_threadsafe(gloop *self, PyObject *args);

/* gloop_watch.c */
extern PyTypeObject gloop_watcher_type;
gwatcher *gloop_watcher_new(PyTypeObject *type, gloop *loop, int kind, PyObject *ref,
                            PyObject *priority);
int gloop_watcher_traverse(gwatcher *self, visitproc visit, void *arg);
int gloop_watcher_clear(gwatcher *self);
void gloop_watcher_dealloc(gwatcher *self);
void gloop_stop_watcher(gwatcher *self);   /* in libev and in Python; may free self */
int gloop_set_callback_args(gwatcher *self, PyObject *args);
int gloop_kw_true(PyObject *kwargs, const char *name, int dflt);

/* gloop_kinds.c: the loop's io(), timer(), ... methods, and the kinds' types */
PyObject *gloop_new_io(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_timer(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_signal(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_idle(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_prepare(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_check(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_fork(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_async(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_child(gloop *self, PyObject *args, PyObject *kw);
PyObject *gloop_new_stat(gloop *self, PyObject *args, PyObject *kw);
extern PyTypeObject gloop_io_type, gloop_timer_type, gloop_signal_type, gloop_idle_type,
    gloop_prepare_type, gloop_check_type, gloop_fork_type, gloop_async_type,
    gloop_child_type, gloop_stat_type;

#endif
