/*
 * pymod.h - the `srv` Python module that applications may import.
 *
 * Owns what srv offers to Python code: srv.__version__ and srv.sleep(seconds),
 * a cooperative sleep on a libev timer that suspends only the calling
 * greenlet.  The module is registered before the interpreter starts, so
 * `import srv` works from the app's import onwards.
 */
#ifndef SRV_PYMOD_H
#define SRV_PYMOD_H

#include <Python.h>

/* Registers the module (and _srv_gevent): in the inittab before
 * Py_Initialize, else, handed over (handover.h), straight in sys.modules. */
int srv_pymod_register(void);

int srv_pymod_import(void);

#endif
