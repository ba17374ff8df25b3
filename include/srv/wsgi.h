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

#include "srv/conn.h"
#include "srv/environ.h"
#include "srv/response.h"

struct srv_listener;

/* The request layer's state on a connection, kept across its requests
 * (c->exchange): made by wsgi.c for the connection's first request, freed
 * with the connection (srv_conn_on_free). */
typedef struct srv_exchange {
    srv_response *resp;        /* response.c's; reset for each request */
    srv_peer_names peer;       /* environ.c's: REMOTE_ADDR and REMOTE_PORT */
    PyObject *start_response;  /* owned or NULL: start_response.c's callable,
                                * re-attached to each request the app did not
                                * keep it from */
    PyObject *input;           /* owned or NULL: input.c's wsgi.input, the
                                * same way */
} srv_exchange;

/* The response of the request c serves. */
static inline srv_response *srv_conn_response(const struct srv_conn *c)
{
    return c->exchange->resp;
}

/* Imports the app named by srv_cfg.app.  On failure prints a one-line error
 * (and the traceback of an import error) and exits SRV_EXIT_USAGE. */
void srv_wsgi_load_app(void);

/* Creates the interned keys, types and constant values. */
int srv_wsgi_init(void);

/* In a worker greenlet: serves requests on c until it goes back to the loop
 * or is closed.  Returns 0, or -1 when the greenlet was asked to exit
 * (GreenletExit), in which case the exception has been cleared. */
int srv_wsgi_serve(struct srv_conn *c);

/* Told after each request a worker greenlet served (worker.c counts them
 * for --max-requests).  NULL: nobody listens. */
extern void (*srv_wsgi_on_request_done)(void);

/* Serves `app` (a new reference is taken) instead of loading srv_cfg.app;
 * for embedding, e.g. the fuzz harness. */
void srv_wsgi_set_app(PyObject *app);

void srv_wsgi_fini(void);

#endif
