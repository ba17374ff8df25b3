/*
 * loop.c - listening sockets, accepting, and the loop's life cycle.
 *
 * Addresses are parsed and bound before the app is imported, so a port in
 * use is reported at once with exit status 2.  The accept callback takes up
 * to ACCEPT_BATCH connections per wakeup with accept4(), non-blocking and
 * close-on-exec.  When the process runs out of descriptors the listeners are
 * paused for a moment instead of spinning on a readable socket that cannot
 * be accepted.
 *
 * SIGTERM and SIGINT stop gracefully: the listeners close, idle connections
 * are closed, and the loop ends when in-flight requests are done or
 * --graceful-timeout has passed.  SIGQUIT ends the loop at once.  Who runs
 * the loop (srv itself, or gevent's hub) is main.c's business: stopping is
 * ev_break() either way.
 */
#include "srv/loop.h"
#include "srv/config.h"
#include "srv/conn.h"
#include "srv/sched.h"
#include "srv/log.h"
#include "srv/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define STOP_IDLE_GRACE 1.0   /* seconds a keep-alive connection may idle while stopping */

static srv_listener *listeners;
static int nlisteners;
static ev_timer pause_timer;
static ev_timer stop_timer;
static ev_timer drain_check;
static ev_signal sig_term, sig_int, sig_quit;
static int stopping;
static int full;               /* paused at --max-connections */
int srv_listeners_own_paths = 1;
static volatile sig_atomic_t early_signal;   /* a stop signal before the loop ran */

static void note_early_signal(int signum)
{
    early_signal = signum;
}

void srv_loop_catch_early_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_early_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents);
static void listeners_start(void);
static void listeners_stop(void);

/* Splits "HOST:PORT", ":PORT", "[V6]:PORT".  Returns 0 or -1. */
static int split_host_port(const char *addr, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':')
            return -1;
        if ((size_t)(end - addr - 1) >= hsize)
            return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return -1;
        if ((size_t)(colon - addr) >= hsize)
            return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        if (strchr(host, ':'))
            return -1;   /* a bare IPv6 address needs brackets */
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) >= psize)
        return -1;
    char *end;
    long n = strtol(p, &end, 10);
    if (*end != '\0' || n < 0 || n > 65535)
        return -1;
    snprintf(port, psize, "%ld", n);
    return 0;
}

static srv_listener *add_listener(void)
{
    srv_listener *p = realloc(listeners, sizeof *p * (size_t)(nlisteners + 1));
    if (p == NULL)
        srv_die_usage("out of memory");
    listeners = p;
    srv_listener *l = &listeners[nlisteners++];
    memset(l, 0, sizeof *l);
    l->fd = -1;
    return l;
}

/* The local address of a bound socket: its host (or unix path) and port
 * (0 for unix sockets), and its family. */
static int sock_address(int fd, char *host, size_t hsize, int *port, int *family)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    *family = ss.ss_family;
    *port = 0;
    if (ss.ss_family == AF_UNIX) {
        snprintf(host, hsize, "%s", ((struct sockaddr_un *)&ss)->sun_path);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, (socklen_t)hsize);
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, (socklen_t)hsize);
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

/* "http://127.0.0.1:8000", "http://[::1]:8000" or "unix:/path", for logs. */
static char *describe(int fd, int *family)
{
    char host[sizeof(struct sockaddr_storage)] = "?";
    int port = 0;
    sock_address(fd, host, sizeof host, &port, family);
    size_t size = strlen(host) + 32;
    char *name = malloc(size);
    if (*family == AF_UNIX)
        snprintf(name, size, "unix:%s", host);
    else
        snprintf(name, size, *family == AF_INET6 ? "http://[%s]:%d" : "http://%s:%d", host, port);
    return name;
}

/* The socket helpers below return -1 with a one-line reason in err (the
 * address first), and close what they opened; the caller decides. */
#define SOCK_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

