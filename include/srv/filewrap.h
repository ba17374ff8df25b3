/*
 * filewrap.h - wsgi.file_wrapper.
 *
 * Owns the FileWrapper type: an iterable over a file-like object in blocks,
 * whose close() closes the file.  The gateway recognises it and, when the
 * file has a real descriptor of a regular file, sends it with sendfile(2)
 * instead of iterating.
 */
#ifndef SRV_FILEWRAP_H
#define SRV_FILEWRAP_H

#include <Python.h>
#include <sys/types.h>

extern PyTypeObject srv_FileWrapperType;

/* If obj is a FileWrapper over a regular file with a descriptor, sets *fd,
 * *offset (the file's current position) and *size (bytes from there to the
 * end) and returns 1; returns 0 otherwise (no exception set). */
int srv_filewrap_sendable(PyObject *obj, int *fd, off_t *offset, size_t *size);

#endif
