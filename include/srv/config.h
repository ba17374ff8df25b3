/*
 * config.h - command-line configuration.
 *
 * Owns every knob a user can turn: the flags, their defaults, their parsing
 * and validation, and the --help text.  The rest of srv reads the one global
 * `srv_cfg` and never looks at argv.  A bad flag ends the process with a
 * one-line error and exit status 2, before anything else starts.
 */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SRV_EXIT_USAGE 2

enum srv_mode { SRV_MODE_AUTO, SRV_MODE_GEVENT, SRV_MODE_NATIVE };

typedef struct srv_config {
    const char *app;             /* "module:callable" or "module:factory()" */
    const char **binds;          /* listen addresses, as given */
    int nbinds;
    const char *chdir;
    const char **pythonpath;
    int npythonpath;
    const char *virtualenv;      /* --virtualenv DIR, or NULL */
    int backlog;
    int server_header;           /* send "Server: srv" */
    uint64_t max_body;           /* 413 above this */
    uint64_t ws_max_message;     /* WebSocket close 1009 above this */
    size_t max_header_size;      /* 431 above this */
    size_t max_uri;              /* 414 above this */
    int max_headers;             /* 431 above this many */
    double keepalive_timeout;    /* idle keep-alive connection */
    double header_timeout;       /* a request head must arrive within this */
    double io_timeout;           /* body read / response write idle limit */
    double graceful_timeout;     /* SIGTERM: in-flight requests get this long */
    double request_timeout;      /* 0: off; else RequestTimeout in the app */
    int log_level;
    int workers;                 /* worker processes */
    double worker_timeout;       /* heartbeat limit; 0: off */
    long max_requests;           /* retire a worker after this many; 0: never */
    long max_requests_jitter;
    const char *pidfile;
    int max_connections;         /* per worker */
    int umask;                   /* -1: leave the process umask */
    int reuse_port;
    const char *error_log;       /* NULL or "-": stderr */
    const char *access_log;      /* NULL: off; "-": stdout */
    const char *access_log_format;
    const char *forwarded_allow_ips;
    int proxy_protocol;
    int mode;                    /* enum srv_mode */
    int monkey_patch;            /* gevent mode: patch_all() first */
    const char *metrics_bind;    /* NULL: no Prometheus endpoint */
} srv_config;

extern srv_config srv_cfg;

/* Fills srv_cfg from argv.  Prints --help/--version and exits 0, or prints a
 * one-line error and exits SRV_EXIT_USAGE. */
void srv_config_parse(int argc, char **argv);

/* Prints "srv: error: ..." on stderr and exits SRV_EXIT_USAGE. */
void srv_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
