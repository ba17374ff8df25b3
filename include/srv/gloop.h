/*
 * gloop.h - gevent's event loop, provided by srv on the libev srv links.
 *
 * Owns the built-in module `_srv_gevent`: `_srv_gevent.loop`, a loop class
 * that implements gevent's loop interface (gevent._interfaces.ILoop: the
 * io, timer, signal, idle, prepare, check, fork, async_, child and stat
 * watchers, run_callback, now, run, break_ ...) in C on srv's libev, its
 * watcher types and its callback objects.  geventmode.c hands the class to
 * gevent (gevent.config.loop) before gevent's hub exists, so gevent's hub
 * runs srv's ev_default_loop whatever libev gevent itself was built with
 * (pip wheels embed their own): gevent's watchers and srv's live on one
 * loop, and no watcher of another libev copy is ever created.
 */
#ifndef SRV_GLOOP_H
#define SRV_GLOOP_H

#include <Python.h>

/* Registers `_srv_gevent` as a built-in module (before Py_Initialize). */
int srv_gloop_register(void);

/* A new `_srv_gevent` module: its init function, which pymod.c calls when
 * the interpreter runs already (handover.h). */
PyObject *srv_gloop_create_module(void);

/* Imports `_srv_gevent` and returns a new reference to its loop class. */
PyObject *srv_gloop_class(void);

#endif
