/*
 * main.c - the srv command.
 *
 * Parses the flags, binds every listening socket (so that a busy port is a
 * usage error before any app code runs) and hands over to the master, which
 * forks the workers.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "srv/config.h"
#include "srv/loop.h"
#include "srv/master.h"

int main(int argc, char **argv)
{
    srv_master_block_signals();
    srv_config_parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (srv_cfg.chdir && chdir(srv_cfg.chdir) < 0)
        srv_die_usage("--chdir %s: %s", srv_cfg.chdir, strerror(errno));
    srv_listen_all();
    return srv_master_run(argc, argv);
}
