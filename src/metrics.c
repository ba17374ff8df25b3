/*
 * metrics.c - the figures workers count, and their sums over workers.
 *
 * Workers count into their slot (srv_my_metrics) with plain increments: one
 * writer per figure, aligned 64-bit words, so the master's reads are never
 * torn and need no lock.  Nothing here reads a socket or serves anything:
 * the master's /metrics endpoint is metrics_http.c, which renders the sums
 * the master hands it, with the labels this file keeps next to the tables
 * they name (the histogram's bounds, the parse errors' statuses).
 *
 * Aggregation (srv_master_snapshot, in master.c) sums counters over live
 * workers plus the master's "retired" total of those that exited, and sums
 * gauges over live workers only.  The histogram keeps per-bucket counts;
 * the exposition makes them cumulative from one snapshot, so le="+Inf"
 * always equals _count.
 */
#include "srv/metrics.h"
#include "srv/clock.h"
#include "srv/config.h"

#include <stddef.h>

#define NCOUNTERS (offsetof(srv_metrics, connections) / sizeof(uint64_t))
#define NGAUGES ((sizeof(srv_metrics) - offsetof(srv_metrics, connections)) / sizeof(int64_t))
_Static_assert(offsetof(srv_metrics, connections) % sizeof(uint64_t) == 0
               && sizeof(srv_metrics) % sizeof(uint64_t) == 0,
               "srv_metrics: counters then gauges, 64-bit words only");

static srv_metrics dummy;
srv_metrics *srv_my_metrics = &dummy;

/* ---- counting (workers) --------------------------------------------------- */

/* Upper bounds of the finite buckets, in ns, and their labels. */
static const uint64_t bucket_ns[SRV_DURATION_BUCKETS] = {
    500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000,
    250000000, 500000000, 1000000000, 2500000000u, 5000000000u, 10000000000u,
};
static const char *const bucket_le[SRV_DURATION_BUCKETS + 1] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

static const struct { int status; const char *kind; } parse_error_kinds[SRV_PARSE_ERROR_KINDS] = {
    [SRV_PARSE_BAD_REQUEST] = {400, "bad_request"},
    [SRV_PARSE_HEADER_TIMEOUT] = {408, "header_timeout"},
    [SRV_PARSE_BODY_TOO_LARGE] = {413, "body_too_large"},
    [SRV_PARSE_URI_TOO_LONG] = {414, "uri_too_long"},
    [SRV_PARSE_EXPECTATION_FAILED] = {417, "expectation_failed"},
    [SRV_PARSE_HEADER_TOO_LARGE] = {431, "header_too_large"},
    [SRV_PARSE_NOT_IMPLEMENTED] = {501, "not_implemented"},
    [SRV_PARSE_VERSION_NOT_SUPPORTED] = {505, "version_not_supported"},
};

static void count_response(int status)
{
    if (status >= 100 && status < 600)
        srv_my_metrics->requests[status / 100 - 1]++;
}

/* Without --metrics-bind nobody reads the histogram: no clock is read. */
double srv_metrics_request_begin(void)
{
    srv_my_metrics->in_flight++;
    return srv_cfg.metrics_bind ? srv_monotonic() : 0;
}

void srv_metrics_request_end(int status, double began)
{
    srv_my_metrics->in_flight--;
    if (status < 100 || status >= 600)
        return;   /* nothing was sent */
    count_response(status);
    if (began == 0 || status == 101)
        return;   /* a 101 lasts as long as its WebSocket: no request latency */
    double seconds = srv_monotonic() - began;
    uint64_t ns = seconds > 0 ? (uint64_t)(seconds * 1e9) : 0;
    int i = 0;
    while (i < SRV_DURATION_BUCKETS && ns > bucket_ns[i])
        i++;
    srv_my_metrics->duration[i]++;
    srv_my_metrics->duration_ns += ns;
}

void srv_metrics_parse_error(int status)
{
    for (int k = 0; k < SRV_PARSE_ERROR_KINDS; k++)
        if (parse_error_kinds[k].status == status)
            srv_my_metrics->parse_errors[k]++;
}

void srv_metrics_request_refused(int status)
{
    count_response(status);
    srv_metrics_parse_error(status);
}

/* ---- names, for the exposition ------------------------------------------ */

const char *srv_metrics_bucket_label(int i)
{
    return i >= 0 && i <= SRV_DURATION_BUCKETS ? bucket_le[i] : "";
}

const char *srv_metrics_parse_error_name(int k)
{
    return k >= 0 && k < SRV_PARSE_ERROR_KINDS ? parse_error_kinds[k].kind : "";
}

/* ---- aggregation (master) -------------------------------------------------- */

void srv_metrics_add_counters(srv_metrics *into, const srv_metrics *from)
{
    volatile uint64_t *dst = (volatile uint64_t *)into;
    const volatile uint64_t *src = (const volatile uint64_t *)from;
    for (size_t i = 0; i < NCOUNTERS; i++)
        dst[i] += src[i];
}

void srv_metrics_add_gauges(srv_metrics *into, const srv_metrics *from)
{
    volatile int64_t *dst = &into->connections;
    const volatile int64_t *src = &from->connections;
    for (size_t i = 0; i < NGAUGES; i++)
        dst[i] += src[i];
}

