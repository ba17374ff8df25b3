/*
 * config.c - parsing and validating the command line.
 *
 * Flags follow gunicorn's names where gunicorn has one.  Both "--flag value"
 * and "--flag=value" work; the app may also be given as the one positional
 * argument.  Numbers are checked for range, so a typo is an error at start-up
 * rather than a surprise under load.
 */
#include "srv/config.h"
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

srv_config srv_cfg = {
    .backlog = 2048,
    .server_header = 1,
    .max_body = (uint64_t)1 << 30,
    .ws_max_message = (uint64_t)1 << 20,
    .max_header_size = 65536,
    .max_uri = 8192,
    .max_headers = 100,
    .keepalive_timeout = 5.0,
    .header_timeout = 30.0,
    .io_timeout = 60.0,
    .graceful_timeout = 30.0,
    .log_level = SRV_LOG_INFO,
    .mode = SRV_MODE_AUTO,
    .workers = 1,
    .max_connections = 10000,
    .umask = -1,
    .forwarded_allow_ips = "127.0.0.1,::1",
    .access_log_format = "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"",
    .worker_timeout = 30.0,
    .monkey_patch = 1,
};

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
"  --max-requests-jitter N add up to N to --max-requests, per worker\n"
"  --pid FILE              write the master's pid to FILE\n"
"  --chdir DIR             change to DIR before loading the app\n"
"  --pythonpath DIR        prepend DIR to sys.path; repeatable\n"
"  --virtualenv DIR        use the virtualenv DIR (default: the one srv is installed in,\n"
"                          else $VIRTUAL_ENV)\n"
"  --backlog N             listen(2) backlog (default 2048)\n"
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
"  --access-log-format FMT Apache-style: %h %l %u %t %r %s %>s %b %B %D %T %P\n"
"                          %m %U %q %H %R %{Header}i %% (default: combined,\n"
"                          '%h %l %u %t \"%r\" %>s %b \"%{Referer}i\"\n"
"                          \"%{User-Agent}i\"')\n"
"  --max-body BYTES        largest request body, else 413 (default 1073741824)\n"
"  --ws-max-message BYTES  largest WebSocket message, else close 1009\n"
"                          (default 1048576)\n"
"  --max-header-size BYTES largest request head, else 431 (default 65536)\n"
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
"  --request-timeout SECONDS\n"
"                          raise srv.RequestTimeout in a request that runs\n"
"                          longer; the client gets a 504 (default 0: off)\n"
"  --metrics-bind ADDR     serve Prometheus metrics (GET /metrics) on ADDR, from\n"
"                          the master, never on the app's port; same forms as\n"
"                          --bind (default: off)\n"
"  --no-server-header      do not send \"Server: srv\"\n"
"  --log-level LEVEL       debug, info, warning or error (default info)\n"
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

static long long parse_int(const char *flag, const char *s, long long lo, long long hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        srv_die_usage("%s: expected an integer from %lld to %lld, got '%s'", flag, lo, hi, s);
    return v;
}

static double parse_seconds(const char *flag, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 86400 * 365)
        srv_die_usage("%s: expected a number of seconds, got '%s'", flag, s);
    return v;
}

static void push(const char ***list, int *n, const char *value)
{
    const char **p = realloc(*list, sizeof **list * (size_t)(*n + 1));
    if (p == NULL)
        srv_die_usage("out of memory");
    p[(*n)++] = value;
    *list = p;
}

enum {
    OPT_APP = 256, OPT_CHDIR, OPT_PYTHONPATH, OPT_BACKLOG, OPT_MAX_BODY, OPT_WS_MAX_MESSAGE,
    OPT_MAX_HEADER_SIZE, OPT_MAX_HEADERS, OPT_MAX_URI, OPT_KEEPALIVE,
    OPT_HEADER_TIMEOUT, OPT_IO_TIMEOUT, OPT_GRACEFUL_TIMEOUT,
    OPT_NO_SERVER_HEADER, OPT_LOG_LEVEL, OPT_VERSION, OPT_MODE, OPT_NO_MONKEY_PATCH,
    OPT_REQUEST_TIMEOUT, OPT_TIMEOUT, OPT_MAX_REQUESTS, OPT_MAX_REQUESTS_JITTER, OPT_PID,
    OPT_MAX_CONNECTIONS, OPT_UMASK, OPT_REUSE_PORT, OPT_ERROR_LOG, OPT_ACCESS_LOG,
    OPT_ACCESS_LOG_FORMAT, OPT_FORWARDED_ALLOW_IPS, OPT_PROXY_PROTOCOL, OPT_METRICS_BIND,
    OPT_VIRTUALENV,
};

