/*
 * http1.h - the HTTP/1 side of a connection: reading request heads.
 *
 * Owns the protocol handler that every accepted connection starts with
 * (srv_http1_handler, conn.c's srv_conn_default_handler): reading in the
 * loop until a request head is parsed, the PROXY protocol header before the
 * first head, the head's deadline (--header-timeout, from its first byte)
 * and the idle keep-alive limit, and answering a head that fails to parse
 * (or times out) with its error status before a lingering close.  A parsed
 * head goes to srv_http1_on_head (the hub's dispatch), and the connection
 * to a worker; a WebSocket upgrade later replaces this handler.
 */
#ifndef SRV_HTTP1_H
#define SRV_HTTP1_H

#include <stddef.h>

#include "srv/conn.h"

extern const srv_conn_handler srv_http1_handler;

/* Told when a connection has a complete request head (the hub installs
 * srv_hub_dispatch; it must take the connection). */
extern void (*srv_http1_on_head)(srv_conn *c);

/* Told of each request srv_http1_refuse() refused, once its answer is
 * written (status, body bytes of the answer): the request layer installs it
 * to access-log refusals.  NULL: nobody listens. */
extern void (*srv_http1_on_refused)(srv_conn *c, int status, size_t body_bytes);

/* Answers a request srv will not serve with `status` (why: for the debug
 * log), then lingers and closes.  status 0: the parser's error status and
 * reason (400 if none).  Either side may call it; the loop takes over. */
void srv_http1_refuse(srv_conn *c, int status, const char *why);

#endif
