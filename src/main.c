/*
 * main.c - the srv command.
 *
 * Parses the flags and the config file, applies the process-wide settings
 * (directory, umask, error log: settings.c), binds every listening socket,
 * --metrics-bind's too (so that a busy port is a usage error before any app
 * code runs) and hands over to the master, which forks the workers.  With
 * --check-config it imports the app in this process instead, and exits.
 */
#include <signal.h>

#include "srv/config.h"
#include "srv/loop.h"
#include "srv/master.h"
#include "srv/metrics_http.h"
#include "srv/settings.h"
#include "srv/venv.h"
#include "srv/worker.h"

int main(int argc, char **argv)
{
    srv_master_block_signals();
    srv_config_parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    srv_venv_resolve();   /* before --chdir: a relative --virtualenv */
    srv_settings_enter();
    if (srv_cfg.check_config)
        srv_worker_check(argv[0]);
    srv_listen_all();
    srv_metrics_http_listen(srv_listen_address);
    srv_settings_open_error_log();
    return srv_master_run(argc, argv);
}
