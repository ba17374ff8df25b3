/*
 * aio_private.h - what the asyncio modules share, and nobody else sees.
 *
 * aio.c was one file; it is two now, around one selector:
 *   aio.c           srv.EventLoop (the Python glue), making srv's asyncio
 *                   loop, srv.run_async() and its waiter, the event loop
 *                   policy, start-up and shut-down
 *   aio_selector.c  the selector (a libev io watcher per fd and the
 *                   timer that runs and wakes the asyncio greenlet), and
 *                   the wakers that shadow call_soon and call_at while
 *                   that greenlet waits
 * Only these include this header.
 */
#ifndef SRV_AIO_PRIVATE_H
#define SRV_AIO_PRIVATE_H

#include "srv/aio.h"
#include "srv/hub.h"

#include <greenlet/greenlet.h>

typedef struct entry {
    ev_io io;
    struct selector *sel;
    PyObject *key;          /* owned: the SelectorKey */
    int events;             /* EV_READ | EV_WRITE, the same bits as selectors' */
    int revents;            /* seen, not yet collected by select() */
    unsigned queued:1;      /* its fd is in sel->ready */
    unsigned paused:1;      /* watcher stopped until collected */
} entry;

typedef struct selector {
    PyObject_HEAD
    ev_timer timer;         /* select()'s timeout; also the kick that starts or wakes g */
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
    int restarts;           /* greenlets started since the last select() */
} selector;

/* aio.c: the state of srv's asyncio loop in this worker */
extern unsigned long aio_loop_thread;   /* the thread that runs srv's loop */
extern PyObject *aio_loop;              /* owned: srv's asyncio loop, once made */
extern selector *aio_sel;               /* borrowed: aio_loop owns it */
extern PyObject *aio_key_type;          /* owned: selectors.SelectorKey */
extern PyObject *aio_s_call_soon, *aio_s_call_at;   /* interned */

/* aio_selector.c */
extern PyTypeObject AioSelectorType;

/* Readies the selector's and the wakers' types and greenlet's C API (each
 * file that calls greenlet has its own copy of the table). */
int aio_selector_init(void);

/* Wakes the asyncio greenlet, or starts it, so that it runs what was just
 * scheduled. */
void aio_kick(selector *s);

/* The wakers: made once per asyncio loop, set (shadowing the loop's
 * call_soon and call_at) while its greenlet is not running. */
int aio_wakers_make(PyObject *loop);
void aio_wakers_set(int on);
void aio_wakers_free(void);

#endif
