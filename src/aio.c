/*
 * aio.c - asyncio on srv's libev loop, and srv.run_async().
 *
 * srv.EventLoop is asyncio's own SelectorEventLoop, so tasks, sock_*,
 * transports, streams, getaddrinfo and run_in_executor are asyncio's tested
 * code.  Its selector is srv's (aio_selector.c): one ev_io per registered
 * fd on srv's loop, and a select() that never blocks the thread, because
 * the asyncio loop runs run_forever() in a greenlet of its own and select()
 * waits in the hub like a request greenlet.  Its hot methods are C
 * (aio_core.c): call_soon, call_at/call_later on libev timers, the ready
 * ring and _run_once.  This file makes that loop (once per worker, on first
 * use, from the Python glue below), and bridges requests to it.
 *
 * srv.run_async() from any greenlet but the loop greenlet wraps the
 * awaitable in a Task, adds a Waiter as its done callback and waits in the
 * hub.  The Waiter runs in the asyncio greenlet, so it never switches itself:
 * it starts a zero ev_timer whose callback, in the loop greenlet, resumes
 * the request.  An exception thrown into the waiting request (RequestTimeout,
 * GreenletExit) cancels the Task.  Called in the loop greenlet while srv's
 * loop is not running (at import time), run_async runs the asyncio loop in
 * place: select() then runs srv's loop itself, one iteration at a time.
 *
 * Once made, the asyncio loop is the thread's running loop (asyncio keeps it
 * per thread, not per greenlet), so asyncio.get_running_loop() works in every
 * request.
 */
#include "aio_private.h"

#include <greenlet/greenlet.h>
#include "srv/config.h"
#include "srv/log.h"

#include <stddef.h>

/* ---- Python side --------------------------------------------------------- */

