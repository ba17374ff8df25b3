/*
 * geventmode.h - running srv on gevent's hub (--mode gevent).
 *
 * Owns everything srv knows about gevent: giving gevent srv's loop class
 * (gloop.h) before its hub exists, monkey-patching before the app is
 * imported, refusing a gevent that cannot take a loop class, making gevent's hub the loop
 * greenlet, running the hub, resetting gevent's greenlet-local state between
 * the requests a pooled worker serves, and handing the workers back to the
 * main greenlet at shut-down.
 */
#ifndef SRV_GEVENTMODE_H
#define SRV_GEVENTMODE_H

#include <Python.h>
#include <ev.h>

/* Can gevent be imported?  (Clears the ImportError.) */
int srv_gevent_importable(void);

/* Gives gevent srv's loop class, patches the stdlib unless told not to and
 * starts gevent's hub on ev_default_loop.  Returns the loop, or exits with
 * a one-line error (status 2) when this gevent cannot use it. */
struct ev_loop *srv_gevent_setup(int monkey_patch);

/* Runs gevent's hub (and so the loop) until srv_loop_stop() breaks it. */
void srv_gevent_run(void);

/* Forgets the gevent.local values that greenlet g (borrowed: the current
 * worker, which the caller already holds) set. */
void srv_gevent_reset_locals(PyObject *g);

/* Makes the main greenlet the workers' parent again, for shut-down. */
void srv_gevent_detach(void);

extern int srv_gevent_active;

#endif
