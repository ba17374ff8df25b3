/*
 * master.c - the pre-fork master.
 *
 * The master is a plain C process with no interpreter and no event loop
 * library.  It keeps every signal it handles blocked and reads them from a
 * signalfd, in one poll() with the --metrics-bind endpoint's sockets
 * (metrics_http.c: non-blocking, a few clients, each with a deadline, so a
 * slow scrape never delays a signal), waking at least every TICK_MS to reap
 * children, check heartbeats and keep the number of workers at its target.
 * That makes every transition (a death, a reload, a stop) happen in one
 * place, in order, with no async-signal-safety concerns.
 *
 * Workers are forked with the listening sockets already bound, unblock the
 * signals, and run srv_worker_run().  Each has a slot in a shared anonymous
 * mapping where it writes a heartbeat every second, sets `ready` once its
 * app is loaded and its loop runs, and counts its metrics.  When a worker is
 * reaped its counters are added to `retired` and its slot's are zeroed, so
 * that the sums a scrape reports never go backwards.
 *
 * Generations: SIGHUP starts a new generation of workers (each imports the
 * app afresh) and only once all of them are ready sends SIGTERM to the old
 * generation, which finishes its in-flight requests.  The listening sockets
 * never close, so no connection is refused or reset during a reload.  If a
 * new worker cannot load the app, the reload is abandoned and the old
 * workers keep serving.  A SIGHUP first re-reads the config file
 * (settings.c); a bad file abandons the reload the same way.
 */
#include "srv/clock.h"
#include "srv/master.h"
#include "srv/config.h"
#include "srv/log.h"
#include "srv/loop.h"
#include "srv/metrics.h"
#include "srv/metrics_http.h"
#include "srv/settings.h"
#include "srv/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 1024
#define BACKOFF_MAX 30.0
#define QUICK_DEATH 5.0        /* a worker dying sooner than this is crashing */
#define TICK_MS 200            /* the longest the master sleeps */

typedef struct worker_proc {
    pid_t pid;
    int slot;
    int generation;
    double started;
    double term_sent;          /* 0, or when SIGTERM went out */
    unsigned stopping:1;       /* we asked it to stop */
    unsigned was_ready:1;
} worker_proc;


static srv_slot *slots;
static worker_proc procs[MAX_SLOTS];
static int nprocs;
static int target;
static int generation;
static int reloading;          /* a new generation is booting */
static int ever_ready;         /* some worker has loaded the app */
static int stopping;
static double stop_deadline;
static double next_spawn_at;
static int crash_streak;
static int exit_status;
static sigset_t handled;
static int sigfd = -1;         /* the handled signals, readable */
static srv_metrics retired;    /* counters of the workers that exited */
static uint64_t worker_restarts;
static int saved_argc;         /* for re-reading the config at SIGHUP */
static char **saved_argv;

static int free_slot(void)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (slots[i].pid == 0)
            return i;
    return -1;
}

/* The master's control signals reach workers too when they are sent to the
 * process group (a terminal hangup, kill -HUP -PGID): a worker must neither
 * die of SIGHUP mid-request nor stop on SIGTTIN/SIGTTOU. */
static void ignore_master_signals(void)
{
    signal(SIGHUP, SIG_IGN);
    signal(SIGTTIN, SIG_IGN);
    signal(SIGTTOU, SIG_IGN);
}

static void spawn(const char *argv0)
{
    int slot = free_slot();
    if (slot < 0 || nprocs >= MAX_SLOTS) {
        srv_error("no free worker slot");
        return;
    }
    memset((void *)&slots[slot], 0, sizeof slots[slot]);
    slots[slot].pid = -1;   /* reserved until the child writes its pid */
    pid_t master = getpid();
    fflush(NULL);   /* nothing buffered here is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        srv_error("fork: %s", strerror(errno));
        slots[slot].pid = 0;
        return;
    }
    if (pid == 0) {
        /* The worker: its own signal handling, and it dies with the master. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        srv_slot *me = &slots[slot];
        srv_my_metrics = &me->metrics;
        srv_listeners_own_paths = 0;
        close(sigfd);
        srv_metrics_http_forget();
        srv_settings_forget();
        me->pid = getpid();
        me->beat = srv_monotonic();
        srv_loop_catch_early_signals();
        ignore_master_signals();
        sigprocmask(SIG_UNBLOCK, &handled, NULL);
        if (getppid() != master)
            _exit(0);   /* the master died between fork and prctl (the new
                         * parent need not be pid 1: a subreaper) */
        exit(srv_worker_run(argv0, me));
    }
    slots[slot].pid = pid;
    worker_proc *w = &procs[nprocs++];
    memset(w, 0, sizeof *w);
    w->pid = pid;
    w->slot = slot;
    w->generation = generation;
    w->started = srv_monotonic();
    srv_debug("spawned worker %d (generation %d)", pid, generation);
}

static void signal_worker(worker_proc *w, int sig)
{
    if (sig == SIGTERM && !w->term_sent)
        w->term_sent = srv_monotonic();
    w->stopping = 1;
    kill(w->pid, sig);
}

