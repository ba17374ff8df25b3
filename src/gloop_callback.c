/*
 * gloop_callback.c - the loop's run_callback() queue (see gloop_private.h).
 *
 * run_callback(func, *args) queues a callback object and ev_ref()s the loop,
 * so that the loop turns at least once more for it.  The loop's prepare
 * watcher runs the queue before each poll, for at most the switch interval
 * (sys.getswitchinterval(), checked every CALLBACK_CHECK_COUNT callbacks so
 * that reading the clock costs little); while some are left, a zero timer
 * keeps the poll from blocking.  run_callback_threadsafe() also wakes the
 * loop (ev_async), which may be polling in another thread.  A callback
 * object is pending until it runs or is stopped; an exception in it goes to
 * the loop's handle_error with the callback object as context, as in
 * gevent.
 */
#include "gloop_private.h"

#include <structmember.h>

#define CALLBACK_CHECK_COUNT 50

/* ---- the queue's callback objects ------------------------------------------ */

void gloop_clear_callbacks(gloop *self)
{
    while (self->head) {
        gcallback *cb = self->head;
        self->head = cb->next;
        cb->next = NULL;
        if (self->ptr)
            ev_unref(self->ptr);
        Py_DECREF(cb);
    }
    self->tail = NULL;
    self->ncallbacks = 0;
}

static int callback_traverse(gcallback *self, visitproc visit, void *arg)
{
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    return 0;
}

static int callback_clear(gcallback *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    return 0;
}

static void callback_dealloc(gcallback *self)
{
    PyObject_GC_UnTrack(self);
    callback_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *callback_stop(gcallback *self, PyObject *unused)
{
    callback_clear(self);
    Py_RETURN_NONE;
}

static PyObject *callback_pending(gcallback *self, void *unused)
{
    return PyBool_FromLong(self->callback != NULL);
}

static int callback_bool(gcallback *self)
{
    return self->args != NULL;
}

static PyMethodDef callback_methods[] = {
    {"stop", (PyCFunction)callback_stop, METH_NOARGS, "do not run (if not run yet)"},
    {"close", (PyCFunction)callback_stop, METH_NOARGS, "alias of stop"},
    {NULL}
};

static PyMemberDef callback_members[] = {
    {"callback", T_OBJECT, offsetof(gcallback, callback), 0, NULL},
    {"args", T_OBJECT, offsetof(gcallback, args), 0, NULL},
    {NULL}
};

static PyGetSetDef callback_getset[] = {
    {"pending", (getter)callback_pending, NULL, "not run yet", NULL},
    {NULL}
};

static PyNumberMethods callback_as_number = {.nb_bool = (inquiry)callback_bool};

/* ---- the queue -------------------------------------------------------------- */

static gcallback *queue_callback(gloop *self, PyObject *func, PyObject *args)
{
    gcallback *cb = PyObject_GC_New(gcallback, &gloop_callback_type);
    if (cb == NULL)
        return NULL;
    cb->callback = Py_NewRef(func);
    cb->args = Py_NewRef(args);
    cb->next = NULL;
    PyObject_GC_Track(cb);
    Py_INCREF(cb);                       /* the queue's reference */
    if (self->tail)
        self->tail->next = cb;
    else
        self->head = cb;
    self->tail = cb;
    self->ncallbacks++;
    ev_ref(self->ptr);                   /* the loop must turn for it */
    return cb;
}

static void run_callbacks(gloop *self)
{
    if (self->head == NULL)
        return;
    struct ev_loop *ptr = self->ptr;
    int count = CALLBACK_CHECK_COUNT, out_of_time = 0;
    double expiration = ev_now(ptr) + self->switch_interval;
    self->may_update = 1;
    ev_timer_stop(ptr, &self->timer0);
    Py_INCREF(self);
    while (self->head && self->ptr) {
        gcallback *cb = self->head;
        self->head = cb->next;
        if (self->head == NULL)
            self->tail = NULL;
        cb->next = NULL;
        self->ncallbacks--;
        ev_unref(ptr);
        PyObject *func = cb->callback, *args = cb->args;
        cb->callback = NULL;             /* not pending any more */
        if (func && args) {
            PyObject *r = PyObject_Call(func, args, NULL);
            if (r == NULL)
                gloop_report_error(self, (PyObject *)cb);
            Py_XDECREF(r);
        }
        Py_XDECREF(func);
        Py_CLEAR(cb->args);
        Py_DECREF(cb);
        if (--count == 0 && self->head) {
            count = CALLBACK_CHECK_COUNT;
            ev_now_update(ptr);
            if (ev_now(ptr) >= expiration) {
                out_of_time = 1;
                break;
            }
        }
    }
    if (self->ptr) {
        if (!out_of_time)
            ev_now_update(ptr);
        if (self->head)
            ev_timer_start(ptr, &self->timer0);
    }
    self->may_update = 0;
    Py_DECREF(self);
}

void gloop_on_prepare(struct ev_loop *l, ev_prepare *w, int revents)
{
    run_callbacks(w->data);
}

/* loop.run_callback(func, *args) */
PyObject *gloop_run_callback(gloop *self, PyObject *args)
{
    if (!loop_alive(self))
        return NULL;
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "run_callback(func, *args)");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (rest == NULL)
        return NULL;
    gcallback *cb = queue_callback(self, PyTuple_GET_ITEM(args, 0), rest);
    Py_DECREF(rest);
    return (PyObject *)cb;
}

/* loop.run_callback_threadsafe(func, *args): from any thread */
PyObject *gloop_run_callback_threadsafe(gloop *self, PyObject *args)
{
    PyObject *cb = gloop_run_callback(self, args);
    if (cb)
        ev_async_send(self->ptr, &self->wake);
    return cb;
}

PyTypeObject gloop_callback_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_srv_gevent.callback",
    .tp_basicsize = sizeof(gcallback),
    .tp_flags = GC_FLAGS,
    .tp_dealloc = (destructor)callback_dealloc,
    .tp_traverse = (traverseproc)callback_traverse,
    .tp_clear = (inquiry)callback_clear,
    .tp_methods = callback_methods,
    .tp_members = callback_members,
    .tp_getset = callback_getset,
    .tp_as_number = &callback_as_number,
};
