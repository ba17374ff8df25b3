/*
 * metrics.c - per-worker figures, and the master's Prometheus endpoint.
 *
 * Workers count into their slot (srv_my_metrics) with plain increments: one
 * writer per figure, aligned 64-bit words, so the master's reads are never
 * torn and need no lock.  The master serves --metrics-bind itself, never a
 * worker, so a scrape works while every worker is busy or being replaced.
 * Its endpoint is a few lines of non-blocking HTTP/1.x driven by the
 * master's poll(): at most MAX_CLIENTS clients at once (the rest wait in the
 * backlog), each with CLIENT_SECONDS to send its request and read the
 * answer, so that a slow or silent client costs the master nothing but a
 * slot.  One request per connection; the answer says "Connection: close".
 *
 * Aggregation (srv_master_snapshot, in master.c) sums counters over live
 * workers plus the master's "retired" total of those that exited, and sums
 * gauges over live workers only.  The histogram keeps per-bucket counts;
 * the exposition makes them cumulative from one snapshot, so le="+Inf"
 * always equals _count.
 */
#include "srv/clock.h"
#include "srv/metrics.h"
#include "srv/reqline.h"
#include "srv/buffer.h"
#include "srv/config.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/master.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define CLIENT_SECONDS 5.0      /* to send the request and read the answer */
#define LINGER_SECONDS 1.0      /* after the answer, for the client to close */
#define REQUEST_MAX 2048        /* a scrape's request head is a few hundred bytes */

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

/* ---- the exposition -------------------------------------------------------- */

