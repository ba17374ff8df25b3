/*
 * ws_handshake.c - the WebSocket handshake (RFC 6455 4.2).
 *
 * A request whose head asks for "Upgrade: websocket" is checked by
 * srv_ws_offer() before the app runs: a bad version gets 426, a bad key 400,
 * and a good one puts a WebSocket object in environ["wsgi.websocket"].  The
 * 101 goes out at the app's first receive(), send() or close() (or when it
 * returns without answering), so an app can still refuse with a normal
 * response, as it could with uWSGI's explicit handshake.
 */
#include "ws_private.h"
#include "srv/config.h"
#include "srv/log.h"
#include "srv/metrics.h"
#include "srv/wsgi.h"
#include "srv/ws_frame.h"
#include "srv/conn.h"
#include "srv/http.h"
#include "srv/hub.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- the handshake ------------------------------------------------------ */

static const char *environ_str(PyObject *environ, const char *key, Py_ssize_t *len)
{
    PyObject *v = PyDict_GetItemString(environ, key);   /* borrowed */
    if (v == NULL || !PyUnicode_Check(v))
        return NULL;
    return PyUnicode_AsUTF8AndSize(v, len);
}

/* Does the comma-separated list contain `token` (case-insensitively)? */
static int has_token(const char *list, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < n && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(list + start, token, tl) == 0)
            return 1;
    }
    return 0;
}

/* Answers a handshake srv refuses, without calling the app. */
static int refuse_handshake(srv_conn *c, int status, const char *why)
{
    srv_debug("fd %d: WebSocket handshake refused with %d: %s", c->fd, status, why);
    srv_response_refuse(c, status, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, why);
    return -1;
}

/* gevent-websocket's subprotocol choice: app.app_protocol(path), if the
 * client asked for it. */
static int choose_protocol(WebSocketObject *ws, PyObject *app, PyObject *environ)
{
    Py_ssize_t rlen;
    const char *requested = environ_str(environ, "HTTP_SEC_WEBSOCKET_PROTOCOL", &rlen);
    if (requested == NULL || app == NULL || !PyObject_HasAttrString(app, "app_protocol"))
        return 0;
    PyObject *path = PyDict_GetItemString(environ, "PATH_INFO");   /* borrowed */
    PyObject *p = PyObject_CallMethod(app, "app_protocol", "O", path ? path : Py_None);
    if (p == NULL)
        return -1;
    Py_ssize_t plen;
    const char *name = PyUnicode_Check(p) ? PyUnicode_AsUTF8AndSize(p, &plen) : NULL;
    if (name && plen > 0 && has_token(requested, (size_t)rlen, name))
        ws->protocol = p;   /* owned */
    else
        Py_DECREF(p);
    PyErr_Clear();
    return 0;
}

static int ws_open(WebSocketObject *ws);

int srv_ws_offer(srv_conn *c, PyObject *environ, PyObject *app)
{
    ws_rebase_error();   /* the app may have imported gevent-websocket */
    Py_ssize_t n;
    const char *s = environ_str(environ, "REQUEST_METHOD", &n);
    if (s == NULL || strcmp(s, "GET") != 0 || c->req.has_body)
        return 0;
    s = environ_str(environ, "HTTP_UPGRADE", &n);
    if (s == NULL || !has_token(s, (size_t)n, "websocket"))
        return 0;
    if (c->req.http_minor == 0)
        return refuse_handshake(c, 400, "WebSocket needs HTTP/1.1");
    s = environ_str(environ, "HTTP_SEC_WEBSOCKET_VERSION", &n);
    if (s == NULL || strcmp(s, "13") != 0)
        return refuse_handshake(c, 426, "unsupported WebSocket version: this server speaks 13");
    const char *key = environ_str(environ, "HTTP_SEC_WEBSOCKET_KEY", &n);
    if (key == NULL || !srv_ws_key_valid(key, (size_t)n))
        return refuse_handshake(c, 400, "missing or invalid Sec-WebSocket-Key");

    WebSocketObject *ws = PyObject_New(WebSocketObject, &WebSocketType);
    if (ws == NULL)
        return -2;
    memset((char *)ws + sizeof(PyObject), 0, sizeof *ws - sizeof(PyObject));
    ws_kick_init(ws);
    ws->open = ws_open;
    srv_ws_accept(key, ws->accept);
    ws->conn = c;
    ws->environ = environ;
    Py_INCREF(environ);
    if (choose_protocol(ws, app, environ) < 0
        || PyDict_SetItemString(environ, "wsgi.websocket", (PyObject *)ws) < 0
        || PyDict_SetItemString(environ, "wsgi.websocket_version", PyDict_GetItemString(environ, "HTTP_SEC_WEBSOCKET_VERSION")) < 0) {
        ws->conn = NULL;
        Py_CLEAR(ws->environ);
        Py_DECREF(ws);
        return -2;
    }
    /* The connection's reference, dropped by ws_detach(); the loop's side
     * runs once the 101 is out. */
    srv_conn_set_handler(c, &ws_handler, ws);
    return 1;
}

