/*
 * metrics_http.h - the master's Prometheus endpoint (--metrics-bind).
 *
 * Owns the endpoint's listening socket and its clients: reading and parsing
 * their requests (llhttp), rendering the text exposition format (0.0.4) and
 * answering, all driven by the master's poll().  It owns no figures: the
 * master hands it, at each serve, the function that sums them (so that this
 * module never calls the master), and it owns no binding code: the caller
 * hands it the function that binds an address.
 */
#ifndef SRV_METRICS_HTTP_H
#define SRV_METRICS_HTTP_H

#include <poll.h>

#include "srv/metrics.h"

/* Binds and listens on `addr` for `flag` (exiting with status 2 when it
 * cannot), sets *name to how to log it, returns the socket: the signature
 * of srv_listen_address (loop.h). */
typedef int srv_metrics_http_binder(const char *flag, const char *addr, char **name);

/* Fills *s with what a scrape shows: srv_master_snapshot (master.h). */
typedef void srv_metrics_http_source(srv_metrics_snapshot *s);

/* --metrics-bind: binds and listens through bind_address.  Called at
 * start-up, before the workers exist; does nothing without the flag. */
void srv_metrics_http_listen(srv_metrics_http_binder *bind_address);

/* Logs the metrics address (with the app's, once the app is up). */
void srv_metrics_http_announce(void);

/* In the master: adds to fds what the endpoint waits for (at most room
 * entries; SRV_METRICS_POLL_FDS is enough) and returns how many; lowers
 * *timeout_ms to its next deadline. */
#define SRV_METRICS_POLL_FDS 17
int srv_metrics_http_poll_fds(struct pollfd *fds, int room, int *timeout_ms);

/* In the master, after poll(): serves the fds filled by the last
 * srv_metrics_http_poll_fds(), answering scrapes with what `source` says,
 * and drops clients past their deadline. */
void srv_metrics_http_serve(const struct pollfd *fds, int n, srv_metrics_http_source *source);

/* In a new worker: closes the master's metrics sockets (not its files). */
void srv_metrics_http_forget(void);

/* In the master at exit: closes the endpoint (and removes a unix socket). */
void srv_metrics_http_close(void);

#endif
