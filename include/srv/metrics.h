/*
 * metrics.h - Prometheus figures: what workers count, and their sums.
 *
 * Owns the figures a worker keeps about itself (struct srv_metrics, in its
 * slot of the memory it shares with the master), their aggregation over
 * workers and the names the exposition gives their buckets and kinds.  The
 * endpoint that serves them is metrics_http.h's.  Each figure is written by one process only
 * (its worker), so plain volatile loads and stores suffice: the master only
 * reads them, and adds a dead worker's counters to a "retired" total before
 * its slot is reused, so that counters never go backwards.
 *
 * Hooks elsewhere are one-liners on srv_my_metrics, which is never NULL: it
 * points at a private dummy until a worker gets its slot (and for good in the
 * master and in the fuzz harness).
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stdint.h>

/* Why a request could not be parsed, from the status srv answered. */
enum srv_parse_error_kind {
    SRV_PARSE_BAD_REQUEST,             /* 400 */
    SRV_PARSE_HEADER_TIMEOUT,          /* 408 */
    SRV_PARSE_BODY_TOO_LARGE,          /* 413 */
    SRV_PARSE_URI_TOO_LONG,            /* 414 */
    SRV_PARSE_EXPECTATION_FAILED,      /* 417 */
    SRV_PARSE_HEADER_TOO_LARGE,        /* 431 */
    SRV_PARSE_NOT_IMPLEMENTED,         /* 501 */
    SRV_PARSE_VERSION_NOT_SUPPORTED,   /* 505 */
    SRV_PARSE_ERROR_KINDS
};

/* srv_request_duration_seconds: finite buckets; one more slot is +Inf. */
#define SRV_DURATION_BUCKETS 14

/* One worker's figures.  Counters come first and are all uint64_t, then the
 * gauges, all int64_t: aggregation walks each run as an array. */
typedef struct srv_metrics {
    /* Counters: they only grow. */
    volatile uint64_t requests[5];        /* responses sent, by class 1xx..5xx */
    volatile uint64_t received_bytes;     /* recv() on client sockets */
    volatile uint64_t sent_bytes;         /* send(), sendmsg(), sendfile() */
    volatile uint64_t parse_errors[SRV_PARSE_ERROR_KINDS];
    volatile uint64_t duration[SRV_DURATION_BUCKETS + 1];  /* per bucket, not cumulative */
    volatile uint64_t duration_ns;        /* the histogram's sum */
    volatile uint64_t connections_accepted;
    volatile uint64_t ws_messages_received;
    volatile uint64_t ws_messages_sent;
    /* Gauges: what is true now; they die with the worker. */
    volatile int64_t connections;         /* open client connections */
    volatile int64_t in_flight;           /* requests inside handle_request */
    volatile int64_t greenlets_suspended; /* waiting in srv_hub_wait() */
    volatile int64_t greenlets_pooled;    /* the hub's workers, parked and busy */
    volatile int64_t ws_connections;      /* open WebSocket connections */
} srv_metrics;

/* This process's figures: its slot's in a worker, else a dummy. */
extern srv_metrics *srv_my_metrics;

/* In a worker: a request's app call begins; returns its start time. */
double srv_metrics_request_begin(void);

/* In a worker: the request that began at `began` is done; `status` is what
 * was sent (0 if nothing was: the client went away). */
void srv_metrics_request_end(int status, double began);

/* In a worker: a request body could not be parsed and srv answered it
 * with `status` (the response itself is counted by request_end). */
void srv_metrics_parse_error(int status);

/* In a worker: srv answered a request the app never saw (srv_http1_refuse):
 * counts the response and, when `status` stands for one, the parse error. */
void srv_metrics_request_refused(int status);

/* Adds the counters (or the gauges) of `from` into `into`. */
void srv_metrics_add_counters(srv_metrics *into, const srv_metrics *from);
void srv_metrics_add_gauges(srv_metrics *into, const srv_metrics *from);

/* What the master knows, for one scrape. */
typedef struct srv_metrics_snapshot {
    srv_metrics sum;            /* counters: live and retired workers; gauges: live */
    uint64_t worker_restarts;
    int64_t workers;
} srv_metrics_snapshot;

/* The exposition's labels: bucket i's le="..." (i == SRV_DURATION_BUCKETS
 * is "+Inf"), and parse-error kind k's kind="...". */
const char *srv_metrics_bucket_label(int i);
const char *srv_metrics_parse_error_name(int k);

#endif
