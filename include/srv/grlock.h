/*
 * grlock.h - threading.RLock for gevent mode, in C.
 *
 * Owns srv.RLock: a re-entrant lock whose owner is a greenlet, with
 * threading.RLock's interface.  After gevent's monkey-patching, which
 * leaves threading.RLock() to CPython's pure-Python _RLock over gevent's
 * Python lock, srv_grlock_install() makes threading.RLock() return it, so
 * that taking a free lock costs no Python call.  Contended, it waits on a
 * gevent Semaphore, so only the waiting greenlet is suspended.  Also puts a
 * C get_ident() (the current greenlet's id, as gevent's) in place of
 * gevent's Python one in threading and _thread.
 */
#ifndef SRV_GRLOCK_H
#define SRV_GRLOCK_H

#include <Python.h>

/* Sets threading._CRLock to srv.RLock and replaces gevent's get_ident
 * (gevent mode, after patch_all).  -1 with a Python error set. */
int srv_grlock_install(void);

#endif