static const char glue_src[] =
    "import asyncio\n"
    "import traceback\n"
    "from asyncio import events as _events\n"
    "\n"
    "_NO_SIGNALS = ('srv: the master process owns signals; add_signal_handler and '\n"
    "               'remove_signal_handler are not available in srv workers')\n"
    "\n"
    "class EventLoop(asyncio.SelectorEventLoop):\n"
    "    '''asyncio's selector event loop on srv's libev loop: get it with\n"
    "    srv.get_event_loop() or asyncio.get_event_loop().'''\n"
    "\n"
    "    def add_signal_handler(self, sig, callback, *args):\n"
    "        raise NotImplementedError(_NO_SIGNALS)\n"
    "\n"
    "    def remove_signal_handler(self, sig):\n"
    "        raise NotImplementedError(_NO_SIGNALS)\n"
    "\n"
    "    # In a request, the loop already runs in its own greenlet: wait for\n"
    "    # the future there, suspending only the request (srv.run_async).\n"
    "    def run_until_complete(self, future):\n"
    "        if _in_request():\n"
    "            return _run_async(future)\n"
    "        return super().run_until_complete(future)\n"
    "\n"
    "    def default_exception_handler(self, context):\n"
    "        _log(_describe(context))\n"
    "\n"
    "    def set_debug(self, enabled):\n"
    "        super().set_debug(enabled)\n"
    "        self._srv_set_debug(enabled)\n"
    "\n"
    "    # call_soon_threadsafe wakes srv's loop by an ev_async (_write_to_self\n"
    "    # is C): no self-pipe on srv's selector.\n"
    "    def _make_self_pipe(self):\n"
    "        if isinstance(self._selector, _Selector):\n"
    "            self._ssock = self._csock = None\n"
    "        else:\n"
    "            super()._make_self_pipe()\n"
    "\n"
    "    def _close_self_pipe(self):\n"
    "        if self._ssock is not None:\n"
    "            super()._close_self_pipe()\n"
    "\n"
    "# The slow paths of aio_core.c's C methods.\n"
    "from asyncio.format_helpers import _format_callback_source\n"
    "from asyncio.base_events import _format_handle\n"
    "from asyncio.log import logger as _logger\n"
    "\n"
    "def _callback_failed(loop, handle, callback, args, exc):\n"
    "    cb = _format_callback_source(callback, args)\n"
    "    loop.call_exception_handler({'message': f'Exception in callback {cb}',\n"
    "                                 'exception': exc, 'handle': handle})\n"
    "\n"
    "def _handle_repr(handle):\n"
    "    info = [type(handle).__name__]\n"
    "    if handle.cancelled():\n"
    "        info.append('cancelled')\n"
    "    if hasattr(handle, 'when'):\n"
    "        info.append(f'when={handle.when()}')\n"
    "    if handle._callback is not None:\n"
    "        info.append(_format_callback_source(handle._callback, handle._args))\n"
    "    return '<{}>'.format(' '.join(info))\n"
    "\n"
    "def _run_debug(loop, handle):\n"
    "    if handle._cancelled:\n"
    "        return\n"
    "    try:\n"
    "        loop._current_handle = handle\n"
    "        t0 = loop.time()\n"
    "        handle._run()\n"
    "        dt = loop.time() - t0\n"
    "        if dt >= loop.slow_callback_duration:\n"
    "            _logger.warning('Executing %s took %.3f seconds', _format_handle(handle), dt)\n"
    "    finally:\n"
    "        loop._current_handle = None\n"
    "\n"
    "def _debug_check(loop, callback, method):\n"
    "    loop._check_thread()\n"
    "    loop._check_callback(callback, method)\n"

    "\n"
    "def _describe(context):\n"
    "    lines = ['asyncio: ' + (context.get('message') or 'unhandled exception')]\n"
    "    for key in sorted(context):\n"
    "        if key not in ('message', 'exception'):\n"
    "            try:\n"
    "                value = repr(context[key])\n"
    "            except Exception:\n"
    "                value = '<repr failed>'\n"
    "            lines.append('  %s: %s' % (key, value))\n"
    "    exc = context.get('exception')\n"
    "    if exc is not None:\n"
    "        lines.append(''.join(traceback.format_exception(exc)).rstrip('\\n'))\n"
    "    return '\\n'.join(lines)\n"
    "\n"
    "class _Policy(asyncio.DefaultEventLoopPolicy):\n"
    "    def get_event_loop(self):\n"
    "        if _other_thread():\n"
    "            return super().get_event_loop()\n"
    "        return _get_loop()\n"
    "\n"
    "def _install_policy():\n"
    "    if not isinstance(asyncio.get_event_loop_policy(), _Policy):\n"
    "        asyncio.set_event_loop_policy(_Policy())\n"
    "\n"
    "def _runner(loop):\n"
    "    def run():\n"
    "        _events._set_running_loop(None)\n"
    "        loop.run_forever()\n"
    "    return run\n"
    "\n"
    "def _submit(loop, aw, timeout):\n"
    "    if timeout is not None:\n"
    "        aw = asyncio.wait_for(aw, timeout)\n"
    "    return asyncio.ensure_future(aw, loop=loop)\n"
    "\n"
    "def _run_here(loop, aw, timeout):\n"
    "    _events._set_running_loop(None)\n"
    "    try:\n"
    "        return loop.run_until_complete(_submit(loop, aw, timeout))\n"
    "    finally:\n"
    "        _events._set_running_loop(loop)\n"
    "\n"
    "def _pending(loop):\n"
    "    return len(asyncio.all_tasks(loop))\n"
    "\n"
    "def _cancel_all(loop):\n"
    "    tasks = asyncio.all_tasks(loop)\n"
    "    for t in tasks:\n"
    "        t.cancel()\n"
    "    return tasks\n"
    "\n"
    "def _finish(loop, tasks):\n"
    "    if tasks:\n"
    "        loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))\n"
    "    loop.close()\n"
    "    _events._set_running_loop(None)\n";

static PyObject *glue;          /* owned: the glue's globals */
static PyObject *s_create_task, *s_add_done_callback, *s_remove_done_callback,
                *s_result, *s_cancel, *s_close;   /* interned */
unsigned long aio_loop_thread;  /* the thread that runs srv's loop */
PyObject *aio_loop;             /* owned: srv's asyncio loop, once made */
selector *aio_sel;              /* borrowed: aio_loop owns it */
PyObject *aio_key_type;         /* owned: selectors.SelectorKey */

