/*
 * ws_conn.c - an open WebSocket's connection side (see ws_private.h).
 *
 * Once open, the connection is in state SRV_CONN_UPGRADED and the loop owns its
 * I/O.  The read watcher stays on: read_input() unmasks frames straight out
 * of the connection's read buffer, reassembles fragments, answers pings and
 * the closing handshake itself, and queues whole messages as Python str or
 * bytes.  No greenlet wakes for a ping, and thousands of idle sockets cost
 * nothing but their memory.  A greenlet in receive() waits only when the
 * queue is empty; a full queue stops reading (backpressure on the client).
 *
 * Output: every frame, from any greenlet and from the loop (pongs, closes),
 * is written whole, at once when the socket takes it, else appended to one
 * output buffer that the write watcher flushes.  Frames therefore never
 * interleave.  send() returns as soon as its frame is written or buffered,
 * and waits only while more than WRITE_HIGH bytes are pending, so a client
 * that stops reading holds up the greenlets sending to it and nothing else;
 * --io-timeout bounds how long such a client may stall.
 *
 * Lifetimes: the connection owns a reference to the object (its handler's
 * data, c->handler_data); the object points back at the connection until
 * the connection ends
 * (ws_detach), after which every call says the socket is closed.  The
 * greenlets waiting in receive() or send() are referenced by the object and
 * are resumed only from the loop greenlet: directly at the end of an I/O
 * callback, or through the `kick` timer when the state changed in a
 * greenlet (close() from a writer while a reader waits).  A waiter always
 * removes itself when its wait ends, so no greenlet is ever resumed for a
 * wait it already left.
 */
#include "ws_private.h"
#include "srv/config.h"
#include "srv/log.h"
#include "srv/metrics.h"
#include "srv/ws_frame.h"
#include "srv/conn.h"
#include "srv/hub.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- output ----------------------------------------------------------- */

size_t ws_pending(const WebSocketObject *ws) { return ws->out_len - ws->out_off; }

int ws_out_append(WebSocketObject *ws, const void *p, size_t n)
{
    if (ws->out_len == ws->out_off)
        ws->out_since = ev_now(srv_loop);   /* --io-timeout counts from here */
    if (ws->out_len + n > ws->out_cap) {
        if (ws->out_off > 0) {
            memmove(ws->out, ws->out + ws->out_off, ws->out_len - ws->out_off);
            ws->out_len -= ws->out_off;
            ws->out_off = 0;
        }
        if (ws->out_len + n > ws->out_cap) {
            size_t cap = ws->out_cap ? ws->out_cap : 1024;
            while (cap < ws->out_len + n)
                cap *= 2;
            char *m = realloc(ws->out, cap);
            if (m == NULL)
                return -1;
            ws->out = m;
            ws->out_cap = cap;
        }
    }
    memcpy(ws->out + ws->out_len, p, n);
    ws->out_len += n;
    return 0;
}

/* The output buffer is only used while the socket is full, so an idle
 * WebSocket holds none. */
static void out_reset(WebSocketObject *ws)
{
    ws->out_len = ws->out_off = 0;
    free(ws->out);
    ws->out = NULL;
    ws->out_cap = 0;
}


/* The socket failed, or the client stalled past --io-timeout: nothing more
 * is read or written; waiters learn it from the loop. */
static void fail_io(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    ws->failed = ws->read_done = ws->close_sent = 1;
    out_reset(ws);
    if (c)
        srv_conn_stop_io(c);
    ws_start_kick(ws);
}

/* Our close went out and theirs came in (or the connection failed the
 * protocol): the server closes the TCP connection first (RFC 6455 7.1.1).
 * The descriptor itself is closed when the app's call ends. */
void ws_shut_if_done(WebSocketObject *ws)
{
    if (ws->shut || !ws->close_sent || !ws->read_done || ws_pending(ws) > 0 || ws->conn == NULL)
        return;
    ws->shut = 1;
    shutdown(ws->conn->fd, SHUT_WR);   /* what they still send is read and dropped at the end */
}

