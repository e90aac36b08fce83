/* The fault suite's driver: picks scenarios and start methods, runs each
 * trial in a process of its own (forked from here) under a watchdog,
 * measures what the trial left behind (arena bytes, processes, /dev/shm
 * and socket files), and prints one line per scenario and start method:
 *
 *   fault <scenario> <method> trials=N hangs=H lost=L duplicated=D leaked=K
 *
 * The exit status is non-zero if any count is. Options (and environment):
 *   --trials N      (FAULT_TRIALS, default 3) trials per line
 *   --scenario P    (FAULT_SCENARIO) comma-separated glob patterns of names
 *   --method M      (FAULT_METHOD) fork, spawn or forkserver (default: all)
 *   --seed S        (FAULT_SEED) base seed (default: from the clock)
 *   --trial-seed S  replays one trial with that seed
 *   --hang-ms MS    (FAULT_HANG_MS, default 5000) the deadline of every wait
 *   --list          lists the scenarios
 * FAULT_LINE_BUDGET_S (default 90): a line that has already failed stops
 * once it has run this long (its trials= then says how many ran), so that
 * a hang that repeats in every trial cannot stretch the suite for ever.
 * FAULT_VERBOSE=1 prints a summary of every trial. */
#include "fault.h"

#include <errno.h>
#include <fnmatch.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

void ft_trial_main(const ft_scenario *sc, mproc_start_method m, uint64_t seed, int hang_ms,
                   ft_report *rep);

static const ft_scenario *const tables[] = {ft_queue_scenarios, ft_pool_scenarios,
                                            ft_manager_scenarios, ft_lock_scenarios,
                                            ft_sync_scenarios};

static const mproc_start_method methods[] = {MPROC_START_FORK, MPROC_START_SPAWN,
                                             MPROC_START_FORKSERVER};

static struct {
    int trials;
    const char *scenarios;
    const char *method;
    uint64_t seed;
    bool replay;
    uint64_t trial_seed;
    int hang_ms;
    long line_budget_s;
    bool verbose;
    bool list;
    const char *argv0;
    char tmpdir[256];
    bool private_shm;
} opt;