static int count_generation(int gen, int ready_only)
{
    int n = 0;
    for (int i = 0; i < nprocs; i++)
        if (procs[i].generation == gen && !procs[i].stopping
            && (!ready_only || slots[procs[i].slot].ready))
            n++;
    return n;
}

static void forget(int i)
{
    srv_slot *s = &slots[procs[i].slot];
    srv_metrics_add_counters(&retired, &s->metrics);
    memset((void *)&s->metrics, 0, sizeof s->metrics);
    s->pid = 0;
    s->ready = 0;
    procs[i] = procs[--nprocs];
}

static void abandon_reload(void)
{
    srv_error("reload abandoned: a new worker could not load the app; the old workers keep serving");
    for (int i = 0; i < nprocs; i++)
        if (procs[i].generation == generation)
            signal_worker(&procs[i], SIGTERM);
    generation--;
    reloading = 0;
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int i;
        for (i = 0; i < nprocs && procs[i].pid != pid; i++)
            ;
        if (i == nprocs)
            continue;
        worker_proc w = procs[i];
        int was_ready = w.was_ready || slots[w.slot].ready;
        forget(i);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (w.stopping || stopping) {
            srv_debug("worker %d exited (%d)", pid, code);
            continue;
        }
        if (code == SRV_EXIT_USAGE && !was_ready) {
            /* The app cannot be loaded: a usage error, not a crash. */
            if (reloading && w.generation == generation) {
                abandon_reload();
            } else if (!ever_ready) {
                stopping = 1;
                exit_status = SRV_EXIT_USAGE;
                stop_deadline = srv_monotonic() + 5;
                for (int j = 0; j < nprocs; j++)
                    signal_worker(&procs[j], SIGTERM);
            }
            continue;
        }
        worker_restarts++;   /* it stopped unasked: a replacement is due */
        if (code == 0) {
            srv_info("worker %d retired", pid);   /* --max-requests */
            crash_streak = 0;
            continue;
        }
        if (WIFSIGNALED(status))
            srv_error("worker %d died from signal %d (%s)", pid, WTERMSIG(status),
                      strsignal(WTERMSIG(status)));
        else
            srv_error("worker %d exited with status %d", pid, code);
        double now = srv_monotonic();
        if (now - w.started < QUICK_DEATH) {
            crash_streak++;
            double delay = 0.1 * (1 << (crash_streak < 9 ? crash_streak : 9));
            if (delay > BACKOFF_MAX)
                delay = BACKOFF_MAX;
            next_spawn_at = now + delay;
            srv_warn("worker crash loop? next spawn in %.1f s", delay);
        } else {
            crash_streak = 0;
        }
    }
}

static void check_heartbeats(void)
{
    if (srv_cfg.worker_timeout <= 0)
        return;
    double now = srv_monotonic();
    for (int i = 0; i < nprocs; i++) {
        worker_proc *w = &procs[i];
        srv_slot *s = &slots[w->slot];
        if (!s->ready)
            continue;
        w->was_ready = 1;
        if (now - s->beat > srv_cfg.worker_timeout && !(w->stopping && w->term_sent == 0)) {
            srv_error("worker %d: no heartbeat for %.0f s (--timeout %g): killing it",
                      w->pid, now - s->beat, srv_cfg.worker_timeout);
            w->stopping = 0;   /* a replacement is wanted */
            kill(w->pid, SIGKILL);
            s->beat = now;     /* do not kill it twice */
        }
    }
}

static void maintain(const char *argv0)
{
    double now = srv_monotonic();
    for (int i = 0; i < nprocs; i++)
        if (slots[procs[i].slot].ready) {
            procs[i].was_ready = 1;
            if (!ever_ready) {
                ever_ready = 1;
                srv_listeners_announce();
                srv_metrics_http_announce();
            }
        }
    if (stopping) {
        for (int i = 0; i < nprocs; i++)
            if (now > stop_deadline && procs[i].pid > 0) {
                srv_warn("worker %d did not stop in time: killing it", procs[i].pid);
                kill(procs[i].pid, SIGKILL);
            }
        return;
    }
    if (reloading && count_generation(generation, 1) >= target) {
        srv_info("reload: %d new worker(s) ready; stopping the old ones", target);
        for (int i = 0; i < nprocs; i++)
            if (procs[i].generation != generation)
                signal_worker(&procs[i], SIGTERM);
        reloading = 0;
    }
    int live = count_generation(generation, 0);
    while (live < target && now >= next_spawn_at) {
        spawn(argv0);
        live++;
    }
    while (live > target) {
        /* One fewer (SIGTTOU): the oldest of this generation goes. */
        int oldest = -1;
        for (int i = 0; i < nprocs; i++)
            if (procs[i].generation == generation && !procs[i].stopping
                && (oldest < 0 || procs[i].started < procs[oldest].started))
                oldest = i;
        if (oldest < 0)
            break;
        signal_worker(&procs[oldest], SIGTERM);
        live--;
    }
    /* Old-generation workers that ignore SIGTERM past the graceful timeout. */
    for (int i = 0; i < nprocs; i++)
        if (procs[i].term_sent && now - procs[i].term_sent > srv_cfg.graceful_timeout + 5)
            kill(procs[i].pid, SIGKILL);
}