/* Writes what the output buffer holds, without waiting.  Returns 0, or -1
 * when the socket failed. */
int ws_flush_out(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    if (c == NULL || ws->failed)
        return -1;
    while (ws->out_off < ws->out_len) {
        struct iovec iov = {ws->out + ws->out_off, ws->out_len - ws->out_off};
        ssize_t n = srv_conn_send(c, &iov, 1);
        if (n > 0) {
            ws->out_off += (size_t)n;
            ws->out_since = ev_now(srv_loop);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!ev_is_active(&c->wio))
                ev_io_start(srv_loop, &c->wio);
            srv_conn_arm_timer(c);
            return 0;
        }
        fail_io(ws);
        return -1;
    }
    out_reset(ws);
    if (ev_is_active(&c->wio))
        ev_io_stop(srv_loop, &c->wio);
    if (ws->out_paused) {
        ws->out_paused = 0;
        if (!ws->read_done && !ws->paused) {
            ev_io_start(srv_loop, &c->rio);
            ev_feed_event(srv_loop, &c->rio, EV_READ);
        }
    }
    ws_shut_if_done(ws);
    if (ws->nwriters)
        ws_start_kick(ws);   /* someone may wait for all of it to be written */
    return 0;
}

/* Writes one whole frame, or buffers what the socket does not take.
 * Returns 0, or -1 when the socket is gone or memory ran out. */
int ws_write_frame(WebSocketObject *ws, int opcode, const void *data, size_t len)
{
    srv_conn *c = ws->conn;
    if (c == NULL || ws->failed)
        return -1;
    uint8_t h[10];
    size_t hl = srv_ws_frame_header(h, opcode, len);
    size_t done = 0;
    int direct = ws_pending(ws) == 0;
    if (direct) {
        /* Straight from the caller's memory; only a remainder is copied. */
        struct iovec iov[2] = {{h, hl}, {(void *)data, len}};
        ssize_t n = srv_conn_send(c, iov, 2);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            fail_io(ws);
            return -1;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done == hl + len)
            return 0;
    }
    if (done < hl && ws_out_append(ws, h + done, hl - done) < 0)
        goto nomem;
    size_t from = done > hl ? done - hl : 0;
    if (ws_out_append(ws, (const char *)data + from, len - from) < 0)
        goto nomem;
    if (direct) {
        /* The socket is full: the write watcher takes over. */
        ev_io_start(srv_loop, &c->wio);
        srv_conn_arm_timer(c);
    }
    return 0;
nomem:
    fail_io(ws);
    return -1;
}

int ws_send_close(WebSocketObject *ws, int code, const char *reason, size_t rlen)
{
    if (ws->close_sent)
        return 0;
    ws->close_pending = 0;   /* this close is the reply, if one was due */
    uint8_t payload[125];
    size_t n = 0;
    if (code > 0) {
        rlen = srv_ws_utf8_cut(reason, rlen, 123);   /* never inside a character */
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        memcpy(payload + 2, reason, rlen);
        n = 2 + rlen;
    }
    ws->close_sent = 1;
    return ws_write_frame(ws, SRV_WS_OP_CLOSE, payload, n);
}

/* Fails the WebSocket connection (RFC 6455 7.1.7): close with `code`, read
 * nothing more, and shut the TCP connection once the close is written. */
static void fail_protocol(WebSocketObject *ws, int code, const char *why)
{
    srv_debug("fd %d: WebSocket closed with %d: %s", ws->conn ? ws->conn->fd : -1, code, why);
    ws->read_done = 1;
    ws->msg_op = 0;
    ws->msg_len = 0;
    if (ws->conn)
        ev_io_stop(srv_loop, &ws->conn->rio);
    ws_send_close(ws, code, why, strlen(why));
    ws_shut_if_done(ws);
}

/* ---- input ---------------------------------------------------------- */

