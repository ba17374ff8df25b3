/*
 * venv.h - the virtualenv the embedded interpreter uses.
 *
 * Owns finding the virtualenv srv serves from: --virtualenv DIR, else the
 * one whose bin/ holds the srv binary (pip install into a venv), else
 * $VIRTUAL_ENV (an activated venv); and the program name (DIR/bin/python)
 * that makes CPython's start-up read DIR/pyvenv.cfg, so that sys.prefix and
 * site-packages are the venv's while the stdlib and libpython stay those
 * srv was built against.
 */
#ifndef SRV_VENV_H
#define SRV_VENV_H

/* Finds the virtualenv (before --chdir: a relative DIR is resolved first).
 * A --virtualenv that is not a virtualenv of the Python srv embeds: one
 * line on stderr and exit status 2. */
void srv_venv_resolve(void);

/* The virtualenv's directory, or NULL. */
const char *srv_venv_dir(void);

/* The program name to start Python with: DIR/bin/python in a virtualenv,
 * else argv0. */
const char *srv_venv_program(const char *argv0);

#endif
