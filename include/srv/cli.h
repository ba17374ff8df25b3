/*
 * cli.h - the srv command, from argv to the master.
 *
 * Owns the order of start-up: flags and config file, the hand-over to the
 * Python interpreter (handover.h), the process-wide settings, the sockets,
 * then the master.  main() (the executable) and _srv_host's main() (the
 * same code as an extension module, once handed over) both call it.
 */
#ifndef SRV_CLI_H
#define SRV_CLI_H

/* Runs srv; returns the process's exit status.  `hosted`: already running
 * inside the interpreter, as _srv_host (no hand-over). */
int srv_cli_main(int argc, char **argv, int hosted);

#endif
