/*
 * worker.c - a worker process: CPython, the app, and the loop.
 *
 * Order matters: start the interpreter with the `srv` module registered,
 * pick the mode (gevent patches the stdlib before the app is imported),
 * import the app, then run the loop: srv's own ev_run in native mode,
 * gevent's hub in gevent mode.  After the loop ends, workers still inside a
 * request get GreenletExit, and the interpreter is finalized with no
 * greenlet left suspended.  A heartbeat timer tells the master the loop
 * still turns.
 */
#include <Python.h>
#include <errno.h>
#include <signal.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv/clock.h"
#include "srv/fault.h"
#include "srv/accesslog.h"
#include "srv/aio.h"
#include "srv/config.h"
#include "srv/conn.h"
#include "srv/geventmode.h"
#include "srv/http.h"
#include "srv/environ.h"
#include "srv/hub.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/master.h"
#include "srv/pymod.h"
#include "srv/venv.h"
#include "srv/worker.h"
#include "srv/wsgi.h"

#define HEARTBEAT_INTERVAL 1.0

static ev_timer heartbeat;
static srv_slot *my_slot;           /* in the master's shared memory; NULL: --check-config */
static unsigned long requests_done;
static unsigned long retire_after;   /* 0: never */

/* Releases the GIL while the loop waits for events, so Python threads the
 * app started can run. */
static PyThreadState *loop_tstate;
static void loop_release(struct ev_loop *loop) { loop_tstate = PyEval_SaveThread(); }
static void loop_acquire(struct ev_loop *loop) { PyEval_RestoreThread(loop_tstate); }

static void add_sys_path(const char *dir, int front)
{
    PyObject *path = PySys_GetObject("path");   /* borrowed */
    PyObject *d = PyUnicode_DecodeFSDefault(dir);
    if (path && d)
        PyList_Insert(path, front ? 0 : PyList_GET_SIZE(path), d);
    Py_XDECREF(d);
    PyErr_Clear();
}

static void start_python(const char *argv0)
{
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;   /* the loop owns signals */
    config.parse_argv = 0;
    PyConfig_SetBytesString(&config, &config.program_name, srv_venv_program(argv0));
    PyStatus st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        srv_die_usage("cannot start Python: %s", st.err_msg ? st.err_msg : "unknown error");
}

static void heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    if (my_slot)
        my_slot->beat = srv_monotonic();
}

SRV_EV_CALLBACK(on_heartbeat, ev_timer, heartbeat_cb)

/* A request finished: counts it, and starts a graceful stop once
 * --max-requests (plus this worker's jitter) is reached. */
static void request_done(void)
{
    requests_done++;
    if (my_slot)
        my_slot->requests = requests_done;
    if (retire_after && requests_done == retire_after) {
        srv_info("served %lu requests (--max-requests): retiring", requests_done);
        srv_loop_stop(1);
    }
}

/* Everything up to and including the app's import: the interpreter, the
 * mode and the hub.  Exits SRV_EXIT_USAGE when the app cannot be loaded. */
static struct ev_loop *load_app(const char *argv0, int *gevent_out)
{
    /* Handed over (handover.h), the interpreter that runs srv is started
     * already, and srv's modules come from a finder (pymod.c). */
    int hosted = Py_IsInitialized();
    if (srv_pymod_register() < 0)
        srv_die_usage("cannot register the srv module");
    if (!hosted)
        start_python(argv0);

    /* The app's directory (the working directory) and --pythonpath. */
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd))
        add_sys_path(cwd, 1);
    for (int i = srv_cfg.npythonpath - 1; i >= 0; i--)
        add_sys_path(srv_cfg.pythonpath[i], 1);

    int gevent = srv_cfg.mode == SRV_MODE_GEVENT
        || (srv_cfg.mode == SRV_MODE_AUTO && srv_gevent_importable());
    if (srv_cfg.mode == SRV_MODE_GEVENT && !srv_gevent_importable())
        srv_die_usage("--mode gevent: gevent cannot be imported; install it (pip install gevent, or "
                      "apt-get install python3-gevent), or use --mode native");
    struct ev_loop *loop = gevent ? srv_gevent_setup(srv_cfg.monkey_patch)
                                  : ev_default_loop(EVFLAG_AUTO);
    if (loop == NULL)
        srv_die_usage("cannot initialise libev");
    /* Whoever runs the loop holds the GIL; it is released only while libev
     * polls (gloop.c does the same for gevent's hub), so a nested ev_run
     * (asyncio at import time, aio.c) needs no special case. */
    if (!gevent)
        ev_set_loop_release_cb(loop, loop_release, loop_acquire);
    if (srv_hub_init(loop) < 0) {
        PyErr_Print();
        srv_die_usage("cannot import greenlet (pip install greenlet, or apt-get install python3-greenlet)");
    }
    srv_http_init();
    if (srv_pymod_import() < 0 || srv_wsgi_init() < 0) {
        PyErr_Print();
        srv_die_usage("cannot initialise the WSGI gateway");
    }
    srv_wsgi_on_request_done = request_done;
    srv_wsgi_load_app();
    *gevent_out = gevent;
    return loop;
}