static void begin_stop(int sig)
{
    stopping = 1;
    stop_deadline = srv_monotonic() + (sig == SIGQUIT ? 2 : srv_cfg.graceful_timeout + 5);
    for (int i = 0; i < nprocs; i++)
        signal_worker(&procs[i], sig == SIGQUIT ? SIGQUIT : SIGTERM);
}

/* Re-reads the config file; a changed `workers` becomes the target (else
 * TTIN/TTOU's count stays).  -1 (logged): the reload is abandoned. */
static int reload_settings(void)
{
    int workers = srv_cfg.workers;
    if (srv_settings_reload(saved_argc, saved_argv) < 0) {
        srv_error("SIGHUP: reload abandoned; the old workers keep serving");
        return -1;
    }
    if (srv_cfg.workers != workers)
        target = srv_cfg.workers;
    return 0;
}

static void handle(int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
        srv_info("%s: stopping gracefully", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        begin_stop(sig);
        break;
    case SIGQUIT:
        srv_info("SIGQUIT: stopping now");
        begin_stop(sig);
        break;
    case SIGHUP:
        if (stopping)
            break;
        if (reloading) {
            srv_warn("SIGHUP: a reload is already in progress");
            break;
        }
        if (reload_settings() < 0)
            break;
        srv_info("SIGHUP: reloading: starting %d new worker(s)", target);
        generation++;
        reloading = 1;
        crash_streak = 0;
        next_spawn_at = 0;
        break;
    case SIGTTIN:
        if (target < MAX_SLOTS / 2)
            target++;
        srv_info("SIGTTIN: %d worker(s)", target);
        break;
    case SIGTTOU:
        if (target > 1)
            target--;
        srv_info("SIGTTOU: %d worker(s)", target);
        break;
    default:
        break;
    }
}

static void write_pidfile(void)
{
    if (srv_cfg.pidfile == NULL)
        return;
    FILE *f = fopen(srv_cfg.pidfile, "w");
    if (f == NULL)
        srv_die_usage("--pid %s: %s", srv_cfg.pidfile, strerror(errno));
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
}

void srv_master_block_signals(void)
{
    sigemptyset(&handled);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&handled, sigs[i]);
    sigprocmask(SIG_BLOCK, &handled, NULL);
}

/* Handles every signal the signalfd holds. */
static void take_signals(void)
{
    struct signalfd_siginfo si[16];
    ssize_t n;
    while ((n = read(sigfd, si, sizeof si)) > 0)
        for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++)
            if (si[i].ssi_signo != SIGCHLD)
                handle((int)si[i].ssi_signo);
}

/* Sleeps until a signal, a metrics client's socket, a client's deadline or
 * the tick, and deals with the signals and clients. */
static void wait_for_events(void)
{
    struct pollfd fds[1 + SRV_METRICS_POLL_FDS];
    int timeout_ms = TICK_MS;
    fds[0] = (struct pollfd){sigfd, POLLIN, 0};
    int n = srv_metrics_http_poll_fds(fds + 1, SRV_METRICS_POLL_FDS, &timeout_ms);
    if (poll(fds, (nfds_t)(1 + n), timeout_ms) < 0 && errno != EINTR) {
        srv_error("poll: %s", strerror(errno));
        usleep(TICK_MS * 1000);
        return;
    }
    if (fds[0].revents)
        take_signals();
    srv_metrics_http_serve(fds + 1, n, srv_master_snapshot);
}

void srv_master_snapshot(srv_metrics_snapshot *s)
{
    memset(s, 0, sizeof *s);
    srv_metrics_add_counters(&s->sum, &retired);
    for (int i = 0; i < nprocs; i++) {
        const srv_metrics *m = &slots[procs[i].slot].metrics;
        srv_metrics_add_counters(&s->sum, m);
        srv_metrics_add_gauges(&s->sum, m);
    }
    s->worker_restarts = worker_restarts;
    s->workers = nprocs;
}

int srv_master_run(int argc, char **argv)
{
    const char *argv0 = argv[0];
    saved_argc = argc;
    saved_argv = argv;

    slots = mmap(NULL, sizeof(srv_slot) * MAX_SLOTS, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED)
        srv_die_usage("cannot map the worker slots: %s", strerror(errno));
    sigfd = signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0)
        srv_die_usage("signalfd: %s", strerror(errno));
    target = srv_cfg.workers;
    write_pidfile();
    srv_debug("master %d: starting %d worker(s)", (int)getpid(), target);

    while (!stopping || nprocs > 0) {
        maintain(argv0);
        if (stopping && nprocs == 0)
            break;
        wait_for_events();
        reap();
        check_heartbeats();
    }
    srv_listeners_close();
    srv_metrics_http_close();
    close(sigfd);
    if (srv_cfg.pidfile)
        unlink(srv_cfg.pidfile);
    if (ever_ready)
        srv_info("master %d: stopped", (int)getpid());
    return exit_status;
}
