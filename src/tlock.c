/* The light owner-checked lock of internal/tlock.h. */
#include "internal/tlock.h"
#include "internal/platform.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TLOCK_WAITERS  0x80000000u
#define TLOCK_SLICE_NS 10000000LL /* how often a waiter checks its holder */
#define TLOCK_SPINS    100

/* The holder is gone, or a zombie (killed, not yet reaped: its thread
 * will never run again). */
static bool holder_dead(uint32_t w)
{
    pid_t tid = (pid_t)(w & ~TLOCK_WAITERS);
    if (kill(tid, 0) != 0) return errno == ESRCH;
    char path[40], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the state follows the name */
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

int mproc__tlock_acquire(mproc__tlock *l, const mproc__deadline *dl)
{
    uint32_t me = (uint32_t)mproc__tid(), w = 0;
    if (MPROC__LIKELY(atomic_compare_exchange_strong_explicit(
            &l->word, &w, me, memory_order_acquire, memory_order_relaxed)))
        return 0;
    for (int i = 0; i < TLOCK_SPINS; i++) {
        w = 0;
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&l->word, &w, me, memory_order_acquire,
                                                    memory_order_relaxed))
            return 0;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    for (;;) {
        w = atomic_load(&l->word);
        if (w == 0) {
            /* Others may be asleep: keep the waiters bit so release wakes one. */
            if (atomic_compare_exchange_strong(&l->word, &w, me | TLOCK_WAITERS)) return 0;
            continue;
        }
        if (!(w & TLOCK_WAITERS)) {
            if (!atomic_compare_exchange_strong(&l->word, &w, w | TLOCK_WAITERS)) continue;
            w |= TLOCK_WAITERS;
        }
        mproc__deadline slice = {.at_ns = mproc_now_ns() + TLOCK_SLICE_NS};
        if (!dl->forever && dl->at_ns < slice.at_ns) slice.at_ns = dl->at_ns;
        if (mproc__futex_wait(&l->word, w, &slice) != MPROC_ETIMEDOUT) continue;
        if (holder_dead(w) && atomic_compare_exchange_strong(&l->word, &w, me | TLOCK_WAITERS))
            return MPROC_EOWNERDEAD;
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
    }
}

void mproc__tlock_release(mproc__tlock *l)
{
    if (atomic_exchange_explicit(&l->word, 0, memory_order_release) & TLOCK_WAITERS)
        mproc__futex_wake(&l->word, 1);
}
