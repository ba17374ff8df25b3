/*
 * master.h - the pre-fork master and its view of the workers.
 *
 * Owns the process tree: the master binds the sockets, forks --workers
 * worker processes (each runs its own loop and imports the app itself),
 * respawns those that die (with a backoff against crash loops), kills those
 * whose loop stopped turning (heartbeat older than --timeout), and handles
 * the signals users send: TERM/INT (graceful stop), QUIT (immediate), HUP
 * (graceful reload with a fresh import), TTIN/TTOU (one worker more/fewer).
 * The master runs no Python.  Workers report through a slot in memory
 * shared with the master: their heartbeat, readiness, request count and
 * metrics, which the master serves on --metrics-bind.
 */
#ifndef SRV_MASTER_H
#define SRV_MASTER_H


#include <sys/types.h>

#include "srv/metrics.h"

/* Cache-line aligned, so that workers never write to the same line. */
typedef struct srv_slot {
    volatile pid_t pid;
    volatile double beat;               /* CLOCK_MONOTONIC seconds */
    volatile int ready;                 /* the app is loaded and the loop runs */
    volatile unsigned long requests;
    srv_metrics metrics;                /* srv_my_metrics in the worker */
} __attribute__((aligned(64))) srv_slot;

/* Blocks the signals the master takes from its signalfd; first thing in
 * main, so that a signal during start-up waits for the master. */
void srv_master_block_signals(void);

/* Runs the master until it stops; returns the process exit status. */
int srv_master_run(int argc, char **argv);

/* In the master: the workers' figures summed for a scrape (counters of live
 * and exited workers, gauges of live ones), with the master's own. */
void srv_master_snapshot(srv_metrics_snapshot *s);

#endif
