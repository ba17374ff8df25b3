/*
 * conn.c - client connections: reading heads in the loop, I/O that waits in
 * workers, keep-alive, timeouts and lingering close.
 *
 * Life of a connection:
 *
 *   accept -> READING --head parsed--> BUSY (a worker serves it)
 *                ^                       |
 *                +----- keep-alive ------+----- close or error --> LINGER -> freed
 *
 * In READING and LINGER the loop owns the connection and its read watcher is
 * active.  In BUSY the worker owns it; the watchers run only while the worker
 * waits in srv_conn_read_more() or srv_conn_writev(), and their callback then
 * just switches back to the waiting greenlet.
 *
 * One timer per connection enforces every idle limit.  It is re-armed lazily:
 * activity only stamps last_active, and the callback computes how long is
 * left for the current state, so the hot path never touches the timer heap.
 *
 * Held output: the last bytes of a keep-alive response may be held in a
 * small block (srv_conn_write_soon) and sent once the loop's pass has run
 * its other callbacks (held_cb), so the responses of one pass leave
 * together.  What a send cannot take then is sent when the socket is
 * writable (the write watcher with no waiter).  Every other way out of the
 * connection (a write, sendfile, lingering, closing) sends what is held
 * first, so bytes never pass each other.
 */
#include "srv/conn.h"
#include "srv/config.h"
#include "srv/fault.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/metrics.h"
#include "srv/sched.h"
#include "srv/sockio.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_SECONDS 2.0
#define LINGER_MAX_BYTES (1 << 20)
#define READ_MIN_ROOM 4096
#define CONN_POOL_MAX 256
#define OUT_BLOCK 4096          /* the most output held per connection */
#define OUT_POOL_MAX 64
#define HOLD_PASS_MAX 0.005     /* seconds into a pass after which nothing is held */

static srv_conn *conns;       /* every open connection */
static int nconns;
static srv_conn *free_conns;  /* recycled structs */
static int nfree_conns;

