/*
 * metrics_http.c - the master's /metrics endpoint.
 *
 * The master serves --metrics-bind itself, never a worker, so a scrape
 * works while every worker is busy or being replaced.  The endpoint is a
 * few lines of non-blocking HTTP/1.x driven by the master's poll(): at most
 * MAX_CLIENTS clients at once (the rest wait in the backlog), each with
 * CLIENT_SECONDS to send its request and read the answer, so that a slow or
 * silent client costs the master nothing but a slot.  One request per
 * connection; the answer says "Connection: close".
 *
 * Each client reads its request head into a fixed buffer of REQUEST_MAX
 * bytes and feeds every read to llhttp (strict mode, as for the app's
 * requests), which pauses at the end of the head; the target's pieces are
 * adjacent in that buffer, so one (offset, length) pair holds it.  Whatever
 * llhttp refuses (an unknown method among it), a bare LF, a version other
 * than HTTP/1.x, a target that is not a path, and a head that does not fit
 * the buffer get 400; a path other than
 * / and /metrics gets 404; a method other than GET and HEAD gets 405.  Once
 * the answer is out, the client half-closes and lingers (LINGER_SECONDS)
 * reading and dropping what the client still sends, so that unread bytes
 * cannot turn the close into a reset that destroys the answer.
 *
 * The figures are not this module's: the master passes the function that
 * sums them to srv_metrics_http_serve(), and the caller of
 * srv_metrics_http_listen() passes the function that binds the address, so
 * this module calls neither the master nor the loop.  Bytes cross the
 * socket through sockio.h.
 */
#include "srv/metrics_http.h"
#include "srv/buffer.h"
#include "srv/clock.h"
#include "srv/config.h"
#include "srv/log.h"
#include "srv/metrics.h"
#include "srv/sockio.h"

#include <llhttp.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define CLIENT_SECONDS 5.0      /* to send the request and read the answer */
#define LINGER_SECONDS 1.0      /* after the answer, for the client to close */
#define REQUEST_MAX 2048        /* a scrape's request head is a few hundred bytes */

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
        put(b, "%s_bucket{le=\"%s\"} %llu\n", name, srv_metrics_bucket_label(i),
            (unsigned long long)cumulative);
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
        put(b, "srv_parse_errors_total{kind=\"%s\"} %llu\n", srv_metrics_parse_error_name(k),
            (unsigned long long)m->parse_errors[k]);
}

static void put_websocket_figures(srv_buf *b, const srv_metrics *m)
{
    gauge(b, "srv_websocket_connections", "Open WebSocket connections.", m->ws_connections);
    counter(b, "srv_websocket_messages_received_total", "WebSocket messages received.",
            m->ws_messages_received);
    counter(b, "srv_websocket_messages_sent_total", "WebSocket messages sent.",
            m->ws_messages_sent);
}

/* Every family, in the order scrapes have always listed them. */
static void render(srv_buf *b, const srv_metrics_snapshot *s)
{
    const srv_metrics *m = &s->sum;
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
    gauge(b, "srv_workers", "Live worker processes.", s->workers);
    counter(b, "srv_worker_restarts_total", "Workers that exited unasked (crash, signal, "
            "heartbeat timeout, --max-requests) and were replaced.", s->worker_restarts);
    put_websocket_figures(b, m);
}

/* ---- the clients ----------------------------------------------------------- */

enum { CLIENT_FREE, CLIENT_READING, CLIENT_WRITING, CLIENT_CLOSING };

typedef struct metrics_client {
    int fd;
    int state;
    double deadline;          /* srv_monotonic() time */
    llhttp_t parser;          /* parser.data: this client */
    int head_done;            /* llhttp paused at the end of the head */
    size_t got;               /* bytes of request in `request` */
    size_t target_off;        /* the request target, in `request` */
    size_t target_len;
    srv_buf reply;
    size_t sent;
    char request[REQUEST_MAX];   /* last: client_start() clears what comes before */
} metrics_client;

static int listen_fd = -1;
static char *listen_name;
static char *unix_path;       /* removed by the master at exit */
static metrics_client clients[MAX_CLIENTS];
static int nclients;
static int polled[1 + MAX_CLIENTS];   /* what each pollfd stands for: -1 the listener */
static int npolled;
static double accept_paused_until;    /* out of descriptors: accept later */

