/* The trial process's tools: random numbers, participants (start, adopt,
 * join with a deadline), waiting on progress, and the faults themselves,
 * sent from outside with kill(2). */
#include "fault.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Arena bytes one thread's allocator cache may hold (docs/arena.md: up to
 * 16 free blocks of each class up to 512 bytes, lost when the thread is
 * killed): 16 * (32 + 48 + ... + 128 + 160 + 192 + ... + 512). */
#define FT_TCACHE_BYTES ((size_t)16 * 3056)

uint64_t ft_rand(ft_trial *t)
{
    uint64_t z = (t->rng += 0x9E3779B97F4A7C15ULL);
    return tu_mix64(z);
}

uint64_t ft_range(ft_trial *t, uint64_t lo, uint64_t hi)
{
    return lo + ft_rand(t) % (hi - lo + 1);
}

long long ft_ms_since(long long t0)
{
    return (mproc_now_ns() - t0) / 1000000;
}

void ft_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void vnote(const char *tag, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "fault %s [pid %d]: ", tag, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof buf) return;
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    if (m < 0) return;
    size_t len = (size_t)n +
                 ((size_t)m < sizeof buf - (size_t)n - 1 ? (size_t)m : sizeof buf - (size_t)n - 2);
    buf[len++] = '\n';
    ssize_t w = write(2, buf, len);
    (void)w;
}

void ft_note(const ft_trial *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(t->tag, fmt, ap);
    va_end(ap);
}

void ft_child_note(const ft_hdr *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(h->tag, fmt, ap);
    va_end(ap);
}

void ft_hdr_init(const ft_trial *t, ft_hdr *h, int index)
{
    memset(h, 0, sizeof *h);
    snprintf(h->tag, sizeof h->tag, "%s", t->tag);
    h->hang_ms = t->hang_ms;
    h->index = index;
    h->seed = tu_mix64(t->seed ^ (uint64_t)(index + 1) * 0x1234567ULL);
}

static void vcount(ft_trial *t, long *field, long n, const char *label, const char *fmt, va_list ap)
{
    char f2[512];
    snprintf(f2, sizeof f2, "%s: %s", label, fmt);
    vnote(t->tag, f2, ap);
    *field += n;
}

#define COUNT(field, label)                                                                        \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        vcount(t, &t->rep->field, n, label, fmt, ap);                                              \
        va_end(ap);                                                                                \
    } while (0)

void ft_hang(ft_trial *t, const char *fmt, ...)
{
    long n = 1;
    COUNT(hangs, "HANG");
}

void ft_lost(ft_trial *t, long n, const char *fmt, ...)
{
    COUNT(lost, "LOST");
}

void ft_dup(ft_trial *t, long n, const char *fmt, ...)
{
    COUNT(duplicated, "DUPLICATED");
}

void ft_leak(ft_trial *t, long n, const char *fmt, ...)
{
    COUNT(leaked, "LEAKED");
}

void ft_err(ft_trial *t, const char *what, int rc)
{
    ft_lost(t, 1, "%s -> %s (%s)", what, mproc_err_name(rc), mproc_strerror(rc));
}

void *ft_calloc(size_t n)
{
    void *p;
    int rc = mproc_arena_calloc(&p, n);
    if (rc) {
        fprintf(stderr, "fault: mproc_arena_calloc(%zu) -> %s\n", n, mproc_err_name(rc));
        abort();
    }
    return p;
}

bool ft_gate(_Atomic int *gate, const ft_hdr *h)
{
    long long t0 = mproc_now_ns();
    while (gate && !atomic_load(gate)) {
        mproc_process *pp = mproc_parent_process();
        if (pp && !mproc_process_is_alive(pp)) return false;
        if (ft_ms_since(t0) > h->hang_ms) {
            ft_child_note(h, "HANG: the family parent never let its children start");
            return false;
        }
        ft_sleep_ms(1);
    }
    return true;
}

void ft_linger(const ft_hdr *h)
{
    long long t0 = mproc_now_ns();
    while (ft_ms_since(t0) < 4LL * h->hang_ms) ft_sleep_ms(10);
}

int ft_family_child(ft_family *f, const mproc_context *ctx, mproc_target_fn fn, const void *arg,
                    size_t len, int role, int tag, bool daemon, mproc_process **out)
{
    if (atomic_load(&f->n) >= FT_MAXFAM) return MPROC_EINVAL; /* a family of FT_MAXFAM at most */
    mproc_process *p;
    int rc =
        mproc_context_process_new(ctx, &p, fn, arg, len, &(mproc_process_opts){.daemon = daemon});
    if (!rc) rc = mproc_process_start(p);
    if (rc) return rc;
    int i = atomic_load(&f->n);
    f->role[i] = role;
    f->daemon[i] = daemon;
    f->tag[i] = tag;
    atomic_store(&f->pid[i], mproc_process_pid(p));
    atomic_store(&f->n, i + 1);
    if (out) *out = p;
    return 0;
}

