/*
 * settings.c - applying srv_cfg to the master process, at start and reload.
 *
 * A reload goes all or nothing: the new file is read and checked, the new
 * directory entered and the new error log opened before anything is
 * committed; any failure puts the directory back and keeps the old
 * srv_cfg.  Settings bound to sockets the master already holds are carried
 * over from the old configuration, with one warning each.
 */
#include "srv/settings.h"
#include "srv/config.h"
#include "srv/log.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int start_dir = -1;       /* where srv started, for a relative --chdir */
static int start_stderr = -1;    /* the original fd 2, for "--error-log -" */
static mode_t start_umask;       /* for a reload that drops --umask */

void srv_settings_enter(void)
{
    start_dir = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    start_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    start_umask = umask(0);
    umask(start_umask);
    if (srv_cfg.chdir && chdir(srv_cfg.chdir) < 0)
        srv_die_usage("--chdir %s: %s", srv_cfg.chdir, strerror(errno));
    if (srv_cfg.umask >= 0)
        umask((mode_t)srv_cfg.umask);
}

void srv_settings_forget(void)
{
    if (start_dir >= 0)
        close(start_dir);
    if (start_stderr >= 0)
        close(start_stderr);
    start_dir = start_stderr = -1;
}

/* The fd the error log should be, or -1 with errno: a fresh open of the
 * file (so that a reload also follows a rotated log), or stderr as it was. */
static int open_error_log(const char *path)
{
    if (path == NULL || strcmp(path, "-") == 0)
        return fcntl(start_stderr >= 0 ? start_stderr : STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* srv's log, tracebacks and wsgi.errors all go to fd 2, so pointing fd 2
 * at the file moves all of them. */
static int install_error_log(int fd)
{
    int rc = dup2(fd, STDERR_FILENO);
    close(fd);
    return rc < 0 ? -1 : 0;
}

void srv_settings_open_error_log(void)
{
    const char *path = srv_cfg.error_log;
    if (path == NULL || strcmp(path, "-") == 0)
        return;
    int fd = open_error_log(path);
    if (fd < 0 || install_error_log(fd) < 0)
        srv_die_usage("--error-log %s: %s", path, strerror(errno));
}

static int same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int same_binds(const srv_config *a, const srv_config *b)
{
    if (a->nbinds != b->nbinds)
        return 0;
    for (int i = 0; i < a->nbinds; i++)
        if (strcmp(a->binds[i], b->binds[i]) != 0)
            return 0;
    return 1;
}

static void not_applied(const char *name, const char *file)
{
    srv_warn("reload: '%s' changed in %s: not applied (it needs a restart of srv)", name, file);
}

/* Copies old's value of each setting tied to the bound sockets into c;
 * -1 when out of memory. */
static int keep_fixed(srv_config *c, const srv_config *old)
{
    if (!same_binds(c, old)) {
        not_applied("bind", c->config_file);
        const char **binds = old->nbinds ? calloc((size_t)old->nbinds, sizeof *binds) : NULL;
        if (old->nbinds && binds == NULL)
            return -1;
        for (int i = 0; i < old->nbinds; i++)
            if ((binds[i] = srv_config_keep(c, old->binds[i])) == NULL) {
                free(binds);
                return -1;
            }
        free(c->binds);
        c->binds = binds;
        c->nbinds = old->nbinds;
    }
#define KEEP_INT(field, name) \
    if (c->field != old->field) { not_applied(name, c->config_file); c->field = old->field; }
#define KEEP_STRING(field, name) \
    if (!same_string(c->field, old->field)) { \
        not_applied(name, c->config_file); \
        if (old->field && (c->field = srv_config_keep(c, old->field)) == NULL) return -1; \
        if (!old->field) c->field = NULL; \
    }
    KEEP_INT(backlog, "backlog")
    KEEP_INT(defer_accept, "defer-accept")
    KEEP_INT(reuse_port, "reuse-port")
    KEEP_STRING(metrics_bind, "metrics-bind")
    KEEP_STRING(pidfile, "pid")
    KEEP_STRING(virtualenv, "virtualenv")   /* resolved once, at start */
#undef KEEP_INT
#undef KEEP_STRING
    return 0;
}

/* Enters the new --chdir from the starting directory; -1 (logged) leaves
 * the directory as it was. */
static int enter_dir(const char *dir)
{
    int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (here < 0 || start_dir < 0 || fchdir(start_dir) < 0
        || (dir && chdir(dir) < 0)) {
        srv_error("reload: chdir %s: %s; the old settings stay", dir ? dir : "(start)",
                  strerror(errno));
        if (here >= 0 && fchdir(here) < 0)
            srv_error("reload: cannot go back to the old directory: %s", strerror(errno));
        if (here >= 0)
            close(here);
        return -1;
    }
    close(here);
    return 0;
}

/* Checks, enters the directory and opens the log: nothing is committed. */
static int prepare(srv_config *c, int *log_fd)
{
    if (keep_fixed(c, &srv_cfg) < 0) {
        srv_error("reload: out of memory; the old settings stay");
        return -1;
    }
    if (enter_dir(c->chdir) < 0)
        return -1;
    *log_fd = open_error_log(c->error_log);
    if (*log_fd < 0) {
        srv_error("reload: error-log %s: %s; the old settings stay",
                  c->error_log ? c->error_log : "-", strerror(errno));
        enter_dir(srv_cfg.chdir);
        return -1;
    }
    return 0;
}

int srv_settings_reload(int argc, char **argv)
{
    if (srv_cfg.config_file == NULL)
        return 0;   /* only the command line: nothing can have changed */
    char err[1024];
    srv_config c;
    if (srv_config_load(&c, argc, argv, srv_cfg.config_file, err, sizeof err) != 0) {
        srv_error("reload: %s; the old settings stay", err);
        return -1;
    }
    int log_fd;
    if (prepare(&c, &log_fd) < 0) {
        srv_config_free(&c);
        return -1;
    }
    if (install_error_log(log_fd) < 0)
        srv_error("reload: error-log: %s", strerror(errno));
    umask(c.umask >= 0 ? (mode_t)c.umask : start_umask);
    srv_log_level = c.log_level;
    srv_config_free(&srv_cfg);
    srv_cfg = c;
    srv_info("reload: settings read from %s", srv_cfg.config_file);
    return 0;
}
