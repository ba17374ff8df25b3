/*
 * start_response.h - the start_response and write() callables.
 *
 * Owns the StartResponse type: validating status and headers, serialising
 * them into the response's head, the exc_info rules, and write().  The
 * request driver keeps one per connection and re-attaches it to each
 * request while the app has kept no reference to it.
 */
#ifndef SRV_START_RESPONSE_H
#define SRV_START_RESPONSE_H

#include <Python.h>

struct srv_conn;

int srv_start_response_init(void);

/* The callable for the request c serves (new reference), or NULL. */
PyObject *srv_start_response_new(struct srv_conn *c);

/* Attaches a detached sr to the next request c serves, if nothing but its
 * one owner holds sr or its write() (an app may have kept either, and those
 * must keep raising): 1 if it did, 0 if the caller needs a new one. */
int srv_start_response_reattach(PyObject *sr, struct srv_conn *c);

/* The request is over: calls from now on raise. */
void srv_start_response_detach(PyObject *sr);

#endif
