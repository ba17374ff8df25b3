/*
 * conn.h - one client connection and its I/O.
 *
 * Owns the socket, its libev watchers, the read buffer and the request parser
 * state, and the connection's life cycle: reading a head in the loop, owned
 * by a worker greenlet while a request is served, waiting (in the worker) for
 * readability or writability, idle keep-alive, and the lingering close that
 * lets a client read an error response before its unread bytes reset the
 * connection.  Exactly one side owns a connection at a time: the loop while
 * it reads a head or lingers, the worker from dispatch until it hands the
 * connection back or closes it.
 */
#ifndef SRV_CONN_H
#define SRV_CONN_H

#include <ev.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "srv/buffer.h"
#include "srv/http.h"
#include "srv/sched.h"

struct srv_listener;
struct srv_exchange;

enum srv_conn_state {
    SRV_CONN_READING,   /* loop: the handler reads (HTTP/1: a request head) */
    SRV_CONN_BUSY,      /* a worker owns it */
    SRV_CONN_LINGER,    /* loop: response sent, discarding input, then close */
    SRV_CONN_UPGRADED,  /* another protocol's handler owns it (a WebSocket) */
};

struct srv_conn;

/* A connection's protocol is the handler installed on it, as nginx swaps a
 * connection's handlers.  Each starts with srv_conn_default_handler (HTTP/1,
 * http1.c), which reads request heads in state READING; a protocol that
 * takes the connection over (a WebSocket, ws_conn.c) replaces it with
 * srv_conn_set_handler() and owns it in state UPGRADED.  In those two
 * states conn.c hands readiness and timeouts to the handler; in any state
 * the handler is told when the connection goes away.  It finds its own
 * state in c->handler_data.  conn.c itself knows no protocol. */
typedef struct srv_conn_handler {
    void (*on_io)(struct srv_conn *c, int revents);   /* EV_READ and/or EV_WRITE */
    double (*deadline)(const struct srv_conn *c);     /* ev_now time of on_timeout, or 0 */
    void (*on_timeout)(struct srv_conn *c);
    void (*on_going_away)(struct srv_conn *c);        /* graceful stop (UPGRADED); may be NULL */
    void (*on_close)(struct srv_conn *c);             /* about to be freed (any state); may be NULL */
} srv_conn_handler;

typedef struct srv_conn {
    int fd;
    int state;
    struct srv_listener *listener;
    ev_io rio;
    ev_io wio;
    ev_timer timer;
    ev_tstamp last_active;
    ev_tstamp head_start;        /* first read since the last head ended */
    srv_buf rbuf;
    size_t rpos;                 /* rbuf bytes already fed to the parser */
    srv_request req;
    /* The tasks waiting to read and to write (two greenlets of one
     * request may do both at once); borrowed from conn_wait()'s frame. */
    srv_task *reader;
    srv_task *writer;
    int read_result;             /* 0 ready, -1 timed out */
    int write_result;
    unsigned peer_closed:1;      /* EOF read */
    unsigned broken:1;           /* a write or read failed: do not reuse (the
                                    one field any layer may set) */
    unsigned proxy_seen:1;       /* --proxy-protocol: the header was read */
    unsigned linger_on_release:1;/* read until the client closes before closing */
    unsigned held:1;             /* on conn.c's list of held output */
    unsigned requests_served;
    size_t linger_bytes;         /* discarded while lingering */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    /* The request layer's per-connection state (wsgi.h), made by it and let
     * go through srv_conn_on_free; conn.c never looks inside. */
    struct srv_exchange *exchange;
    const srv_conn_handler *handler;   /* see srv_conn_set_handler, or NULL */
    void *handler_data;                /* the handler's, given with it */
    /* Output held until the loop's pass ends (srv_conn_write_soon): a
     * block from conn.c's pool, or NULL. */
    char *out;
    size_t out_len, out_pos;
    struct srv_conn *next_held;
    struct srv_conn *next;       /* list of all connections */
    struct srv_conn *prev;
} srv_conn;

/* Takes ownership of an accepted, non-blocking socket and starts reading. */
srv_conn *srv_conn_accepted(struct srv_listener *l, int fd,
                            const struct sockaddr *peer, socklen_t peer_len);

/* The socket without waiting: recv(2) and sendmsg(2) (MSG_NOSIGNAL),
 * EINTR retried, bytes counted for the metrics.  Return what the call
 * returned; -1 with errno EAGAIN means "not now".  Every module that moves
 * a client's bytes goes through these (or the waiting calls below). */
ssize_t srv_conn_recv(srv_conn *c, void *buf, size_t len);
ssize_t srv_conn_send(srv_conn *c, const struct iovec *iov, int iovcnt);

