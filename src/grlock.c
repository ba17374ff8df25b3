/*
 * grlock.c - threading's locks for gevent mode, in C: RLock (re-entrant,
 * owned by a greenlet) and Lock (see grlock.h).
 *
 * gevent's monkey-patching sets threading._CRLock to None, so every
 * threading.RLock() becomes CPython's pure-Python _RLock over gevent's
 * Python get_ident() and lock: a handful of Python calls per acquire and
 * per release.  Libraries take such locks on every request (asgiref's
 * Local, behind each of Django's per-request lookups, takes one per
 * attribute access: about 20 µs of a Django hello world in gevent mode).
 *
 * This lock keeps its owner (the greenlet that holds it, compared by
 * address as gevent compares idents) and its count in C.  Taking a free
 * lock, or one the caller already holds, touches no Python code.  Only a
 * greenlet that finds the lock held by another waits, on a gevent
 * Semaphore(0) made at the first contention, which each release that finds
 * waiters signals once; the woken greenlet checks again, so a lock taken
 * meanwhile by another greenlet is simply waited for again.
 *
 * It has RLock's whole interface, including the three methods that
 * threading.Condition uses (_is_owned, _release_save, _acquire_restore)
 * and _at_fork_reinit for logging's handlers in a forked worker.
 *
 * threading.Lock, which gevent makes its Cython BoundedSemaphore, gets the
 * same treatment: srv.Lock, the same count and waiting without an owner.
 *
 * acquire() and __enter__ take their arguments by vectorcall: a `with` or a
 * bare acquire() builds no argument tuple and parses nothing.
 *
 * The same goes for get_ident(): gevent's is a Python function returning
 * id(getcurrent()), called by threading.current_thread() and so by every
 * asgiref Local lookup.  srv's returns the same number from C.
 */
#include "srv/grlock.h"
#include "srv/clock.h"

#include <greenlet/greenlet.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    void *owner;            /* the holding greenlet's address, compared only */
    unsigned long count;    /* re-entries; 0 when free */
    long waiters;           /* greenlets waiting in acquire() */
    PyObject *sem;          /* owned: gevent.lock.Semaphore(0), once contended */
    PyObject *weakrefs;
} grlock;

static PyObject *semaphore_type;   /* owned: gevent.lock.Semaphore */

/* The current greenlet's address: an identity only, no reference kept. */
static void *current_owner(void)
{
    PyGreenlet *g = PyGreenlet_GetCurrent();
    if (g == NULL)
        return NULL;
    Py_DECREF(g);
    return g;
}

static int make_sem(grlock *l)
{
    if (l->sem)
        return 0;
    if (semaphore_type == NULL) {
        PyObject *mod = PyImport_ImportModule("gevent.lock");
        semaphore_type = mod ? PyObject_GetAttrString(mod, "Semaphore") : NULL;
        Py_XDECREF(mod);
        if (semaphore_type == NULL)
            return -1;
    }
    PyObject *zero = PyLong_FromLong(0);
    l->sem = zero ? PyObject_CallOneArg(semaphore_type, zero) : NULL;
    Py_XDECREF(zero);
    return l->sem ? 0 : -1;
}

/* Waits on the semaphore until the lock is free, for at most timeout
 * seconds (< 0: no limit).  1: free; 0: timed out; -1: error. */
static int wait_free(grlock *l, double timeout)
{
    if (make_sem(l) < 0)
        return -1;
    double deadline = timeout >= 0 ? srv_monotonic() + timeout : 0;
    int rc = 1;
    l->waiters++;
    while (l->count != 0) {
        PyObject *r;
        if (timeout < 0) {
            r = PyObject_CallMethod(l->sem, "acquire", NULL);
        } else {
            double left = deadline - srv_monotonic();
            if (left <= 0) {
                rc = 0;
                break;
            }
            r = PyObject_CallMethod(l->sem, "acquire", "Od", Py_True, left);
        }
        if (r == NULL) {
            rc = -1;
            break;
        }
        int got = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (!got && l->count != 0) {   /* the semaphore's timeout */
            rc = 0;
            break;
        }
    }
    l->waiters--;
    return rc;
}

/* Takes the lock for the current greenlet.  1, 0 (not taken), -1. */
static int take(grlock *l, int blocking, double timeout)
{
    void *me = current_owner();
    if (me == NULL)
        return -1;
    if (l->count == 0) {
        l->owner = me;
        l->count = 1;
        return 1;
    }
    if (l->owner == me) {
        if (l->count == ULONG_MAX) {
            PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
            return -1;
        }
        l->count++;
        return 1;
    }
    if (!blocking)
        return 0;
    int rc = wait_free(l, timeout);
    if (rc == 1) {
        l->owner = me;
        l->count = 1;
    }
    return rc;
}

