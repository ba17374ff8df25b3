/*
 * http1.c - the HTTP/1 handler on a connection: the loop's reader of heads.
 *
 * conn.c moves the bytes; this handler decides what they mean while the
 * loop owns a connection in state READING.  Each time the socket is
 * readable, on_readable() reads what is there (srv_conn_fill) and feeds it
 * to the parser (srv_http_feed, http.c).  Three outcomes:
 *
 *   head done  -> the connection is taken for a worker (srv_conn_take) and
 *                 handed to srv_http1_on_head, the hub's dispatch;
 *   bad head   -> srv_http1_refuse(): the error status, then lingering close;
 *   not yet    -> the timer is re-armed: a head that has begun must end by
 *                 its deadline (slowloris), an idle one by the idle limit.
 *
 * With --proxy-protocol the PROXY header comes first and replaces the peer's
 * address (srv_conn_set_peer).  This file writes nothing in srv_conn itself:
 * every change goes through conn.c's functions.
 */
#include "srv/http1.h"
#include "srv/config.h"
#include "srv/http.h"
#include "srv/log.h"
#include "srv/metrics.h"
#include "srv/proxy.h"
#include "srv/sched.h"

#include <errno.h>
#include <string.h>

void (*srv_http1_on_head)(srv_conn *c);
void (*srv_http1_on_refused)(srv_conn *c, int status, size_t body_bytes);

void srv_http1_refuse(srv_conn *c, int status, const char *why)
{
    char buf[512];
    if (status == 0) {
        status = c->req.error_status ? c->req.error_status : 400;
        why = c->req.error_reason;
    }
    srv_debug("fd %d: %d: %s", c->fd, status, why ? why : "bad request");
    srv_metrics_request_refused(status);
    size_t n = srv_http_error_response(buf, sizeof buf, status, 0, ev_now(srv_loop));
    struct iovec iov = {buf, n};
    ssize_t w = srv_conn_send(c, &iov, 1);
    if (srv_http1_on_refused) {
        const char *end = memmem(buf, n, "\r\n\r\n", 4);
        srv_http1_on_refused(c, status, end ? n - (size_t)(end + 4 - buf) : 0);
    }
    if (w != (ssize_t)n)
        srv_conn_close(c);
    else
        srv_conn_linger(c);
}

/* --proxy-protocol: takes the PROXY header off the front of rbuf.  1 when
 * it is done (or was before), 0 when more bytes are needed, -1 when the
 * connection was closed for a bad header. */
static int take_proxy_header(srv_conn *c)
{
    struct sockaddr_storage peer;
    socklen_t peer_len = 0;
    int h = srv_proxy_protocol_parse(c->rbuf.data + c->rpos, c->rbuf.len - c->rpos,
                                     &peer, &peer_len);
    if (h < 0) {
        srv_debug("fd %d: no valid PROXY protocol header: closing", c->fd);
        srv_conn_close(c);
        return -1;
    }
    if (h == 0)
        return 0;
    srv_conn_set_peer(c, &peer, peer_len);   /* peer_len 0: LOCAL, keep ours */
    srv_conn_consumed(c, c->rpos + (size_t)h);
    return 1;
}

/* Feeds what the connection has read to the parser.  Returns 1 when the
 * connection left the loop's hands (dispatched, refused or closed), 0 to
 * read on. */
static int parse_what_came(srv_conn *c)
{
    if (srv_cfg.proxy_protocol && !c->proxy_seen) {
        int taken = take_proxy_header(c);
        if (taken <= 0)
            return taken < 0;
    }
    switch (srv_http_feed(&c->req, &c->rbuf, &c->rpos)) {
    case SRV_PARSE_HEAD_DONE:
        srv_conn_take(c);
        srv_http1_on_head(c);   /* c may be gone when this returns */
        return 1;
    case SRV_PARSE_ERROR:
        srv_http1_refuse(c, 0, NULL);
        return 1;
    default:
        return 0;
    }
}

static void on_readable(srv_conn *c)
{
    for (;;) {
        int full;
        ssize_t n = srv_conn_fill(c, &full);
        if (n > 0) {
            if (parse_what_came(c))
                return;
            srv_conn_arm_timer(c);   /* a head may have begun: its deadline runs */
            if (!full)
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        srv_conn_close(c);   /* EOF or error before a complete head */
        return;
    }
}

static void http1_on_io(srv_conn *c, int revents)
{
    if (revents & EV_READ)
        on_readable(c);
}

/* A request head has a deadline from its first byte, so a client that
 * drips bytes cannot hold a connection open (slowloris); between requests
 * the limit is an idle time, renewed by each read. */
static double http1_deadline(const srv_conn *c)
{
    if (c->req.head_live)
        return c->head_start + srv_cfg.header_timeout;
    if (c->requests_served == 0)
        return c->last_active + srv_cfg.header_timeout;
    return c->last_active + srv_cfg.keepalive_timeout;
}

static void http1_on_timeout(srv_conn *c)
{
    if (c->req.head_live) {
        srv_http1_refuse(c, 408, "request head timed out");
        return;
    }
    srv_conn_close(c);   /* idle */
}

const srv_conn_handler srv_http1_handler = {
    .on_io = http1_on_io,
    .deadline = http1_deadline,
    .on_timeout = http1_on_timeout,
    /* No on_going_away: srv_conn_close_idle closes idle READING
     * connections itself.  No on_close: nothing of ours is on c. */
};
