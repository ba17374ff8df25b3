/*
 * hub.h - the greenlet hub: who runs the loop, and the pool of workers.
 *
 * Owns the "loop greenlet" (the greenlet that runs ev_run: the main greenlet
 * in native mode; another loop owner, such as gevent's hub, can be installed
 * with srv_hub_set_loop_greenlet) and the pool of long-lived worker greenlets
 * whose parent it is.  A worker takes a connection whose request head is
 * parsed, serves it (and any pipelined successors), takes the next queued
 * connection if there is one, and otherwise parks itself in the pool and
 * switches back to the loop; it is never created per request.  The hub
 * holds a strong reference to every worker, parked or busy, until it has
 * finished, so a suspended greenlet is never garbage-collected.
 *
 * Rules for callers: srv_hub_wait() is called from any greenlet but the loop
 * greenlet; srv_hub_resume() and srv_hub_dispatch() only from the loop
 * greenlet (libev callbacks).  After either returns, the caller must not use
 * state that the resumed greenlet may have freed.  Never hand a pointer to a
 * greenlet's stack to another greenlet: a suspended greenlet's stack is
 * copied away and the addresses are reused.
 */
#ifndef SRV_HUB_H
#define SRV_HUB_H

#include <Python.h>
#include <ev.h>

#include "srv/sched.h"

/* greenlet.h defines a static API table; include it in hub.c only. */
typedef struct _greenlet PyGreenlet;

struct srv_conn;

/* Imports greenlet's C API (srv_sched_init: the current greenlet becomes
 * the loop task) and checks that it matches what srv was compiled against. */
int srv_hub_init(struct ev_loop *loop);

/* Another greenlet runs the loop from now on (e.g. gevent's hub).  Workers
 * created later get it as parent. */
int srv_hub_set_loop_greenlet(PyGreenlet *g);

/* The Python layers' view of sched.h: a task is a greenlet. */
static inline int srv_hub_in_loop(void) { return srv_task_in_loop(); }
static inline PyGreenlet *srv_hub_current(void) { return (PyGreenlet *)srv_task_current(); }
static inline int srv_hub_wait(void) { return srv_task_wait(); }
static inline void srv_hub_resume(PyGreenlet *g) { srv_task_resume((srv_task *)g); }

/* Is the pending exception GreenletExit (the greenlet is being killed)? */
int srv_hub_exiting(void);

/* What a worker runs for a connection it is handed (the request layer's
 * srv_wsgi_serve): 0, or -1 when the greenlet must finish. */
typedef int (*srv_hub_serve_fn)(struct srv_conn *c);
void srv_hub_set_serve(srv_hub_serve_fn serve);

/* Queues the connection for a worker.  The queue is handed out once the
 * loop's current pass has run its io callbacks: to a parked (or new) worker,
 * or to one that has just served its own connection, without a switch.
 * Called from the loop greenlet. */
void srv_hub_dispatch(struct srv_conn *c);

/* Like srv_hub_resume(), but raises exc_type in g where it waits. */
void srv_hub_throw(PyGreenlet *g, PyObject *exc_type);

/* Stops all parked workers and throws GreenletExit into busy ones. */
void srv_hub_shutdown(void);


#endif