/* The lock became free: wake one waiter, if any. */
static int hand_on(grlock *l)
{
    if (l->waiters == 0 || l->sem == NULL)
        return 0;
    PyObject *r = PyObject_CallMethod(l->sem, "release", NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* acquire()'s arguments, as CPython's RLock reads and checks them
 * (blocking as an int, timeout as a number of seconds, with its messages),
 * parsed by hand: `with lock:` and lock.acquire() pass none, and their
 * defaults need no check, so callers skip this when there is nothing to
 * parse and a vectorcall costs no argument tuple.  0, or -1 with TypeError
 * or ValueError set. */
static int acquire_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                        int *blocking, double *timeout)
{
    PyObject *given[2] = {NULL, NULL};   /* borrowed: blocking, timeout */
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "acquire() takes at most 2 arguments (%zd given)", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        given[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int which = PyUnicode_CompareWithASCIIString(name, "blocking") == 0 ? 0
                    : PyUnicode_CompareWithASCIIString(name, "timeout") == 0 ? 1 : -1;
        if (which < 0) {
            PyErr_Format(PyExc_TypeError, "'%U' is an invalid keyword argument for acquire()", name);
            return -1;
        }
        if (given[which] != NULL) {
            PyErr_Format(PyExc_TypeError, "argument for acquire() given by name ('%U') and "
                         "position (%d)", name, which + 1);
            return -1;
        }
        given[which] = args[nargs + i];
    }
    if (given[0] != NULL) {
        long b = PyLong_AsLong(given[0]);
        if (b == -1 && PyErr_Occurred())
            return -1;
        *blocking = b != 0;
    }
    if (given[1] != NULL) {
        *timeout = PyFloat_AsDouble(given[1]);
        if (*timeout == -1 && PyErr_Occurred())
            return -1;
    }
    if (!*blocking && *timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return -1;
    }
    if (*timeout < 0 && *timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be positive");
        return -1;
    }
    return 0;
}

static PyObject *grlock_acquire(grlock *l, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    int blocking = 1;
    double timeout = -1;
    if ((nargs != 0 || kwnames != NULL)
            && acquire_args(args, nargs, kwnames, &blocking, &timeout) < 0)
        return NULL;
    int rc = take(l, blocking, timeout);
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

/* Does the current greenlet hold l?  0, or -1 with RuntimeError set. */
static int check_held(grlock *l)
{
    void *me = current_owner();
    if (me == NULL)
        return -1;
    if (l->count == 0 || l->owner != me) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return -1;
    }
    return 0;
}

static PyObject *grlock_release(grlock *l, PyObject *unused)
{
    if (check_held(l) < 0)
        return NULL;
    if (--l->count == 0) {
        l->owner = NULL;
        if (hand_on(l) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *grlock_exit(grlock *l, PyObject *const *args, Py_ssize_t nargs)
{
    return grlock_release(l, NULL);
}

static PyObject *grlock_is_owned(grlock *l, PyObject *unused)
{
    void *me = current_owner();
    if (me == NULL)
        return NULL;
    return PyBool_FromLong(l->count > 0 && l->owner == me);
}

/* Condition.wait(): release whatever the count, keep it to restore. */
static PyObject *grlock_release_save(grlock *l, PyObject *unused)
{
    if (check_held(l) < 0)
        return NULL;
    unsigned long count = l->count;
    l->count = 0;
    l->owner = NULL;
    if (hand_on(l) < 0)
        return NULL;
    return Py_BuildValue("(ki)", count, 0);
}

static PyObject *grlock_acquire_restore(grlock *l, PyObject *state)
{
    unsigned long count;
    int ignored;
    if (!PyArg_ParseTuple(state, "ki:_acquire_restore", &count, &ignored))
        return NULL;
    int rc = take(l, 1, -1);
    if (rc < 0)
        return NULL;
    l->count = count;
    Py_RETURN_NONE;
}

/* In a forked child: free, with no waiters (they were in the parent). */
static PyObject *grlock_at_fork_reinit(grlock *l, PyObject *unused)
{
    l->owner = NULL;
    l->count = 0;
    l->waiters = 0;
    Py_CLEAR(l->sem);
    Py_RETURN_NONE;
}

static PyObject *grlock_repr(grlock *l)
{
    return PyUnicode_FromFormat("<%s %s object owner=%p count=%lu at %p>",
                                l->count ? "locked" : "unlocked", Py_TYPE(l)->tp_name,
                                l->count ? l->owner : NULL, l->count, l);
}

static PyObject *grlock_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    grlock *l = (grlock *)type->tp_alloc(type, 0);
    return (PyObject *)l;   /* all fields zero: free */
}

static void grlock_dealloc(grlock *l)
{
    if (l->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)l);
    Py_XDECREF(l->sem);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyMethodDef grlock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))grlock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1): take the lock for this greenlet"},
    {"__enter__", (PyCFunction)(void (*)(void))grlock_acquire, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"release", (PyCFunction)grlock_release, METH_NOARGS, "release(): give one level back"},
    {"__exit__", (PyCFunction)(void (*)(void))grlock_exit, METH_FASTCALL, NULL},
    {"_is_owned", (PyCFunction)grlock_is_owned, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)grlock_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)grlock_acquire_restore, METH_O, NULL},
    {"_at_fork_reinit", (PyCFunction)grlock_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GRLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.RLock",
    .tp_doc = "threading.RLock in gevent mode: re-entrant, owned by a greenlet",
    .tp_basicsize = sizeof(grlock),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_weaklistoffset = offsetof(grlock, weakrefs),
    .tp_new = grlock_new,
    .tp_dealloc = (destructor)grlock_dealloc,
    .tp_repr = (reprfunc)grlock_repr,
    .tp_methods = grlock_methods,
};

