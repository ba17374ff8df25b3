/*
 * fuzz_request.c - libFuzzer harness over srv's whole request path.
 *
 * Each input is written, as a client would send it, into one end of a unix
 * socket pair whose other end is an srv connection; the loop then runs until
 * srv has answered and closed.  So the bytes go through the real read path,
 * llhttp, the limits, environ building, wsgi.input (the app reads the body
 * in lines and blocks), start_response and the response writer, in the same
 * greenlets as in production.  Only the listener is fake.  An input that
 * opens a WebSocket goes on into ws.c's frame reader: the app echoes every
 * message, and closes early on /wsclose.
 *
 * Build: make fuzz (clang, -fsanitize=fuzzer,address,undefined); the seed
 * corpus is tests/fuzz/corpus.
 */
#include <Python.h>
#include <errno.h>
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv/config.h"
#include "srv/environ.h"
#include "srv/conn.h"
#include "srv/http.h"
#include "srv/log.h"
#include "srv/hub.h"
#include "srv/loop.h"
#include "srv/pymod.h"
#include "srv/wsgi.h"

static const char app_src[] =
    "def app(environ, start_response):\n"
    "    ws = environ.get('wsgi.websocket')\n"
    "    if ws is not None:\n"
    "        if environ['PATH_INFO'] == '/wsreject':\n"
    "            start_response('403 Forbidden', [])\n"
    "            return [b'no']\n"
    "        while True:\n"
    "            m = ws.receive()\n"
    "            if m is None:\n"
    "                return []\n"
    "            try:\n"
    "                ws.send(m)\n"
    "            except OSError:\n"
    "                pass\n"
    "            if environ['PATH_INFO'] == '/wsclose':\n"
    "                ws.close(1000, 'bye')\n"
    "    inp = environ['wsgi.input']\n"
    "    n = 0\n"
    "    try:\n"
    "        for line in inp:\n"
    "            n += len(line)\n"
    "        n += len(inp.read(10)) + len(inp.read())\n"
    "    except (OSError, ValueError):\n"
    "        pass\n"
    "    keys = sorted(k for k in environ if k.startswith('HTTP_'))\n"
    "    body = ('%d %s %s\\n' % (n, environ['PATH_INFO'], ','.join(keys))).encode('latin-1')\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    if environ['PATH_INFO'].startswith('/stream'):\n"
    "        return iter([body, b'', body])\n"
    "    return [body]\n";

static srv_listener fake;
static struct ev_loop *loop;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    srv_cfg.max_body = 1 << 20;
    srv_cfg.ws_max_message = 1 << 16;
    srv_cfg.io_timeout = 1;
    srv_cfg.header_timeout = 1;
    srv_pymod_register();
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);

    loop = ev_default_loop(0);
    if (srv_hub_init(loop) < 0 || srv_pymod_import() < 0 || srv_wsgi_init() < 0) {
        PyErr_Print();
        abort();
    }
    srv_http_init();
    PyObject *globals = PyDict_New();
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    PyObject *r = PyRun_String(app_src, Py_file_input, globals, globals);
    if (r == NULL) {
        PyErr_Print();
        abort();
    }
    Py_DECREF(r);
    srv_wsgi_set_app(PyDict_GetItemString(globals, "app"));
    Py_DECREF(globals);

    fake.fd = -1;
    fake.family = AF_UNIX;
    fake.name = "fuzz";
    fake.environ_template = srv_environ_template(&fake, "localhost", "0");
    if (fake.environ_template == NULL)
        abort();
    srv_log_level = 99;   /* quiet: tracebacks of bad requests are expected */
    return 0;
}

static void drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 200000)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct sockaddr_storage peer;
    memset(&peer, 0, sizeof peer);
    peer.ss_family = AF_UNIX;
    if (srv_conn_accepted(&fake, sv[0], (struct sockaddr *)&peer, sizeof(sa_family_t)) == NULL)
        abort();

    size_t off = 0;
    int rounds = 0;
    while (srv_conn_count() > 0) {
        if (off < size) {
            ssize_t w = write(sv[1], data + off, size - off);
            if (w > 0)
                off += (size_t)w;
            if (off == size)
                shutdown(sv[1], SHUT_WR);
        } else if (size == 0 && rounds == 0) {
            shutdown(sv[1], SHUT_WR);
        }
        ev_run(loop, EVRUN_NOWAIT);
        drain(sv[1]);
        if (++rounds > 100000) {
            /* srv neither answered nor closed: a hang. */
            abort();
        }
    }
    close(sv[1]);
    return 0;
}
