/*
 * log.c - the error log: levelled lines on stderr, and Python tracebacks.
 *
 * Each line is "[YYYY-mm-dd HH:MM:SS +0000] [pid] [LEVEL] message", built in a
 * stack buffer and written with a single write(2).  Tracebacks are formatted
 * by the traceback module and written the same way, so that they land in the
 * same stream as srv's own lines and never set sys.last_traceback.
 */
#include <Python.h>   /* first, as CPython asks: srv_log_pyerr */

#include "srv/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int srv_log_level = SRV_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

int srv_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warn") == 0)
        return SRV_LOG_WARNING;
    return -1;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static size_t format_prefix(char *buf, size_t size, int level)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(buf, size, "[%Y-%m-%d %H:%M:%S +0000] ", &tm);
    int m = snprintf(buf + n, size - n, "[%d] [%s] ", (int)getpid(), level_names[level]);
    return n + (m > 0 ? (size_t)m : 0);
}

static void vlog(int level, const char *fmt, va_list ap)
{
    char line[2048];
    size_t n = format_prefix(line, sizeof line, level);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    write_all(STDERR_FILENO, line, n);
}

void srv_log(int level, const char *fmt, ...)
{
    if (level < srv_log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

/* Returns a new reference to "".join(traceback.format_exception(exc)), or
 * NULL with an exception set. */
static PyObject *format_exception(PyObject *exc)
{
    PyObject *tb_mod = PyImport_ImportModule("traceback");
    if (tb_mod == NULL)
        return NULL;
    PyObject *lines = PyObject_CallMethod(tb_mod, "format_exception", "O", exc);
    Py_DECREF(tb_mod);
    if (lines == NULL)
        return NULL;
    PyObject *empty = PyUnicode_FromStringAndSize("", 0);
    PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(lines);
    return text;
}

void srv_log_pyerr(const char *fmt, ...)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);

    va_list ap;
    va_start(ap, fmt);
    vlog(SRV_LOG_ERROR, fmt, ap);
    va_end(ap);

    if (value == NULL)
        goto done;
    PyObject *text = format_exception(value);
    if (text == NULL) {
        PyErr_Clear();
        text = PyObject_Repr(value);
        if (text == NULL) {
            PyErr_Clear();
            goto done;
        }
    }
    Py_ssize_t len;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &len);
    if (utf8)
        write_all(STDERR_FILENO, utf8, (size_t)len);
    else
        PyErr_Clear();
    Py_DECREF(text);
done:
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}
