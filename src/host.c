/*
 * host.c - _srv_host, srv's core as an extension module (handover.h).
 *
 * main(argv) runs srv_cli_main() inside the interpreter that loaded the
 * module, as the embedded interpreter would: sys.argv is [''], and the
 * handlers Python's start-up installed for SIGINT and SIGXFSZ go back to
 * the defaults (the embedded interpreter installs none; srv handles its
 * signals itself).  It returns the exit status, for sys.exit().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "srv/cli.h"

static PyObject *host_main(PyObject *self, PyObject *arg)
{
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "main() takes srv's argv as a list");
        return NULL;
    }
    int argc = (int)PyList_GET_SIZE(arg);
    /* Kept for the life of the process, like a C program's argv. */
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (argv == NULL)
        return PyErr_NoMemory();
    for (int i = 0; i < argc; i++) {
        const char *s = PyUnicode_AsUTF8(PyList_GET_ITEM(arg, i));
        if (s == NULL || (argv[i] = strdup(s)) == NULL) {
            for (int j = 0; j < i; j++)
                free(argv[j]);
            free(argv);
            return s ? PyErr_NoMemory() : NULL;
        }
    }
    PyObject *sys_argv = Py_BuildValue("[s]", "");
    if (sys_argv == NULL || PySys_SetObject("argv", sys_argv) < 0) {
        Py_XDECREF(sys_argv);
        return NULL;
    }
    Py_DECREF(sys_argv);
    signal(SIGINT, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);
    return PyLong_FromLong(srv_cli_main(argc, argv, 1));
}

static PyMethodDef host_methods[] = {
    {"main", host_main, METH_O, "main(argv): run srv with this argv; returns its exit status"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef host_module = {
    PyModuleDef_HEAD_INIT, "_srv_host", "srv's core, run inside the interpreter (handover.h)",
    -1, host_methods,
};

PyMODINIT_FUNC PyInit__srv_host(void)
{
    return PyModule_Create(&host_module);
}
