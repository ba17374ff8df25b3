/*
 * conffile.h - the configuration file's syntax.
 *
 * Owns reading a --config file and splitting it into `name = value` pairs:
 * one per line, `#` starts a comment (at the start of a line, or after
 * white space), blank lines are skipped, white space around the name and the
 * value is dropped.  It knows nothing of which names exist or what values
 * mean: each pair goes to a callback (config.c feeds it through the same
 * code as the command-line flags).  Pure C: no Python, no event loop, no
 * global state, so the master can re-read a file at SIGHUP.
 */
#ifndef SRV_CONFFILE_H
#define SRV_CONFFILE_H

#include <stddef.h>

/* The largest file accepted: a config file, not a data file. */
#define SRV_CONFFILE_MAX (1 << 20)

/* Called for each pair, in file order; name and value are valid only during
 * the call.  Returns 0, or -1 with a message (no file or line) in err. */
typedef int (*srv_conffile_cb)(void *ctx, const char *name, const char *value,
                               int line, char *err, size_t errlen);

/* Reads `path` and hands every pair to cb.  Returns 0, or -1 with a
 * one-line message in err: "PATH:LINE: problem" (or "PATH: problem" when the
 * file cannot be read).  Stops at the first error. */
int srv_conffile_read(const char *path, srv_conffile_cb cb, void *ctx,
                      char *err, size_t errlen);

#endif
