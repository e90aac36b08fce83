/* Internal helpers of the base layer: errno mapping, deadlines, panics,
 * start-up (the module registry itself: base/module.h). */
#ifndef MPROC_INTERNAL_BASE_H
#define MPROC_INTERNAL_BASE_H

#include "base/settings.h"
#include "mproc/base.h"

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

#define MPROC__NORETURN    __attribute__((noreturn))
#define MPROC__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MPROC__LIKELY(x)   __builtin_expect(!!(x), 1)
#define MPROC__COUNTOF(a)  (sizeof(a) / sizeof((a)[0]))

/* 1 in a ThreadSanitizer build (gcc defines __SANITIZE_THREAD__, clang
 * answers __has_feature), else 0. */
#if defined(__SANITIZE_THREAD__)
#define MPROC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPROC__TSAN 1
#endif
#endif
#ifndef MPROC__TSAN
#define MPROC__TSAN 0
#endif

/* Happens-before that ThreadSanitizer cannot see: memory of the arena
 * passes between the threads of one process through other processes (a
 * message put by one thread, taken by another process, whose block is
 * reused for a message that a second thread of the first process gets).
 * A release on an address by the first thread and an acquire on it by the
 * second stand in for that chain. No code outside TSan builds. */
#if MPROC__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define MPROC__TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define MPROC__TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define MPROC__TSAN_ACQUIRE(p) ((void)0)
#define MPROC__TSAN_RELEASE(p) ((void)0)
#endif

/* gcc's static analyzer (`make analyze`) silenced for one warning, w
 * ("-Wanalyzer-..."), from MPROC__ANALYZER_OFF(w) to MPROC__ANALYZER_ON:
 * only around a false positive, the reason beside it. */
#if defined(__GNUC__) && !defined(__clang__)
#define MPROC__PRAGMA(x) _Pragma(#x)
#define MPROC__ANALYZER_OFF(w)                                                                     \
    MPROC__PRAGMA(GCC diagnostic push) MPROC__PRAGMA(GCC diagnostic ignored w)
#define MPROC__ANALYZER_ON MPROC__PRAGMA(GCC diagnostic pop)
#else
#define MPROC__ANALYZER_OFF(w)
#define MPROC__ANALYZER_ON
#endif

/* The mproc code for an errno value (ETIMEDOUT -> MPROC_ETIMEDOUT). */
int mproc__err_from_errno(int e);
/* mproc__err_from_errno(errno), for the line after a failed call. */
#define MPROC__ERRNO() mproc__err_from_errno(errno)

/* A broken invariant: print the message and abort. */
MPROC__NORETURN void mproc__panic(const char *fmt, ...) MPROC_PRINTF(1, 2);

/* Lock/unlock a pthread mutex, panicking on failure. */
#define MPROC__LOCK(m)                                                                             \
    do {                                                                                           \
        int rc_ = pthread_mutex_lock(m);                                                           \
        if (rc_) mproc__panic("pthread_mutex_lock: %d", rc_);                                      \
    } while (0)
#define MPROC__UNLOCK(m)                                                                           \
    do {                                                                                           \
        int rc_ = pthread_mutex_unlock(m);                                                         \
        if (rc_) mproc__panic("pthread_mutex_unlock: %d", rc_);                                    \
    } while (0)

/* A monotonic deadline made once from a timeout in milliseconds. */
typedef struct mproc__deadline {
    int64_t at_ns; /* meaningful unless forever */
    bool forever;
} mproc__deadline;

/* MPROC_EINVAL for a negative timeout other than MPROC_FOREVER. */
int mproc__deadline_init(mproc__deadline *d, int timeout_ms);
/* Milliseconds left for poll(2): -1 when forever, 0 when passed; rounded
 * up so a wait never ends before the deadline. */
int mproc__deadline_poll_ms(const mproc__deadline *d);
bool mproc__deadline_passed(const mproc__deadline *d);

/* Library start-up, once per process: SIGPIPE ignored, this process's pid
 * recorded, then every registered module started (its init, in rank
 * order) with one fork handler and one exit handler for all of their hooks
 * (base/module.h). Cheap after the first call. */
void mproc__init(void);

/* This process's pid as the library knows it: set by mproc__init and in
 * every child of a fork (before any module's after_fork_child hook). */
extern pid_t mproc__self_pid_v;
static inline pid_t mproc__self_pid(void)
{
    return mproc__self_pid_v;
}

/* Writes all of a buffer, retrying EINTR and short writes on a blocking
 * fd. Returns 0 or a negative code. */
int mproc__write_all(int fd, const void *buf, size_t len);

#endif
