/*
 * ws.c - WebSocket (RFC 6455) in C, behind a gevent-websocket-style object.
 *
 * A request whose head asks for "Upgrade: websocket" is checked by
 * srv_ws_offer() before the app runs: a bad version gets 426, a bad key 400,
 * and a good one puts a WebSocket object in environ["wsgi.websocket"].  The
 * 101 goes out at the app's first receive(), send() or close() (or when it
 * returns without answering), so an app can still refuse with a normal
 * response, as it could with uWSGI's explicit handshake.
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
 * Lifetimes: the connection owns a reference to the object (c->ws); the
 * object points back at the connection until the connection ends
 * (ws_detach), after which every call says the socket is closed.  The
 * greenlets waiting in receive() or send() are referenced by the object and
 * are resumed only from the loop greenlet: directly at the end of an I/O
 * callback, or through the `kick` timer when the state changed in a
 * greenlet (close() from a writer while a reader waits).  A waiter always
 * removes itself when its wait ends, so no greenlet is ever resumed for a
 * wait it already left.
 */
#include "srv/ws.h"
#include "srv/config.h"
#include "srv/conn.h"
#include "srv/hub.h"
#include "srv/http.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/metrics.h"
#include "srv/wsgi.h"
#include "srv/ws_frame.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define WRITE_HIGH (64 * 1024)    /* send() waits above this many pending bytes */
#define WRITE_LOW (16 * 1024)     /* ... until the buffer drains below this */
#define MSG_KEEP (64 * 1024)      /* a bigger reassembly buffer is freed after its message */
#define CLOSE_REPLY_WAIT 5.0      /* how long messages read before a close may hold its reply */

static PyObject *WebSocketError;

typedef struct ws_msg {
    struct ws_msg *next;
    PyObject *data;                /* owned: str or bytes */
    size_t size;
} ws_msg;

typedef struct {
    PyObject_HEAD
    srv_conn *conn;                /* borrowed; NULL once the connection ended */
    PyObject *environ;             /* owned until the connection ends */
    PyObject *protocol;            /* owned str: the subprotocol app_protocol chose */
    char accept[32];               /* Sec-WebSocket-Accept */
    unsigned opened:1;             /* the 101 went out */
    unsigned refused:1;            /* the app answered with a normal response */
    unsigned close_sent:1;         /* no more frames after our close */
    unsigned close_received:1;
    unsigned read_done:1;          /* nothing more will be read */
    unsigned failed:1;             /* the socket failed or stalled */
    unsigned local_close:1;        /* the app or the server closed: no more messages */
    unsigned eof_given:1;          /* receive() has returned None once */
    unsigned paused:1;             /* reading stopped: the queue is full */
    unsigned out_paused:1;         /* reading stopped: the client does not read our pongs */
    unsigned shut:1;               /* our side of the TCP connection is shut */
    unsigned close_pending:1;      /* their close is in, our reply waits for the app */
    int close_code;                /* the code our reply carries */
    double close_at;               /* when their close came in */
    /* The frame being read. */
    unsigned in_frame:1;
    uint8_t frame_op;
    uint8_t frame_fin;
    uint8_t mask[4];
    unsigned mask_pos;
    uint64_t frame_left;
    /* The message being reassembled. */
    uint8_t msg_op;                /* SRV_WS_OP_TEXT, SRV_WS_OP_BINARY, or 0 between messages */
    char *msg;
    size_t msg_len, msg_cap;
    uint8_t ctl[125];              /* a control frame's payload */
    size_t ctl_len;
    /* Whole messages not yet received by the app. */
    ws_msg *qhead, *qtail;
    size_t qbytes;
    /* Frames not yet written. */
    char *out;
    size_t out_len, out_off, out_cap;
    double out_since;              /* last write progress while output is pending */
    /* Greenlets waiting, owned while they wait. */
    PyGreenlet *receiver;
    PyGreenlet **writers;
    int nwriters, cap_writers;
    ev_timer kick;                 /* resumes waiters from the loop; holds a reference */
} WebSocketObject;

static PyTypeObject WebSocketType;
static void rebase_error_if_possible(void);

/* ---- output ----------------------------------------------------------- */

