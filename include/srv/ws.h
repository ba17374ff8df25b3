/*
 * ws.h - WebSocket (RFC 6455): the handshake, the framing and the app's
 * `wsgi.websocket` object.
 *
 * Owns everything that happens on a connection after a request asked to
 * upgrade to WebSocket: checking the handshake, the 101 response (sent at
 * the app's first use of the socket, so that an app may still refuse with a
 * normal response), reading and unmasking frames in C, reassembling
 * fragments, answering pings and the closing handshake without waking
 * Python, the size limit (--ws-max-message, close 1009), UTF-8 checking of
 * text (1007), protocol errors (1002), and the buffered output that frames
 * from any greenlet go through whole.  The app sees an object with
 * gevent-websocket's API (receive, send, close, closed).  While it is open,
 * the loop owns the socket's I/O (conn state SRV_CONN_UPGRADED, through the
 * handler ws_conn.c installs) and greenlets only
 * wait for messages or for room to write.
 */
#ifndef SRV_WS_H
#define SRV_WS_H

#include <Python.h>

struct srv_conn;

/* In a worker, for a request whose head asked for an upgrade (req.upgrade).
 * Returns 1 when it is a valid WebSocket handshake: environ then holds
 * "wsgi.websocket" and "wsgi.websocket_version", and c->ws is set.
 * Returns 0 when it is not a WebSocket request (serve it as plain HTTP).
 * Returns -1 when srv has answered it itself (426 or 400) and the connection
 * must close.  Returns -2 with a Python exception set. */
int srv_ws_offer(struct srv_conn *c, PyObject *environ, PyObject *app);

/* In a worker, after the app returned (failed: it raised).  Returns 1 when
 * the response was the WebSocket (opened now if the app neither used it nor
 * called start_response): the closing handshake is done, the app's result
 * must be discarded, and the connection closes.  Returns 0 when the app
 * answered with a normal HTTP response instead (sent with Connection:
 * close).  Either way c->ws is gone afterwards. */
int srv_ws_end(struct srv_conn *c, int failed);

/* Adds srv.WebSocket and srv.WebSocketError to the srv module. */
int srv_ws_add_to_module(PyObject *module);

#endif
