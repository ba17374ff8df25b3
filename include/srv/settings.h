/*
 * settings.h - the master's process-wide settings, and re-reading them.
 *
 * Owns what the master applies to itself from srv_cfg: the working
 * directory (--chdir), the umask, the error log (fd 2) and the log level,
 * at start and again at SIGHUP.  At SIGHUP it re-reads the configuration
 * (the same argv and config file), keeps what cannot change without
 * re-binding (bind, backlog, reuse-port, metrics-bind, pid) and logs one
 * line for each such change, then replaces srv_cfg, which the new workers
 * inherit by fork.  A bad file leaves srv_cfg as it was.
 */
#ifndef SRV_SETTINGS_H
#define SRV_SETTINGS_H

/* At start, after srv_config_parse(): remembers the starting directory and
 * stderr (so that a reload can resolve a relative --chdir again, and go
 * back to stderr), then changes directory and sets the umask.  Exits
 * SRV_EXIT_USAGE on failure. */
void srv_settings_enter(void);

/* At start, after binding: points fd 2 at --error-log.  Exits
 * SRV_EXIT_USAGE on failure. */
void srv_settings_open_error_log(void);

/* In a new worker: closes the descriptors kept for reloads. */
void srv_settings_forget(void);

/* SIGHUP in the master: re-reads the config file, if there is one, with
 * argv's flags on top.  Returns 0 when srv_cfg now holds the new settings
 * (or there is no file), -1 when they could not be applied; either way
 * what happened is logged. */
int srv_settings_reload(int argc, char **argv);

#endif
