/*
 * response.h - the response to a request, and what follows it.
 *
 * Owns the srv_response struct, which no other module sees inside: the head
 * (start_response.c builds it through srv_response_begin_head and
 * srv_response_add_header), the framing (Content-Length, counted, chunked or
 * close-delimited), the head and first chunk in one write, iterating the
 * app's result (wsgi.file_wrapper through sendfile), close(), "100
 * Continue", srv's own refusals once a request is dispatched (one path:
 * srv_response_refuse), keep-alive, and the --request-timeout deadline.
 */
#ifndef SRV_RESPONSE_H
#define SRV_RESPONSE_H

#include <Python.h>

#include <stddef.h>
#include <stdint.h>

#include "srv/buffer.h"

struct srv_conn;

/* Private to response.c.  One per connection (the request layer's
 * srv_exchange holds it), reused by each request: it lives on the heap
 * because Python code in another greenlet may call start_response or
 * write() while the worker's stack is swapped out. */
typedef struct srv_response srv_response;

int srv_response_init(void);

/* A response for a connection, and the same cleared for a new request
 * (NULL if out of memory); at the end, the head's buffer given back; with
 * the connection, freed (its timer stopped). */
srv_response *srv_response_new(void);
void srv_response_reset(srv_response *r);
void srv_response_end(srv_response *r);
void srv_response_free(srv_response *r);

/* ---- the head, as start_response.c validates it ----
 * begin_head starts over with "HTTP/1.1 <status>" (status: "200 OK",
 * checked by the caller; code its number); add_header appends one field
 * (and notes a Date or Server the app set); set_length and set_close note
 * the app's Content-Length and "Connection: close", which srv writes
 * itself (set_close also when the request cannot be read on: a bad body,
 * a WebSocket); head_done makes it the response; head_cancel forgets it.
 * -1: out of memory. */
int srv_response_begin_head(srv_response *r, const char *status, size_t len, int code);
int srv_response_add_header(srv_response *r, const char *name, size_t nlen,
                            const char *value, size_t vlen);
void srv_response_set_length(srv_response *r, int64_t length);
void srv_response_set_close(srv_response *r);
void srv_response_head_done(srv_response *r);
void srv_response_head_cancel(srv_response *r);

/* ---- what has happened so far ---- */
int srv_response_started(const srv_response *r);       /* start_response succeeded */
int srv_response_head_sent(const srv_response *r);     /* a head (any) went out */
int srv_response_status(const srv_response *r);        /* the app's status code */
int srv_response_status_sent(const srv_response *r);   /* what went out: 0 for none */
uint64_t srv_response_body_sent(const srv_response *r);
int srv_response_continue_sent(const srv_response *r);

/* The app's head (status line and its headers) once started, else NULL;
 * *has_date and *has_server say whether it set those. */
const srv_buf *srv_response_app_head(const srv_response *r, int *has_date, int *has_server);

/* The head went out as another protocol's (a WebSocket's 101): the
 * connection closes after, and the deadline stops. */
void srv_response_upgraded(srv_response *r);

/* ---- sending ---- */

/* Sends body bytes (the head first, if not yet sent); at_end says these
 * are the last.  0, or -1 (client gone, or a Python error). */
int srv_response_send_body(struct srv_conn *c, const char *data, size_t len, int at_end);

/* Iterates and sends the app's result.  0, or -1 (client gone or Python
 * error, told apart by PyErr_Occurred). */
int srv_response_send_result(struct srv_conn *c, PyObject *result);

/* result.close() if it has one; -1 if it raised (logged). */
int srv_response_close_result(PyObject *result);
int srv_response_discard_result(PyObject *result);

/* "100 Continue", once, before any head: 0, or -1 (client gone). */
int srv_response_send_continue(struct srv_conn *c);

/* srv's own refusal of a dispatched request whose head has not gone out:
 * the status (with `extra` header lines and a reason in the body, both may
 * be NULL), counted, written, and the connection closed after (a 500 keeps
 * it when it can).  The access log sees it as the request's status. */
void srv_response_refuse(struct srv_conn *c, int status, const char *extra, const char *why);

/* After the app: the error status for a failure before the head went out
 * (504 after --request-timeout, the body's 400/413, else 500), or the
 * connection cut short after; and a body shorter than its Content-Length
 * closes the connection.  failed: the app raised or could not be run. */
void srv_response_finish(struct srv_conn *c, int failed);

/* May the connection serve another request after this response? */
int srv_response_keep_alive(struct srv_conn *c);

/* srv.RequestTimeout, what --request-timeout raises where a request waits:
 * a BaseException, like gevent.Timeout, so that a bare "except Exception"
 * in the app does not swallow it.  Borrowed; made on first use (the srv
 * module's import), NULL with an error if it cannot be. */
PyObject *srv_response_timeout_error(void);

void srv_response_deadline_start(srv_response *r);
void srv_response_deadline_stop(srv_response *r);

#endif
