/*
 * input.h - wsgi.input, the request body as a file-like object.
 *
 * Owns reading the body as it arrives (Content-Length or chunked): read(n),
 * read(), readline(limit), readlines(hint) and iteration.  When the bytes are
 * not there yet, the calling greenlet waits for the socket and the loop
 * serves everyone else.  Sends "100 Continue" on the first read that needs
 * the client's body.  Past the end of the body every read returns b"".
 */
#ifndef SRV_INPUT_H
#define SRV_INPUT_H

#include <Python.h>

struct srv_conn;

extern PyTypeObject srv_InputType;

/* A new wsgi.input reading from c's current request. */
PyObject *srv_input_new(struct srv_conn *c);

/* Attaches a detached input to the next request c serves if nothing but
 * its one owner holds it (an app that kept it sees b"" on): 1 if it did, 0
 * if the caller needs a new one. */
int srv_input_reattach(PyObject *input, struct srv_conn *c);

/* The request is over: later reads return b"" instead of touching c. */
void srv_input_detach(PyObject *input);

/* Makes `want` more body bytes available in c->req.body, or all of what is
 * left.  Returns 0, or -1 with a Python exception set. */
int srv_input_fill(struct srv_conn *c, size_t want);

/* Reads and discards the rest of a body the app did not read (up to 1 MiB),
 * so that it is never parsed as a request.  1 when the connection can be
 * reused. */
int srv_input_drain(struct srv_conn *c);

#endif
