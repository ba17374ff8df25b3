/*
 * main.c - the srv command.
 *
 * Parses the flags, applies the process-wide ones (umask, error log), binds
 * every listening socket, --metrics-bind's too (so that a busy port is a
 * usage error before any app code runs) and hands over to the master, which
 * forks the workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "srv/config.h"
#include "srv/loop.h"
#include "srv/master.h"
#include "srv/metrics.h"
#include "srv/venv.h"

/* --error-log FILE: srv's log, tracebacks and wsgi.errors all go to fd 2,
 * so pointing fd 2 at the file moves all of them.  Done after binding, so
 * that usage errors still reach the terminal. */
static void open_error_log(void)
{
    const char *path = srv_cfg.error_log;
    if (path == NULL || strcmp(path, "-") == 0)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        srv_die_usage("--error-log %s: %s", path, strerror(errno));
    if (dup2(fd, STDERR_FILENO) < 0)
        srv_die_usage("--error-log %s: %s", path, strerror(errno));
    close(fd);
}

int main(int argc, char **argv)
{
    srv_master_block_signals();
    srv_config_parse(argc, argv);
    srv_venv_resolve();   /* before --chdir: a relative --virtualenv */
    signal(SIGPIPE, SIG_IGN);
    if (srv_cfg.chdir && chdir(srv_cfg.chdir) < 0)
        srv_die_usage("--chdir %s: %s", srv_cfg.chdir, strerror(errno));
    if (srv_cfg.umask >= 0)
        umask((mode_t)srv_cfg.umask);
    srv_listen_all();
    srv_metrics_listen();
    open_error_log();
    return srv_master_run(argc, argv);
}
