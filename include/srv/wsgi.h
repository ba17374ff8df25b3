/*
 * wsgi.h - the WSGI gateway (PEP 3333).
 *
 * Owns loading the application, building each request's environ from a
 * prebuilt per-listener template, the start_response callable with its
 * validation and exc_info rules, the write() callable, iterating the
 * response and framing it (Content-Length, chunked or close-delimited), and
 * calling the iterable's close() on every path.  srv_wsgi_serve() is what a
 * worker greenlet runs for a connection: the request whose head is parsed,
 * then any pipelined requests already buffered behind it.
 */
#ifndef SRV_WSGI_H
#define SRV_WSGI_H

#include <Python.h>

#include <ev.h>

#include "srv/buffer.h"
#include "srv/hub.h"

struct srv_conn;
struct srv_listener;

/* The response to the request a connection is serving.  Lives on the heap
 * (conn->resp) because Python code in another greenlet may call
 * start_response or write() while the worker's stack is swapped out. */
typedef struct srv_response {
    srv_buf head;              /* status line and the app's headers */
    int status_code;
    int status_sent;           /* what went out: the app's or an error's */
    int64_t content_length;    /* the app's Content-Length, or -1 */
    int64_t known_length;      /* what srv worked out (a list), or -1 */
    uint64_t body_sent;
    unsigned started:1;        /* start_response was called */
    unsigned headers_sent:1;
    unsigned chunked:1;
    unsigned close:1;          /* close the connection after this response */
    unsigned no_body:1;        /* HEAD, 1xx, 204, 304 */
    unsigned has_date:1;
    unsigned has_server:1;
    unsigned continue_sent:1;  /* "100 Continue" went out */
    unsigned truncated:1;      /* the app sent more than its Content-Length */
    ev_timer deadline;         /* --request-timeout */
    PyGreenlet *worker;        /* borrowed (the hub owns it): the deadline's target */
    unsigned timed_out:1;
    PyObject *start_response;  /* owned for the request, detached after */
    PyObject *input;           /* owned for the request, detached after */
} srv_response;

/* Imports the app named by srv_cfg.app.  On failure prints a one-line error
 * (and the traceback of an import error) and exits SRV_EXIT_USAGE. */
void srv_wsgi_load_app(void);

/* Creates the interned keys, types and constant values. */
int srv_wsgi_init(void);

/* In a worker greenlet: serves requests on c until it goes back to the loop
 * or is closed.  Returns 0, or -1 when the greenlet was asked to exit
 * (GreenletExit), in which case the exception has been cleared. */
int srv_wsgi_serve(struct srv_conn *c);

/* Serves `app` (a new reference is taken) instead of loading srv_cfg.app;
 * for embedding, e.g. the fuzz harness. */
void srv_wsgi_set_app(PyObject *app);

void srv_wsgi_fini(void);

#endif
