/*
 * accesslog.h - the access log (--access-log, --access-log-format).
 *
 * Owns the compiled Apache-style format (its syntax is logfmt.c's), one
 * line per request built from the request's environ and its response, and
 * the buffering that keeps log writes off the loop's critical path: lines
 * collect in memory and are written in batches (when the buffer fills, once
 * a second, and at exit).
 */
#ifndef SRV_ACCESSLOG_H
#define SRV_ACCESSLOG_H

#include <Python.h>
#include <stdint.h>

extern int srv_access_log_enabled;

/* Compiles the format and opens the file.  Returns 0, or -1 after printing
 * a one-line error. */
int srv_access_log_open(void);

/* The facts about one finished request that the environ does not hold. */
typedef struct srv_access_entry {
    PyObject *environ;         /* borrowed */
    int status;
    uint64_t body_bytes;
    double seconds;            /* from head parsed to response done */
} srv_access_entry;

void srv_access_log_write(const srv_access_entry *e);

/* Writes out what is buffered. */
void srv_access_log_flush(void);

#endif
