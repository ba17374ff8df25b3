/*
 * config.h - configuration: the command line and the --config file.
 *
 * Owns every knob a user can turn: the flags, their defaults, their parsing
 * and validation, the --help text, and how a config file's `name = value`
 * lines (conffile.h) map onto the same settings.  The rest of srv reads the
 * one global `srv_cfg` and never looks at argv.  A bad flag or file ends the
 * process with a one-line error and exit status 2, before anything else
 * starts; a re-read at SIGHUP (srv_config_load) only reports the error.
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
    int defer_accept;           /* seconds of TCP_DEFER_ACCEPT; 0: off */
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
    int gc_freeze;               /* gc.freeze() once the app is loaded */
    int embedded_python;         /* --embedded-python: no hand-over (handover.h) */
    const char *metrics_bind;    /* NULL: no Prometheus endpoint */
    const char *config_file;     /* absolute path, or NULL: no file */
    int check_config;            /* --check-config: validate, import, exit */
    char **owned;                /* strings this config owns (file values) */
    int nowned;
} srv_config;

extern srv_config srv_cfg;

/* Fills srv_cfg from argv.  Prints --help/--version and exits 0, or prints a
 * one-line error and exits SRV_EXIT_USAGE. */
void srv_config_parse(int argc, char **argv);

#define SRV_CONFIG_HELP 1
#define SRV_CONFIG_VERSION 2

/* Fills *c from the defaults, then the config file, then argv (which wins).
 * The file is `file` if not NULL, else --config's or $SRV_CONFIG's.  Returns
 * 0; SRV_CONFIG_HELP or SRV_CONFIG_VERSION when asked for; or -1 with a
 * one-line message in err ("FILE:LINE: problem" for the file).  Exits
 * nothing; on anything but 0, *c holds nothing to free. */
int srv_config_load(srv_config *c, int argc, char **argv, const char *file,
                    char *err, size_t errlen);

/* A copy of s owned by c (freed with it), or NULL (s NULL, out of memory). */
const char *srv_config_keep(srv_config *c, const char *s);

/* Frees what c owns: its copies of file values and its lists. */
void srv_config_free(srv_config *c);

/* Prints "srv: error: ..." on stderr and exits SRV_EXIT_USAGE. */
void srv_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