static const struct option options[] = {
    {"app", required_argument, NULL, OPT_APP},
    {"bind", required_argument, NULL, 'b'},
    {"chdir", required_argument, NULL, OPT_CHDIR},
    {"pythonpath", required_argument, NULL, OPT_PYTHONPATH},
    {"virtualenv", required_argument, NULL, OPT_VIRTUALENV},
    {"backlog", required_argument, NULL, OPT_BACKLOG},
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
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

void srv_config_parse(int argc, char **argv)
{
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":b:hw:", options, NULL)) != -1) {
        const char *flag = argv[optind - 1];
        switch (c) {
        case OPT_APP: srv_cfg.app = optarg; break;
        case 'b': push(&srv_cfg.binds, &srv_cfg.nbinds, optarg); break;
        case OPT_CHDIR: srv_cfg.chdir = optarg; break;
        case OPT_PYTHONPATH: push(&srv_cfg.pythonpath, &srv_cfg.npythonpath, optarg); break;
        case OPT_VIRTUALENV: srv_cfg.virtualenv = optarg; break;
        case OPT_BACKLOG: srv_cfg.backlog = (int)parse_int("--backlog", optarg, 1, INT_MAX); break;
        case OPT_WS_MAX_MESSAGE:
            srv_cfg.ws_max_message = (uint64_t)parse_int("--ws-max-message", optarg, 1, 1LL << 40);
            break;
        case OPT_MAX_BODY:
            srv_cfg.max_body = (uint64_t)parse_int("--max-body", optarg, 0, LLONG_MAX);
            break;
        case OPT_MAX_HEADER_SIZE:
            srv_cfg.max_header_size = (size_t)parse_int("--max-header-size", optarg, 256, 16 << 20);
            break;
        case OPT_MAX_HEADERS:
            srv_cfg.max_headers = (int)parse_int("--max-headers", optarg, 1, 10000);
            break;
        case OPT_MAX_URI:
            srv_cfg.max_uri = (size_t)parse_int("--max-uri", optarg, 16, 16 << 20);
            break;
        case OPT_KEEPALIVE: srv_cfg.keepalive_timeout = parse_seconds("--keepalive", optarg); break;
        case OPT_HEADER_TIMEOUT:
            srv_cfg.header_timeout = parse_seconds("--header-timeout", optarg);
            break;
        case OPT_IO_TIMEOUT: srv_cfg.io_timeout = parse_seconds("--io-timeout", optarg); break;
        case OPT_GRACEFUL_TIMEOUT:
            srv_cfg.graceful_timeout = parse_seconds("--graceful-timeout", optarg);
            break;
        case OPT_NO_SERVER_HEADER: srv_cfg.server_header = 0; break;
        case OPT_MODE:
            if (strcmp(optarg, "gevent") == 0)
                srv_cfg.mode = SRV_MODE_GEVENT;
            else if (strcmp(optarg, "native") == 0)
                srv_cfg.mode = SRV_MODE_NATIVE;
            else
                srv_die_usage("--mode: expected gevent or native, got '%s'", optarg);
            break;
        case OPT_NO_MONKEY_PATCH: srv_cfg.monkey_patch = 0; break;
        case 'w':
            if (strcmp(optarg, "auto") == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                srv_cfg.workers = n > 0 ? (int)n : 1;
            } else {
                srv_cfg.workers = (int)parse_int("--workers", optarg, 1, 512);
            }
            break;
        case OPT_TIMEOUT: srv_cfg.worker_timeout = parse_seconds("--timeout", optarg); break;
        case OPT_MAX_REQUESTS:
            srv_cfg.max_requests = (long)parse_int("--max-requests", optarg, 0, LONG_MAX);
            break;
        case OPT_MAX_REQUESTS_JITTER:
            srv_cfg.max_requests_jitter = (long)parse_int("--max-requests-jitter", optarg, 0, LONG_MAX);
            break;
        case OPT_PID: srv_cfg.pidfile = optarg; break;
        case OPT_MAX_CONNECTIONS:
            srv_cfg.max_connections = (int)parse_int("--max-connections", optarg, 1, 10000000);
            break;
        case OPT_UMASK: {
            char *end;
            errno = 0;
            long m = strtol(optarg, &end, 8);
            if (errno || end == optarg || *end != '\0' || m < 0 || m > 0777)
                srv_die_usage("--umask: expected an octal mode such as 022, got '%s'", optarg);
            srv_cfg.umask = (int)m;
            break;
        }
        case OPT_REUSE_PORT: srv_cfg.reuse_port = 1; break;
        case OPT_ERROR_LOG: srv_cfg.error_log = optarg; break;
        case OPT_ACCESS_LOG: srv_cfg.access_log = optarg; break;
        case OPT_ACCESS_LOG_FORMAT: srv_cfg.access_log_format = optarg; break;
        case OPT_FORWARDED_ALLOW_IPS: srv_cfg.forwarded_allow_ips = optarg; break;
        case OPT_PROXY_PROTOCOL: srv_cfg.proxy_protocol = 1; break;
        case OPT_METRICS_BIND: srv_cfg.metrics_bind = optarg; break;
        case OPT_REQUEST_TIMEOUT:
            srv_cfg.request_timeout = parse_seconds("--request-timeout", optarg);
            break;
        case OPT_LOG_LEVEL:
            srv_cfg.log_level = srv_log_parse_level(optarg);
            if (srv_cfg.log_level < 0)
                srv_die_usage("--log-level: expected debug, info, warning or error, got '%s'", optarg);
            break;
        case OPT_VERSION:
            printf("srv %s\n", SRV_VERSION);
            exit(0);
        case 'h':
            fputs(usage, stdout);
            exit(0);
        case ':':
            srv_die_usage("%s needs a value (see --help)", flag);
        default:
            if (optopt)
                srv_die_usage("unknown option '-%c' (see --help)", optopt);
            srv_die_usage("unknown option '%s' (see --help)", flag);
        }
    }
    if (optind < argc) {
        if (srv_cfg.app == NULL && optind == argc - 1)
            srv_cfg.app = argv[optind];
        else
            srv_die_usage("unexpected argument '%s' (see --help)", argv[optind]);
    }
    if (srv_cfg.app == NULL)
        srv_die_usage("no application given: use --app MODULE:CALLABLE (see --help)");
    srv_log_level = srv_cfg.log_level;
}
