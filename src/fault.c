/*
 * fault.c - the SRV_FAULT_INJECT counters (see fault.h).
 */
#include "srv/fault.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FAULTS 8

int srv_faults_armed;

static struct {
    char site[32];
    long at;      /* fail on this hit */
    long hits;
} faults[MAX_FAULTS];
static int nfaults;

void srv_fault_init(void)
{
    const char *spec = getenv("SRV_FAULT_INJECT");
    while (spec && *spec && nfaults < MAX_FAULTS) {
        const char *colon = strchr(spec, ':');
        size_t len = colon ? (size_t)(colon - spec) : 0;
        if (colon == NULL || len == 0 || len >= sizeof faults[0].site)
            break;
        memcpy(faults[nfaults].site, spec, len);
        faults[nfaults].site[len] = '\0';
        faults[nfaults].at = strtol(colon + 1, (char **)&spec, 10);
        nfaults++;
        if (*spec == ',')
            spec++;
    }
    srv_faults_armed = nfaults > 0;
}

int srv_fault_hit(const char *site)
{
    for (int i = 0; i < nfaults; i++)
        if (strcmp(faults[i].site, site) == 0 && ++faults[i].hits == faults[i].at)
            return 1;
    return 0;
}
