/*
 * venv.c - finding the virtualenv srv serves from.
 *
 * CPython's start-up (getpath) looks for pyvenv.cfg next to the executable
 * and in its parent directory, and site.py then puts the venv's
 * site-packages on sys.path.  srv embeds libpython, so it names the venv's
 * bin/python as the program: nothing else about the interpreter changes.
 */
#include "srv/venv.h"
#include "srv/config.h"
#include "srv/log.h"

#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *venv_dir;       /* malloc'd, absolute; NULL: none */
static char *venv_program;   /* venv_dir/bin/python */

/* The "major.minor" of the Python that made the venv, from pyvenv.cfg's
 * `version` (or `version_info`) line, into out; 0 if found, -1 if the file
 * does not exist. */
static int venv_version(const char *dir, char *out, size_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/pyvenv.cfg", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[512];
    out[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char key[64], val[128];
        if (sscanf(line, " %63[a-z_] = %127s", key, val) == 2
            && (strcmp(key, "version") == 0 || strcmp(key, "version_info") == 0)) {
            char *dot = strchr(val, '.');
            dot = dot ? strchr(dot + 1, '.') : NULL;
            if (dot)
                *dot = '\0';
            snprintf(out, n, "%s", val);
        }
    }
    fclose(f);
    return 0;
}

/* The Python that made the venv at dir, if it is one: "" when pyvenv.cfg
 * does not say.  Returns NULL when it is no virtualenv, else `mine` when
 * the versions match (or are unknown), else v. */
static const char *venv_mismatch(const char *dir, char *v, size_t n, const char *mine)
{
    if (venv_version(dir, v, n) < 0)
        return NULL;
    return v[0] && strcmp(v, mine) != 0 ? v : mine;
}

static const char *embedded_version(void)
{
    static char mine[16];
    snprintf(mine, sizeof mine, "%d.%d", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    return mine;
}

/* A venv found implicitly (srv's own bin/, $VIRTUAL_ENV) is used when it is
 * of the Python srv embeds; of another, it is ignored with a warning. */
static int usable(const char *dir, const char *why)
{
    char v[128];
    const char *mine = embedded_version();
    const char *got = venv_mismatch(dir, v, sizeof v, mine);
    if (got == NULL)
        return 0;
    if (got != mine) {
        srv_warn("%s %s was made with Python %s, but srv embeds Python %s: not using it",
                 why, dir, got, mine);
        return 0;
    }
    return 1;
}

static void use(const char *dir)
{
    venv_dir = realpath(dir, NULL);
    if (venv_dir == NULL)
        srv_die_usage("virtualenv %s: %s", dir, strerror(errno));
    size_t n = strlen(venv_dir) + sizeof "/bin/python";
    venv_program = malloc(n);
    if (venv_program == NULL)
        srv_die_usage("out of memory");
    snprintf(venv_program, n, "%s/bin/python", venv_dir);
}

/* The venv whose bin/ holds the running srv binary, if any. */
static int from_own_binary(void)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return 0;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';                                  /* .../bin */
    slash = strrchr(exe, '/');
    if (slash == NULL || strcmp(slash, "/bin") != 0)
        return 0;
    *slash = '\0';                                  /* the venv */
    if (exe[0] == '\0' || !usable(exe, "the virtualenv of srv's binary,"))
        return 0;
    use(exe);
    return 1;
}

void srv_venv_resolve(void)
{
    const char *dir = srv_cfg.virtualenv;
    if (dir) {
        char v[128];
        const char *mine = embedded_version();
        const char *got = venv_mismatch(dir, v, sizeof v, mine);
        if (got == NULL)
            srv_die_usage("--virtualenv %s: no pyvenv.cfg there, not a virtualenv", dir);
        if (got != mine)
            srv_die_usage("--virtualenv %s: made with Python %s, but srv embeds Python %s; "
                          "create it with that Python (python%s -m venv)", dir, got, mine, mine);
        use(dir);
        return;
    }
    if (from_own_binary())
        return;
    const char *env = getenv("VIRTUAL_ENV");
    if (env && env[0] && usable(env, "$VIRTUAL_ENV"))
        use(env);
}

const char *srv_venv_dir(void)
{
    return venv_dir;
}

const char *srv_venv_program(const char *argv0)
{
    return venv_program ? venv_program : argv0;
}
