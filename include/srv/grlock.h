/*
 * grlock.h - threading's locks for gevent mode, in C.
 *
 * Owns srv.RLock: a re-entrant lock whose owner is a greenlet, with
 * threading.RLock's interface, and srv.Lock, threading.Lock's.  After
 * gevent's monkey-patching, which leaves threading.RLock() to CPython's
 * pure-Python _RLock over gevent's Python lock, and threading.Lock() to
 * gevent's Cython semaphore, srv_grlock_install() puts them in their
 * places, so that taking a free lock costs no Python call.  Contended, they
 * wait on a gevent Semaphore, so only the waiting greenlet is suspended.
 * Also puts a C get_ident() (the current greenlet's id, as gevent's) in
 * place of gevent's Python one in threading and _thread.
 */
#ifndef SRV_GRLOCK_H
#define SRV_GRLOCK_H

#include <Python.h>

/* Sets threading._CRLock to srv.RLock, and replaces gevent's Lock (in
 * threading.Lock, threading._allocate_lock, _thread.allocate_lock and
 * _thread.LockType) and get_ident (gevent mode, after patch_all).  -1 with
 * a Python error set. */
int srv_grlock_install(void);

#endif