/* Binds a unix socket and listens. */
static int open_unix(const char *addr, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = -1;
    if (strlen(path) == 0 || strlen(path) >= sizeof sun.sun_path)
        SOCK_FAIL("%s: bad unix socket path", addr);
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        SOCK_FAIL("%s: %s", addr, strerror(errno));
    /* Replace a stale socket file, but never a live socket or another file. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            SOCK_FAIL("%s: %s exists and is not a socket", addr, path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
        if (probe >= 0)
            close(probe);
        if (live)
            SOCK_FAIL("%s: address already in use", addr);
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        SOCK_FAIL("%s: %s", addr, strerror(errno));
    if (listen(fd, srv_cfg.backlog) < 0)
        SOCK_FAIL("%s: %s", addr, strerror(errno));
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Options of a TCP listener, set before listen().
 *
 * Responses go out whole, in one write: no Nagle delay.  Linux gives an
 * accepted socket the listener's TCP_NODELAY as its SYN arrives, so no
 * setsockopt is needed per connection.
 *
 * TCP_DEFER_ACCEPT (--defer-accept, as nginx's "deferred" and Apache's
 * default on Linux): the kernel keeps a new connection until its first bytes
 * arrive, so accept() returns it with the request already readable, and the
 * connection layer reads it at once (srv_conn_accepted) instead of asking
 * epoll first.  A connection served in that pass never enters the epoll set:
 * with a connection per request that saves an epoll_ctl, an epoll_wait and
 * their kernel bookkeeping each time.  A client that connects and says
 * nothing is handed over after about --defer-accept seconds anyway, and the
 * header timeout runs from then.  The metrics listener (srv_listen_address)
 * gets both too; its scrapers also speak first. */
static void tune_tcp_listener(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (srv_cfg.defer_accept > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &srv_cfg.defer_accept,
                   sizeof srv_cfg.defer_accept);
}

/* Does accept() on fd wait for the first bytes?  (Also true of a socket
 * systemd made with DeferAcceptSec=.) */
static int defers_accept(int fd)
{
    int secs = 0;
    socklen_t len = sizeof secs;
    return getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, &len) == 0 && secs > 0;
}

/* Binds a TCP socket, and listens unless `reuse_port` (then the master only
 * holds the port: each worker listens on a socket of its own, see
 * srv_listeners_reuse_port). */