static void put(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(srv_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        srv_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void family(srv_buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(srv_buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    put(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(srv_buf *b, const char *name, const char *help, int64_t v)
{
    family(b, name, "gauge", help);
    put(b, "%s %lld\n", name, (long long)v);
}

static void put_requests(srv_buf *b, const srv_metrics *m)
{
    family(b, "srv_requests_total", "counter",
           "Responses sent, by status class (including srv's own error responses).");
    for (int i = 0; i < 5; i++)
        put(b, "srv_requests_total{status=\"%dxx\"} %llu\n", i + 1,
            (unsigned long long)m->requests[i]);
}

static void put_duration(srv_buf *b, const srv_metrics *m)
{
    const char *name = "srv_request_duration_seconds";
    family(b, name, "histogram",
           "Time from a parsed request head to the end of its response, in seconds.");
    uint64_t cumulative = 0;
    for (int i = 0; i <= SRV_DURATION_BUCKETS; i++) {
        cumulative += m->duration[i];
        put(b, "%s_bucket{le=\"%s\"} %llu\n", name, bucket_le[i], (unsigned long long)cumulative);
    }
    uint64_t ns = m->duration_ns;
    put(b, "%s_sum %llu.%09llu\n", name, (unsigned long long)(ns / 1000000000u),
        (unsigned long long)(ns % 1000000000u));
    put(b, "%s_count %llu\n", name, (unsigned long long)cumulative);
}

static void put_parse_errors(srv_buf *b, const srv_metrics *m)
{
    family(b, "srv_parse_errors_total", "counter",
           "Requests srv refused to pass to the app, by kind.");
    for (int k = 0; k < SRV_PARSE_ERROR_KINDS; k++)
        put(b, "srv_parse_errors_total{kind=\"%s\"} %llu\n", parse_error_kinds[k].kind,
            (unsigned long long)m->parse_errors[k]);
}

static void render(srv_buf *b)
{
    srv_metrics_snapshot s;
    srv_master_snapshot(&s);
    const srv_metrics *m = &s.sum;
    put_requests(b, m);
    put_duration(b, m);
    put_parse_errors(b, m);
    counter(b, "srv_received_bytes_total", "Bytes read from client sockets.", m->received_bytes);
    counter(b, "srv_sent_bytes_total", "Bytes written to client sockets.", m->sent_bytes);
    counter(b, "srv_connections_accepted_total", "Client connections accepted.",
            m->connections_accepted);
    gauge(b, "srv_connections", "Open client connections.", m->connections);
    gauge(b, "srv_requests_in_flight", "Requests being served (the app called, or the "
          "response being sent).", m->in_flight);
    gauge(b, "srv_greenlets_suspended", "Request greenlets waiting for I/O or a timer "
          "(in srv's hub).", m->greenlets_suspended);
    gauge(b, "srv_greenlets_pooled", "Worker greenlets in the pools, parked and busy.",
          m->greenlets_pooled);
    gauge(b, "srv_workers", "Live worker processes.", s.workers);
    counter(b, "srv_worker_restarts_total", "Workers that exited unasked (crash, signal, "
            "heartbeat timeout, --max-requests) and were replaced.", s.worker_restarts);
    gauge(b, "srv_websocket_connections", "Open WebSocket connections.", m->ws_connections);
    counter(b, "srv_websocket_messages_received_total", "WebSocket messages received.",
            m->ws_messages_received);
    counter(b, "srv_websocket_messages_sent_total", "WebSocket messages sent.",
            m->ws_messages_sent);
}

/* ---- the endpoint (master) ------------------------------------------------- */

enum { CLIENT_FREE, CLIENT_READING, CLIENT_WRITING, CLIENT_CLOSING };

typedef struct metrics_client {
    int fd;
    int state;
    double deadline;          /* srv_monotonic() time */
    size_t got;               /* bytes of request */
    char request[REQUEST_MAX];
    srv_buf reply;
    size_t sent;
} metrics_client;

static int listen_fd = -1;
static char *listen_name;
static char *unix_path;       /* removed by the master at exit */
static metrics_client clients[MAX_CLIENTS];
static int nclients;
static int polled[1 + MAX_CLIENTS];   /* what each pollfd stands for: -1 the listener */
static int npolled;
static double accept_paused_until;    /* out of descriptors: accept later */

void srv_metrics_listen(void)
{
    const char *addr = srv_cfg.metrics_bind;
    if (addr == NULL)
        return;
    listen_fd = srv_listen_address("--metrics-bind", addr, &listen_name);
    if (strncmp(addr, "unix:", 5) == 0)
        unix_path = strdup(addr + 5);
}

void srv_metrics_announce(void)
{
    if (listen_fd >= 0)
        srv_info("metrics on %s/metrics", listen_name);
}

static void client_close(metrics_client *c)
{
    close(c->fd);
    srv_buf_release(&c->reply);
    c->fd = -1;
    c->state = CLIENT_FREE;
    nclients--;
}

static void accept_clients(void)
{
    for (int i = 0; i < MAX_CLIENTS && nclients < MAX_CLIENTS; i++) {
        if (clients[i].state != CLIENT_FREE)
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                accept_paused_until = srv_monotonic() + 0.1;   /* e.g. EMFILE: no spinning */
            return;
        }
        metrics_client *c = &clients[i];
        c->fd = fd;
        c->state = CLIENT_READING;
        c->deadline = srv_monotonic() + CLIENT_SECONDS;
        c->got = 0;
        c->sent = 0;
        c->reply = (srv_buf){0};
        nclients++;
    }
}

/* The end of the request head (a blank line), or NULL. */
static const char *head_end(const metrics_client *c)
{
    const char *crlf = memmem(c->request, c->got, "\r\n\r\n", 4);
    return crlf ? crlf : memmem(c->request, c->got, "\n\n", 2);
}

static void reply(metrics_client *c, int status, const char *reason, const char *extra,
                  int head_only)
{
    srv_buf body = {0};
    if (status == 200)
        render(&body);
    else
        put(&body, "%d %s\n", status, reason);
    put(&c->reply, "HTTP/1.1 %d %s\r\n"
        "Content-Type: %s\r\n"
        "Content-Length: %zu\r\n"
        "%s"
        "Connection: close\r\n\r\n",
        status, reason,
        status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
        body.len, extra);
    if (!head_only && body.len)
        srv_buf_append(&c->reply, body.data, body.len);
    srv_buf_release(&body);
    c->state = CLIENT_WRITING;
}

/* "GET /metrics HTTP/1.1": answers the request line of a complete head,
 * parsed by the same code as the app's requests (reqline.c). */
static void answer(metrics_client *c)
{
    const char *line = c->request;
    srv_reqline rl;
    const srv_reqline_limits lim = {sizeof c->request, 16};
    const char *why = NULL;
    if (srv_reqline_parse(line, c->got, &lim, &rl, &why) != SRV_REQLINE_DONE
        || rl.form != SRV_TARGET_ORIGIN) {
        reply(c, 400, "Bad Request", "", 0);
        return;
    }
    size_t mlen = rl.method_len;
    const char *target = line + rl.target_off;
    size_t tlen = rl.target_len;
    const char *query = memchr(target, '?', tlen);
    if (query)
        tlen = (size_t)(query - target);
    int known = (tlen == 1) || (tlen == 8 && memcmp(target, "/metrics", 8) == 0);
    int get = mlen == 3 && memcmp(line, "GET", 3) == 0;
    int head = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
    if (!known)
        reply(c, 404, "Not Found", "", head);
    else if (!get && !head)
        reply(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", 0);
    else
        reply(c, 200, "OK", "", head);
}

static void read_request(metrics_client *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->request + c->got, sizeof c->request - c->got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            client_close(c);
            return;
        }
        c->got += (size_t)n;
        if (head_end(c)) {
            answer(c);
            return;
        }
        if (c->got == sizeof c->request) {
            reply(c, 400, "Bad Request", "", 0);
            return;
        }
    }
}

/* Sends what is left of the reply; once it is out, half-closes and waits
 * (briefly) for the client to close, so that unread request bytes cannot
 * turn the close into a reset that destroys the answer. */
static void write_reply(metrics_client *c)
{
    while (c->sent < c->reply.len) {
        ssize_t n = send(c->fd, c->reply.data + c->sent, c->reply.len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            client_close(c);
            return;
        }
        c->sent += (size_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    srv_buf_release(&c->reply);
    c->state = CLIENT_CLOSING;
    double until = srv_monotonic() + LINGER_SECONDS;
    if (until < c->deadline)
        c->deadline = until;
}

static void discard_input(metrics_client *c)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        client_close(c);
        return;
    }
}

static void client_step(metrics_client *c)
{
    if (c->state == CLIENT_READING)
        read_request(c);
    if (c->state == CLIENT_WRITING)
        write_reply(c);
    else if (c->state == CLIENT_CLOSING)
        discard_input(c);
}

int srv_metrics_poll_fds(struct pollfd *fds, int room, int *timeout_ms)
{
    npolled = 0;
    if (listen_fd < 0)
        return 0;
    double now = srv_monotonic();
    if (now < accept_paused_until) {
        int left = (int)((accept_paused_until - now) * 1000) + 1;
        if (left < *timeout_ms)
            *timeout_ms = left;
    } else if (nclients < MAX_CLIENTS && npolled < room) {
        fds[npolled] = (struct pollfd){listen_fd, POLLIN, 0};
        polled[npolled++] = -1;
    }
    for (int i = 0; i < MAX_CLIENTS && npolled < room; i++) {
        metrics_client *c = &clients[i];
        if (c->state == CLIENT_FREE)
            continue;
        fds[npolled] = (struct pollfd){c->fd, c->state == CLIENT_WRITING ? POLLOUT : POLLIN, 0};
        polled[npolled++] = i;
        int left = (int)((c->deadline - now) * 1000) + 1;
        if (left < *timeout_ms)
            *timeout_ms = left > 0 ? left : 0;
    }
    return npolled;
}

void srv_metrics_serve(const struct pollfd *fds, int n)
{
    for (int i = 0; i < n && i < npolled; i++) {
        if (fds[i].revents == 0)
            continue;
        if (polled[i] < 0)
            accept_clients();
        else if (clients[polled[i]].state != CLIENT_FREE)
            client_step(&clients[polled[i]]);
    }
    npolled = 0;
    double now = srv_monotonic();
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].state != CLIENT_FREE && now >= clients[i].deadline)
            client_close(&clients[i]);
}

void srv_metrics_forget(void)
{
    if (listen_fd >= 0)
        close(listen_fd);
    listen_fd = -1;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].state != CLIENT_FREE) {
            close(clients[i].fd);
            srv_buf_release(&clients[i].reply);
        }
    memset(clients, 0, sizeof clients);
    nclients = 0;
    free(unix_path);
    unix_path = NULL;
}

void srv_metrics_close(void)
{
    if (unix_path)
        unlink(unix_path);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].state != CLIENT_FREE)
            client_close(&clients[i]);
    srv_metrics_forget();
}
