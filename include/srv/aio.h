/*
 * aio.h - asyncio on srv's libev loop, and srv.run_async().
 *
 * Owns srv's asyncio event loop (one per worker, made on first use):
 * srv.EventLoop is asyncio's SelectorEventLoop (tasks, futures, sockets,
 * streams, transports and executors come from asyncio) whose hot half is C:
 * call_soon, call_at/call_later on libev timers, the ready queue and
 * _run_once, and a selector keeping one libev io watcher per registered fd
 * on srv's loop.  The asyncio loop runs in a greenlet of its own, a child of
 * the loop greenlet, which waits in the hub like any request greenlet, so an
 * idle asyncio loop costs nothing.
 * Also owns srv.run_async() (the bridge from request greenlets), the event
 * loop policy that makes asyncio.get_event_loop() return srv's loop, the
 * refusal of `async def` apps, and cancelling leftover tasks at shut-down.
 */
#ifndef SRV_AIO_H
#define SRV_AIO_H

#include <Python.h>

/* Adds EventLoop, run_async and get_event_loop to the srv module. */
int srv_aio_add_to_module(PyObject *module);

/* The app was loaded: exits with status 2 if it is a coroutine function
 * (an `async def` app); installs srv's event loop policy if the app
 * imported asyncio. */
void srv_aio_app_loaded(PyObject *app, const char *spec);

/* Tasks of srv's asyncio loop not yet done (0 if it was never made). */
int srv_aio_pending_tasks(void);

/* After the loop has stopped: cancels the tasks still pending (with a log
 * line), lets them unwind, and closes the asyncio loop. */
void srv_aio_shutdown(void);

#endif
