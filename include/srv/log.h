/*
 * log.h - the error log.
 *
 * Owns where srv's own messages go (stderr) and at what level, the format of
 * a log line, and the reporting of Python exceptions (tracebacks) into the
 * same log.  A log line is written with one write(2) call, so lines from
 * several worker processes never interleave.
 */
#ifndef SRV_LOG_H
#define SRV_LOG_H

/* No Python.h here: the master, which runs no Python, includes this too.
 * srv_log_pyerr() is defined in log.c, which does include it. */

enum srv_log_level {
    SRV_LOG_DEBUG,
    SRV_LOG_INFO,
    SRV_LOG_WARNING,
    SRV_LOG_ERROR,
};

extern int srv_log_level;

/* Parses "debug", "info", "warning" or "error"; returns -1 if unknown. */
int srv_log_parse_level(const char *name);

void srv_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define srv_debug(...) \
    do { if (srv_log_level <= SRV_LOG_DEBUG) srv_log(SRV_LOG_DEBUG, __VA_ARGS__); } while (0)
#define srv_info(...)  srv_log(SRV_LOG_INFO, __VA_ARGS__)
#define srv_warn(...)  srv_log(SRV_LOG_WARNING, __VA_ARGS__)
#define srv_error(...) srv_log(SRV_LOG_ERROR, __VA_ARGS__)

/* Logs `what` at error level followed by the traceback of the pending Python
 * exception, then clears it.  Does not touch sys.last_value, so the
 * traceback's frames are released at once. */
void srv_log_pyerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