/* ---- the waiter: resumes a request greenlet when its task is done -------- */

typedef struct {
    PyObject_HEAD
    ev_timer timer;
    PyGreenlet *g;          /* owned while someone waits */
    int done;
} waiter;

static void waiter_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    waiter *w = (waiter *)((char *)t - offsetof(waiter, timer));
    if (w->g)
        srv_hub_resume(w->g);
}

SRV_EV_CALLBACK(on_waiter, ev_timer, waiter_cb)

/* The task's done callback, run by the asyncio loop in its greenlet. */
static PyObject *waiter_call(waiter *w, PyObject *args, PyObject *kw)
{
    w->done = 1;
    if (w->g && !ev_is_active(&w->timer) && !ev_is_pending(&w->timer)) {
        if (ev_depth(srv_loop) > 0) {   /* after the asyncio greenlet yields */
            ev_feed_event(srv_loop, &w->timer, EV_TIMER);
        } else {
            ev_timer_set(&w->timer, 0., 0.);
            ev_timer_start(srv_loop, &w->timer);
        }
    }
    Py_RETURN_NONE;
}

static void waiter_dealloc(waiter *w)
{
    ev_timer_stop(srv_loop, &w->timer);
    Py_XDECREF(w->g);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyTypeObject WaiterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "srv._Waiter",
    .tp_basicsize = sizeof(waiter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_call = (ternaryfunc)waiter_call,
    .tp_dealloc = (destructor)waiter_dealloc,
};

/* ---- the loop ------------------------------------------------------------ */

static PyObject *glue_call(const char *name, PyObject *const *args, size_t n)
{
    PyObject *fn = PyDict_GetItemString(glue, name);   /* borrowed */
    if (fn == NULL) {
        PyErr_Format(PyExc_RuntimeError, "srv's asyncio glue has no %s", name);
        return NULL;
    }
    return PyObject_Vectorcall(fn, args, n, NULL);
}

static PyObject *aio_log(PyObject *module, PyObject *text)
{
    const char *s = PyUnicode_AsUTF8(text);
    if (s == NULL)
        return NULL;
    srv_error("%s", s);
    Py_RETURN_NONE;
}

static PyObject *aio_get_event_loop(PyObject *module, PyObject *unused);

/* Would srv.run_async suspend the calling greenlet (rather than run the
 * loop in place or refuse)? */
static PyObject *aio_in_request(PyObject *module, PyObject *unused)
{
    if (aio_sel == NULL || srv_loop == NULL || PyThread_get_thread_ident() != aio_loop_thread
        || srv_hub_in_loop())
        Py_RETURN_FALSE;
    PyGreenlet *cur = srv_hub_current();
    int in_aio = cur == aio_sel->g;
    Py_DECREF(cur);
    return PyBool_FromLong(!in_aio);
}

static PyObject *aio_run_async(PyObject *module, PyObject *args, PyObject *kw);

/* Is this a thread other than the one that made srv's loop? */
static PyObject *aio_other_thread(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(PyThread_get_thread_ident() != aio_loop_thread);
}

static PyMethodDef glue_defs[] = {
    {"_log", aio_log, METH_O, NULL},
    {"_get_loop", aio_get_event_loop, METH_NOARGS, NULL},
    {"_in_request", aio_in_request, METH_NOARGS, NULL},
    {"_other_thread", aio_other_thread, METH_NOARGS, NULL},
    {"_run_async", (PyCFunction)(void (*)(void))aio_run_async, METH_VARARGS | METH_KEYWORDS, NULL},
};

static int load_glue(void)
{
    if (glue)
        return 0;
    PyObject *g = PyDict_New();
    if (g == NULL)
        return -1;
    PyObject *name = PyUnicode_FromString("srv");
    int bad = name == NULL || PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0
              || PyDict_SetItemString(g, "__name__", name) < 0;
    Py_XDECREF(name);
    if (bad)
        goto fail;
    for (size_t i = 0; i < sizeof glue_defs / sizeof glue_defs[0]; i++) {
        PyObject *f = PyCFunction_New(&glue_defs[i], NULL);
        int rc = f ? PyDict_SetItemString(g, glue_defs[i].ml_name, f) : -1;
        Py_XDECREF(f);
        if (rc < 0)
            goto fail;
    }
    if (PyDict_SetItemString(g, "_Selector", (PyObject *)&AioSelectorType) < 0)
        goto fail;
    PyObject *r = PyRun_String(glue_src, Py_file_input, g, g);
    if (r == NULL)
        goto fail;
    Py_DECREF(r);
    PyObject *cls = PyDict_GetItemString(g, "EventLoop");   /* borrowed */
    if (cls == NULL || aio_core_install(g, cls) < 0)
        goto fail;
    PyObject *sel_mod = PyImport_ImportModule("selectors");
    aio_key_type = sel_mod ? PyObject_GetAttrString(sel_mod, "SelectorKey") : NULL;
    Py_XDECREF(sel_mod);
    if (aio_key_type == NULL)
        goto fail;
    glue = g;
    return 0;
fail:
    Py_DECREF(g);
    return -1;
}

static PyObject *install_policy(void)
{
    if (load_glue() < 0)
        return NULL;
    return glue_call("_install_policy", NULL, 0);
}

/* srv's asyncio loop, made on first use (borrowed). */
static PyObject *ensure_loop(void)
{
    if (PyThread_get_thread_ident() != aio_loop_thread) {
        PyErr_SetString(PyExc_RuntimeError,
                        "srv's asyncio loop belongs to the thread that runs srv's loop; from "
                        "another thread use asyncio.run_coroutine_threadsafe(coro, loop)");
        return NULL;
    }
    if (aio_loop)
        return aio_loop;
    PyObject *r = install_policy();
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    PyObject *cls = PyDict_GetItemString(glue, "EventLoop");   /* borrowed */
    PyObject *sel = PyObject_CallNoArgs((PyObject *)&AioSelectorType);
    if (cls == NULL || sel == NULL) {
        Py_XDECREF(sel);
        return NULL;
    }
    PyObject *loop = PyObject_CallOneArg(cls, sel);
    if (loop == NULL) {
        Py_DECREF(sel);
        return NULL;
    }
    selector *s = (selector *)sel;
    s->run = glue_call("_runner", &loop, 1);
    PyObject *events = PyImport_ImportModule("asyncio.events");
    PyObject *set = events ? PyObject_CallMethod(events, "_set_running_loop", "O", loop) : NULL;
    Py_XDECREF(events);
    if (s->run == NULL || set == NULL) {
        Py_DECREF(sel);
        Py_DECREF(loop);
        return NULL;
    }
    Py_DECREF(set);
    PyObject *debug = PyObject_CallMethod(loop, "get_debug", NULL);
    int on = debug ? PyObject_IsTrue(debug) : -1;
    Py_XDECREF(debug);
    if (on < 0) {
        Py_DECREF(sel);
        Py_DECREF(loop);
        return NULL;
    }
    s->debug = on;
    aio_sel = s;
    Py_DECREF(sel);     /* the loop keeps its selector */
    aio_loop = loop;
    aio_kick(s);            /* the greenlet starts at the loop's next turn */
    return aio_loop;
}

static PyObject *aio_get_event_loop(PyObject *module, PyObject *unused)
{
    PyObject *loop = ensure_loop();
    return loop ? Py_NewRef(loop) : NULL;
}

/* In the loop greenlet while srv's loop does not run: run it here. */
static PyObject *run_in_place(PyObject *loop, PyObject *aw, PyObject *timeout)
{
    if (aio_sel->g) {
        PyErr_SetString(PyExc_RuntimeError,
                        "srv.run_async: srv's loop is not running and its asyncio "
                        "loop is suspended");
        return NULL;
    }
    aio_sel->inplace = 1;
    PyObject *argv[3] = {loop, aw, timeout};
    PyObject *r = glue_call("_run_here", argv, 3);
    aio_sel->inplace = 0;
    aio_kick(aio_sel);
    return r;
}


/* The request gave up waiting (an exception was thrown in): cancel. */
static void abandon(PyObject *task, waiter *w)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = PyObject_CallMethodOneArg(task, s_remove_done_callback, (PyObject *)w);
    Py_XDECREF(r);
    r = r ? PyObject_CallMethodNoArgs(task, s_cancel) : NULL;
    Py_XDECREF(r);
    if (r == NULL)
        srv_log_pyerr("srv.run_async: cannot cancel the task");
    else
        aio_kick(aio_sel);
    PyErr_Restore(type, value, tb);
}

