/*
 * config.c - parsing and validating the command line and the config file.
 *
 * Flags follow gunicorn's names where gunicorn has one.  Both "--flag value"
 * and "--flag=value" work; the app may also be given as the one positional
 * argument.  Numbers are checked for range, so a typo is an error at start-up
 * rather than a surprise under load.
 *
 * One table (getopt's `options`) names every setting, and one function,
 * set_option(), applies a value to a srv_config: command-line flags reach it
 * through getopt, config file lines (conffile.c) by their name.  The order
 * is defaults, then the file, then the command line, which therefore wins;
 * a repeatable flag on the command line replaces the file's list.  Nothing
 * here exits except srv_config_parse(), so the master can re-read the file
 * at SIGHUP and keep its old settings when the file is bad.
 */
#include "srv/config.h"
#include "srv/conffile.h"
#include "srv/log.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULTS { \
    .backlog = 2048, \
    .defer_accept = 1, \
    .server_header = 1, \
    .max_body = (uint64_t)1 << 30, \
    .ws_max_message = (uint64_t)1 << 20, \
    .max_header_size = 65536, \
    .max_uri = 8192, \
    .max_headers = 100, \
    .keepalive_timeout = 5.0, \
    .header_timeout = 30.0, \
    .io_timeout = 60.0, \
    .graceful_timeout = 30.0, \
    .log_level = SRV_LOG_INFO, \
    .mode = SRV_MODE_AUTO, \
    .workers = 1, \
    .max_connections = 10000, \
    .umask = -1, \
    .forwarded_allow_ips = "127.0.0.1,::1", \
    .access_log_format = "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"", \
    .worker_timeout = 30.0, \
    .monkey_patch = 1, \
    .gc_freeze = 1, \
}

srv_config srv_cfg = DEFAULTS;
static const srv_config defaults = DEFAULTS;

