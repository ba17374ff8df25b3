/*
 * filewrap.c - wsgi.file_wrapper: a file as a response iterable.
 *
 * FileWrapper(filelike, blksize=8192) iterates filelike.read(blksize) until
 * it returns b"" and closes filelike from close().  The gateway asks
 * srv_filewrap_sendable() first: a wrapper over a regular file with a real
 * descriptor is sent from its current position with sendfile(2), with no
 * copy through Python.
 */
#include "srv/filewrap.h"

#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    PyObject *filelike;   /* owned */
    Py_ssize_t blksize;
} FileWrapperObject;

static PyObject *fw_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper", kwlist, &filelike, &blksize))
        return NULL;
    if (blksize <= 0)
        blksize = 8192;
    FileWrapperObject *fw = (FileWrapperObject *)type->tp_alloc(type, 0);
    if (fw == NULL)
        return NULL;
    Py_INCREF(filelike);
    fw->filelike = filelike;
    fw->blksize = blksize;
    return (PyObject *)fw;
}

static void fw_dealloc(PyObject *self)
{
    FileWrapperObject *fw = (FileWrapperObject *)self;
    PyObject_GC_UnTrack(self);
    Py_CLEAR(fw->filelike);
    Py_TYPE(self)->tp_free(self);
}

static int fw_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((FileWrapperObject *)self)->filelike);
    return 0;
}

static int fw_clear(PyObject *self)
{
    Py_CLEAR(((FileWrapperObject *)self)->filelike);
    return 0;
}

static PyObject *fw_iternext(PyObject *self)
{
    FileWrapperObject *fw = (FileWrapperObject *)self;
    if (fw->filelike == NULL)
        return NULL;
    PyObject *data = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
    if (data == NULL)
        return NULL;
    if (PyObject_Length(data) == 0) {
        if (PyErr_Occurred()) {
            Py_DECREF(data);
            return NULL;
        }
        Py_DECREF(data);
        return NULL;
    }
    return data;
}

static PyObject *fw_close(PyObject *self, PyObject *unused)
{
    FileWrapperObject *fw = (FileWrapperObject *)self;
    if (fw->filelike == NULL)
        Py_RETURN_NONE;
    PyObject *meth = PyObject_GetAttrString(fw->filelike, "close");
    if (meth == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *rv = PyObject_CallNoArgs(meth);
    Py_DECREF(meth);
    return rv;
}

static PyMethodDef fw_methods[] = {
    {"close", fw_close, METH_NOARGS, "close the wrapped file"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject srv_FileWrapperType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv.FileWrapper",
    .tp_basicsize = sizeof(FileWrapperObject),
    .tp_dealloc = fw_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "wsgi.file_wrapper(filelike, blksize=8192)",
    .tp_traverse = fw_traverse,
    .tp_clear = fw_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fw_iternext,
    .tp_methods = fw_methods,
    .tp_new = fw_new,
};

int srv_filewrap_sendable(PyObject *obj, int *fd, off_t *offset, size_t *size)
{
    if (Py_TYPE(obj) != &srv_FileWrapperType)
        return 0;
    FileWrapperObject *fw = (FileWrapperObject *)obj;
    if (fw->filelike == NULL)
        return 0;
    PyObject *r = PyObject_CallMethod(fw->filelike, "fileno", NULL);
    if (r == NULL) {
        PyErr_Clear();
        return 0;
    }
    long n = PyLong_AsLong(r);
    Py_DECREF(r);
    if (n < 0) {
        PyErr_Clear();
        return 0;
    }
    struct stat st;
    if (fstat((int)n, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    /* The Python-level position accounts for buffered reads. */
    off_t pos;
    r = PyObject_CallMethod(fw->filelike, "tell", NULL);
    if (r == NULL) {
        PyErr_Clear();
        pos = lseek((int)n, 0, SEEK_CUR);
    } else {
        pos = (off_t)PyLong_AsLongLong(r);
        Py_DECREF(r);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
    }
    if (pos < 0 || pos > st.st_size)
        return 0;
    *fd = (int)n;
    *offset = pos;
    *size = (size_t)(st.st_size - pos);
    return 1;
}
