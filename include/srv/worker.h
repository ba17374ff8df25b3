/*
 * worker.h - one worker process: the interpreter, the app and the loop.
 *
 * Owns what happens in a worker after fork: starting CPython with the `srv`
 * module, choosing the mode (gevent or native) before the app is imported,
 * importing the app, running the loop until told to stop, the heartbeat
 * and request count it reports to the master, --max-requests, the
 * orderly shut-down that leaves no greenlet suspended, and --check-config's
 * import of the app.
 */
#ifndef SRV_WORKER_H
#define SRV_WORKER_H

struct srv_slot;

/* Runs a worker that reports to `slot` (its heartbeat, readiness and
 * request count; its counters are srv_my_metrics); returns its exit status
 * (2 if the app cannot load). */
int srv_worker_run(const char *argv0, struct srv_slot *slot);

/* --check-config: loads the app as a worker would (interpreter, mode,
 * import), prints one line on stdout and exits 0; exits SRV_EXIT_USAGE
 * with the error when the app does not load.  Binds nothing. */
void srv_worker_check(const char *argv0) __attribute__((noreturn));

#endif