static const char usage[] =
"Usage: srv --app MODULE:CALLABLE [options]\n"
"\n"
"Serve a WSGI application (PEP 3333) from one libev loop, each request in its\n"
"own greenlet.\n"
"\n"
"  --app MODULE:CALLABLE   the application; MODULE:factory() calls a factory\n"
"                          (may also be given as the only positional argument)\n"
"  -b, --bind ADDR         listen on ADDR; repeatable (default 127.0.0.1:8000)\n"
"                          HOST:PORT, :PORT (all interfaces), [::1]:PORT,\n"
"                          unix:/path/to/socket\n"
"  -w, --workers N         worker processes; 'auto' means one per CPU (default 1)\n"
"  --timeout SECONDS       kill a worker whose loop has not turned for this\n"
"                          long (heartbeat; default 30; 0 turns it off)\n"
"  --max-requests N        retire a worker after N requests (default 0: never)\n"
"  --max-requests-jitter N\n"
"                          add up to N to --max-requests, per worker\n"
"  --pid FILE              write the master's pid to FILE\n"
"  --chdir DIR             change to DIR before loading the app\n"
"  --pythonpath DIR        prepend DIR to sys.path; repeatable\n"
"  --virtualenv DIR        use the virtualenv DIR (default: the one srv is installed in,\n"
"                          else $VIRTUAL_ENV)\n"
"  --backlog N             listen(2) backlog (default 2048)\n"
"  --defer-accept SECONDS  a TCP connection reaches srv with its first bytes, or\n"
"                          after about SECONDS idle (TCP_DEFER_ACCEPT; default 1,\n"
"                          0: at once)\n"
"  --reuse-port            each worker listens on its own SO_REUSEPORT socket\n"
"                          (default: all workers share the master's sockets)\n"
"  --umask OCTAL           process umask, e.g. for unix socket files (default:\n"
"                          inherited)\n"
"  --max-connections N     per worker; above it the worker stops accepting until\n"
"                          a connection closes (default 10000)\n"
"  --forwarded-allow-ips LIST\n"
"                          peers trusted to set X-Forwarded-For/-Proto and\n"
"                          Forwarded: comma-separated IPs or '*' (default\n"
"                          127.0.0.1,::1; unix socket peers are always trusted)\n"
"  --proxy-protocol        expect a PROXY protocol v1/v2 header on every\n"
"                          connection (behind a TCP load balancer)\n"
"  --error-log FILE        where srv's log and wsgi.errors go; '-' is stderr\n"
"                          (default -)\n"
"  --access-log FILE       log each request to FILE ('-' is stdout); off by\n"
"                          default\n"
"  --access-log-format FMT\n"
"                          Apache-style: %h %l %u %t %r %s %>s %b %B %D %T %P\n"
"                          %m %U %q %H %R %{Header}i %% (default: combined,\n"
"                          '%h %l %u %t \"%r\" %>s %b \"%{Referer}i\"\n"
"                          \"%{User-Agent}i\"')\n"
"  --max-body BYTES        largest request body, else 413 (default 1073741824)\n"
"  --ws-max-message BYTES  largest WebSocket message, else close 1009\n"
"                          (default 1048576)\n"
"  --max-header-size BYTES\n"
"                          largest request head, else 431 (default 65536)\n"
"  --max-headers N         most request header fields, else 431 (default 100)\n"
"  --max-uri BYTES         longest request target, else 414 (default 8192)\n"
"  --keepalive SECONDS     idle keep-alive connection timeout (default 5)\n"
"  --header-timeout SECONDS\n"
"                          a request head must arrive within this (default 30)\n"
"  --io-timeout SECONDS    idle limit while reading a body or writing a\n"
"                          response (default 60)\n"
"  --graceful-timeout SECONDS\n"
"                          on SIGTERM, in-flight requests get this long\n"
"                          (default 30)\n"
"  --mode MODE             gevent: run on gevent's hub, sharing its libev loop;\n"
"                          native: srv's own loop, no gevent (default: gevent\n"
"                          when it can be imported, else native)\n"
"  --no-monkey-patch       in gevent mode, do not call gevent.monkey.patch_all()\n"
"  --no-gc-freeze          do not gc.freeze() what the app's import made\n"
"  --embedded-python       run in the libpython srv links, instead of handing the\n"
"                          process to the Python srv was built for (default: hand\n"
"                          it over when srv's _srv_host module is installed)\n"
"  --request-timeout SECONDS\n"
"                          raise srv.RequestTimeout in a request that runs\n"
"                          longer; the client gets a 504 (default 0: off)\n"
"  --metrics-bind ADDR     serve Prometheus metrics (GET /metrics) on ADDR, from\n"
"                          the master, never on the app's port; same forms as\n"
"                          --bind (default: off)\n"
"  --no-server-header      do not send \"Server: srv\"\n"
"  --log-level LEVEL       debug, info, warning or error (default info)\n"
"  --config FILE           read settings from FILE: 'name = value' lines, names\n"
"                          as the flags without dashes; flags given here win\n"
"                          (default: $SRV_CONFIG if set)\n"
"  --check-config          check the flags and the config file, import the app,\n"
"                          then exit 0 (or 2 with the error); binds nothing\n"
"  --version               print the version and exit\n"
"  -h, --help              print this help and exit\n";

void srv_die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("srv: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(SRV_EXIT_USAGE);
}

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int parse_int(const char *label, const char *s, long long lo, long long hi,
                     long long *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return FAIL("%s: expected an integer from %lld to %lld, got '%s'", label, lo, hi, s);
    *out = v;
    return 0;
}

static int parse_seconds(const char *label, const char *s, double *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 86400 * 365)
        return FAIL("%s: expected a number of seconds, got '%s'", label, s);
    *out = v;
    return 0;
}

static int parse_bool(const char *label, const char *s, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return FAIL("%s: expected true or false, got '%s'", label, s);
}

static int push(const char ***list, int *n, const char *value, char *err, size_t errlen)
{
    const char **p = realloc(*list, sizeof **list * (size_t)(*n + 1));
    if (p == NULL)
        return FAIL("out of memory");
    p[(*n)++] = value;
    *list = p;
    return 0;
}