void srv_worker_check(const char *argv0)
{
    int gevent;
    sigset_t all;   /* main() blocked the master's signals */
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    load_app(argv0, &gevent);
    printf("srv: configuration OK: %s loads in %s mode%s%s\n", srv_cfg.app,
           gevent ? "gevent" : "native", srv_cfg.config_file ? "; file " : "",
           srv_cfg.config_file ? srv_cfg.config_file : "");
    fflush(stdout);
    /* The app's import may have started threads or a hub: no finalization,
     * just what Python buffered. */
    PyRun_SimpleString("import sys\nfor f in (sys.stdout, sys.stderr):\n"
                       "    f and f.flush()\n");
    fflush(NULL);
    _exit(0);
}

/* What the app's import made lives as long as the worker: collect the
 * import's garbage, then gc.freeze() the rest, so that the cyclic GC no
 * longer walks it at every older-generation collection (Python's docs
 * advise it for pre-fork servers; gevent mode gains most, with gevent's
 * and the patched stdlib's objects: Flask hello world 332,030 -> 323,296
 * instructions per request, native mode 321,786).  --no-gc-freeze leaves
 * the collector alone. */
static void freeze_startup_objects(void)
{
    if (!srv_cfg.gc_freeze)
        return;
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *r = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(r);
    r = r ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    if (r == NULL)
        srv_log_pyerr("cannot gc.freeze() the app's start-up objects");
    Py_XDECREF(r);
    Py_XDECREF(gc);
}

int srv_worker_run(const char *argv0, srv_slot *slot)
{
    my_slot = slot;
    if (Py_IsInitialized())
        PyOS_AfterFork_Child();   /* forked inside the interpreter (handover.h) */
    int gevent;
    srv_fault_init();
    struct ev_loop *loop = load_app(argv0, &gevent);

    if (srv_cfg.max_requests > 0) {
        unsigned long jitter = srv_cfg.max_requests_jitter > 0
            ? (unsigned long)(getpid() * 2654435761u) % (unsigned long)(srv_cfg.max_requests_jitter + 1)
            : 0;
        retire_after = (unsigned long)srv_cfg.max_requests + jitter;
    }
    if (srv_access_log_open() < 0)
        return SRV_EXIT_USAGE;
    srv_loop_more_work = srv_aio_pending_tasks;
    if (srv_listeners_attach(srv_environ_template) < 0) {
        PyErr_Print();
        srv_die_usage("cannot prepare the environ");
    }
    freeze_startup_objects();

    if (gevent)
        srv_info("srv %s: serving %s in gevent mode: gevent's hub runs srv's loop "
                 "(_srv_gevent.loop on the system libev %d.%d, ev_default_loop); stdlib %s",
                 SRV_VERSION, srv_cfg.app, ev_version_major(), ev_version_minor(),
                 srv_cfg.monkey_patch ? "monkey-patched" : "NOT patched (--no-monkey-patch)");
    else
        srv_info("srv %s: serving %s in native mode (libev %d.%d): blocking calls such as "
                 "time.sleep, plain sockets or database drivers (psycopg2, redis, "
                 "PyMySQL) block the whole worker; use srv.sleep, or gevent mode",
                 SRV_VERSION, srv_cfg.app, ev_version_major(), ev_version_minor());
    if (srv_cfg.reuse_port && srv_listeners_reuse_port() < 0)
        return 1;
    srv_loop_start();
    ev_timer_init(&heartbeat, on_heartbeat, 0., HEARTBEAT_INTERVAL);
    ev_timer_start(loop, &heartbeat);
    ev_unref(loop);
    if (my_slot) {
        my_slot->beat = srv_monotonic();
        my_slot->ready = 1;
    }
    if (gevent) {
        srv_gevent_run();
    } else {
        ev_run(loop, 0);
    }
    ev_ref(loop);
    ev_timer_stop(loop, &heartbeat);
    srv_listeners_close();
    if (gevent)
        srv_gevent_detach();

    srv_hub_shutdown();
    srv_aio_shutdown();
    if (srv_access_log_enabled)
        srv_access_log_flush();
    srv_wsgi_fini();
    srv_info("worker stopped");
    return Py_FinalizeEx() < 0 ? 1 : 0;
}
