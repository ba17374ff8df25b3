/*
 * conffile.c - reading `name = value` configuration files.
 *
 * The whole file is read into one buffer (at most SRV_CONFFILE_MAX bytes),
 * then cut into lines in place.  A value is taken literally up to the end
 * of the line or a comment: no quoting, no escapes, so that an access log
 * format keeps its quotes.
 */
#include "srv/conffile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads the file into a NUL-terminated buffer; NULL with err set. */
static char *slurp(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    char *buf = malloc(SRV_CONFFILE_MAX + 1);
    size_t len = 0;
    ssize_t n = 1;
    while (buf && len <= SRV_CONFFILE_MAX
           && (n = read(fd, buf + len, SRV_CONFFILE_MAX + 1 - len)) > 0)
        len += (size_t)n;
    int saved = errno;
    close(fd);
    if (buf == NULL)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (n < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
    else if (len > SRV_CONFFILE_MAX)
        snprintf(err, errlen, "%s: larger than %d bytes", path, SRV_CONFFILE_MAX);
    else if (memchr(buf, '\0', len))
        snprintf(err, errlen, "%s: contains a NUL byte (not a text file?)", path);
    else {
        buf[len] = '\0';
        return buf;
    }
    free(buf);
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* Cuts a comment: '#' at the start or after white space. */
static void cut_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
}

static int valid_name(const char *s)
{
    if (!islower((unsigned char)*s))
        return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
            return 0;
    return 1;
}

/* One line: 0 (a pair handed over, or nothing on it) or -1 with err. */
static int parse_line(char *text, int line, srv_conffile_cb cb, void *ctx,
                      char *err, size_t errlen)
{
    cut_comment(text);
    char *s = trim(text);
    if (*s == '\0')
        return 0;
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        snprintf(err, errlen, "expected 'name = value', got '%.60s'", s);
        return -1;
    }
    *eq = '\0';
    char *name = trim(s), *value = trim(eq + 1);
    if (!valid_name(name)) {
        snprintf(err, errlen, "'%.60s' is not a setting name (lower case, like the "
                 "flag without its dashes)", name);
        return -1;
    }
    if (*value == '\0') {
        snprintf(err, errlen, "%s: missing value", name);
        return -1;
    }
    return cb(ctx, name, value, line, err, errlen);
}

int srv_conffile_read(const char *path, srv_conffile_cb cb, void *ctx,
                      char *err, size_t errlen)
{
    char *buf = slurp(path, err, errlen);
    if (buf == NULL)
        return -1;
    int rc = 0, line = 0;
    char msg[512];
    for (char *p = buf; rc == 0 && *p; ) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        line++;
        msg[0] = '\0';
        if (parse_line(p, line, cb, ctx, msg, sizeof msg) < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, line, msg);
            rc = -1;
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(buf);
    return rc;
}