const char *srv_config_keep(srv_config *c, const char *s)
{
    if (s == NULL)
        return NULL;
    char **owned = realloc(c->owned, sizeof *owned * (size_t)(c->nowned + 1));
    char *copy = strdup(s);
    if (owned == NULL || copy == NULL) {
        free(copy);
        if (owned)
            c->owned = owned;
        return NULL;
    }
    c->owned = owned;
    c->owned[c->nowned++] = copy;
    return copy;
}

void srv_config_free(srv_config *c)
{
    for (int i = 0; i < c->nowned; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->binds);
    free(c->pythonpath);
    c->owned = NULL;
    c->nowned = 0;
    c->binds = c->pythonpath = NULL;
    c->nbinds = c->npythonpath = 0;
}

enum {
    OPT_APP = 256, OPT_CHDIR, OPT_PYTHONPATH, OPT_BACKLOG, OPT_DEFER_ACCEPT, OPT_MAX_BODY, OPT_WS_MAX_MESSAGE,
    OPT_MAX_HEADER_SIZE, OPT_MAX_HEADERS, OPT_MAX_URI, OPT_KEEPALIVE,
    OPT_HEADER_TIMEOUT, OPT_IO_TIMEOUT, OPT_GRACEFUL_TIMEOUT,
    OPT_NO_SERVER_HEADER, OPT_LOG_LEVEL, OPT_VERSION, OPT_MODE, OPT_NO_MONKEY_PATCH, OPT_NO_GC_FREEZE,
    OPT_REQUEST_TIMEOUT, OPT_TIMEOUT, OPT_MAX_REQUESTS, OPT_MAX_REQUESTS_JITTER, OPT_PID,
    OPT_MAX_CONNECTIONS, OPT_UMASK, OPT_REUSE_PORT, OPT_ERROR_LOG, OPT_ACCESS_LOG,
    OPT_ACCESS_LOG_FORMAT, OPT_FORWARDED_ALLOW_IPS, OPT_PROXY_PROTOCOL, OPT_METRICS_BIND,
    OPT_CONFIG, OPT_CHECK_CONFIG, OPT_VIRTUALENV, OPT_EMBEDDED_PYTHON,
};

static const struct option options[] = {
    {"app", required_argument, NULL, OPT_APP},
    {"bind", required_argument, NULL, 'b'},
    {"chdir", required_argument, NULL, OPT_CHDIR},
    {"virtualenv", required_argument, NULL, OPT_VIRTUALENV},
    {"pythonpath", required_argument, NULL, OPT_PYTHONPATH},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
    {"defer-accept", required_argument, NULL, OPT_DEFER_ACCEPT},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"ws-max-message", required_argument, NULL, OPT_WS_MAX_MESSAGE},
    {"max-header-size", required_argument, NULL, OPT_MAX_HEADER_SIZE},
    {"max-headers", required_argument, NULL, OPT_MAX_HEADERS},
    {"max-uri", required_argument, NULL, OPT_MAX_URI},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"io-timeout", required_argument, NULL, OPT_IO_TIMEOUT},
    {"graceful-timeout", required_argument, NULL, OPT_GRACEFUL_TIMEOUT},
    {"no-server-header", no_argument, NULL, OPT_NO_SERVER_HEADER},
    {"mode", required_argument, NULL, OPT_MODE},
    {"workers", required_argument, NULL, 'w'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
    {"max-requests-jitter", required_argument, NULL, OPT_MAX_REQUESTS_JITTER},
    {"pid", required_argument, NULL, OPT_PID},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"umask", required_argument, NULL, OPT_UMASK},
    {"reuse-port", no_argument, NULL, OPT_REUSE_PORT},
    {"error-log", required_argument, NULL, OPT_ERROR_LOG},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"access-log-format", required_argument, NULL, OPT_ACCESS_LOG_FORMAT},
    {"forwarded-allow-ips", required_argument, NULL, OPT_FORWARDED_ALLOW_IPS},
    {"proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL},
    {"metrics-bind", required_argument, NULL, OPT_METRICS_BIND},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"no-monkey-patch", no_argument, NULL, OPT_NO_MONKEY_PATCH},
    {"no-gc-freeze", no_argument, NULL, OPT_NO_GC_FREEZE},
    {"embedded-python", no_argument, NULL, OPT_EMBEDDED_PYTHON},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