static int open_tcp(const char *addr, int reuse_port, char *err, size_t errlen)
{
    char host[256], port[16];
    struct addrinfo *res = NULL;
    int fd = -1;
    if (split_host_port(addr, host, sizeof host, port, sizeof port) < 0)
        SOCK_FAIL("%s: expected HOST:PORT, :PORT, [IPV6]:PORT or unix:PATH", addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int rc = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
    if (rc != 0) {
        res = NULL;
        SOCK_FAIL("%s: %s", addr, gai_strerror(rc));
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        SOCK_FAIL("%s: %s", addr, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    tune_tcp_listener(fd);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        SOCK_FAIL("%s: %s", addr, errno == EADDRINUSE ? "address already in use" : strerror(errno));
    if (!reuse_port && listen(fd, srv_cfg.backlog) < 0)
        SOCK_FAIL("%s: %s", addr, strerror(errno));
    freeaddrinfo(res);
    return fd;
fail:
    if (res)
        freeaddrinfo(res);
    if (fd >= 0)
        close(fd);
    return -1;
}

#undef SOCK_FAIL

/* Binds ADDR (any form --bind takes); -1 with the reason in err. */
static int open_address(const char *addr, int reuse_port, char *err, size_t errlen)
{
    if (strncmp(addr, "unix:", 5) == 0)
        return open_unix(addr, addr + 5, err, errlen);
    return open_tcp(addr, reuse_port, err, errlen);
}

/* At start-up a socket that cannot be bound is a usage error. */
static void bind_listener(const char *addr)
{
    char err[512];
    int unix_socket = strncmp(addr, "unix:", 5) == 0;
    int fd = open_address(addr, !unix_socket && srv_cfg.reuse_port, err, sizeof err);
    if (fd < 0)
        srv_die_usage("--bind %s", err);
    srv_listener *l = add_listener();
    l->fd = fd;
    l->unix_path = unix_socket ? strdup(addr + 5) : NULL;
    l->reuse_port = !unix_socket && srv_cfg.reuse_port;
    l->name = describe(l->fd, &l->family);   /* the real port, e.g. for port 0 */
    l->defers_accept = !unix_socket && defers_accept(fd);
}

int srv_listen_address(const char *flag, const char *addr, char **name)
{
    char err[512];
    int fd = open_address(addr, 0, err, sizeof err);
    if (fd < 0)
        srv_die_usage("%s %s", flag, err);
    int family;
    *name = describe(fd, &family);
    return fd;
}

/* systemd socket activation (sd_listen_fds semantics): LISTEN_PID names
 * us and LISTEN_FDS counts sockets passed from fd 3 up.  Returns how many
 * were taken. */
static int take_systemd_sockets(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (pid == NULL || fds == NULL)
        return 0;
    char *end;
    long p = strtol(pid, &end, 10);
    if (*end != '\0' || p != (long)getpid())
        return 0;
    long n = strtol(fds, &end, 10);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (*end != '\0' || n <= 0 || n > 1024)
        return 0;
    for (int fd = 3; fd < 3 + n; fd++) {
        int accepting = 0;
        socklen_t len = sizeof accepting;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0 || !accepting)
            srv_die_usage("LISTEN_FDS: fd %d is not a listening socket", fd);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        srv_listener *l = add_listener();
        l->fd = fd;
        l->name = describe(fd, &l->family);
        if (l->family != AF_UNIX) {
            tune_tcp_listener(fd);   /* connections already queued miss it */
            l->defers_accept = defers_accept(fd);
        }
    }
    return (int)n;
}

void srv_listen_all(void)
{
    int inherited = take_systemd_sockets();
    for (int i = 0; i < srv_cfg.nbinds; i++) {
        const char *addr = srv_cfg.binds[i];
        bind_listener(addr);
    }
    if (srv_cfg.nbinds == 0 && inherited == 0)
        bind_listener("127.0.0.1:8000");
}

int srv_listeners_reuse_port(void)
{
    for (int i = 0; i < nlisteners; i++) {
        srv_listener *l = &listeners[i];
        if (l->family == AF_UNIX || !l->reuse_port)
            continue;
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
            return -1;
        int fd = socket(l->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0)
            return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (l->family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        tune_tcp_listener(fd);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, srv_cfg.backlog) < 0) {
            srv_error("--reuse-port: %s: %s", l->name, strerror(errno));
            close(fd);
            return -1;
        }
        close(l->fd);
        l->fd = fd;
        l->defers_accept = defers_accept(fd);
    }
    return 0;
}

int srv_listeners_attach(srv_listener_data_fn make)
{
    for (int i = 0; i < nlisteners; i++) {
        srv_listener *l = &listeners[i];
        char host[INET6_ADDRSTRLEN] = "localhost", port[16] = "";
        if (l->family != AF_UNIX) {
            int p, family;
            sock_address(l->fd, host, sizeof host, &p, &family);
            snprintf(port, sizeof port, "%d", p);
        }
        l->environ_template = make(l, host, port);
        if (l->environ_template == NULL)
            return -1;
    }
    return 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    srv_listener *l = w->data;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                srv_warn("accept: %s; pausing accepts for 0.1 s", strerror(errno));
                srv_listeners_pause(0.1);
            }
            return;
        }
        if (l->family == AF_UNIX)
            peer.ss_family = AF_UNIX;
        srv_my_metrics->connections_accepted++;
        srv_conn_accepted(l, fd, (struct sockaddr *)&peer, len);
        if (srv_conn_count() >= srv_cfg.max_connections) {
            /* Full: the rest wait in the backlog until a connection closes. */
            full = 1;
            listeners_stop();
            return;
        }
    }
}

SRV_EV_CALLBACK(on_accept, ev_io, accept_cb)

static void listeners_start(void)
{
    for (int i = 0; i < nlisteners; i++)
        if (listeners[i].fd >= 0)
            ev_io_start(srv_loop, &listeners[i].io);
}

static void listeners_stop(void)
{
    for (int i = 0; i < nlisteners; i++)
        ev_io_stop(srv_loop, &listeners[i].io);
}

