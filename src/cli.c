/*
 * cli.c - the srv command.
 *
 * Parses the flags and the config file, hands the process to the Python
 * interpreter srv was built for when its extension module is installed
 * (handover.h; the interpreter runs this same function again, as
 * _srv_host), applies the process-wide settings (directory, umask, error
 * log: settings.c), binds every listening socket, --metrics-bind's too (so
 * that a busy port is a usage error before any app code runs) and hands
 * over to the master, which forks the workers.  With --check-config it
 * imports the app in this process instead, and exits.
 */
#include "srv/cli.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "srv/config.h"
#include "srv/handover.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/master.h"
#include "srv/metrics_http.h"
#include "srv/settings.h"
#include "srv/venv.h"
#include "srv/worker.h"

/* Returns only when srv stays in the libpython it links. */
static void hand_over(int argc, char **argv)
{
#ifdef SRV_PYTHON_EXE
    char self[4096], module[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    if (srv_handover_module(self, module, sizeof module) < 0)
        return;   /* not built or not installed: the embedded interpreter */
    const char *python = srv_venv_program(SRV_PYTHON_EXE);   /* the venv's, else built for */
    srv_handover_exec(python, module, argc, argv);
    srv_warn("cannot run %s (%s): running in the libpython srv links", python, strerror(errno));
#endif
}

int srv_cli_main(int argc, char **argv, int hosted)
{
    srv_master_block_signals();
    srv_config_parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    /* Handed over, the interpreter already runs in the virtualenv found
     * before the exec (and its /proc/self/exe is no longer srv's). */
    if (!hosted) {
        srv_venv_resolve();   /* before --chdir: a relative --virtualenv */
        if (!srv_cfg.embedded_python)
            hand_over(argc, argv);
    }
    srv_settings_enter();
    if (srv_cfg.check_config)
        srv_worker_check(argv[0]);
    srv_listen_all();
    srv_metrics_http_listen(srv_listen_address);
    srv_settings_open_error_log();
    return srv_master_run(argc, argv);
}
