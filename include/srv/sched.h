/*
 * sched.h - the event loop, and the tasks that wait on it.
 *
 * Owns srv_loop (the worker's libev loop), the "loop task" (the greenlet
 * that runs ev_run: the main greenlet in native mode, gevent's hub in gevent
 * mode), and the three moves every layer that waits is built from: a task
 * takes a handle on itself (srv_task_current), waits (srv_task_wait), and a
 * libev callback in the loop task resumes it (srv_task_resume).
 *
 * A task is a greenlet.  This header has no Python in it, so the socket and
 * connection layers (loop.c, conn.c) wait and resume without knowing what a
 * greenlet is; the Python layers convert with srv_hub_task()/srv_hub_greenlet
 * (hub.h).  It calls no module above it: what must happen after each switch
 * back into the loop task (hub.c reaps finished workers) is a hook.
 */
#ifndef SRV_SCHED_H
#define SRV_SCHED_H

#include <ev.h>

/* A greenlet, opaque below the Python layers. */
typedef struct srv_task srv_task;

extern struct ev_loop *srv_loop;

/* Every srv libev callback runs holding the GIL: SRV_EV_CALLBACK(on_x,
 * ev_io, x) defines on_x, which runs x(loop, w, revents) holding it.  In
 * both modes the loop (srv's ev_run, or gevent's hub on _srv_gevent.loop)
 * already holds the GIL while it dispatches and releases it only to poll,
 * so taking it again is a counter increment. */
int srv_sched_lock(void);
void srv_sched_unlock(int token);
#define SRV_EV_CALLBACK(name, wtype, body)                          \
    static void name(struct ev_loop *loop, wtype *w, int revents)   \
    {                                                               \
        int sched_token_ = srv_sched_lock();                        \
        body(loop, w, revents);                                     \
        srv_sched_unlock(sched_token_);                             \
    }

/* Imports greenlet's C API; the current greenlet becomes the loop task and
 * loop the loop.  -1 with a Python error set. */
int srv_sched_init(struct ev_loop *loop);

/* A new reference to the current task; srv_task_release() drops it. */
srv_task *srv_task_current(void);
void srv_task_release(srv_task *t);

/* Is the current task the loop task? */
int srv_task_in_loop(void);

/* Switches to the loop task until someone resumes this one.  Returns 0, or
 * -1 with an error pending in the task (e.g. GreenletExit thrown in). */
int srv_task_wait(void);

/* From the loop task: switches to t (borrowed), which waits in
 * srv_task_wait(). */
void srv_task_resume(srv_task *t);

/* The loop task (borrowed), and replacing it (a new reference is taken):
 * for hub.c, which moves its workers' parent along. */
srv_task *srv_sched_loop_task(void);
void srv_sched_set_loop_task(srv_task *t);

/* Switches to the loop task without counting a suspended task (a parked
 * worker); 0, or -1 with an error pending. */
int srv_sched_switch_to_loop(void);

/* After a switch from the loop task into another task returns with that
 * switch's result (a PyObject, NULL for an exception): logs an exception,
 * drops the result, then runs srv_sched_after_switch if set. */
struct _object;
void srv_sched_switched_back(struct _object *result);
extern void (*srv_sched_after_switch)(void);

/* The current task cannot wait now, for the reason given: raises
 * RuntimeError(why) in it, for its caller's -1 to carry. */
void srv_task_refuse(const char *why);

#endif
