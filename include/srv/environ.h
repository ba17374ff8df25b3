/*
 * environ.h - building each request's environ (PEP 3333).
 *
 * Owns the interned environ keys, the per-listener template, the cache of
 * HTTP_* key strings (their bytes are hdrkey.c's), PATH_INFO and
 * QUERY_STRING as str (their bytes are pathinfo.c's), the peer's address,
 * trusted proxy headers, and the access-log line of requests srv refused
 * itself (installed as http1.c's srv_http1_on_refused).
 */
#ifndef SRV_ENVIRON_H
#define SRV_ENVIRON_H

#include <Python.h>

struct srv_conn;
struct srv_listener;

/* The peer's address as REMOTE_ADDR and REMOTE_PORT strings, made on a
 * connection's first request and kept for the rest (owned; NULL until
 * made).  The request layer keeps it on the connection. */
typedef struct srv_peer_names {
    PyObject *addr;
    PyObject *port;
} srv_peer_names;

void srv_peer_names_clear(srv_peer_names *p);

/* Interns the keys; installs the refusal logger.  0, or -1 with an error. */
int srv_environ_init(void);

/* A new dict with the keys that are the same for every request on l. */
PyObject *srv_environ_template(struct srv_listener *l, const char *host, const char *port);

/* The environ of the request whose head c has parsed (new reference), or
 * NULL with an exception; input (borrowed) is its wsgi.input. */
PyObject *srv_environ_build(struct srv_conn *c, PyObject *input);

#endif