static void deliver(WebSocketObject *ws, PyObject *data, size_t size)
{
    ws_msg *m = malloc(sizeof *m);
    if (m == NULL) {
        Py_DECREF(data);
        fail_protocol(ws, 1011, "out of memory");
        return;
    }
    m->next = NULL;
    m->data = data;   /* the queue owns it now */
    m->size = size;
    if (ws->qtail)
        ws->qtail->next = m;
    else
        ws->qhead = m;
    ws->qtail = m;
    ws->qbytes += size + 64;
    size_t limit = srv_cfg.ws_max_message > (1u << 20) ? srv_cfg.ws_max_message : (1u << 20);
    if (ws->qbytes > limit && ws->conn) {
        ws->paused = 1;   /* the app is not keeping up: stop reading */
        ev_io_stop(srv_loop, &ws->conn->rio);
    }
}

static void message_complete(WebSocketObject *ws)
{
    PyObject *data;
    if (ws->msg_op == SRV_WS_OP_TEXT) {
        data = PyUnicode_DecodeUTF8(ws->msg, (Py_ssize_t)ws->msg_len, NULL);
        if (data == NULL) {
            PyErr_Clear();
            fail_protocol(ws, 1007, "invalid UTF-8 in a text message");
            return;
        }
    } else {
        data = PyBytes_FromStringAndSize(ws->msg, (Py_ssize_t)ws->msg_len);
        if (data == NULL) {
            PyErr_Clear();
            fail_protocol(ws, 1011, "out of memory");
            return;
        }
    }
    size_t size = ws->msg_len;
    ws->msg_op = 0;
    ws->msg_len = 0;
    if (ws->msg_cap > MSG_KEEP) {
        free(ws->msg);
        ws->msg = NULL;
        ws->msg_cap = 0;
    }
    if (ws->local_close) {
        Py_DECREF(data);   /* closing: late messages are dropped */
        return;
    }
    srv_my_metrics->ws_messages_received++;
    deliver(ws, data, size);
}

static void control_complete(WebSocketObject *ws)
{
    switch (ws->frame_op) {
    case SRV_WS_OP_PING:
        if (!ws->close_sent)
            ws_write_frame(ws, SRV_WS_OP_PONG, ws->ctl, ws->ctl_len);
        return;
    case SRV_WS_OP_PONG:
        return;
    default:   /* SRV_WS_OP_CLOSE */
        break;
    }
    int code = 0;
    if (ws->ctl_len == 1) {
        fail_protocol(ws, 1002, "close frame with a 1-byte payload");
        return;
    }
    if (ws->ctl_len >= 2) {
        code = ws->ctl[0] << 8 | ws->ctl[1];
        if (!srv_ws_close_code_valid(code)) {
            fail_protocol(ws, 1002, "invalid close code");
            return;
        }
        if (!srv_ws_utf8_valid(ws->ctl + 2, ws->ctl_len - 2)) {
            fail_protocol(ws, 1007, "invalid UTF-8 in a close reason");
            return;
        }
    }
    ws->close_received = ws->read_done = 1;
    ws->close_code = code ? code : 1000;
    if (ws->conn)
        ev_io_stop(srv_loop, &ws->conn->rio);
    if (ws->qhead && !ws->local_close && ws->conn) {
        /* Messages sent before the close wait for the app, which may still
         * answer them: our close goes out once it has read them all (or
         * returns, or CLOSE_REPLY_WAIT passes), as in gevent-websocket. */
        ws->close_pending = 1;
        ws->close_at = ev_now(srv_loop);
        srv_conn_arm_timer(ws->conn);
        return;
    }
    ws_send_close(ws, ws->close_code, "", 0);
    ws_shut_if_done(ws);
}

/* Sends the close reply that waited for the app to read what came before. */
void ws_reply_to_close(WebSocketObject *ws)
{
    if (!ws->close_pending)
        return;
    ws->close_pending = 0;
    ws_send_close(ws, ws->close_code, "", 0);
    ws_shut_if_done(ws);
}

