/*
 * sched.c - the loop task and the wait/resume moves, on greenlets.
 *
 * A task that must wait (for a socket, a timer, a message) records a handle
 * on itself where the event's callback will find it, calls srv_task_wait(),
 * and so switches to the loop task.  When the event fires, its libev
 * callback runs in the loop task and calls srv_task_resume(handle), which
 * switches back; the waiting call returns.  Whoever installs the waiting
 * handle clears it before resuming, so a task is resumed at most once per
 * wait.
 *
 * The loop task is whichever greenlet runs ev_run().  hub.c may replace it
 * (gevent's hub runs the loop in gevent mode) and hooks srv_sched_after_switch
 * to release worker greenlets that finished during a switch.
 */
#include <Python.h>
#include <greenlet/greenlet.h>

#include "srv/log.h"
#include "srv/metrics.h"
#include "srv/sched.h"

struct ev_loop *srv_loop;
void (*srv_sched_after_switch)(void);

static PyGreenlet *loop_task;   /* owned */

int srv_sched_lock(void)
{
    return (int)PyGILState_Ensure();
}

void srv_sched_unlock(int token)
{
    PyGILState_Release((PyGILState_STATE)token);
}

int srv_sched_init(struct ev_loop *loop)
{
    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL)
        return -1;
    loop_task = PyGreenlet_GetCurrent();
    if (loop_task == NULL)
        return -1;
    srv_loop = loop;
    return 0;
}

srv_task *srv_sched_loop_task(void)
{
    return (srv_task *)loop_task;
}

void srv_sched_set_loop_task(srv_task *t)
{
    Py_INCREF((PyObject *)t);
    Py_SETREF(loop_task, (PyGreenlet *)t);
}

srv_task *srv_task_current(void)
{
    return (srv_task *)PyGreenlet_GetCurrent();
}

void srv_task_release(srv_task *t)
{
    Py_DECREF((PyObject *)t);
}

int srv_task_in_loop(void)
{
    PyGreenlet *cur = PyGreenlet_GetCurrent();
    int in_loop = cur == loop_task;
    Py_XDECREF(cur);
    return in_loop;
}

int srv_sched_switch_to_loop(void)
{
    PyObject *r = PyGreenlet_Switch(loop_task, NULL, NULL);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

int srv_task_wait(void)
{
    srv_my_metrics->greenlets_suspended++;
    int rc = srv_sched_switch_to_loop();
    srv_my_metrics->greenlets_suspended--;
    return rc;
}

void srv_sched_switched_back(PyObject *result)
{
    if (result == NULL)
        srv_log_pyerr("a greenlet switched to the loop with an exception");
    else
        Py_DECREF(result);
    if (srv_sched_after_switch)
        srv_sched_after_switch();
}

void srv_task_resume(srv_task *t)
{
    srv_sched_switched_back(PyGreenlet_Switch((PyGreenlet *)t, NULL, NULL));
}

void srv_task_refuse(const char *why)
{
    PyErr_SetString(PyExc_RuntimeError, why);
}
