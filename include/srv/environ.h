/*
 * environ.h - building each request's environ (PEP 3333).
 *
 * Owns the interned environ keys, the per-listener template, the cache of
 * HTTP_* key strings (their bytes are hdrkey.c's), PATH_INFO and
 * QUERY_STRING as str (their bytes are pathinfo.c's), the peer's address,
 * trusted proxy headers, and the access-log line of requests srv refused
 * itself (installed as conn.c's srv_conn_on_refused).
 */
#ifndef SRV_ENVIRON_H
#define SRV_ENVIRON_H

#include <Python.h>

struct srv_conn;
struct srv_listener;

/* Interns the keys; installs the refusal logger.  0, or -1 with an error. */
int srv_environ_init(void);

/* A new dict with the keys that are the same for every request on l. */
PyObject *srv_environ_template(struct srv_listener *l, const char *host, const char *port);

/* The environ of the request whose head c has parsed (new reference), or
 * NULL with an exception.  Also creates wsgi.input (c->resp->input). */
PyObject *srv_environ_build(struct srv_conn *c);

#endif