static size_t pending(const WebSocketObject *ws) { return ws->out_len - ws->out_off; }

static int out_append(WebSocketObject *ws, const void *p, size_t n)
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

static void start_kick(WebSocketObject *ws);

/* The socket failed, or the client stalled past --io-timeout: nothing more
 * is read or written; waiters learn it from the loop. */
static void fail_io(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    ws->failed = ws->read_done = ws->close_sent = 1;
    out_reset(ws);
    if (c) {
        c->broken = 1;
        ev_io_stop(srv_loop, &c->rio);
        ev_io_stop(srv_loop, &c->wio);
    }
    start_kick(ws);
}

/* Our close went out and theirs came in (or the connection failed the
 * protocol): the server closes the TCP connection first (RFC 6455 7.1.1).
 * The descriptor itself is closed when the app's call ends. */
static void shut_if_done(WebSocketObject *ws)
{
    if (ws->shut || !ws->close_sent || !ws->read_done || pending(ws) > 0 || ws->conn == NULL)
        return;
    ws->shut = 1;
    shutdown(ws->conn->fd, SHUT_WR);   /* what they still send is read and dropped at the end */
}

/* Writes what the output buffer holds, without waiting.  Returns 0, or -1
 * when the socket failed. */
static int flush_out(WebSocketObject *ws)
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
    shut_if_done(ws);
    if (ws->nwriters)
        start_kick(ws);   /* someone may wait for all of it to be written */
    return 0;
}

/* Writes one whole frame, or buffers what the socket does not take.
 * Returns 0, or -1 when the socket is gone or memory ran out. */
static int send_frame(WebSocketObject *ws, int opcode, const void *data, size_t len)
{
    srv_conn *c = ws->conn;
    if (c == NULL || ws->failed)
        return -1;
    uint8_t h[10];
    size_t hl = srv_ws_frame_header(h, opcode, len);
    size_t done = 0;
    int direct = pending(ws) == 0;
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
    if (done < hl && out_append(ws, h + done, hl - done) < 0)
        goto nomem;
    size_t from = done > hl ? done - hl : 0;
    if (out_append(ws, (const char *)data + from, len - from) < 0)
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

static int send_close(WebSocketObject *ws, int code, const char *reason, size_t rlen)
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
    return send_frame(ws, SRV_WS_OP_CLOSE, payload, n);
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
    send_close(ws, code, why, strlen(why));
    shut_if_done(ws);
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
            send_frame(ws, SRV_WS_OP_PONG, ws->ctl, ws->ctl_len);
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
    send_close(ws, ws->close_code, "", 0);
    shut_if_done(ws);
}

/* Sends the close reply that waited for the app to read what came before. */
static void reply_to_close(WebSocketObject *ws)
{
    if (!ws->close_pending)
        return;
    ws->close_pending = 0;
    send_close(ws, ws->close_code, "", 0);
    shut_if_done(ws);
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
        c->rbuf.len = c->rpos = 0;
        srv_buf_release(&c->rbuf);   /* an idle socket holds no buffer */
        msg_release_idle(ws);
    } else {
        c->rpos = (size_t)((const char *)p - c->rbuf.data);
    }
}

