/*
 * aio_private.h - what the asyncio modules share, and nobody else sees.
 *
 * srv's asyncio loop is three files around one selector object:
 *   aio.c           srv.EventLoop (the Python glue), making srv's asyncio
 *                   loop, srv.run_async() and its waiter, the event loop
 *                   policy, start-up and shut-down
 *   aio_selector.c  the selector (a libev io watcher per fd), the kick that
 *                   starts or wakes the asyncio greenlet, and select()
 *   aio_core.c      the loop's hot methods in C: Handle and TimerHandle,
 *                   the ready ring, timers as libev watchers, _run_once and
 *                   call_soon_threadsafe's ev_async
 * Only these include this header.
 */
#ifndef SRV_AIO_PRIVATE_H
#define SRV_AIO_PRIVATE_H

#include "srv/aio.h"
#include "srv/hub.h"

/* greenlet.h defines a static API table: aio.c and aio_selector.c, which
 * call greenlet, include it themselves (hub.h names PyGreenlet). */

typedef struct entry {
    ev_io io;
    struct selector *sel;
    PyObject *key;          /* owned: the SelectorKey */
    int events;             /* EV_READ | EV_WRITE, the same bits as selectors' */
    int revents;            /* seen, not yet collected by select() */
    unsigned queued:1;      /* its fd is in sel->ready */
    unsigned paused:1;      /* watcher stopped until collected */
} entry;

struct aio_handle;

typedef struct selector {
    PyObject_HEAD
    ev_timer timer;         /* select()'s timeout; also the kick outside ev_run */
    ev_timer kick;          /* never started: fed, at the lowest priority, to
                               wake g once all of this turn's events are in */
    ev_timer kick_now;      /* the same at the highest priority: a request
                               scheduled something, run it next */
    ev_async async;         /* call_soon_threadsafe from other threads */
    entry **fds;            /* by fd */
    int nfds;
    int *ready;             /* fds with events to collect */
    int nready, ready_cap;
    PyGreenlet *g;          /* owned: the greenlet running the asyncio loop */
    PyObject *run;          /* owned: what g runs */
    unsigned waiting:1;     /* g waits in select() */
    unsigned inplace:1;     /* the asyncio loop runs in the loop greenlet */
    unsigned fired:1;       /* the timer fired */
    unsigned kicked:1;      /* the timer is armed to fire at once */
    unsigned closed:1;
    unsigned fed:1;         /* the kick is pending in libev */
    unsigned fed_now:1;     /* kick_now is */
    unsigned debug:1;       /* the loop's get_debug() */
    int restarts;           /* greenlets started since the last select() */
    unsigned pass;          /* ev_iteration() of srv's loop at the last select(0) */
    int turns;              /* select(0)s answered within that pass */
    /* aio_core.c's */
    PyObject **rq;          /* ring of ready handles, each owned */
    size_t rq_head, rq_len, rq_cap;   /* rq_cap: 0 or a power of 2 */
    struct aio_handle *timers;        /* armed timers (each owns itself) */
} selector;

/* aio.c: the state of srv's asyncio loop in this worker */
extern unsigned long aio_loop_thread;   /* the thread that runs srv's loop */
extern PyObject *aio_loop;              /* owned: srv's asyncio loop, once made */
extern selector *aio_sel;               /* borrowed: aio_loop owns it */
extern PyObject *aio_key_type;          /* owned: selectors.SelectorKey */

/* aio_selector.c */
extern PyTypeObject AioSelectorType;

/* Readies the selector's type and greenlet's C API (each file that calls
 * greenlet has its own copy of the table). */
int aio_selector_init(void);

/* Wakes the asyncio greenlet, or starts it, so that it runs what was just
 * scheduled; nothing if it is running. */
void aio_kick(selector *s);

/* select(timeout): the io events seen, as selectors' [(key, events)];
 * timeout < 0 waits until something wakes the asyncio greenlet. */
PyObject *aio_select(selector *s, double timeout);

/* aio_core.c */
/* Installs the C methods on cls (srv.EventLoop); globals are the glue's,
 * which has the slow paths (borrowed: aio.c keeps them). */
int aio_core_install(PyObject *globals, PyObject *cls);

/* The loop closes: stops every armed timer and empties the ready ring. */
void aio_core_clear(selector *s);

#endif