static PyObject *aio_run_async(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *names[] = {"awaitable", "timeout", NULL};
    PyObject *aw, *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:run_async", names, &aw, &timeout))
        return NULL;
    PyObject *loop = ensure_loop();
    if (loop == NULL)
        return NULL;
    if (srv_hub_in_loop())
        return run_in_place(loop, aw, timeout);
    PyGreenlet *cur = srv_hub_current();
    int nested = cur == aio_sel->g;
    if (nested) {
        Py_DECREF(cur);
        if (PyCoro_CheckExact(aw)) {   /* it will never run: no "never awaited" warning */
            PyObject *r = PyObject_CallMethodNoArgs(aw, s_close);
            Py_XDECREF(r);
            PyErr_Clear();
        }
        PyErr_SetString(PyExc_RuntimeError,
                        "srv.run_async cannot be called from a coroutine running on srv's "
                        "loop: await the awaitable instead");
        return NULL;
    }
    PyObject *task;
    if (timeout == Py_None && PyCoro_CheckExact(aw)) {
        task = PyObject_CallMethodOneArg(loop, s_create_task, aw);   /* the common case */
    } else {
        PyObject *argv[3] = {loop, aw, timeout};
        task = glue_call("_submit", argv, 3);
    }
    waiter *w = task ? PyObject_New(waiter, &WaiterType) : NULL;
    if (w == NULL) {
        Py_DECREF(cur);
        Py_XDECREF(task);
        return NULL;
    }
    ev_init(&w->timer, on_waiter);
    w->g = cur;   /* the reference from srv_hub_current() */
    w->done = 0;
    PyObject *r = PyObject_CallMethodOneArg(task, s_add_done_callback, (PyObject *)w);
    int rc = r ? 0 : -1;
    Py_XDECREF(r);
    if (rc == 0) {
        aio_kick(aio_sel);
        do
            rc = srv_hub_wait();
        while (rc == 0 && !w->done);
    }
    ev_timer_stop(srv_loop, &w->timer);
    Py_CLEAR(w->g);
    PyObject *result = NULL;
    if (rc < 0)
        abandon(task, w);
    else
        result = PyObject_CallMethodNoArgs(task, s_result);
    Py_DECREF(w);
    Py_DECREF(task);
    return result;
}