static void read_input(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    if (c->rpos < c->rbuf.len)
        parse_input(ws);   /* bytes that came with the handshake */
    while (!ws->read_done && !ws->paused && ws->conn) {
        if (pending(ws) > WRITE_HIGH) {
            /* Pings from a client that reads nothing would queue pongs
             * without end: read no more until it catches up. */
            ws->out_paused = 1;
            ev_io_stop(srv_loop, &c->rio);
            break;
        }
        if (srv_conn_prepare_read(c) < 0) {
            fail_io(ws);
            return;
        }
        size_t room = c->rbuf.cap - c->rbuf.len;
        ssize_t n = srv_conn_recv(c, c->rbuf.data + c->rbuf.len, room);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            c->last_active = ev_now(srv_loop);
            parse_input(ws);
            if ((size_t)n < room)
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* EOF or a reset with no closing handshake (1006). */
        c->peer_closed = 1;
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
    return ws->conn == NULL || ws->failed || pending(ws) <= WRITE_LOW;
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

/* Has the loop wake the waiters soon; safe from any greenlet. */
static void start_kick(WebSocketObject *ws)
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

static int wait_as_receiver(WebSocketObject *ws)
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
static int wait_for_output(WebSocketObject *ws, int all)
{
    while (ws->conn && !ws->failed && pending(ws) > (all ? 0 : WRITE_LOW)) {
        if (wait_as_writer(ws) < 0)
            return -1;
    }
    return 0;
}

/* ---- the loop's side ---------------------------------------------------- */

static void ws_on_io(srv_conn *c, int revents)
{
    WebSocketObject *ws = (WebSocketObject *)c->ws;
    Py_INCREF(ws);
    if (revents & EV_WRITE)
        flush_out(ws);
    if ((revents & EV_READ) && ws->conn && !ws->read_done && !ws->paused && !ws->out_paused)
        read_input(ws);
    wake_waiters(ws);   /* c may be gone after this */
    Py_DECREF(ws);
}

static double ws_deadline(const srv_conn *c)
{
    const WebSocketObject *ws = (const WebSocketObject *)c->ws;
    if (ws == NULL)
        return 0;
    double when = 0;
    if (pending(ws) > 0 && srv_cfg.io_timeout > 0)
        when = ws->out_since + srv_cfg.io_timeout;
    if (ws->close_pending && (when == 0 || ws->close_at + CLOSE_REPLY_WAIT < when))
        when = ws->close_at + CLOSE_REPLY_WAIT;
    return when;
}

static void ws_on_timeout(srv_conn *c)
{
    WebSocketObject *ws = (WebSocketObject *)c->ws;
    if (ws->close_pending && ev_now(srv_loop) >= ws->close_at + CLOSE_REPLY_WAIT) {
        /* The app left the messages before the close unread. */
        ws->local_close = 1;
        reply_to_close(ws);
        start_kick(ws);
        srv_conn_arm_timer(c);
        return;
    }
    srv_debug("fd %d: WebSocket client read nothing for %g s: closing", c->fd, srv_cfg.io_timeout);
    fail_io(ws);
}

static void ws_on_going_away(srv_conn *c)
{
    WebSocketObject *ws = (WebSocketObject *)c->ws;
    if (ws == NULL || !ws->opened || ws->close_sent)
        return;
    ws->local_close = 1;
    if (ws->close_pending)
        reply_to_close(ws);
    else
        send_close(ws, 1001, "server shutting down", 20);
    start_kick(ws);
}

static void discard_queue(WebSocketObject *ws)
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

static void ws_detach(srv_conn *c)
{
    WebSocketObject *ws = (WebSocketObject *)c->ws;
    if (ws == NULL)
        return;
    c->ws = NULL;
    c->handler = NULL;
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
    start_kick(ws);
    Py_DECREF(ws);   /* the connection's reference */
}

/* What conn.c calls for an upgraded connection (srv_conn_handler). */
static const srv_conn_handler ws_handler = {
    .on_io = ws_on_io,
    .deadline = ws_deadline,
    .on_timeout = ws_on_timeout,
    .on_going_away = ws_on_going_away,
    .on_close = ws_detach,
};

/* ---- the handshake ------------------------------------------------------ */

static const char *environ_str(PyObject *environ, const char *key, Py_ssize_t *len)
{
    PyObject *v = PyDict_GetItemString(environ, key);   /* borrowed */
    if (v == NULL || !PyUnicode_Check(v))
        return NULL;
    return PyUnicode_AsUTF8AndSize(v, len);
}

/* Does the comma-separated list contain `token` (case-insensitively)? */
static int has_token(const char *list, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < n && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(list + start, token, tl) == 0)
            return 1;
    }
    return 0;
}

/* Answers a handshake srv refuses, without calling the app. */
static int refuse_handshake(srv_conn *c, int status, const char *why)
{
    char buf[768];
    size_t n = srv_http_error_response_with(buf, sizeof buf, status, 0, ev_now(srv_loop),
                                            status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
                                            why);
    srv_debug("fd %d: WebSocket handshake refused with %d: %s", c->fd, status, why);
    struct iovec iov = {buf, n};
    c->resp->headers_sent = 1;
    c->resp->status_sent = status;
    c->resp->close = 1;
    if (srv_conn_writev(c, &iov, 1) < 0)
        c->broken = 1;
    return -1;
}