/* --- srv.Lock: threading.Lock, owned by no one --------------------------
 *
 * gevent's patched Lock is its Cython BoundedSemaphore: a few thousand
 * instructions per acquire and release, even free, and Django takes one
 * twice per request (its request_started and request_finished signals).
 * This one keeps only the count; any greenlet may release it, as with a
 * thread lock.  Contended, it waits as srv.RLock does.  A non-blocking
 * acquire that fails lets the other greenlets run first, as gevent's does,
 * so that spin loops over acquire(False) make progress. */

static PyObject *gevent_sleep;        /* owned: gevent.sleep, once needed */
static PyObject *get_hub_if_exists;   /* owned: gevent's, once needed */

/* After a failed non-blocking acquire: gevent.sleep(0), unless this is the
 * hub, which must not switch away.  0, or -1 with an error set. */
static int let_others_run(void)
{
    if (gevent_sleep == NULL) {
        PyObject *g = PyImport_ImportModule("gevent");
        PyObject *h = PyImport_ImportModule("gevent._hub_local");
        gevent_sleep = g ? PyObject_GetAttrString(g, "sleep") : NULL;
        get_hub_if_exists = h ? PyObject_GetAttrString(h, "get_hub_if_exists") : NULL;
        Py_XDECREF(g);
        Py_XDECREF(h);
        if (gevent_sleep == NULL || get_hub_if_exists == NULL) {
            Py_CLEAR(gevent_sleep);
            Py_CLEAR(get_hub_if_exists);
            return -1;
        }
    }
    PyObject *hub = PyObject_CallNoArgs(get_hub_if_exists);
    if (hub == NULL)
        return -1;
    int in_hub = (void *)hub == current_owner();
    Py_DECREF(hub);
    if (in_hub)
        return 0;
    PyObject *r = PyObject_CallNoArgs(gevent_sleep);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static PyObject *glock_acquire(grlock *l, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    int blocking = 1;
    double timeout = -1;
    if ((nargs != 0 || kwnames != NULL)
            && acquire_args(args, nargs, kwnames, &blocking, &timeout) < 0)
        return NULL;
    if (l->count == 0) {
        l->count = 1;
        Py_RETURN_TRUE;
    }
    if (!blocking)
        return let_others_run() < 0 ? NULL : Py_NewRef(Py_False);
    int rc = wait_free(l, timeout);
    if (rc == 1)
        l->count = 1;
    return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *glock_release(grlock *l, PyObject *unused)
{
    if (l->count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    l->count = 0;
    if (hand_on(l) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *glock_exit(grlock *l, PyObject *const *args, Py_ssize_t nargs)
{
    return glock_release(l, NULL);
}

static PyObject *glock_locked(grlock *l, PyObject *unused)
{
    return PyBool_FromLong(l->count != 0);
}

static PyObject *glock_repr(grlock *l)
{
    return PyUnicode_FromFormat("<%s %s object at %p>", l->count ? "locked" : "unlocked",
                                Py_TYPE(l)->tp_name, l);
}

static PyMethodDef glock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))glock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1): take the lock"},
    {"acquire_lock", (PyCFunction)(void (*)(void))glock_acquire, METH_FASTCALL | METH_KEYWORDS,
     NULL},
    {"__enter__", (PyCFunction)(void (*)(void))glock_acquire, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"release", (PyCFunction)glock_release, METH_NOARGS, "release(): free the lock"},
    {"release_lock", (PyCFunction)glock_release, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))glock_exit, METH_FASTCALL, NULL},
    {"locked", (PyCFunction)glock_locked, METH_NOARGS, "locked(): is it held?"},
    {"locked_lock", (PyCFunction)glock_locked, METH_NOARGS, NULL},
    {"_at_fork_reinit", (PyCFunction)grlock_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.Lock",
    .tp_doc = "threading.Lock in gevent mode: waits by suspending the greenlet",
    .tp_basicsize = sizeof(grlock),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_weaklistoffset = offsetof(grlock, weakrefs),
    .tp_new = grlock_new,
    .tp_dealloc = (destructor)grlock_dealloc,
    .tp_repr = (reprfunc)glock_repr,
    .tp_methods = glock_methods,
};