static void on_io(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void held_send_all(void);
static void held_drop(srv_conn *c);
static int conn_wait(srv_conn *c, ev_io *w);

int srv_conn_count(void) { return nconns; }

/* When the current state's time runs out (an absolute ev_now time), or 0
 * for no limit: a waiting greenlet's --io-timeout, the linger time, or what
 * the protocol handler says while it owns the connection. */
static double deadline(const srv_conn *c)
{
    if (c->reader || c->writer)
        return c->last_active + srv_cfg.io_timeout;
    switch (c->state) {
    case SRV_CONN_READING:
    case SRV_CONN_UPGRADED:
        return c->handler->deadline(c);
    case SRV_CONN_LINGER:
        return c->last_active + LINGER_SECONDS;
    default:
        return 0;
    }
}

/* Makes sure the timer fires no later than the current state's deadline. */
static void arm_timer(srv_conn *c)
{
    double when = deadline(c);
    if (when == 0)
        return;
    double left = when - ev_now(srv_loop);
    if (left < 0.001)
        left = 0.001;
    if (!ev_is_active(&c->timer) || ev_timer_remaining(srv_loop, &c->timer) > left) {
        c->timer.repeat = left;
        ev_timer_again(srv_loop, &c->timer);
    }
}

void srv_conn_arm_timer(srv_conn *c)
{
    arm_timer(c);
}

srv_conn *srv_conn_accepted(srv_listener *l, int fd, const struct sockaddr *peer,
                            socklen_t peer_len)
{
    srv_conn *c = free_conns;
    if (c) {
        free_conns = c->next;
        nfree_conns--;
        memset(c, 0, sizeof *c);
    } else {
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            return NULL;
        }
    }
    c->fd = fd;   /* TCP_NODELAY comes from the listener (srv_loop_start) */
    c->listener = l;
    if (peer_len > sizeof c->peer)
        peer_len = sizeof c->peer;
    memcpy(&c->peer, peer, peer_len);
    c->peer_len = peer_len;
    c->state = SRV_CONN_READING;
    c->handler = srv_conn_default_handler;
    srv_request_init(&c->req);
    ev_io_init(&c->rio, on_io, fd, EV_READ);
    ev_io_init(&c->wio, on_io, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    ev_init(&c->timer, on_timer);
    c->timer.data = c;
    c->last_active = ev_now(srv_loop);

    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    nconns++;
    srv_my_metrics->connections++;

    ev_io_start(srv_loop, &c->rio);
    /* From a listener that defers accept, the first bytes are in already:
     * read them in this pass.  libev asks epoll for the socket only before
     * its next poll, so a connection served and closed by then never gets
     * there. */
    if (l->defers_accept)
        ev_feed_event(srv_loop, &c->rio, EV_READ);
    arm_timer(c);
    return c;
}

void srv_conn_close(srv_conn *c)
{
    held_drop(c);   /* what the socket takes now, then the rest is let go */
    if (c->handler && c->handler->on_close)
        c->handler->on_close(c);
    ev_io_stop(srv_loop, &c->rio);
    ev_io_stop(srv_loop, &c->wio);
    ev_timer_stop(srv_loop, &c->timer);
    close(c->fd);
    srv_request_free(&c->req);
    srv_buf_release(&c->rbuf);
    if (srv_conn_on_free)
        srv_conn_on_free(c);

    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    nconns--;
    srv_my_metrics->connections--;

    if (nfree_conns < CONN_POOL_MAX) {
        c->next = free_conns;
        free_conns = c;
        nfree_conns++;
    } else {
        free(c);
    }
    if (srv_conn_on_closed)
        srv_conn_on_closed();
}

int srv_conn_prepare_read(srv_conn *c)
{
    size_t keep = srv_http_keep_from(&c->req, c->rpos);
    if (keep > 0) {
        srv_buf_consume(&c->rbuf, keep);
        c->rpos -= keep;
        srv_http_shift(&c->req, (uint32_t)keep);
    }
    if (c->rbuf.cap - c->rbuf.len < READ_MIN_ROOM)
        return srv_buf_reserve(&c->rbuf, c->rbuf.cap ? READ_MIN_ROOM : SRV_BUF_BLOCK);
    return 0;
}

/* ---- the socket, without waiting ------------------------------------------
 * Every byte srv reads from or writes to a client crosses one of these two
 * functions (sendfile aside): EINTR is retried, SIGPIPE never raised, and
 * the bytes are counted for the metrics.  Callers decide what activity
 * means for their timers. */

ssize_t srv_conn_recv(srv_conn *c, void *buf, size_t len)
{
    ssize_t n = srv_sock_recv(c->fd, buf, len);
    if (n > 0)
        srv_my_metrics->received_bytes += (uint64_t)n;
    return n;
}

static ssize_t send_counted(srv_conn *c, const struct iovec *iov, int iovcnt)
{
    ssize_t n = srv_sock_send(c->fd, iov, iovcnt);
    if (n > 0)
        srv_my_metrics->sent_bytes += (uint64_t)n;
    return n;
}

/* ---- held output --------------------------------------------------------- */

static srv_conn *held;              /* connections whose output waits for held_kick, */
static srv_conn **held_tail = &held; /* in the order their output was held */
static ev_timer held_kick;          /* never started: fed, see held_cb */
static char *out_pool[OUT_POOL_MAX];
static int nout_pool;

static void out_release(srv_conn *c)
{
    if (nout_pool < OUT_POOL_MAX)
        out_pool[nout_pool++] = c->out;
    else
        free(c->out);
    c->out = NULL;
    c->out_len = c->out_pos = 0;
    if (c->writer == NULL && c->state != SRV_CONN_UPGRADED)
        ev_io_stop(srv_loop, &c->wio);   /* a background send's watcher */
}

static void held_unlink(srv_conn *c)
{
    if (!c->held)
        return;
    for (srv_conn **p = &held; *p; p = &(*p)->next_held)
        if (*p == c) {
            *p = c->next_held;
            if (held_tail == &c->next_held)
                held_tail = p;
            break;
        }
    c->held = 0;
    c->next_held = NULL;
}

/* Sends what c holds without waiting: 1 when all of it is out (the block
 * goes back to the pool), 0 when the socket is full, -1 when the client is
 * gone (c->broken; the rest is dropped). */
static int out_send(srv_conn *c)
{
    /* Tests (fault.h): this time the socket takes one byte, then is full. */
    int cut = srv_fault("held_output_full");
    while (c->out_pos < c->out_len) {
        struct iovec iov = {c->out + c->out_pos, cut ? 1 : c->out_len - c->out_pos};
        ssize_t n = send_counted(c, &iov, 1);
        if (n >= 0) {
            c->out_pos += (size_t)n;
            if (cut && c->out_pos < c->out_len)
                return 0;
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        c->broken = 1;
        break;
    }
    out_release(c);
    return c->broken ? -1 : 1;
}

/* out_send(), and what the socket cannot take now goes when it is
 * writable (io_cb).  out_send()'s result. */
static int out_send_or_later(srv_conn *c)
{
    int r = out_send(c);
    if (r == 0)
        ev_io_start(srv_loop, &c->wio);
    return r;
}

/* Everything held goes out, now or when its socket is writable. */
static void held_send_all(void)
{
    while (held) {
        srv_conn *c = held;
        held = c->next_held;
        c->held = 0;
        c->next_held = NULL;
        out_send_or_later(c);
    }
    held_tail = &held;
}

/* held_kick is fed when output is first held, at libev's lowest priority:
 * it runs once every other callback of the pass has (the io events, then
 * the hub's hand-out of the parsed heads), in the same ev_invoke_pending,
 * so the held bytes leave before the loop polls again, whichever phase of
 * the loop's turn held them (gevent runs its callbacks from a prepare
 * watcher). */
static void held_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    held_send_all();
}

SRV_EV_CALLBACK(on_held, ev_timer, held_cb)

/* Closing: what the socket takes now, the rest is let go. */
static void held_drop(srv_conn *c)
{
    held_unlink(c);
    if (c->out)
        out_send(c);
    if (c->out)
        out_release(c);
}

/* In a worker: sends what c holds, waiting as needed.  0, or -1. */
static int held_send_waiting(srv_conn *c)
{
    held_unlink(c);
    for (;;) {
        int r = out_send(c);
        if (r != 0)
            return r < 0 ? -1 : 0;
        if (conn_wait(c, &c->wio) < 0)
            return -1;
    }
}

ssize_t srv_conn_send(srv_conn *c, const struct iovec *iov, int iovcnt)
{
    if (c->out) {   /* held bytes go first; without waiting, not yet */
        held_unlink(c);
        int r = out_send_or_later(c);
        if (r <= 0) {
            if (r == 0)
                errno = EAGAIN;
            return -1;
        }
    }
    return send_counted(c, iov, iovcnt);
}

ssize_t srv_conn_fill(srv_conn *c, int *full)
{
    if (srv_conn_prepare_read(c) < 0)
        return -2;
    size_t room = c->rbuf.cap - c->rbuf.len;
    ssize_t n = srv_conn_recv(c, c->rbuf.data + c->rbuf.len, room);
    if (n > 0) {
        c->rbuf.len += (size_t)n;
        c->last_active = ev_now(srv_loop);
        if (!c->req.head_live)
            c->head_start = c->last_active;   /* a new head may begin */
    } else if (n == 0) {
        c->peer_closed = 1;
    }
    *full = n > 0 && (size_t)n == room;
    return n;
}

/* Waits in the current greenlet until w's fd is ready, the idle limit
 * passes, or an exception is thrown into the greenlet.  Reading and writing
 * have a waiter each, so one greenlet of a request may read the body while
 * another writes; a second greenlet waiting the same way is refused with
 * RuntimeError (the connection stays usable).  Returns 0 when ready, -1
 * otherwise (with the Python exception still set if one was thrown). */
static int conn_wait(srv_conn *c, ev_io *w)
{
    int reading = w == &c->rio;
    srv_task **slot = reading ? &c->reader : &c->writer;
    int *result = reading ? &c->read_result : &c->write_result;
    if (*slot) {
        srv_task_refuse(reading ? "another greenlet is already waiting to read from this client"
                                : "another greenlet is already waiting to write to this client");
        return -1;
    }
    srv_task *self = srv_task_current();   /* held for the wait */
    *slot = self;
    *result = 0;
    c->last_active = ev_now(srv_loop);
    arm_timer(c);
    ev_io_start(srv_loop, w);
    int rc = srv_task_wait();
    ev_io_stop(srv_loop, w);
    *slot = NULL;
    srv_task_release(self);
    if (rc < 0 || *result < 0) {
        c->broken = 1;
        return -1;
    }
    return 0;
}

ssize_t srv_conn_read_more(srv_conn *c)
{
    if (c->peer_closed)
        return 0;
    if (c->broken)
        return -1;
    for (;;) {
        int full;
        ssize_t n = srv_conn_fill(c, &full);
        if (n > 0)
            return n;
        if (n == 0)
            return 0;   /* peer_closed is set */
        if (n == -2 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            c->broken = 1;
            return -1;
        }
        if (conn_wait(c, &c->rio) < 0)
            return -1;
    }
}

int srv_conn_writev(srv_conn *c, struct iovec *iov, int iovcnt)
{
    if (c->out && held_send_waiting(c) < 0)
        return -1;
    while (iovcnt > 0) {
        if (c->broken)
            return -1;
        ssize_t n = srv_conn_send(c, iov, iovcnt);
        if (n >= 0) {
            c->last_active = ev_now(srv_loop);
            size_t left = (size_t)n;
            while (iovcnt > 0 && left >= iov->iov_len) {
                left -= iov->iov_len;
                iov++;
                iovcnt--;
            }
            if (iovcnt > 0) {
                iov->iov_base = (char *)iov->iov_base + left;
                iov->iov_len -= left;
            }
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c->broken = 1;
            return -1;
        }
        if (conn_wait(c, &c->wio) < 0)
            return -1;
    }
    return 0;
}

int srv_conn_write_soon(srv_conn *c, struct iovec *iov, int iovcnt)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (c->broken || c->out_len + total > OUT_BLOCK)
        return srv_conn_writev(c, iov, iovcnt);
    if (ev_time() - ev_now(srv_loop) > HOLD_PASS_MAX) {
        held_send_all();   /* a long pass: nothing waits for its end */
        return srv_conn_writev(c, iov, iovcnt);
    }
    if (c->out == NULL) {
        c->out = nout_pool > 0 ? out_pool[--nout_pool] : malloc(OUT_BLOCK);
        if (c->out == NULL)
            return srv_conn_writev(c, iov, iovcnt);
    }
    for (int i = 0; i < iovcnt; i++) {
        memcpy(c->out + c->out_len, iov[i].iov_base, iov[i].iov_len);
        c->out_len += iov[i].iov_len;
    }
    c->last_active = ev_now(srv_loop);
    if (!c->held) {
        c->held = 1;
        *held_tail = c;
        held_tail = &c->next_held;
        if (!ev_is_pending(&held_kick)) {
            ev_init(&held_kick, on_held);
            ev_set_priority(&held_kick, EV_MINPRI);
            ev_feed_event(srv_loop, &held_kick, EV_TIMER);
        }
    }
    return 0;
}