#define NOPTIONS ((int)(sizeof options / sizeof options[0]) - 1)

static int find_option(int opt)
{
    for (int i = 0; i < NOPTIONS; i++)
        if (options[i].val == opt)
            return i;
    return -1;
}

/* Settings that only make sense on the command line. */
static int command_line_only(int opt)
{
    return opt == OPT_CONFIG || opt == OPT_CHECK_CONFIG || opt == OPT_VERSION || opt == 'h';
}

static int repeatable(int opt)
{
    return opt == 'b' || opt == OPT_PYTHONPATH;
}

/* Integers with a range, by option: most settings are one of these. */
static int set_number(srv_config *c, int opt, const char *label, const char *v,
                      char *err, size_t errlen)
{
    long long n;
    double d;
#define INT(lo, hi, field, type) \
    if (parse_int(label, v, lo, hi, &n, err, errlen) < 0) return -1; \
    c->field = (type)n; return 0
#define SECONDS(field) \
    if (parse_seconds(label, v, &d, err, errlen) < 0) return -1; \
    c->field = d; return 0
    switch (opt) {
    case OPT_BACKLOG: INT(1, INT_MAX, backlog, int);
    case OPT_DEFER_ACCEPT: INT(0, 3600, defer_accept, int);
    case OPT_WS_MAX_MESSAGE: INT(1, 1LL << 40, ws_max_message, uint64_t);
    case OPT_MAX_BODY: INT(0, LLONG_MAX, max_body, uint64_t);
    case OPT_MAX_HEADER_SIZE: INT(256, 16 << 20, max_header_size, size_t);
    case OPT_MAX_HEADERS: INT(1, 10000, max_headers, int);
    case OPT_MAX_URI: INT(16, 16 << 20, max_uri, size_t);
    case OPT_MAX_REQUESTS: INT(0, LONG_MAX, max_requests, long);
    case OPT_MAX_REQUESTS_JITTER: INT(0, LONG_MAX, max_requests_jitter, long);
    case OPT_MAX_CONNECTIONS: INT(1, 10000000, max_connections, int);
    case OPT_KEEPALIVE: SECONDS(keepalive_timeout);
    case OPT_HEADER_TIMEOUT: SECONDS(header_timeout);
    case OPT_IO_TIMEOUT: SECONDS(io_timeout);
    case OPT_GRACEFUL_TIMEOUT: SECONDS(graceful_timeout);
    case OPT_TIMEOUT: SECONDS(worker_timeout);
    case OPT_REQUEST_TIMEOUT: SECONDS(request_timeout);
    default: return 1;   /* not a number setting */
    }
#undef INT
#undef SECONDS
}

/* Applies one setting to c.  `v` must outlive c (argv, or srv_config_keep).
 * A flag without a value (--reuse-port) gets "true"; in a file it may be
 * "false" too. */