/* Parses a frame header at p (n bytes available).  Returns its size, 0 if
 * more bytes are needed, or -1 after failing the connection. */
static ssize_t parse_frame_header(WebSocketObject *ws, const uint8_t *p, size_t n)
{
    srv_ws_limits lim = {ws->msg_op != 0, ws->msg_len, srv_cfg.ws_max_message};
    srv_ws_frame f;
    int code = 0;
    const char *why = NULL;
    ssize_t need = srv_ws_parse_header(p, n, &lim, &f, &code, &why);
    if (need <= 0) {
        if (need < 0)
            fail_protocol(ws, code, why);
        return need;
    }
    int op = f.opcode;
    uint64_t len = f.len;
    memcpy(ws->mask, f.mask, 4);
    ws->mask_pos = 0;
    ws->frame_op = f.opcode;
    ws->frame_fin = f.fin;
    ws->frame_left = len;
    ws->ctl_len = 0;
    ws->in_frame = 1;
    if (op == SRV_WS_OP_TEXT || op == SRV_WS_OP_BINARY)
        ws->msg_op = (uint8_t)op;
    if (op < 8 && ws->msg_len + len > ws->msg_cap) {
        size_t cap = ws->msg_cap ? ws->msg_cap : 256;
        while (cap < ws->msg_len + len)
            cap *= 2;
        char *m = realloc(ws->msg, cap);
        if (m == NULL) {
            fail_protocol(ws, 1011, "out of memory");
            return -1;
        }
        ws->msg = m;
        ws->msg_cap = cap;
    }
    return (ssize_t)need;
}

static void frame_complete(WebSocketObject *ws)
{
    ws->in_frame = 0;
    if (ws->frame_op >= 8)
        control_complete(ws);
    else if (ws->frame_fin)
        message_complete(ws);
}

/* Parses every whole or partial frame in the read buffer. */
/* Between messages, with no bytes buffered: the reassembly buffer goes
 * too, so that an idle WebSocket holds no buffer at all (a 256-byte block
 * plus malloc's overhead each, otherwise).  A message in progress keeps it. */
static void msg_release_idle(WebSocketObject *ws)
{
    if (ws->msg_op != 0 || ws->in_frame || ws->msg == NULL)
        return;
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_cap = ws->msg_len = 0;
}

static void parse_input(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    const uint8_t *p = (const uint8_t *)c->rbuf.data + c->rpos;
    size_t n = c->rbuf.len - c->rpos;
    while (!ws->read_done) {
        if (!ws->in_frame) {
            ssize_t h = parse_frame_header(ws, p, n);
            if (h <= 0)
                break;
            p += h;
            n -= (size_t)h;
            if (ws->frame_left == 0) {
                frame_complete(ws);
                continue;
            }
        }
        if (n == 0)
            break;
        size_t take = n < ws->frame_left ? n : (size_t)ws->frame_left;
        uint8_t *dst = ws->frame_op >= 8 ? ws->ctl + ws->ctl_len
                                         : (uint8_t *)ws->msg + ws->msg_len;
        srv_ws_unmask(dst, p, take, ws->mask, &ws->mask_pos);
        if (ws->frame_op >= 8)
            ws->ctl_len += take;
        else
            ws->msg_len += take;
        p += take;
        n -= take;
        ws->frame_left -= take;
        if (ws->frame_left == 0)
            frame_complete(ws);
    }
    if (ws->conn == NULL)
        return;
    if (n == 0 || ws->read_done) {
        srv_conn_consumed(c, c->rbuf.len);   /* an idle socket holds no buffer */
        msg_release_idle(ws);
    } else {
        srv_conn_consumed(c, (size_t)((const char *)p - c->rbuf.data));
    }
}

