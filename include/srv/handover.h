/*
 * handover.h - srv runs inside the Python interpreter it was built for.
 *
 * Owns the hand-over at start.  srv's executable links libpython, and
 * Debian's libpython3.11.a is built with PGO but without link-time
 * optimisation, while /usr/bin/python3.11 is LTO-linked: the same Python
 * code runs 6-9% more instructions in the former (bench/appcost.sh).  So
 * once the flags are known to be good, srv execs that interpreter (the
 * virtualenv's python when srv uses one) with srv's core built as an
 * extension module, _srv_host.so, whose main() is srv's main: the process
 * keeps its pid, its arguments and its signal mask, and everything after
 * runs as before, the master and the workers it forks inside the
 * interpreter.  Without the module (beside the executable, or in
 * ../lib/srv), with --embedded-python, or when the exec fails, srv goes on
 * with the libpython it links.
 */
#ifndef SRV_HANDOVER_H
#define SRV_HANDOVER_H

#include <stddef.h>

/* Where _srv_host.so is for the executable at `self` (its /proc/self/exe),
 * written to out; -1 when it is not there. */
int srv_handover_module(const char *self, char *out, size_t outlen);

/* Execs `python` with srv's module and srv's own argv.  Returns only on
 * failure: -1 with errno set (the caller decides what to say). */
int srv_handover_exec(const char *python, const char *module, int argc, char **argv);

#endif