void srv_metrics_http_listen(srv_metrics_http_binder *bind_address)
{
    const char *addr = srv_cfg.metrics_bind;
    if (addr == NULL)
        return;
    listen_fd = bind_address("--metrics-bind", addr, &listen_name);
    if (strncmp(addr, "unix:", 5) == 0)
        unix_path = strdup(addr + 5);
}

void srv_metrics_http_announce(void)
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

/* ---- parsing a request head (llhttp) --------------------------------------- */

static int on_target_bytes(llhttp_t *p, const char *at, size_t len)
{
    metrics_client *c = p->data;
    if (c->target_len == 0)
        c->target_off = (size_t)(at - c->request);
    c->target_len += len;   /* the pieces are adjacent in c->request */
    return 0;
}

static int on_head_complete(llhttp_t *p)
{
    metrics_client *c = p->data;
    c->head_done = 1;
    return HPE_PAUSED;   /* the body, if any, and what follows are not read */
}

static const llhttp_settings_t head_settings = {
    .on_url = on_target_bytes,
    .on_headers_complete = on_head_complete,
};

static void client_start(metrics_client *c, int fd)
{
    memset(c, 0, offsetof(metrics_client, request));   /* request: written as read */
    c->fd = fd;
    c->state = CLIENT_READING;
    c->deadline = srv_monotonic() + CLIENT_SECONDS;
    llhttp_init(&c->parser, HTTP_REQUEST, &head_settings);
    c->parser.data = c;
    nclients++;
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
        client_start(&clients[i], fd);
    }
}

/* ---- answering --------------------------------------------------------------- */

static int target_is(const metrics_client *c, const char *path)
{
    const char *target = c->request + c->target_off;
    size_t len = c->target_len;
    const char *query = memchr(target, '?', len);
    if (query)
        len = (size_t)(query - target);   /* a query is ignored */
    return len == strlen(path) && memcmp(target, path, len) == 0;
}

static int head_is_origin_form_http1(const metrics_client *c)
{
    return c->parser.http_major == 1 && c->target_len > 0 && c->request[c->target_off] == '/';
}

/* The status a complete head gets. */
static int status_for_head(const metrics_client *c)
{
    int method = llhttp_get_method((llhttp_t *)&c->parser);
    if (!head_is_origin_form_http1(c))
        return 400;
    if (!target_is(c, "/") && !target_is(c, "/metrics"))
        return 404;
    if (method != HTTP_GET && method != HTTP_HEAD)
        return 405;
    return 200;
}

static const char *reason_for(int status)
{
    switch (status) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Bad Request";
    }
}

/* Sets the client's reply: the page (200) or a line saying the status; no
 * body after a HEAD. */
static void reply_with_status(metrics_client *c, int status, int head_only,
                              srv_metrics_http_source *source)
{
    srv_buf body = {0};
    if (status == 200) {
        srv_metrics_snapshot s;
        source(&s);
        render(&body, &s);
    } else {
        put(&body, "%d %s\n", status, reason_for(status));
    }
    put(&c->reply, "HTTP/1.1 %d %s\r\n"
        "Content-Type: %s\r\n"
        "Content-Length: %zu\r\n"
        "%s"
        "Connection: close\r\n\r\n",
        status, reason_for(status),
        status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
        body.len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head_only && body.len)
        srv_buf_append(&c->reply, body.data, body.len);
    srv_buf_release(&body);
    c->state = CLIENT_WRITING;
}

/* Whether request[from..to) has an LF without its CR: llhttp 8.1 takes a
 * bare LF as a line end, srv does not (as for the app's requests). */
static int has_bare_lf(const metrics_client *c, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (c->request[i] == '\n' && (i == 0 || c->request[i - 1] != '\r'))
            return 1;
    return 0;
}

/* Feeds the n bytes just read (at `bytes`, inside c->request) to llhttp and
 * sets the reply once the head is complete or cannot be: 1 then, else 0. */
