/*
 * fault.h - fault injection for tests: make one named step fail once.
 *
 * Owns the SRV_FAULT_INJECT environment variable, "SITE:N[,SITE:N...]": the
 * Nth time (from 1) a worker passes the named site, srv_fault() says to fail
 * there, once.  Tests use it to prove that an allocation failure on the
 * request path ends that request cleanly and leaves the worker serving;
 * without the variable every check is one load of a zero flag.
 *
 * Sites: "remote_addr" (the REMOTE_ADDR/REMOTE_PORT strings of a
 * connection), "worker_switch" (the switch into a worker greenlet),
 * "held_output_full" (a send of held output: the socket takes one byte and
 * is then full, so the rest waits for the write watcher).  A site may be
 * named more than once, each with its own N.
 */
#ifndef SRV_FAULT_H
#define SRV_FAULT_H

extern int srv_faults_armed;

/* Reads SRV_FAULT_INJECT. */
void srv_fault_init(void);

int srv_fault_hit(const char *site);

/* Should the step named `site` fail now? */
static inline int srv_fault(const char *site)
{
    return srv_faults_armed && srv_fault_hit(site);
}

#endif
