/*
 * start_response.h - the start_response and write() callables.
 *
 * Owns the StartResponse type: validating status and headers, serialising
 * them into the response's head, the exc_info rules, and write().
 */
#ifndef SRV_START_RESPONSE_H
#define SRV_START_RESPONSE_H

#include <Python.h>

struct srv_conn;

int srv_start_response_init(void);

/* The callable for the request c serves (new reference), or NULL. */
PyObject *srv_start_response_new(struct srv_conn *c);

/* The request is over: calls from now on raise. */
void srv_start_response_detach(PyObject *sr);

#endif
