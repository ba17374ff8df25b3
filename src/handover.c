/*
 * handover.c - the exec into the Python interpreter (see handover.h).
 *
 * The interpreter is started as `python -P -c BOOT MODULE SRV-ARGV...`:
 * BOOT loads MODULE by its path (nothing is added to sys.path; -P keeps the
 * working directory out of it too, as the embedded interpreter does) and
 * calls its main() with srv's argv, whose first word stays srv's own path,
 * so `ps` and `pgrep -f` still show the srv command line after the
 * interpreter's.
 */
#include "srv/handover.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char boot[] =
    "import sys, importlib.util as u; s = u.spec_from_file_location('_srv_host', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); sys.exit(m.main(sys.argv[2:]))";

int srv_handover_module(const char *self, char *out, size_t outlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", self);
    const char *d = dirname(dir);
    static const char *const places[] = {"%s/_srv_host.so", "%s/../lib/srv/_srv_host.so"};
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        int n = snprintf(out, outlen, places[i], d);
        if (n > 0 && (size_t)n < outlen && access(out, R_OK) == 0)
            return 0;
    }
    return -1;
}

int srv_handover_exec(const char *python, const char *module, int argc, char **argv)
{
    char **av = calloc((size_t)argc + 6, sizeof *av);
    if (av == NULL)
        return -1;
    int k = 0;
    av[k++] = (char *)python;
    av[k++] = "-P";
    av[k++] = "-c";
    av[k++] = (char *)boot;
    av[k++] = (char *)module;
    for (int i = 0; i < argc; i++)
        av[k++] = argv[i];
    execv(python, av);
    int e = errno;
    free(av);
    errno = e;
    return -1;
}
