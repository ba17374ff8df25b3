/*
 * response.h - sending a response and what follows it.
 *
 * Owns the framing (Content-Length, counted, chunked or close-delimited),
 * the head and first chunk in one write, iterating the app's result
 * (wsgi.file_wrapper through sendfile), close(), srv's own error statuses
 * once a request is dispatched, draining an unread body, keep-alive, and
 * the --request-timeout deadline.  The srv_response struct itself is
 * declared in wsgi.h.
 */
#ifndef SRV_RESPONSE_H
#define SRV_RESPONSE_H

#include <Python.h>

#include <stddef.h>

#include "srv/wsgi.h"

struct srv_conn;

int srv_response_init(void);

/* The connection's response, cleared for a new request (NULL if out of
 * memory); and, at the end, its Python objects let go. */
srv_response *srv_response_reset(struct srv_conn *c);
void srv_response_detach(srv_response *r);

/* The connection is being freed: its response goes (its timer stopped). */
void srv_response_free(srv_response *r);

/* Sends body bytes (the head first, if not yet sent); at_end says these
 * are the last.  0, or -1 (client gone, or a Python error). */
int srv_response_send_body(struct srv_conn *c, const char *data, size_t len, int at_end);

/* Iterates and sends the app's result.  0, or -1 (client gone or Python
 * error, told apart by PyErr_Occurred). */
int srv_response_send_result(struct srv_conn *c, PyObject *result);

/* result.close() if it has one; -1 if it raised (logged). */
int srv_response_close_result(PyObject *result);
int srv_response_discard_result(PyObject *result);

/* An error status of srv's own, when no head has gone out. */
void srv_response_send_error(struct srv_conn *c, int status);

/* Reads and discards the rest of a body the app did not read; 1 when the
 * connection can be reused. */
int srv_response_drain_body(struct srv_conn *c);

/* May the connection serve another request after this response? */
int srv_response_keep_alive(struct srv_conn *c);

void srv_response_deadline_start(srv_response *r);
void srv_response_deadline_stop(srv_response *r);

#endif