static void read_input(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    if (c->rpos < c->rbuf.len)
        parse_input(ws);   /* bytes that came with the handshake */
    while (!ws->read_done && !ws->paused && ws->conn) {
        if (ws_pending(ws) > WRITE_HIGH) {
            /* Pings from a client that reads nothing would queue pongs
             * without end: read no more until it catches up. */
            ws->out_paused = 1;
            ev_io_stop(srv_loop, &c->rio);
            break;
        }
        int full;
        ssize_t n = srv_conn_fill(c, &full);
        if (n == -2) {
            fail_io(ws);   /* no memory for the read buffer */
            return;
        }
        if (n > 0) {
            parse_input(ws);
            if (!full)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* EOF (peer_closed is set) or a reset with no closing handshake
         * (1006). */
        fail_io(ws);
        break;
    }
    if (ws->conn && c->rbuf.len == 0)
        srv_buf_release(&c->rbuf);
}

/* ---- waiting and waking ------------------------------------------------ */

static int receiver_may_go(const WebSocketObject *ws)
{
    return ws->qhead || ws->read_done || ws->local_close || ws->conn == NULL;
}

static int writers_may_go(const WebSocketObject *ws)
{
    return ws->conn == NULL || ws->failed || ws_pending(ws) <= WRITE_LOW;
}

/* In the loop greenlet: resumes the waiters whose condition now holds.
 * The connection may be gone when this returns. */
static void wake_waiters(WebSocketObject *ws)
{
    Py_INCREF(ws);
    if (ws->receiver && receiver_may_go(ws)) {
        PyGreenlet *g = ws->receiver;
        ws->receiver = NULL;
        srv_hub_resume(g);
        Py_DECREF(g);
    }
    int n = ws->nwriters;
    while (n-- > 0 && ws->nwriters > 0 && writers_may_go(ws)) {
        PyGreenlet *g = ws->writers[0];
        memmove(ws->writers, ws->writers + 1, (size_t)(ws->nwriters - 1) * sizeof *ws->writers);
        ws->nwriters--;
        srv_hub_resume(g);
        Py_DECREF(g);
    }
    Py_DECREF(ws);
}

static void kick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    WebSocketObject *ws = (WebSocketObject *)((char *)t - offsetof(WebSocketObject, kick));
    wake_waiters(ws);
    Py_DECREF(ws);   /* the reference start_kick took */
}

SRV_EV_CALLBACK(on_kick, ev_timer, kick_cb)

void ws_kick_init(WebSocketObject *ws)
{
    ev_init(&ws->kick, on_kick);
}

/* Has the loop wake the waiters soon; safe from any greenlet. */
void ws_start_kick(WebSocketObject *ws)
{
    if ((ws->receiver || ws->nwriters) && srv_loop && !ev_is_active(&ws->kick)) {
        Py_INCREF(ws);
        ev_timer_set(&ws->kick, 0., 0.);
        ev_timer_start(srv_loop, &ws->kick);
    }
}

static int cannot_wait(void)
{
    if (srv_loop == NULL || srv_hub_in_loop()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a WebSocket cannot wait in the loop greenlet: call it from a request's greenlet");
        return 1;
    }
    return 0;
}

int ws_wait_as_receiver(WebSocketObject *ws)
{
    if (cannot_wait())
        return -1;
    PyGreenlet *self = srv_hub_current();   /* owned by ws->receiver while waiting */
    ws->receiver = self;
    int rc = srv_hub_wait();
    if (ws->receiver == self) {
        ws->receiver = NULL;
        Py_DECREF(self);
    }
    return rc;
}