/* Reads what the socket has into rbuf (room made first), without waiting,
 * and stamps last_active.  Returns the bytes read (*full: they filled the
 * room, so more may be waiting), 0 at EOF, -1 with errno (EAGAIN: nothing
 * now), or -2 when the buffer could not grow. */
ssize_t srv_conn_fill(srv_conn *c, int *full);

/* In a worker: reads more bytes into rbuf, waiting for them.  Returns the
 * number read, 0 at EOF, or -1 on error or timeout (c->broken set). */
ssize_t srv_conn_read_more(srv_conn *c);

/* In a worker: writes all of iov, waiting for writability as needed.  The iov
 * array is modified.  Returns 0, or -1 if the client is gone or too slow. */
int srv_conn_writev(srv_conn *c, struct iovec *iov, int iovcnt);

/* In a worker: the last bytes of a response after which the connection
 * stays open.  Small ones are held (copied) and leave with the other
 * responses of the loop's pass, just before the loop polls again (as Redis
 * writes its replies before it sleeps): one wake-up of the client or proxy
 * for many responses instead of one each.  Nothing is held once the pass
 * has run HOLD_PASS_MAX (5 ms); any other output on the connection, its
 * release without keep-alive and its close send what is held first.
 * Returns 0 (sent or held), or -1 as srv_conn_writev does. */
int srv_conn_write_soon(srv_conn *c, struct iovec *iov, int iovcnt);

/* In a worker: sendfile(2) count bytes from fd at offset.  Returns 0, -1 if
 * the client is gone, or -2 if sendfile cannot be used on this file. */
int srv_conn_sendfile(srv_conn *c, int fd, off_t offset, size_t count);

/* In a worker, after a response: the connection goes back to the loop (next
 * head) or is closed, as `keep_alive` says.  Serves nothing itself. */
void srv_conn_release(srv_conn *c, int keep_alive);

/* The handler every accepted connection starts with (HTTP/1's, http1.c),
 * installed by the request layer at start-up. */
extern const srv_conn_handler *srv_conn_default_handler;

/* Told when a connection is freed, so that the request layer lets go of
 * what it keeps on it (c->exchange).  conn.c calls no upper layer but
 * through these hooks and the handler table. */
extern void (*srv_conn_on_free)(srv_conn *c);

/* Told after a connection has been closed and freed (the listeners install
 * it to resume accepting below --max-connections).  NULL: nobody listens. */
extern void (*srv_conn_on_closed)(void);

/* ---- for the protocol handlers ---- */

/* The PROXY header was read: the client's address replaces the proxy's
 * (len 0: the header carried none). */
void srv_conn_set_peer(srv_conn *c, const struct sockaddr_storage *peer, socklen_t len);

/* A request head is parsed: reading stops and a worker will own the
 * connection (state BUSY). */
void srv_conn_take(srv_conn *c);

/* After an answer that ends the connection: half-closes, discards what the
 * client still sends (so that the answer is not destroyed by a reset), then
 * closes on EOF or after a short time. */
void srv_conn_linger(srv_conn *c);

/* Installs (or, with NULL, puts back the default) the handler of a protocol
 * that may take the connection over, with its data.  Its on_close runs when the
 * connection is freed in any state; the rest only once upgraded. */
void srv_conn_set_handler(srv_conn *c, const srv_conn_handler *h, void *data);

/* In a worker, with a handler set: the handler owns the connection's I/O
 * from now on (state UPGRADED); reading starts, and bytes already buffered
 * are handed to it at the next turn of the loop. */
void srv_conn_upgrade(srv_conn *c);

/* The upgraded protocol has finished: the worker owns the connection again
 * (state BUSY), with nothing buffered.  linger: read until the client
 * closes before closing (it has not sent its side of the close). */
void srv_conn_end_upgrade(srv_conn *c, int linger);

/* rbuf is used up to `pos` (a handler's reader, or the request layer once
 * the head is taken apart); a buffer that is all used is given back, so
 * that idle connections and suspended requests do not pin a block each. */
void srv_conn_consumed(srv_conn *c, size_t pos);

/* In a worker, after a response that keeps the connection: counts it and
 * readies the parser for a pipelined request already in rbuf. */
void srv_conn_next_request(srv_conn *c);

/* Stops reading and writing for good (the socket failed or the peer
 * stalled); waiters are not resumed by this. */
void srv_conn_stop_io(srv_conn *c);

/* Closes at once and frees. */
void srv_conn_close(srv_conn *c);

/* Re-arms the idle timer after the state's deadline may have moved closer. */
void srv_conn_arm_timer(srv_conn *c);

/* Makes room for a read and compacts the buffer. */
int srv_conn_prepare_read(srv_conn *c);

/* Closes keep-alive connections idle for at least min_idle seconds (for a
 * graceful stop); returns how many connections remain. */
int srv_conn_close_idle(double min_idle);
int srv_conn_count(void);

#endif
