/*
 * loop.h - the event loop, the listening sockets and process signals.
 *
 * Owns binding every --bind address (TCP v4/v6 and unix sockets), accepting
 * connections (several per wakeup, with a pause when file descriptors run
 * out), the per-listener environ template, and the loop's life: running it,
 * and stopping it gracefully on SIGTERM/SIGINT or at once on SIGQUIT.
 */
#ifndef SRV_LOOP_H
#define SRV_LOOP_H

#include <ev.h>

typedef struct srv_listener {
    int fd;
    int family;
    ev_io io;
    char *name;                 /* for logs: "http://127.0.0.1:8000" */
    char *unix_path;            /* unlinked at exit */
    int reuse_port;             /* each worker opens its own socket */
    int defers_accept;          /* TCP_DEFER_ACCEPT: a connection comes with its
                                 * first bytes (see loop.c's tune_tcp_listener) */
    struct _object *environ_template;   /* owned PyObject *: the keys that never
                                         * change (no Python.h here: the master
                                         * includes this header) */
} srv_listener;

/* Binds every configured address.  Exits SRV_EXIT_USAGE on failure. */
void srv_listen_all(void);

/* Binds and listens on one address in --bind's syntax for another flag
 * (--metrics-bind): returns the non-blocking socket, and in *name (malloc'd)
 * its address for logs.  Exits SRV_EXIT_USAGE, naming `flag`, on failure. */
int srv_listen_address(const char *flag, const char *addr, char **name);

/* Gives each listener its environ template: make(l, host, port) returns
 * it (a new PyObject reference, or NULL to fail), for the request layer
 * (srv_environ_template).  Returns 0 or -1. */
typedef struct _object *(*srv_listener_data_fn)(srv_listener *l, const char *host,
                                                const char *port);
int srv_listeners_attach(srv_listener_data_fn make);

/* Until the loop starts, a stop signal is only noted; srv_loop_start() then
 * acts on it, so that SIGTERM during start-up is still a clean stop. */
void srv_loop_catch_early_signals(void);

/* Starts accepting on every listener and handling stop signals; whoever
 * runs the loop then serves until srv_loop_stop() breaks it. */
void srv_loop_start(void);

/* While stopping gracefully, the loop also waits until this says 0 (asyncio
 * tasks still running: aio.c's count).  NULL: nothing else to wait for. */
extern int (*srv_loop_more_work)(void);

/* Are we stopping gracefully?  Responses then say "Connection: close". */
int srv_loop_stopping(void);

/* Stops accepting; in-flight requests finish (graceful) or not. */
void srv_loop_stop(int graceful);

/* Re-enables accepting after a pause (fd exhaustion). */
void srv_listeners_pause(double seconds);

/* Closes every listener; the process that created a unix socket (the
 * master: srv_listeners_own_paths) also removes its file. */
void srv_listeners_close(void);
extern int srv_listeners_own_paths;

/* In a worker with --reuse-port: replaces each TCP listener by a socket of
 * its own bound with SO_REUSEPORT.  Returns 0 or -1. */
int srv_listeners_reuse_port(void);

/* Logs each address once (the master does it for all workers). */
void srv_listeners_announce(void);

#endif