static int parse_request_bytes(metrics_client *c, const char *bytes, size_t n,
                               srv_metrics_http_source *source)
{
    llhttp_errno_t err = llhttp_execute(&c->parser, bytes, n);
    const char *parsed_to = err == HPE_OK ? bytes + n : llhttp_get_error_pos(&c->parser);
    if (has_bare_lf(c, (size_t)(bytes - c->request), (size_t)(parsed_to - c->request))) {
        reply_with_status(c, 400, 0, source);
        return 1;
    }
    if (err == HPE_PAUSED && c->head_done) {
        int status = status_for_head(c);
        int head = llhttp_get_method(&c->parser) == HTTP_HEAD;
        reply_with_status(c, status, head && status != 400, source);
        return 1;
    }
    if (err != HPE_OK || c->got == sizeof c->request) {
        reply_with_status(c, 400, 0, source);   /* malformed, or too large a head */
        return 1;
    }
    return 0;
}

/* ---- the socket ---------------------------------------------------------------- */

static int would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

static void read_request(metrics_client *c, srv_metrics_http_source *source)
{
    for (;;) {
        char *end = c->request + c->got;
        ssize_t n = srv_sock_recv(c->fd, end, sizeof c->request - c->got);
        if (n < 0 && would_block())
            return;
        if (n <= 0) {
            client_close(c);
            return;
        }
        c->got += (size_t)n;
        if (parse_request_bytes(c, end, (size_t)n, source))
            return;
    }
}

/* Once the reply is out: half-closes, and gives the client a moment to
 * close its end. */
static void linger_after_reply(metrics_client *c)
{
    shutdown(c->fd, SHUT_WR);
    srv_buf_release(&c->reply);
    c->state = CLIENT_CLOSING;
    double until = srv_monotonic() + LINGER_SECONDS;
    if (until < c->deadline)
        c->deadline = until;
}

static void write_reply(metrics_client *c)
{
    while (c->sent < c->reply.len) {
        struct iovec iov = {c->reply.data + c->sent, c->reply.len - c->sent};
        ssize_t n = srv_sock_send(c->fd, &iov, 1);
        if (n < 0 && would_block())
            return;
        if (n < 0) {
            client_close(c);
            return;
        }
        c->sent += (size_t)n;
    }
    linger_after_reply(c);
}

static void discard_input(metrics_client *c)
{
    char scratch[4096];
    for (;;) {
        ssize_t n = srv_sock_recv(c->fd, scratch, sizeof scratch);
        if (n > 0)
            continue;
        if (n < 0 && would_block())
            return;
        client_close(c);
        return;
    }
}

static void client_step(metrics_client *c, srv_metrics_http_source *source)
{
    if (c->state == CLIENT_READING)
        read_request(c, source);
    if (c->state == CLIENT_WRITING)
        write_reply(c);
    else if (c->state == CLIENT_CLOSING)
        discard_input(c);
}

/* ---- the master's poll() ------------------------------------------------------- */

static void lower_timeout(int *timeout_ms, double now, double until)
{
    int left = (int)((until - now) * 1000) + 1;
    if (left < *timeout_ms)
        *timeout_ms = left > 0 ? left : 0;
}

int srv_metrics_http_poll_fds(struct pollfd *fds, int room, int *timeout_ms)
{
    npolled = 0;
    if (listen_fd < 0)
        return 0;
    double now = srv_monotonic();
    if (now < accept_paused_until) {
        lower_timeout(timeout_ms, now, accept_paused_until);
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
        lower_timeout(timeout_ms, now, c->deadline);
    }
    return npolled;
}

void srv_metrics_http_serve(const struct pollfd *fds, int n, srv_metrics_http_source *source)
{
    for (int i = 0; i < n && i < npolled; i++) {
        if (fds[i].revents == 0)
            continue;
        if (polled[i] < 0)
            accept_clients();
        else if (clients[polled[i]].state != CLIENT_FREE)
            client_step(&clients[polled[i]], source);
    }
    npolled = 0;
    double now = srv_monotonic();
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].state != CLIENT_FREE && now >= clients[i].deadline)
            client_close(&clients[i]);
}

void srv_metrics_http_forget(void)
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

void srv_metrics_http_close(void)
{
    if (unix_path)
        unlink(unix_path);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].state != CLIENT_FREE)
            client_close(&clients[i]);
    srv_metrics_http_forget();
}
