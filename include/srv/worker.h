/*
 * worker.h - one worker process: the interpreter, the app and the loop.
 *
 * Owns what happens in a worker after fork: starting CPython with the `srv`
 * module, choosing the mode (gevent or native) before the app is imported,
 * importing the app, running the loop until told to stop, the heartbeat
 * and request count it reports to the master, --max-requests, and the
 * orderly shut-down that leaves no greenlet suspended.
 */
#ifndef SRV_WORKER_H
#define SRV_WORKER_H

/* Runs a worker; returns its exit status (2 if the app cannot load). */
int srv_worker_run(const char *argv0);

/* A request finished: counts it, and starts a graceful stop once
 * --max-requests (plus this worker's jitter) is reached. */
void srv_worker_request_done(void);

#endif