/* get_ident(gr=None): id(gr or the current greenlet), as gevent's. */
static PyObject *green_get_ident(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "get_ident() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None)
        return PyLong_FromVoidPtr(args[0]);
    /* The last answer is kept: threading.current_thread() asks again and
     * again from the same greenlet.  An id is the address, so a new
     * greenlet at a dead one's address rightly gets the same number. */
    static void *last;          /* compared only */
    static PyObject *last_id;   /* owned */
    void *g = current_owner();
    if (g == NULL)
        return NULL;
    if (g != last || last_id == NULL) {
        PyObject *id = PyLong_FromVoidPtr(g);
        if (id == NULL)
            return NULL;
        Py_XSETREF(last_id, id);
        last = g;
    }
    return Py_NewRef(last_id);
}

static PyMethodDef get_ident_def = {
    "get_ident", (PyCFunction)(void (*)(void))green_get_ident, METH_FASTCALL,
    "get_ident(gr=None): id() of the greenlet (srv's C version of gevent's)"};

/* Where gevent's patching put gevents (its get_ident, its Lock), put ours:
 * names are "module.attribute", a NULL ends them.  What a module holds that
 * is not gevent's is left alone. */
static int replace_gevents(const char *const *names, PyObject *gevents, PyObject *ours)
{
    for (; *names; names++) {
        const char *dot = strchr(*names, '.');
        PyObject *modname = PyUnicode_FromStringAndSize(*names, dot - *names);
        PyObject *mod = modname ? PyImport_Import(modname) : NULL;
        Py_XDECREF(modname);
        PyObject *cur = mod ? PyObject_GetAttrString(mod, dot + 1) : NULL;
        int rc = cur == NULL ? -1
                 : cur == gevents ? PyObject_SetAttrString(mod, dot + 1, ours) : 0;
        Py_XDECREF(cur);
        Py_XDECREF(mod);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int srv_grlock_install(void)
{
    static const char *const get_idents[] = {"threading.get_ident", "_thread.get_ident", NULL};
    static const char *const locks[] = {"threading.Lock", "threading._allocate_lock",
                                        "_thread.allocate_lock", "_thread.LockType", NULL};
    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL || PyType_Ready(&GRLockType) < 0
            || PyType_Ready(&GLockType) < 0)
        return -1;
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL)
        return -1;
    int rc = PyObject_SetAttrString(threading, "_CRLock", (PyObject *)&GRLockType);
    Py_DECREF(threading);
    if (rc < 0)
        return -1;
    PyObject *gthread = PyImport_ImportModule("gevent.thread");
    PyObject *get_ident = gthread ? PyObject_GetAttrString(gthread, "get_ident") : NULL;
    PyObject *lock_type = gthread ? PyObject_GetAttrString(gthread, "LockType") : NULL;
    Py_XDECREF(gthread);
    PyObject *ours = get_ident ? PyCFunction_New(&get_ident_def, NULL) : NULL;
    rc = ours && lock_type ? replace_gevents(get_idents, get_ident, ours) : -1;
    if (rc == 0)
        rc = replace_gevents(locks, lock_type, (PyObject *)&GLockType);
    Py_XDECREF(ours);
    Py_XDECREF(get_ident);
    Py_XDECREF(lock_type);
    return rc;
}