/* gevent-websocket's subprotocol choice: app.app_protocol(path), if the
 * client asked for it. */
static int choose_protocol(WebSocketObject *ws, PyObject *app, PyObject *environ)
{
    Py_ssize_t rlen;
    const char *requested = environ_str(environ, "HTTP_SEC_WEBSOCKET_PROTOCOL", &rlen);
    if (requested == NULL || app == NULL || !PyObject_HasAttrString(app, "app_protocol"))
        return 0;
    PyObject *path = PyDict_GetItemString(environ, "PATH_INFO");   /* borrowed */
    PyObject *p = PyObject_CallMethod(app, "app_protocol", "O", path ? path : Py_None);
    if (p == NULL)
        return -1;
    Py_ssize_t plen;
    const char *name = PyUnicode_Check(p) ? PyUnicode_AsUTF8AndSize(p, &plen) : NULL;
    if (name && plen > 0 && has_token(requested, (size_t)rlen, name))
        ws->protocol = p;   /* owned */
    else
        Py_DECREF(p);
    PyErr_Clear();
    return 0;
}

int srv_ws_offer(srv_conn *c, PyObject *environ, PyObject *app)
{
    rebase_error_if_possible();   /* the app may have imported gevent-websocket */
    Py_ssize_t n;
    const char *s = environ_str(environ, "REQUEST_METHOD", &n);
    if (s == NULL || strcmp(s, "GET") != 0 || c->req.has_body)
        return 0;
    s = environ_str(environ, "HTTP_UPGRADE", &n);
    if (s == NULL || !has_token(s, (size_t)n, "websocket"))
        return 0;
    if (c->req.http_minor == 0)
        return refuse_handshake(c, 400, "WebSocket needs HTTP/1.1");
    s = environ_str(environ, "HTTP_SEC_WEBSOCKET_VERSION", &n);
    if (s == NULL || strcmp(s, "13") != 0)
        return refuse_handshake(c, 426, "unsupported WebSocket version: this server speaks 13");
    const char *key = environ_str(environ, "HTTP_SEC_WEBSOCKET_KEY", &n);
    if (key == NULL || !srv_ws_key_valid(key, (size_t)n))
        return refuse_handshake(c, 400, "missing or invalid Sec-WebSocket-Key");

    WebSocketObject *ws = PyObject_New(WebSocketObject, &WebSocketType);
    if (ws == NULL)
        return -2;
    memset((char *)ws + sizeof(PyObject), 0, sizeof *ws - sizeof(PyObject));
    ev_init(&ws->kick, on_kick);
    srv_ws_accept(key, ws->accept);
    ws->conn = c;
    ws->environ = environ;
    Py_INCREF(environ);
    if (choose_protocol(ws, app, environ) < 0
        || PyDict_SetItemString(environ, "wsgi.websocket", (PyObject *)ws) < 0
        || PyDict_SetItemString(environ, "wsgi.websocket_version", PyDict_GetItemString(environ, "HTTP_SEC_WEBSOCKET_VERSION")) < 0) {
        ws->conn = NULL;
        Py_CLEAR(ws->environ);
        Py_DECREF(ws);
        return -2;
    }
    c->ws = (PyObject *)ws;   /* the connection's reference */
    c->handler = &ws_handler;  /* the loop's side, once the 101 is out */
    return 1;
}

/* Appends the app's headers from start_response("101 ...") to the 101,
 * except those srv writes itself. */
static int append_app_headers(WebSocketObject *ws, const srv_buf *head)
{
    const char *p = memchr(head->data, '\n', head->len);
    const char *end = head->data + head->len;
    if (p == NULL)
        return 0;
    for (p++; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
        int skip = strncasecmp(p, "upgrade:", 8) == 0 || strncasecmp(p, "sec-websocket-accept:", 21) == 0
            || (ws->protocol && strncasecmp(p, "sec-websocket-protocol:", 23) == 0);
        if (!skip && out_append(ws, p, n) < 0)
            return -1;
        p += n;
    }
    return 0;
}