static int set_option(srv_config *c, int opt, const char *label, const char *v,
                      char *err, size_t errlen)
{
    int rc = set_number(c, opt, label, v, err, errlen), on = 1;
    if (rc <= 0)
        return rc;
    int i = find_option(opt);
    if (i >= 0 && options[i].has_arg == no_argument && parse_bool(label, v, &on, err, errlen) < 0)
        return -1;
    switch (opt) {
    case OPT_APP: c->app = v; return 0;
    case 'b': return push(&c->binds, &c->nbinds, v, err, errlen);
    case OPT_CHDIR: c->chdir = v; return 0;
    case OPT_VIRTUALENV: c->virtualenv = v; return 0;
    case OPT_PYTHONPATH: return push(&c->pythonpath, &c->npythonpath, v, err, errlen);
    case OPT_NO_SERVER_HEADER: c->server_header = !on; return 0;
    case OPT_NO_MONKEY_PATCH: c->monkey_patch = !on; return 0;
    case OPT_NO_GC_FREEZE: c->gc_freeze = !on; return 0;
    case OPT_EMBEDDED_PYTHON: c->embedded_python = on; return 0;
    case OPT_REUSE_PORT: c->reuse_port = on; return 0;
    case OPT_PROXY_PROTOCOL: c->proxy_protocol = on; return 0;
    case OPT_CHECK_CONFIG: c->check_config = on; return 0;
    case OPT_PID: c->pidfile = v; return 0;
    case OPT_ERROR_LOG: c->error_log = v; return 0;
    case OPT_ACCESS_LOG: c->access_log = v; return 0;
    case OPT_ACCESS_LOG_FORMAT: c->access_log_format = v; return 0;
    case OPT_FORWARDED_ALLOW_IPS: c->forwarded_allow_ips = v; return 0;
    case OPT_METRICS_BIND: c->metrics_bind = v; return 0;
    case OPT_CONFIG: return 0;   /* read before everything else */
    case OPT_MODE:
        if (strcmp(v, "gevent") == 0)
            c->mode = SRV_MODE_GEVENT;
        else if (strcmp(v, "native") == 0)
            c->mode = SRV_MODE_NATIVE;
        else
            return FAIL("%s: expected gevent or native, got '%s'", label, v);
        return 0;
    case 'w':
        if (strcmp(v, "auto") == 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            c->workers = n > 0 ? (int)n : 1;
            return 0;
        } else {
            long long n;
            if (parse_int(label, v, 1, 512, &n, err, errlen) < 0)
                return -1;
            c->workers = (int)n;
            return 0;
        }
    case OPT_UMASK: {
        char *end;
        errno = 0;
        long m = strtol(v, &end, 8);
        if (errno || end == v || *end != '\0' || m < 0 || m > 0777)
            return FAIL("%s: expected an octal mode such as 022, got '%s'", label, v);
        c->umask = (int)m;
        return 0;
    }
    case OPT_LOG_LEVEL:
        c->log_level = srv_log_parse_level(v);
        if (c->log_level < 0)
            return FAIL("%s: expected debug, info, warning or error, got '%s'", label, v);
        return 0;
    default:
        return FAIL("%s: unknown setting", label);
    }
}

/* The command line, collected first so that the file can come between the
 * defaults and the flags.  `value` points into argv. */
typedef struct cli_arg {
    int opt;
    const char *value;
} cli_arg;

typedef struct cli {
    cli_arg *args;
    int nargs;
    const char *app;      /* the positional argument */
    const char *config;   /* the last --config */
} cli;

static int collect(cli *cl, int argc, char **argv, char *err, size_t errlen)
{
    cl->args = calloc((size_t)argc + 1, sizeof *cl->args);
    if (cl->args == NULL)
        return FAIL("out of memory");
    optind = 0;   /* a fresh scan (glibc), also when the master re-reads */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:hw:", options, NULL)) != -1) {
        const char *flag = argv[optind - 1];
        if (c == ':')
            return FAIL("%s needs a value (see --help)", flag);
        if (c == '?') {
            if (optopt)
                return FAIL("unknown option '-%c' (see --help)", optopt);
            return FAIL("unknown option '%s' (see --help)", flag);
        }
        if (c == 'h')
            return SRV_CONFIG_HELP;
        if (c == OPT_VERSION)
            return SRV_CONFIG_VERSION;
        if (c == OPT_CONFIG)
            cl->config = optarg;
        int flag_only = options[find_option(c)].has_arg == no_argument;
        cl->args[cl->nargs++] = (cli_arg){c, flag_only || optarg == NULL ? "true" : optarg};
    }
    if (optind < argc) {
        if (optind == argc - 1)
            cl->app = argv[optind];
        else
            return FAIL("unexpected argument '%s' (see --help)", argv[optind]);
    }
    return 0;
}

/* The file's pairs go through set_option like flags do. */
typedef struct file_ctx {
    srv_config *c;
    int seen[NOPTIONS];   /* the line a setting was given on */
} file_ctx;