static void pause_end_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    if (!stopping && !full)
        listeners_start();
}

/* A connection closed: accepting resumes if --max-connections paused it. */
static void conn_closed(void)
{
    if (full && srv_conn_count() < srv_cfg.max_connections) {
        full = 0;
        if (!stopping && !ev_is_active(&pause_timer))
            listeners_start();
    }
}

SRV_EV_CALLBACK(on_pause_end, ev_timer, pause_end_cb)

void srv_listeners_pause(double seconds)
{
    listeners_stop();
    ev_timer_stop(srv_loop, &pause_timer);
    ev_timer_set(&pause_timer, seconds, 0.);
    ev_timer_start(srv_loop, &pause_timer);
}

void srv_listeners_announce(void)
{
    for (int i = 0; i < nlisteners; i++)
        srv_info("listening on %s", listeners[i].name);
}

void srv_listeners_close(void)
{
    for (int i = 0; i < nlisteners; i++) {
        srv_listener *l = &listeners[i];
        ev_io_stop(srv_loop, &l->io);
        if (l->fd >= 0)
            close(l->fd);
        l->fd = -1;
        if (l->unix_path && srv_listeners_own_paths) {
            unlink(l->unix_path);
            free(l->unix_path);
            l->unix_path = NULL;
        }
    }
}

/* While stopping gracefully, a keep-alive connection is not cut while its
 * client may be sending the next request: that request is served with
 * "Connection: close" instead.  Only connections that stayed idle for a
 * while are closed here. */
static void drain_check_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    if (srv_conn_close_idle(STOP_IDLE_GRACE) == 0
        && (srv_loop_more_work == NULL || srv_loop_more_work() == 0))
        ev_break(loop, EVBREAK_ALL);
}

int (*srv_loop_more_work)(void);

int srv_loop_stopping(void)
{
    return stopping;
}

SRV_EV_CALLBACK(on_drain_check, ev_timer, drain_check_cb)

static void stop_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    srv_warn("graceful timeout: %d connection(s) still busy; stopping", srv_conn_count());
    ev_break(loop, EVBREAK_ALL);
}

SRV_EV_CALLBACK(on_stop_timeout, ev_timer, stop_timeout_cb)

void srv_loop_stop(int graceful)
{
    if (!graceful) {
        ev_break(srv_loop, EVBREAK_ALL);
        return;
    }
    if (stopping)
        return;
    stopping = 1;
    srv_listeners_close();
    ev_timer_stop(srv_loop, &pause_timer);
    ev_timer_init(&stop_timer, on_stop_timeout, srv_cfg.graceful_timeout, 0.);
    ev_timer_start(srv_loop, &stop_timer);
    ev_timer_init(&drain_check, on_drain_check, 0., 0.05);
    ev_timer_start(srv_loop, &drain_check);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    if (w->signum == SIGQUIT) {
        srv_info("SIGQUIT: stopping now");
        srv_loop_stop(0);
    } else {
        srv_info("%s: stopping gracefully", w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
        srv_loop_stop(1);
    }
}

SRV_EV_CALLBACK(on_signal, ev_signal, signal_cb)

void srv_loop_start(void)
{
    for (int i = 0; i < nlisteners; i++) {
        srv_listener *l = &listeners[i];
        ev_io_init(&l->io, on_accept, l->fd, EV_READ);
        l->io.data = l;
    }
    ev_init(&pause_timer, on_pause_end);
    srv_conn_on_closed = conn_closed;
    ev_signal_init(&sig_term, on_signal, SIGTERM);
    ev_signal_init(&sig_int, on_signal, SIGINT);
    ev_signal_init(&sig_quit, on_signal, SIGQUIT);
    ev_signal_start(srv_loop, &sig_term);
    ev_signal_start(srv_loop, &sig_int);
    ev_signal_start(srv_loop, &sig_quit);
    ev_unref(srv_loop);
    ev_unref(srv_loop);
    ev_unref(srv_loop);
    listeners_start();
    if (early_signal) {
        srv_info("stop signal received during start-up: stopping");
        srv_loop_stop(1);   /* nothing is in flight yet */
    }
}