int srv_conn_sendfile(srv_conn *c, int fd, off_t offset, size_t count)
{
    if (c->out && held_send_waiting(c) < 0)
        return -1;
    int sent_any = 0;
    while (count > 0) {
        if (c->broken)
            return -1;
        ssize_t n = sendfile(c->fd, fd, &offset, count > (1u << 30) ? (1u << 30) : count);
        if (n > 0) {
            c->last_active = ev_now(srv_loop);
            count -= (size_t)n;
            srv_my_metrics->sent_bytes += (uint64_t)n;
            sent_any = 1;
            continue;
        }
        if (n == 0)         /* the file is shorter than it said */
            return -1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (conn_wait(c, &c->wio) < 0)
                return -1;
            continue;
        }
        if (!sent_any && (errno == EINVAL || errno == ENOSYS || errno == EOVERFLOW))
            return -2;
        c->broken = 1;
        return -1;
    }
    return 0;
}

/* Half-closes and discards what the client still sends, so that the response
 * is not destroyed by a reset, then closes on EOF or after a short time. */
void srv_conn_linger(srv_conn *c)
{
    held_drop(c);   /* release() sent it already; from the loop, what goes now */
    c->state = SRV_CONN_LINGER;
    if (c->writer == NULL)
        ev_io_stop(srv_loop, &c->wio);
    shutdown(c->fd, SHUT_WR);
    c->rpos = 0;
    c->rbuf.len = 0;
    c->last_active = ev_now(srv_loop);
    c->linger_bytes = 0;
    ev_io_start(srv_loop, &c->rio);
    arm_timer(c);
}