static PyObject *aio_getattr(PyObject *module, PyObject *name)
{
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "EventLoop") == 0) {
        if (load_glue() < 0)
            return NULL;
        PyObject *cls = PyDict_GetItemString(glue, "EventLoop");
        return Py_XNewRef(cls);
    }
    PyErr_Format(PyExc_AttributeError, "module 'srv' has no attribute %R", name);
    return NULL;
}

static PyMethodDef aio_methods[] = {
    {"run_async", (PyCFunction)(void (*)(void))aio_run_async, METH_VARARGS | METH_KEYWORDS,
     "run_async(awaitable, timeout=None): run the awaitable on srv's asyncio loop and "
     "suspend only the calling greenlet until it is done; returns its result or raises "
     "its exception (TimeoutError after `timeout` seconds).  Outside a request (at "
     "import time) it runs the loop until the awaitable is done."},
    {"get_event_loop", aio_get_event_loop, METH_NOARGS,
     "get_event_loop(): srv's asyncio loop in this worker (made on first use)"},
    {"__getattr__", aio_getattr, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

int srv_aio_add_to_module(PyObject *module)
{
    PyGreenlet_Import();
    if (_PyGreenlet_API == NULL)
        return -1;
    if (aio_selector_init() < 0 || PyType_Ready(&WaiterType) < 0)
        return -1;
    aio_loop_thread = PyThread_get_thread_ident();   /* the worker's main thread */
    struct { PyObject **s; const char *name; } names[] = {
        {&s_create_task, "create_task"}, {&s_add_done_callback, "add_done_callback"},
        {&s_remove_done_callback, "remove_done_callback"}, {&s_result, "result"},
        {&s_cancel, "cancel"}, {&s_close, "close"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (*names[i].s == NULL && (*names[i].s = PyUnicode_InternFromString(names[i].name)) == NULL)
            return -1;
    return PyModule_AddFunctions(module, aio_methods);
}

/* ---- start-up and shut-down ---------------------------------------------- */

static int is_coroutine_app(PyObject *app)
{
    PyObject *inspect = PyImport_ImportModule("inspect");
    PyObject *check = inspect ? PyObject_GetAttrString(inspect, "iscoroutinefunction") : NULL;
    Py_XDECREF(inspect);
    if (check == NULL)
        return -1;
    int found = 0;
    PyObject *r = PyObject_CallOneArg(check, app);
    if (r && !(found = PyObject_IsTrue(r)) && !PyFunction_Check(app)
        && PyObject_HasAttrString(app, "__call__")) {
        PyObject *call = PyObject_GetAttrString(app, "__call__");
        Py_DECREF(r);
        r = call ? PyObject_CallOneArg(check, call) : NULL;
        Py_XDECREF(call);
        if (r)
            found = PyObject_IsTrue(r);
    }
    Py_XDECREF(r);
    Py_DECREF(check);
    return r == NULL ? -1 : found;
}

void srv_aio_app_loaded(PyObject *app, const char *spec)
{
    int coro = is_coroutine_app(app);
    if (coro < 0) {
        PyErr_Clear();
    } else if (coro) {
        srv_die_usage("the app %s is a coroutine function (async def): srv is a WSGI server "
                      "and calls the app synchronously; make it a plain "
                      "def app(environ, start_response) and await coroutines inside it "
                      "with srv.run_async(...)", spec);
    }
    PyObject *modules = PyImport_GetModuleDict();   /* borrowed */
    if (PyDict_GetItemString(modules, "asyncio") == NULL)
        return;
    PyObject *r = install_policy();
    if (r == NULL)
        srv_log_pyerr("cannot install srv's asyncio event loop policy");
    Py_XDECREF(r);
}

int srv_aio_pending_tasks(void)
{
    if (aio_loop == NULL)
        return 0;
    PyObject *r = glue_call("_pending", &aio_loop, 1);
    long n = r ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (n < 0) {
        srv_log_pyerr("cannot count asyncio tasks");
        return 0;
    }
    return (int)n;
}

void srv_aio_shutdown(void)
{
    if (aio_loop == NULL)
        return;
    selector *s = aio_sel;
    PyObject *tasks = glue_call("_cancel_all", &aio_loop, 1);
    Py_ssize_t n = tasks ? PySet_Size(tasks) : -1;
    if (n > 0)
        srv_warn("stopping: cancelling %zd asyncio task(s) still pending", n);
    else if (n < 0)
        srv_log_pyerr("cannot cancel the asyncio tasks");
    /* End run_forever() in its greenlet, with us as its parent. */
    if (s->g && PyGreenlet_ACTIVE(s->g)) {
        PyObject *r = PyObject_CallMethod(aio_loop, "stop", NULL);
        Py_XDECREF(r);
        PyGreenlet *cur = srv_hub_current();
        s->inplace = 1;
        if (r == NULL || PyGreenlet_SetParent(s->g, cur) < 0)
            srv_log_pyerr("cannot stop the asyncio loop");
        else {
            r = PyGreenlet_Switch(s->g, NULL, NULL);
            if (r == NULL)
                srv_log_pyerr("the asyncio loop stopped with an error");
            Py_XDECREF(r);
        }
        Py_DECREF(cur);
    }
    s->inplace = 1;
    if (tasks) {
        PyObject *argv[2] = {aio_loop, tasks};
        PyObject *r = glue_call("_finish", argv, 2);
        if (r == NULL)
            srv_log_pyerr("cannot close the asyncio loop");
        Py_XDECREF(r);
    }
    Py_XDECREF(tasks);
    Py_CLEAR(s->g);
    Py_CLEAR(aio_loop);
    aio_sel = NULL;
}