/* Writes the 101's head into the output, piece after piece (each append
 * in its own statement: the order of the operands of | is unspecified).
 * Returns 0, or -1 when out of memory. */
static int append_101_head(WebSocketObject *ws, const srv_response *r)
{
    static const char start[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
    if (out_append(ws, start, sizeof start - 1) < 0 || out_append(ws, ws->accept, 28) < 0
        || out_append(ws, "\r\n", 2) < 0)
        return -1;
    Py_ssize_t n;
    const char *name = ws->protocol ? PyUnicode_AsUTF8AndSize(ws->protocol, &n) : NULL;
    if (name != NULL) {
        if (out_append(ws, "Sec-WebSocket-Protocol: ", 24) < 0
            || out_append(ws, name, (size_t)n) < 0 || out_append(ws, "\r\n", 2) < 0)
            return -1;
    } else {
        PyErr_Clear();   /* no subprotocol, or one UTF-8 cannot carry */
    }
    if (r->started && append_app_headers(ws, &r->head) < 0)
        return -1;
    if (srv_cfg.server_header && !(r->started && r->has_server)
        && out_append(ws, "Server: srv\r\n", 13) < 0)
        return -1;
    if (!(r->started && r->has_date)) {
        size_t dlen;
        const char *date = srv_http_date_header(ev_now(srv_loop), &dlen);
        if (out_append(ws, date, dlen) < 0)
            return -1;
    }
    return out_append(ws, "\r\n", 2);
}

/* Sends the 101 and hands the socket's I/O to the loop.  Returns 0, or -1
 * with WebSocketError set when the app answered with a normal response. */
static int open_ws(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    if (ws->opened)
        return 0;
    srv_response *r = c ? c->resp : NULL;
    if (c == NULL || ws->refused || (r->started && r->status_code != 101) || r->headers_sent) {
        ws->refused = 1;
        rebase_error_if_possible();
        PyErr_SetString(WebSocketError,
                        "the app answered the upgrade request with a normal HTTP response");
        return -1;
    }
    if (append_101_head(ws, r) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    ws->opened = 1;
    srv_my_metrics->ws_connections++;
    r->headers_sent = 1;
    r->status_sent = 101;
    r->close = 1;
    if (ev_is_active(&r->deadline))
        ev_timer_stop(srv_loop, &r->deadline);   /* a WebSocket is not a slow request */
    srv_buf_release(&r->head);
    c->state = SRV_CONN_UPGRADED;
    c->last_active = ev_now(srv_loop);
    if (flush_out(ws) < 0)
        return 0;   /* receive() and send() will say it is closed */
    ev_io_start(srv_loop, &c->rio);
    if (c->rpos < c->rbuf.len)
        ev_feed_event(srv_loop, &c->rio, EV_READ);   /* frames sent with the handshake */
    return 0;
}

int srv_ws_end(srv_conn *c, int failed)
{
    WebSocketObject *ws = (WebSocketObject *)c->ws;
    int took = ws->opened;
    /* A greenlet being killed does not wait for the client. */
    int exiting = srv_hub_exiting();
    /* The app's exception waits while this greenlet does (and a greenlet
     * must not switch with one pending). */
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    srv_response *r = c->resp;
    if (!took && !ws->refused && !r->headers_sent && !failed
        && (!r->started || r->status_code == 101)) {
        /* gevent-websocket opens before calling the app: an app that
         * returned without a word gets an open-then-closed socket. */
        if (open_ws(ws) < 0)
            PyErr_Clear();
        else
            took = 1;
    }
    int rc = took;
    if (took) {
        Py_INCREF(ws);
        if (ws->close_pending)
            reply_to_close(ws);
        else if (ws->conn && !ws->failed)
            send_close(ws, failed ? 1011 : 1000, "", 0);
        if (!exiting && wait_for_output(ws, 1) < 0) {
            if (srv_hub_exiting())
                rc = -1;   /* the greenlet is being killed: the caller cleans up */
            else
                PyErr_Clear();
            c->broken = 1;
        }
        ev_io_stop(srv_loop, &c->rio);
        ev_io_stop(srv_loop, &c->wio);
        c->state = SRV_CONN_BUSY;
        c->rbuf.len = c->rpos = 0;
        /* Our close is out but theirs is not in: read until they close. */
        if (!ws->close_received && !ws->failed && !c->peer_closed && !exiting)
            c->linger_on_release = 1;
        Py_DECREF(ws);
    }
    c->resp->close = 1;
    ws_detach(c);
    if (rc >= 0) {
        PyErr_Restore(exc_type, exc_value, exc_tb);
    } else {
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
    }
    return rc;
}

/* ---- the Python object -------------------------------------------------- */

static int raise_closed(void)
{
    rebase_error_if_possible();
    PyErr_SetString(WebSocketError, "the WebSocket is closed");
    return -1;
}

static PyObject *ws_receive(WebSocketObject *ws, PyObject *unused)
{
    if (ws->conn && !ws->opened && open_ws(ws) < 0)
        return NULL;
    for (;;) {
        if (ws->qhead && !ws->local_close) {
            ws_msg *m = ws->qhead;
            ws->qhead = m->next;
            if (ws->qhead == NULL)
                ws->qtail = NULL;
            ws->qbytes -= m->size + 64;
            PyObject *data = m->data;   /* the queue's reference, now the caller's */
            free(m);
            if (ws->paused && ws->qhead == NULL && ws->conn && !ws->read_done && !ws->out_paused) {
                ws->paused = 0;
                ev_io_start(srv_loop, &ws->conn->rio);
                ev_feed_event(srv_loop, &ws->conn->rio, EV_READ);
            }
            return data;
        }
        if (ws->read_done || ws->local_close || ws->conn == NULL) {
            reply_to_close(ws);   /* the app has read all that came before it */
            discard_queue(ws);
            if (ws->eof_given) {
                raise_closed();
                return NULL;
            }
            ws->eof_given = 1;
            Py_RETURN_NONE;
        }
        if (ws->receiver) {
            PyErr_SetString(PyExc_RuntimeError, "another greenlet is already receiving on this WebSocket");
            return NULL;
        }
        if (wait_as_receiver(ws) < 0)
            return NULL;
    }
}

/* The bytes of a message: str as UTF-8, or any bytes-like object. */
static int message_bytes(PyObject *msg, Py_buffer *view, int *is_str)
{
    *is_str = PyUnicode_Check(msg);
    if (*is_str) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(msg, &n);
        if (s == NULL)
            return -1;
        return PyBuffer_FillInfo(view, msg, (void *)s, n, 1, PyBUF_SIMPLE);
    }
    if (PyObject_GetBuffer(msg, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "a WebSocket message must be str or bytes-like, not %.100s",
                     Py_TYPE(msg)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *send_message(WebSocketObject *ws, PyObject *msg, int opcode)
{
    if (ws->conn && !ws->opened && open_ws(ws) < 0)
        return NULL;
    if (ws->conn == NULL || ws->close_sent || ws->failed) {
        raise_closed();
        return NULL;
    }
    Py_buffer view;
    int is_str;
    if (message_bytes(msg, &view, &is_str) < 0)
        return NULL;
    if (opcode < 0)
        opcode = is_str ? SRV_WS_OP_TEXT : SRV_WS_OP_BINARY;
    int rc = send_frame(ws, opcode, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    if (rc < 0) {
        raise_closed();
        return NULL;
    }
    srv_my_metrics->ws_messages_sent++;
    Py_INCREF(ws);
    rc = pending(ws) > WRITE_HIGH ? wait_for_output(ws, 0) : 0;
    int dead = ws->failed || ws->conn == NULL;
    Py_DECREF(ws);
    if (rc < 0)
        return NULL;
    if (dead) {
        raise_closed();
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *ws_send(WebSocketObject *ws, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"message", "binary", NULL};
    PyObject *msg, *binary = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:send", kwlist, &msg, &binary))
        return NULL;
    int opcode = -1;
    if (binary != Py_None) {
        int b = PyObject_IsTrue(binary);
        if (b < 0)
            return NULL;
        opcode = b ? SRV_WS_OP_BINARY : SRV_WS_OP_TEXT;
    }
    return send_message(ws, msg, opcode);
}

static PyObject *ws_send_frame(WebSocketObject *ws, PyObject *args)
{
    PyObject *msg;
    int opcode;
    if (!PyArg_ParseTuple(args, "Oi:send_frame", &msg, &opcode))
        return NULL;
    if (opcode != SRV_WS_OP_TEXT && opcode != SRV_WS_OP_BINARY && opcode != SRV_WS_OP_PING && opcode != SRV_WS_OP_PONG) {
        PyErr_Format(PyExc_ValueError, "send_frame: unsupported opcode %d (use close() to close)", opcode);
        return NULL;
    }
    return send_message(ws, msg, opcode);
}

static PyObject *ws_close(WebSocketObject *ws, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"code", "message", NULL};
    int code = 1000;
    PyObject *message = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iO:close", kwlist, &code, &message))
        return NULL;
    if (!srv_ws_close_code_valid(code)) {   /* 1005, 1006, 1015 are never sent */
        PyErr_Format(PyExc_ValueError, "invalid WebSocket close code %d", code);
        return NULL;
    }
    if (ws->conn && !ws->opened && open_ws(ws) < 0) {
        PyErr_Clear();   /* refused: nothing to close */
        Py_RETURN_NONE;
    }
    ws->local_close = 1;
    if (ws->conn == NULL || ws->close_sent) {
        start_kick(ws);
        Py_RETURN_NONE;
    }
    Py_buffer view = {0};
    int is_str;
    if (message && message != Py_None && message_bytes(message, &view, &is_str) < 0)
        return NULL;
    send_close(ws, code, view.buf ? view.buf : "", (size_t)(view.buf ? view.len : 0));
    if (view.obj)
        PyBuffer_Release(&view);
    shut_if_done(ws);
    start_kick(ws);   /* a reader in another greenlet gets None */
    Py_INCREF(ws);
    int rc = wait_for_output(ws, 1);
    Py_DECREF(ws);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *ws_get_closed(WebSocketObject *ws, void *unused)
{
    return PyBool_FromLong(ws->conn == NULL || ws->close_sent || ws->read_done || ws->refused);
}

static PyObject *ws_get_environ(WebSocketObject *ws, void *unused)
{
    PyObject *e = ws->environ ? ws->environ : Py_None;
    Py_INCREF(e);
    return e;
}

static PyObject *environ_get(WebSocketObject *ws, const char *key)
{
    PyObject *v = ws->environ ? PyDict_GetItemString(ws->environ, key) : NULL;
    if (v == NULL)
        v = Py_None;
    Py_INCREF(v);
    return v;
}

static PyObject *ws_get_path(WebSocketObject *ws, void *u) { return environ_get(ws, "PATH_INFO"); }
static PyObject *ws_get_origin(WebSocketObject *ws, void *u) { return environ_get(ws, "HTTP_ORIGIN"); }
static PyObject *ws_get_version(WebSocketObject *ws, void *u) { return environ_get(ws, "HTTP_SEC_WEBSOCKET_VERSION"); }

static PyObject *ws_get_protocol(WebSocketObject *ws, void *u)
{
    if (ws->protocol) {
        Py_INCREF(ws->protocol);
        return ws->protocol;
    }
    return environ_get(ws, "HTTP_SEC_WEBSOCKET_PROTOCOL");
}

static PyObject *ws_get_none(WebSocketObject *ws, void *u) { Py_RETURN_NONE; }

static void ws_dealloc(WebSocketObject *ws)
{
    /* No connection refers to us (it holds a reference), no kick is
     * pending (it holds one too) and no greenlet waits (it is in a
     * method of ours, so its caller holds one). */
    discard_queue(ws);
    Py_XDECREF(ws->environ);
    Py_XDECREF(ws->protocol);
    free(ws->msg);
    free(ws->out);
    free(ws->writers);
    PyObject_Free(ws);
}

static PyMethodDef ws_methods[] = {
    {"receive", (PyCFunction)ws_receive, METH_NOARGS,
     "receive() -> str, bytes or None: the next message; None once the socket is closed"},
    {"read_message", (PyCFunction)ws_receive, METH_NOARGS, "the same as receive()"},
    {"send", (PyCFunction)(void (*)(void))ws_send, METH_VARARGS | METH_KEYWORDS,
     "send(message, binary=None): a text frame for str, binary for bytes, unless binary says"},
    {"send_frame", (PyCFunction)ws_send_frame, METH_VARARGS,
     "send_frame(message, opcode): one frame with the given opcode"},
    {"close", (PyCFunction)(void (*)(void))ws_close, METH_VARARGS | METH_KEYWORDS,
     "close(code=1000, message=b''): start the closing handshake"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef ws_getset[] = {
    {"closed", (getter)ws_get_closed, NULL, "True once either side has closed", NULL},
    {"environ", (getter)ws_get_environ, NULL, "the request's environ (None after the end)", NULL},
    {"path", (getter)ws_get_path, NULL, "PATH_INFO", NULL},
    {"origin", (getter)ws_get_origin, NULL, "the Origin header", NULL},
    {"protocol", (getter)ws_get_protocol, NULL, "the subprotocol", NULL},
    {"version", (getter)ws_get_version, NULL, "the WebSocket version", NULL},
    {"handler", (getter)ws_get_none, NULL, "None: there is no gevent-websocket handler", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject WebSocketType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.WebSocket",
    .tp_basicsize = sizeof(WebSocketObject),
    .tp_dealloc = (destructor)ws_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A WebSocket connection, with gevent-websocket's API.",
    .tp_methods = ws_methods,
    .tp_getset = ws_getset,
};

/* srv.WebSocketError derives from gevent-websocket's WebSocketError, so
 * that apps written for it (its Resource class among them) catch srv's
 * errors unchanged.  In gevent mode it is imported at once.  In native mode
 * importing it would import gevent, so the error starts from a private
 * OSError subclass and is re-based the first time it is raised after the
 * app has imported gevent-websocket itself.  (A Python-level subclass has
 * the layout __bases__ assignment needs.) */
static int rebase_pending;

static PyObject *error_base(void)
{
    PyObject *modules = PyImport_GetModuleDict();   /* borrowed */
    if (PyDict_GetItemString(modules, "gevent") != NULL) {
        PyObject *m = PyImport_ImportModule("geventwebsocket.exceptions");
        if (m) {
            PyObject *base = PyObject_GetAttrString(m, "WebSocketError");
            Py_DECREF(m);
            if (base && PyType_Check(base))
                return base;
            Py_XDECREF(base);
        }
        PyErr_Clear();
    }
    rebase_pending = 1;
    return PyErr_NewException("srv._WebSocketErrorBase", PyExc_OSError, NULL);
}

static void rebase_error_if_possible(void)
{
    if (!rebase_pending)
        return;
    PyObject *m = PyDict_GetItemString(PyImport_GetModuleDict(), "geventwebsocket.exceptions");
    if (m == NULL)
        return;
    rebase_pending = 0;
    PyObject *base = PyObject_GetAttrString(m, "WebSocketError");
    PyObject *bases = base ? PyTuple_Pack(1, base) : NULL;
    if (bases == NULL || PyObject_SetAttrString(WebSocketError, "__bases__", bases) < 0)
        srv_log_pyerr("srv.WebSocketError cannot derive from gevent-websocket's");
    Py_XDECREF(bases);
    Py_XDECREF(base);
}

int srv_ws_add_to_module(PyObject *module)
{
    if (PyType_Ready(&WebSocketType) < 0)
        return -1;
    if (WebSocketError == NULL) {
        PyObject *base = error_base();
        WebSocketError = PyErr_NewExceptionWithDoc(
            "srv.WebSocketError", "A WebSocket operation on a closed or failed socket.", base, NULL);
        Py_DECREF(base);
        if (WebSocketError == NULL)
            return -1;
    }
    Py_INCREF(&WebSocketType);
    if (PyModule_AddObject(module, "WebSocket", (PyObject *)&WebSocketType) < 0) {
        Py_DECREF(&WebSocketType);
        return -1;
    }
    Py_INCREF(WebSocketError);
    if (PyModule_AddObject(module, "WebSocketError", WebSocketError) < 0) {
        Py_DECREF(WebSocketError);
        return -1;
    }
    return 0;
}