void ft_adopt_family(ft_trial *t, ft_family *f)
{
    int n = atomic_load(&f->n);
    for (int i = 0; i < n; i++) {
        ft_part *p = ft_adopt(t, atomic_load(&f->pid[i]), f->role[i], f->daemon[i]);
        p->tag = f->tag[i];
    }
}

/* ---- participants ------------------------------------------------------------------------- */

static ft_part *new_part(ft_trial *t, pid_t pid, int role, bool daemon)
{
    if (t->nparts == FT_MAXPARTS) {
        ft_note(t, "too many participants");
        abort();
    }
    ft_part *p = &t->parts[t->nparts++];
    *p = (ft_part){.pid = pid, .role = role, .daemon = daemon};
    return p;
}

ft_part *ft_start(ft_trial *t, mproc_target_fn fn, const void *arg, size_t len, int role,
                  bool daemon)
{
    mproc_process *proc;
    int rc = mproc_context_process_new(t->ctx, &proc, fn, arg, len,
                                       &(mproc_process_opts){.daemon = daemon});
    if (rc) {
        ft_err(t, "mproc_process_new", rc);
        return NULL;
    }
    if ((rc = mproc_process_start(proc)) != 0) {
        ft_err(t, "mproc_process_start", rc);
        mproc_process_free(proc);
        return NULL;
    }
    ft_part *p = new_part(t, mproc_process_pid(proc), role, daemon);
    p->p = proc;
    return p;
}

ft_part *ft_adopt(ft_trial *t, pid_t pid, int role, bool daemon)
{
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].pid == pid) return &t->parts[i];
    return new_part(t, pid, role, daemon);
}

bool ft_alive(const ft_part *p)
{
    return p && !p->done;
}

static int status_code(int st)
{
    return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

/* Waits for a process the trial did not start (reparented to it: the trial
 * process is a subreaper). 1 when reaped (*code set), 0 on timeout. */
static int reap_pid(pid_t pid, int ms, int *code)
{
    long long t0 = mproc_now_ns();
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *code = status_code(st);
            return 1;
        }
        if (r < 0 && errno == ECHILD) {
            /* not (yet) our child: still the child of a dying parent? */
            if (kill(pid, 0) != 0) {
                *code = FT_CODE_REAPED; /* its parent had reaped it */
                return 1;
            }
        }
        if (ft_ms_since(t0) >= ms) return 0;
        ft_sleep_ms(2);
    }
}

static void count_exit(ft_trial *t, ft_part *p)
{
    if (p->code == FT_EXIT_HANG)
        ft_hang(t, "participant %d (role %d) reported a hang", p->pid, p->role);
    if (p->code == FT_EXIT_ERR || p->code == FT_EXIT_BAD)
        ft_lost(t, 1, "participant %d (role %d) reported a failure (exit %d)", p->pid, p->role,
                p->code);
}

int ft_join(ft_trial *t, ft_part *p, int ms)
{
    if (!p || p->done) return p ? p->code : -1000;
    if (p->p) {
        int rc = mproc_process_join(p->p, ms);
        if (rc == MPROC_ETIMEDOUT) {
            ft_hang(t, "participant %d (role %d%s) still running after %d ms", p->pid, p->role,
                    p->killed ? ", killed" : "", ms);
            mproc_process_kill(p->p);
            rc = mproc_process_join(p->p, 10000);
        }
        if (rc) {
            ft_err(t, "mproc_process_join", rc);
            p->code = -1000;
        } else if ((rc = mproc_process_exitcode(p->p, &p->code)) != 0) {
            ft_err(t, "mproc_process_exitcode", rc);
        }
        rc = mproc_process_free(p->p);
        if (rc) ft_err(t, "mproc_process_free", rc);
        p->p = NULL;
    } else if (!reap_pid(p->pid, ms, &p->code)) {
        ft_hang(t, "process %d (role %d%s) still running after %d ms", p->pid, p->role,
                p->daemon ? ", a daemon" : "", ms);
        kill(p->pid, SIGKILL);
        if (!reap_pid(p->pid, 10000, &p->code)) p->code = -1000;
    }
    p->done = true;
    ft_reaped(t, p->pid, p->code);
    count_exit(t, p);
    return p->code;
}

void ft_join_all(ft_trial *t, int ms)
{
    ft_join_roles(t, ~0u, ms);
}

void ft_join_roles(ft_trial *t, unsigned role_mask, int ms)
{
    for (int i = 0; i < t->nparts; i++)
        if (role_mask & (1u << t->parts[i].role)) ft_join(t, &t->parts[i], ms);
}

void ft_kill_rest(ft_trial *t)
{
    for (int i = 0; i < t->nparts; i++) {
        ft_part *p = &t->parts[i];
        if (p->done) continue;
        kill(p->pid, SIGCONT);
        kill(p->pid, SIGKILL);
        ft_join(t, p, 10000);
    }
}

/* ---- progress and faults -------------------------------------------------------------------- */