static bool matches(const char *name)
{
    if (!opt.scenarios || !*opt.scenarios) return true;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", opt.scenarios);
    for (char *save, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
        if (fnmatch(p, name, 0) == 0) return true;
    return false;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* /dev/shm of this family only, when we may (a mount namespace of our
 * own), so that the listing is not disturbed by other programs. */
static void private_dev_shm(void)
{
    if (unshare(CLONE_NEWNS) != 0) return;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return;
    if (mount("fault-shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) return;
    opt.private_shm = true;
}

/* Removes what a trial left in the private TMPDIR (after counting it). */
static void clean_tmpdir(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/* 2>/dev/null", opt.tmpdir);
    int rc = system(cmd);
    (void)rc;
}

static int reap_all(int ms)
{
    long long t0 = mproc_now_ns();
    int n = 0;
    for (;;) {
        int st;
        pid_t r = waitpid(-1, &st, WNOHANG);
        if (r > 0) {
            n++;
            continue;
        }
        if (r < 0 && errno == ECHILD) return n;
        if (ft_ms_since(t0) > ms) return n;
        ft_sleep_ms(2);
    }
}

typedef struct line {
    int trials;
    long hangs, lost, duplicated, leaked;
} line;

static void say(const char *tag, const char *fmt, ...) MPROC_PRINTF(2, 3);
static void say(const char *tag, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fault %s: %s\n", tag, buf);
}

static void run_trial(const ft_scenario *sc, mproc_start_method m, uint64_t seed, ft_report *rep,
                      line *ln)
{
    char tag[200];
    snprintf(tag, sizeof tag, "%s %s seed=0x%016llx", sc->name, mproc_start_method_name(m),
             (unsigned long long)seed);
    memset(rep, 0, sizeof *rep);
    char shm_before[4096], shm_after[4096];
    ft_list_dir("/dev/shm", shm_before, sizeof shm_before);
    size_t a0 = ft_arena_used();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        setpgid(0, 0);
        ft_trial_main(sc, m, seed, opt.hang_ms, rep);
        exit(0);
    }
    setpgid(pid, pid);
    long long t0 = mproc_now_ns(), limit = opt.hang_ms * 12LL;
    if (limit < 60000) limit = 60000;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (ft_ms_since(t0) > limit) {
            say(tag, "HANG: the trial did not end in %lld ms; killing it", limit);
            rep->hangs++;
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        ft_sleep_ms(5);
    }
    if (!rep->finished && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
        say(tag, "LOST: the trial process died (%s %d) before its end",
            WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        rep->lost++;
    }
    /* Whatever outlived the trial process was re-parented to us. */
    pid_t kids[64];
    int nk = ft_children(kids, 64, NULL);
    if (nk > 0) {
        say(tag, "LEAKED: %d processes outlived the trial (first: %d)", nk, (int)kids[0]);
        rep->leaked += nk;
        kill(-pid, SIGKILL);
        for (int i = 0; i < nk && i < 64; i++) kill(kids[i], SIGKILL);
    }
    reap_all(10000);
    size_t a1 = ft_arena_used();
    if (a1 > a0 + rep->arena_allowance) {
        say(tag, "LEAKED: arena use grew by %zu bytes (%ld kills may lose %zu)", a1 - a0,
            rep->kills, rep->arena_allowance);
        rep->leaked++;
    }
    ft_list_dir("/dev/shm", shm_after, sizeof shm_after);
    if (strcmp(shm_before, shm_after) != 0) {
        say(tag, "LEAKED: /dev/shm was \"%s\", is \"%s\"%s", shm_before, shm_after,
            opt.private_shm ? "" : " (shared with other programs)");
        rep->leaked++;
    }
    char left[1024];
    int nleft = ft_list_dir(opt.tmpdir, left, sizeof left);
    if (nleft) { /* a server killed by SIGKILL cannot remove its socket file */
        if (rep->kills == 0) {
            say(tag, "LEAKED: socket files left in TMPDIR: %s", left);
            rep->leaked += nleft;
        } else {
            say(tag, "note: socket files left in TMPDIR after %ld kills: %s", rep->kills, left);
        }
        clean_tmpdir();
    }
    if (opt.verbose)
        say(tag, "trial done in %lld ms: %ld kills, arena %+ld bytes (may lose %zu)",
            ft_ms_since(t0), rep->kills, (long)(a1 - a0), rep->arena_allowance);
    ln->trials++;
    ln->hangs += rep->hangs;
    ln->lost += rep->lost;
    ln->duplicated += rep->duplicated;
    ln->leaked += rep->leaked;
    if (rep->hangs || rep->lost || rep->duplicated || rep->leaked)
        fprintf(stderr, "fault %s: replay: %s --scenario %s --method %s --trial-seed 0x%016llx\n",
                tag, opt.argv0, sc->name, mproc_start_method_name(m), (unsigned long long)seed);
}

static long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtol(s, NULL, 0) : dflt;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [--trials N] [--scenario GLOB[,GLOB]] [--method M] [--seed S]\n"
            "          [--trial-seed S] [--hang-ms MS] [--list]\n",
            opt.argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    opt.argv0 = argv[0];
    opt.trials = (int)env_long("FAULT_TRIALS", 3);
    opt.scenarios = getenv("FAULT_SCENARIO");
    opt.method = getenv("FAULT_METHOD");
    opt.hang_ms = (int)env_long("FAULT_HANG_MS", 5000);
    opt.line_budget_s = env_long("FAULT_LINE_BUDGET_S", 90);
    opt.verbose = env_long("FAULT_VERBOSE", 0) != 0;
    const char *seed_env = getenv("FAULT_SEED");
    opt.seed = seed_env && *seed_env ? strtoull(seed_env, NULL, 0)
                                     : tu_mix64((uint64_t)mproc_now_ns() ^ (uint64_t)getpid());
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list")) {
            opt.list = true;
            continue;
        }
        if (!v) usage();
        if (!strcmp(a, "--trials"))
            opt.trials = atoi(v);
        else if (!strcmp(a, "--scenario"))
            opt.scenarios = v;
        else if (!strcmp(a, "--method"))
            opt.method = v;
        else if (!strcmp(a, "--seed"))
            opt.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--trial-seed"))
            opt.replay = true, opt.trial_seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--hang-ms"))
            opt.hang_ms = atoi(v);
        else
            usage();
        i++;
    }
    if (opt.trials < 1 || opt.hang_ms < 100) usage();
    if (opt.list) {
        for (size_t k = 0; k < sizeof tables / sizeof tables[0]; k++)
            for (const ft_scenario *sc = tables[k]; sc->name; sc++)
                if (matches(sc->name)) printf("%s\n", sc->name);
        return 0;
    }

    /* Sockets of managers go to a directory of our own, /dev/shm is ours
     * when we may, and orphans of the trial come to us. */
    snprintf(opt.tmpdir, sizeof opt.tmpdir, "%s/mproc-fault-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(opt.tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    setenv("TMPDIR", opt.tmpdir, 1);
    private_dev_shm();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = mproc_arena_init(NULL);
    if (rc) {
        fprintf(stderr, "fault: mproc_arena_init -> %s\n", mproc_err_name(rc));
        return 2;
    }
    ft_report *rep = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rep == MAP_FAILED) return 2;
    if (!opt.replay)
        fprintf(stderr, "fault: seed 0x%016llx (FAULT_SEED=0x%016llx repeats this run)%s\n",
                (unsigned long long)opt.seed, (unsigned long long)opt.seed,
                opt.private_shm ? "" : "; /dev/shm is shared with other programs");

    bool failed = false;
    int lines = 0;
    for (size_t k = 0; k < sizeof tables / sizeof tables[0]; k++)
        for (const ft_scenario *sc = tables[k]; sc->name; sc++) {
            if (!matches(sc->name)) continue;
            for (size_t mi = 0; mi < sizeof methods / sizeof methods[0]; mi++) {
                const char *mname = mproc_start_method_name(methods[mi]);
                if (opt.method && *opt.method && strcmp(opt.method, mname) != 0) continue;
                line ln = {0};
                int n = opt.replay ? 1 : opt.trials;
                long long t0 = mproc_now_ns();
                for (int i = 0; i < n; i++) {
                    if ((ln.hangs || ln.lost || ln.duplicated || ln.leaked) &&
                        ft_ms_since(t0) > opt.line_budget_s * 1000) {
                        fprintf(stderr,
                                "fault %s %s: stopped after %d of %d trials (failed, and past "
                                "FAULT_LINE_BUDGET_S=%ld)\n",
                                sc->name, mname, i, n, opt.line_budget_s);
                        break;
                    }
                    uint64_t seed = opt.replay ? opt.trial_seed
                                               : tu_mix64(opt.seed ^ name_hash(sc->name) ^
                                                          ((uint64_t)methods[mi] << 56) ^
                                                          ((uint64_t)i * 0x2545F4914F6CDD1DULL));
                    run_trial(sc, methods[mi], seed, rep, &ln);
                }
                printf("fault %s %s trials=%d hangs=%ld lost=%ld duplicated=%ld leaked=%ld\n",
                       sc->name, mname, ln.trials, ln.hangs, ln.lost, ln.duplicated, ln.leaked);
                lines++;
                if (ln.hangs || ln.lost || ln.duplicated || ln.leaked) failed = true;
            }
        }
    rmdir(opt.tmpdir);
    if (!lines) {
        fprintf(stderr, "fault: no scenario matches\n");
        return 2;
    }
    return failed ? 1 : 0;
}