static int wait_as_writer(WebSocketObject *ws)
{
    if (cannot_wait())
        return -1;
    if (ws->nwriters == ws->cap_writers) {
        int cap = ws->cap_writers ? ws->cap_writers * 2 : 4;
        PyGreenlet **w = realloc(ws->writers, (size_t)cap * sizeof *w);
        if (w == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        ws->writers = w;
        ws->cap_writers = cap;
    }
    PyGreenlet *self = srv_hub_current();   /* owned by ws->writers while waiting */
    ws->writers[ws->nwriters++] = self;
    int rc = srv_hub_wait();
    for (int i = 0; i < ws->nwriters; i++) {
        if (ws->writers[i] == self) {
            memmove(ws->writers + i, ws->writers + i + 1,
                    (size_t)(ws->nwriters - i - 1) * sizeof *ws->writers);
            ws->nwriters--;
            Py_DECREF(self);
            break;
        }
    }
    return rc;
}

/* Waits until the output is written (or below WRITE_LOW when `all` is 0). */
int ws_wait_for_output(WebSocketObject *ws, int all)
{
    while (ws->conn && !ws->failed && ws_pending(ws) > (all ? 0 : WRITE_LOW)) {
        if (wait_as_writer(ws) < 0)
            return -1;
    }
    return 0;
}

/* ---- the loop's side ---------------------------------------------------- */

static void ws_on_io(srv_conn *c, int revents)
{
    WebSocketObject *ws = (WebSocketObject *)c->handler_data;
    Py_INCREF(ws);
    if (revents & EV_WRITE)
        ws_flush_out(ws);
    if ((revents & EV_READ) && ws->conn && !ws->read_done && !ws->paused && !ws->out_paused)
        read_input(ws);
    wake_waiters(ws);   /* c may be gone after this */
    Py_DECREF(ws);
}

static double ws_deadline(const srv_conn *c)
{
    const WebSocketObject *ws = (const WebSocketObject *)c->handler_data;
    if (ws == NULL)
        return 0;
    double when = 0;
    if (ws_pending(ws) > 0 && srv_cfg.io_timeout > 0)
        when = ws->out_since + srv_cfg.io_timeout;
    if (ws->close_pending && (when == 0 || ws->close_at + CLOSE_REPLY_WAIT < when))
        when = ws->close_at + CLOSE_REPLY_WAIT;
    return when;
}

static void ws_on_timeout(srv_conn *c)
{
    WebSocketObject *ws = (WebSocketObject *)c->handler_data;
    if (ws->close_pending && ev_now(srv_loop) >= ws->close_at + CLOSE_REPLY_WAIT) {
        /* The app left the messages before the close unread. */
        ws->local_close = 1;
        ws_reply_to_close(ws);
        ws_start_kick(ws);
        srv_conn_arm_timer(c);
        return;
    }
    srv_debug("fd %d: WebSocket client read nothing for %g s: closing", c->fd, srv_cfg.io_timeout);
    fail_io(ws);
}

static void ws_on_going_away(srv_conn *c)
{
    WebSocketObject *ws = (WebSocketObject *)c->handler_data;
    if (ws == NULL || !ws->opened || ws->close_sent)
        return;
    ws->local_close = 1;
    if (ws->close_pending)
        ws_reply_to_close(ws);
    else
        ws_send_close(ws, 1001, "server shutting down", 20);
    ws_start_kick(ws);
}

void ws_discard_queue(WebSocketObject *ws)
{
    while (ws->qhead) {
        ws_msg *m = ws->qhead;
        ws->qhead = m->next;
        Py_DECREF(m->data);
        free(m);
    }
    ws->qtail = NULL;
    ws->qbytes = 0;
}

void ws_detach(srv_conn *c)
{
    WebSocketObject *ws = (WebSocketObject *)c->handler_data;
    if (ws == NULL)
        return;
    srv_conn_set_handler(c, NULL, NULL);
    ws->conn = NULL;
    if (ws->opened)
        srv_my_metrics->ws_connections--;
    ws->read_done = 1;
    ws->close_sent = 1;
    out_reset(ws);
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_cap = ws->msg_len = 0;
    Py_CLEAR(ws->environ);   /* environ refers to us: break the cycle */
    ws_start_kick(ws);
    Py_DECREF(ws);   /* the connection's reference */
}

/* What conn.c calls for an upgraded connection (srv_conn_handler). */
const srv_conn_handler ws_handler = {
    .on_io = ws_on_io,
    .deadline = ws_deadline,
    .on_timeout = ws_on_timeout,
    .on_going_away = ws_on_going_away,
    .on_close = ws_detach,
};