bool ft_wait_progress(ft_trial *t, _Atomic uint64_t *progress, uint64_t threshold)
{
    uint64_t last = atomic_load(progress);
    long long t0 = mproc_now_ns();
    int polls = 0;
    while (last < threshold) {
        if (++polls < 200) {
            sched_yield();
        } else {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        uint64_t now = atomic_load(progress);
        if (now != last) {
            last = now;
            t0 = mproc_now_ns();
            continue;
        }
        if (ft_ms_since(t0) > t->hang_ms) {
            bool any = false;
            for (int i = 0; i < t->nparts; i++) {
                ft_part *p = &t->parts[i];
                if (p->done) continue;
                if (p->p ? mproc_process_is_alive(p->p) : kill(p->pid, 0) == 0) any = true;
            }
            if (any)
                ft_hang(t, "no progress for %d ms at %llu (waiting for %llu)", t->hang_ms,
                        (unsigned long long)last, (unsigned long long)threshold);
            return false;
        }
    }
    return true;
}

void ft_jitter(ft_trial *t)
{
    long long us = (long long)ft_range(t, 0, 300);
    long long t0 = mproc_now_ns();
    while (mproc_now_ns() - t0 < us * 1000) {
    }
}

ft_part *ft_pick(ft_trial *t, unsigned role_mask)
{
    int idx[FT_MAXPARTS], n = 0;
    for (int i = 0; i < t->nparts; i++) {
        ft_part *p = &t->parts[i];
        if (p->done || p->killed || !(role_mask & (1u << p->role))) continue;
        if (p->p && !mproc_process_is_alive(p->p)) continue;
        idx[n++] = i;
    }
    return n ? &t->parts[idx[ft_range(t, 0, (uint64_t)n - 1)]] : NULL;
}

/* Records pid's descendants (from /proc) with their thread counts. */
static void record_descendants(ft_trial *t, pid_t root)
{
    pid_t q[64];
    int nq = 0;
    q[nq++] = root;
    for (int i = 0; i < nq; i++) {
        pid_t kids[64];
        int n = ft_children_of(q[i], kids, 64);
        for (int k = 0; k < n && k < 64 && nq < 64; k++) {
            q[nq++] = kids[k];
            if (t->ndoomed < 64)
                t->doomed[t->ndoomed++].pid = kids[k],
                t->doomed[t->ndoomed - 1].threads = ft_threads(kids[k]);
        }
    }
}

void ft_reaped(ft_trial *t, pid_t pid, int code)
{
    if (code != -SIGKILL && code != -SIGTERM) return;
    for (int i = 0; i < t->nparts; i++)
        if (t->parts[i].pid == pid && t->parts[i].killed) return; /* counted at the kill */
    int threads = 1;
    for (int i = 0; i < t->ndoomed; i++)
        if (t->doomed[i].pid == pid && t->doomed[i].threads > 0) threads = t->doomed[i].threads;
    t->rep->kills++;
    t->rep->arena_allowance += (size_t)threads * FT_TCACHE_BYTES + t->max_block;
}

int ft_kill_pid(ft_trial *t, pid_t pid)
{
    record_descendants(t, pid);
    int threads = ft_threads(pid);
    if (!threads) threads = 1;
    kill(pid, SIGKILL);
    t->rep->kills++;
    t->rep->arena_allowance += (size_t)threads * FT_TCACHE_BYTES + t->max_block;
    return threads;
}

void ft_kill(ft_trial *t, ft_part *p)
{
    p->threads = ft_kill_pid(t, p->pid);
    p->killed = true;
}

void ft_stop_pid(ft_trial *t, pid_t pid, int ms_max)
{
    kill(pid, SIGSTOP);
    ft_sleep_ms((long)ft_range(t, 1, (uint64_t)ms_max));
    kill(pid, SIGCONT);
}

void ft_stop(ft_trial *t, ft_part *p, int ms_max)
{
    ft_stop_pid(t, p->pid, ms_max);
}

ft_part *ft_strike(ft_trial *t, unsigned role_mask)
{
    ft_part *v = ft_pick(t, role_mask);
    if (!v) return NULL;
    if (t->sc->fault == FT_STOP) {
        ft_stop(t, v, 30);
    } else {
        ft_kill(t, v);
        ft_join(t, v, t->hang_ms);
    }
    return v;
}

int ft_faults(ft_trial *t, _Atomic uint64_t *progress, const uint64_t *th, int nth,
              unsigned role_mask, void (*on_kill)(ft_trial *t, ft_part *victim, void *ud), void *ud)
{
    int nk = 0;
    for (int i = 0; i < nth; i++) {
        if (!ft_wait_progress(t, progress, th[i])) break;
        ft_jitter(t);
        ft_part *v = ft_strike(t, role_mask);
        if (!v) break;
        if (!v->killed) continue;
        nk++;
        if (on_kill) on_kill(t, v, ud);
    }
    return nk;
}

int ft_thresholds(ft_trial *t, uint64_t total, uint64_t out[3])
{
    if (total < 4) total = 4;
    if (t->sc->fault != FT_STOP) {
        out[0] = ft_range(t, 1, total * 4 / 5);
        return 1;
    }
    for (int i = 0; i < 3; i++) out[i] = ft_range(t, 1, total * 4 / 5);
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (out[j] < out[i]) {
                uint64_t x = out[i];
                out[i] = out[j];
                out[j] = x;
            }
    return 3;
}