static int file_pair(void *ctx, const char *name, const char *value, int line,
                     char *err, size_t errlen)
{
    file_ctx *f = ctx;
    int i;
    for (i = 0; i < NOPTIONS && strcmp(options[i].name, name) != 0; i++)
        ;
    if (i == NOPTIONS)
        return FAIL("unknown setting '%s' (see srv --help; names are the flags "
                    "without dashes)", name);
    int opt = options[i].val;
    if (command_line_only(opt))
        return FAIL("'%s' can only be given on the command line", name);
    if (f->seen[i] && !repeatable(opt))
        return FAIL("'%s' is set twice (first on line %d)", name, f->seen[i]);
    f->seen[i] = line;
    const char *v = srv_config_keep(f->c, value);
    if (v == NULL)
        return FAIL("out of memory");
    return set_option(f->c, opt, name, v, err, errlen);
}

/* Which file: --config, else $SRV_CONFIG; made absolute, so that a re-read
 * after --chdir finds the same file. */
static int find_file(srv_config *c, const cli *cl, char *err, size_t errlen)
{
    const char *path = cl->config;
    if (path == NULL) {
        path = getenv("SRV_CONFIG");
        if (path == NULL || *path == '\0')
            return 0;
    }
    char *abs = realpath(path, NULL);
    if (abs == NULL)
        return FAIL("%s: %s", path, strerror(errno));
    c->config_file = srv_config_keep(c, abs);
    free(abs);
    return c->config_file ? 0 : FAIL("out of memory");
}

static int apply_cli(srv_config *c, const cli *cl, char *err, size_t errlen)
{
    int cleared_binds = 0, cleared_pythonpath = 0;
    for (int i = 0; i < cl->nargs; i++) {
        const cli_arg *a = &cl->args[i];
        /* A repeatable flag replaces the file's list. */
        if (a->opt == 'b' && !cleared_binds++)
            c->nbinds = 0;
        if (a->opt == OPT_PYTHONPATH && !cleared_pythonpath++)
            c->npythonpath = 0;
        char label[64];
        snprintf(label, sizeof label, "--%s", options[find_option(a->opt)].name);
        if (set_option(c, a->opt, label, a->value, err, errlen) < 0)
            return -1;
    }
    if (cl->app)
        c->app = cl->app;
    return 0;
}

static int load(srv_config *c, cli *cl, int argc, char **argv, const char *file,
                char *err, size_t errlen)
{
    int rc = collect(cl, argc, argv, err, errlen);
    if (rc != 0)
        return rc;
    if (file) {
        if ((c->config_file = srv_config_keep(c, file)) == NULL)
            return FAIL("out of memory");
    } else if (find_file(c, cl, err, errlen) < 0) {
        return -1;
    }
    if (c->config_file) {
        file_ctx *f = calloc(1, sizeof *f);
        if (f == NULL)
            return FAIL("out of memory");
        f->c = c;
        rc = srv_conffile_read(c->config_file, file_pair, f, err, errlen);
        free(f);
        if (rc < 0)
            return -1;
    }
    if (apply_cli(c, cl, err, errlen) < 0)
        return -1;
    if (c->app == NULL)
        return FAIL("no application given: use --app MODULE:CALLABLE%s (see --help)",
                    c->config_file ? " or 'app = MODULE:CALLABLE' in the config file" : "");
    return 0;
}

int srv_config_load(srv_config *c, int argc, char **argv, const char *file,
                    char *err, size_t errlen)
{
    cli cl = {0};
    *c = defaults;
    int rc = load(c, &cl, argc, argv, file, err, errlen);
    free(cl.args);
    if (rc != 0)
        srv_config_free(c);
    return rc;
}

void srv_config_parse(int argc, char **argv)
{
    char err[1024];
    srv_config c;
    switch (srv_config_load(&c, argc, argv, NULL, err, sizeof err)) {
    case SRV_CONFIG_HELP:
        fputs(usage, stdout);
        exit(0);
    case SRV_CONFIG_VERSION:
        printf("srv %s\n", SRV_VERSION);
        exit(0);
    case 0:
        break;
    default:
        srv_die_usage("%s", err);
    }
    srv_cfg = c;
    srv_log_level = srv_cfg.log_level;
}