/* Appends the app's headers from start_response("101 ...") to the 101,
 * except those srv writes itself. */
static int append_app_headers(WebSocketObject *ws, const srv_buf *head)
{
    const char *p = memchr(head->data, '\n', head->len);
    const char *end = head->data + head->len;
    if (p == NULL)
        return 0;
    for (p++; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
        int skip = strncasecmp(p, "upgrade:", 8) == 0 || strncasecmp(p, "sec-websocket-accept:", 21) == 0
            || (ws->protocol && strncasecmp(p, "sec-websocket-protocol:", 23) == 0);
        if (!skip && ws_out_append(ws, p, n) < 0)
            return -1;
        p += n;
    }
    return 0;
}

/* Writes the 101's head into the output, piece after piece (each append
 * in its own statement: the order of the operands of | is unspecified).
 * Returns 0, or -1 when out of memory. */
static int append_101_head(WebSocketObject *ws, const srv_response *r)
{
    int has_date, has_server;
    const srv_buf *app_head = srv_response_app_head(r, &has_date, &has_server);
    static const char start[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
    if (ws_out_append(ws, start, sizeof start - 1) < 0 || ws_out_append(ws, ws->accept, 28) < 0
        || ws_out_append(ws, "\r\n", 2) < 0)
        return -1;
    Py_ssize_t n;
    const char *name = ws->protocol ? PyUnicode_AsUTF8AndSize(ws->protocol, &n) : NULL;
    if (name != NULL) {
        if (ws_out_append(ws, "Sec-WebSocket-Protocol: ", 24) < 0
            || ws_out_append(ws, name, (size_t)n) < 0 || ws_out_append(ws, "\r\n", 2) < 0)
            return -1;
    } else {
        PyErr_Clear();   /* no subprotocol, or one UTF-8 cannot carry */
    }
    if (app_head && append_app_headers(ws, app_head) < 0)
        return -1;
    if (srv_cfg.server_header && !has_server && ws_out_append(ws, "Server: srv\r\n", 13) < 0)
        return -1;
    if (!has_date) {
        size_t dlen;
        const char *date = srv_http_date_header(ev_now(srv_loop), &dlen);
        if (ws_out_append(ws, date, dlen) < 0)
            return -1;
    }
    return ws_out_append(ws, "\r\n", 2);
}

/* Sends the 101 and hands the socket's I/O to the loop.  Returns 0, or -1
 * with WebSocketError set when the app answered with a normal response. */
static int ws_open(WebSocketObject *ws)
{
    srv_conn *c = ws->conn;
    if (ws->opened)
        return 0;
    srv_response *r = c ? srv_conn_response(c) : NULL;
    if (c == NULL || ws->refused || (srv_response_started(r) && srv_response_status(r) != 101)
        || srv_response_head_sent(r)) {
        ws->refused = 1;
        ws_rebase_error();
        PyErr_SetString(WebSocketError,
                        "the app answered the upgrade request with a normal HTTP response");
        return -1;
    }
    if (append_101_head(ws, r) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    ws->opened = 1;
    srv_my_metrics->ws_connections++;
    srv_response_upgraded(r);
    if (ws_flush_out(ws) < 0)
        return 0;   /* receive() and send() will say it is closed */
    srv_conn_upgrade(c);
    return 0;
}

int srv_ws_end(srv_conn *c, int failed)
{
    WebSocketObject *ws = (WebSocketObject *)c->handler_data;
    int took = ws->opened;
    /* A greenlet being killed does not wait for the client. */
    int exiting = srv_hub_exiting();
    /* The app's exception waits while this greenlet does (and a greenlet
     * must not switch with one pending). */
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    srv_response *r = srv_conn_response(c);
    if (!took && !ws->refused && !srv_response_head_sent(r) && !failed
        && (!srv_response_started(r) || srv_response_status(r) == 101)) {
        /* gevent-websocket opens before calling the app: an app that
         * returned without a word gets an open-then-closed socket. */
        if (ws_open(ws) < 0)
            PyErr_Clear();
        else
            took = 1;
    }
    int rc = took;
    if (took) {
        Py_INCREF(ws);
        if (ws->close_pending)
            ws_reply_to_close(ws);
        else if (ws->conn && !ws->failed)
            ws_send_close(ws, failed ? 1011 : 1000, "", 0);
        if (!exiting && ws_wait_for_output(ws, 1) < 0) {
            if (srv_hub_exiting())
                rc = -1;   /* the greenlet is being killed: the caller cleans up */
            else
                PyErr_Clear();
            c->broken = 1;
        }
        /* Our close is out but theirs is not in: read until they close. */
        srv_conn_end_upgrade(c, !ws->close_received && !ws->failed && !c->peer_closed && !exiting);
        Py_DECREF(ws);
    }
    srv_response_set_close(srv_conn_response(c));
    ws_detach(c);
    if (rc >= 0) {
        PyErr_Restore(exc_type, exc_value, exc_tb);
    } else {
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
    }
    return rc;
}