static void linger_read(srv_conn *c)
{
    char scratch[16384];
    for (;;) {
        ssize_t n = srv_conn_recv(c, scratch, sizeof scratch);
        if (n > 0) {
            c->linger_bytes += (size_t)n;
            if (c->linger_bytes > LINGER_MAX_BYTES)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break;
    }
    srv_conn_close(c);
}

void srv_conn_release(srv_conn *c, int keep_alive)
{
    if (!keep_alive || c->broken || c->peer_closed) {
        if (c->out && !c->broken)
            held_send_waiting(c);   /* the response, before closing */
        if (c->linger_on_release && !c->broken && !c->peer_closed)
            srv_conn_linger(c);
        else if (c->broken || c->peer_closed || (c->req.message_done && c->rpos >= c->rbuf.len))
            srv_conn_close(c);
        else
            srv_conn_linger(c);
        return;
    }
    c->state = SRV_CONN_READING;
    c->last_active = c->head_start = ev_now(srv_loop);
    ev_io_start(srv_loop, &c->rio);
    arm_timer(c);
}

const srv_conn_handler *srv_conn_default_handler;
void (*srv_conn_on_free)(srv_conn *c);
void (*srv_conn_on_closed)(void);

/* ---- what the layers above may change ---------------------------------- */

void srv_conn_set_handler(srv_conn *c, const srv_conn_handler *h, void *data)
{
    c->handler = h ? h : srv_conn_default_handler;
    c->handler_data = data;
}

void srv_conn_set_peer(srv_conn *c, const struct sockaddr_storage *peer, socklen_t len)
{
    c->proxy_seen = 1;
    if (len > 0) {
        memcpy(&c->peer, peer, len);
        c->peer_len = len;
    }
}

void srv_conn_take(srv_conn *c)
{
    ev_io_stop(srv_loop, &c->rio);
    c->state = SRV_CONN_BUSY;
}

void srv_conn_upgrade(srv_conn *c)
{
    c->state = SRV_CONN_UPGRADED;
    c->last_active = ev_now(srv_loop);
    ev_io_start(srv_loop, &c->rio);
    if (c->rpos < c->rbuf.len)
        ev_feed_event(srv_loop, &c->rio, EV_READ);   /* came with the handshake */
}

void srv_conn_end_upgrade(srv_conn *c, int linger_first)
{
    ev_io_stop(srv_loop, &c->rio);
    ev_io_stop(srv_loop, &c->wio);
    c->state = SRV_CONN_BUSY;
    c->rbuf.len = c->rpos = 0;
    if (linger_first)
        c->linger_on_release = 1;
}

void srv_conn_consumed(srv_conn *c, size_t pos)
{
    c->rpos = pos;
    if (pos >= c->rbuf.len) {
        c->rbuf.len = c->rpos = 0;
        srv_buf_release(&c->rbuf);
    }
}

void srv_conn_next_request(srv_conn *c)
{
    c->requests_served++;
    srv_request_next(&c->req);
    if (c->rpos == c->rbuf.len)
        c->rbuf.len = c->rpos = 0;
}

void srv_conn_stop_io(srv_conn *c)
{
    c->broken = 1;
    ev_io_stop(srv_loop, &c->rio);
    ev_io_stop(srv_loop, &c->wio);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    srv_conn *c = w->data;
    srv_task **slot = w == &c->rio ? &c->reader : &c->writer;
    if (*slot) {
        srv_task *t = *slot;
        *slot = NULL;
        ev_io_stop(loop, w);
        srv_task_resume(t);
        return;
    }
    if (w == &c->wio && c->out) {   /* held output the socket could not take */
        if (out_send(c) != 0)
            ev_io_stop(loop, w);
        else
            c->last_active = ev_now(loop);
        return;
    }
    if (c->state == SRV_CONN_UPGRADED || (c->state == SRV_CONN_READING && w == &c->rio))
        c->handler->on_io(c, w == &c->wio ? EV_WRITE : EV_READ);
    else if (c->state == SRV_CONN_LINGER && w == &c->rio)
        linger_read(c);
    else
        ev_io_stop(loop, w);   /* nobody waits for it */
}

SRV_EV_CALLBACK(on_io, ev_io, io_cb)

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    srv_conn *c = w->data;
    double when = deadline(c);
    if (when == 0) {
        ev_timer_stop(loop, w);   /* BUSY with no wait: re-armed later */
        return;
    }
    double left = when - ev_now(loop);
    if (left > 0) {
        w->repeat = left;
        ev_timer_again(loop, w);
        return;
    }
    if (c->reader || c->writer) {
        srv_debug("fd %d: client idle for %.0f s, giving up", c->fd, ev_now(loop) - c->last_active);
        /* One waiter per turn: c may be gone once it runs.  The timer is
         * re-armed first, so a second waiter is resumed at the next turn
         * (srv_conn_close() stops the timer if the first closes c). */
        int reading = c->reader != NULL;
        srv_task *t = reading ? c->reader : c->writer;
        *(reading ? &c->reader : &c->writer) = NULL;
        *(reading ? &c->read_result : &c->write_result) = -1;
        arm_timer(c);
        srv_task_resume(t);
        return;
    }
    if (c->state == SRV_CONN_UPGRADED || c->state == SRV_CONN_READING)
        c->handler->on_timeout(c);
    else
        srv_conn_close(c);
}

SRV_EV_CALLBACK(on_timer, ev_timer, timer_cb)

int srv_conn_close_idle(double min_idle)
{
    double now = ev_now(srv_loop);
    srv_conn *c = conns;
    while (c) {
        srv_conn *next = c->next;
        if (c->state == SRV_CONN_READING && !c->req.head_live && now - c->last_active >= min_idle)
            srv_conn_close(c);
        else if (c->state == SRV_CONN_UPGRADED && c->handler->on_going_away)
            c->handler->on_going_away(c);   /* a WebSocket: close 1001 */
        c = next;
    }
    return nconns;
}
