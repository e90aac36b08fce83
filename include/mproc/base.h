/* mproc — base layer: version, error codes, timeouts, logging.
 *
 * Every mproc function that can fail returns int: 0 on success or a negative
 * MPROC_E* code. The codes of MPROC_ERRNO_TABLE are exactly minus the errno
 * value of the same name (MPROC_EINVAL == -EINVAL); the codes of
 * MPROC_LIBERR_TABLE are the library's own, in the reserved range
 * [-1999, -1000], and equal no -errno value, even where the name is an
 * errno name (MPROC_ETIMEDOUT is -1000, not -ETIMEDOUT). Codes are
 * append-only.
 */
#ifndef MPROC_BASE_H
#define MPROC_BASE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MPROC_API             __attribute__((visibility("default")))
#define MPROC_PRINTF(f, a)    __attribute__((format(printf, f, a)))
#define MPROC_DEPRECATED(why) __attribute__((deprecated(why)))
#else
#define MPROC_API
#define MPROC_PRINTF(f, a)
#define MPROC_DEPRECATED(why)
#endif

/* ---- version ------------------------------------------------------------ */

/* The version of these headers. */
#define MPROC_VERSION_MAJOR  0
#define MPROC_VERSION_MINOR  1
#define MPROC_VERSION_PATCH  0
#define MPROC_VERSION_STRING "0.1.0"
/* Encoded as major * 10000 + minor * 100 + patch. */
#define MPROC_VERSION_NUMBER                                                                       \
    (MPROC_VERSION_MAJOR * 10000 + MPROC_VERSION_MINOR * 100 + MPROC_VERSION_PATCH)

/* The version of the library actually linked, "major.minor.patch". */
MPROC_API const char *mproc_version(void);
/* The version number of the library actually linked (MPROC_VERSION_NUMBER). */
MPROC_API int mproc_version_number(void);

/* ---- errors ------------------------------------------------------------- */

/* X(name, value, message). errno-mirroring codes first, then library codes. */
#define MPROC_ERRNO_TABLE(X)                                                                       \
    X(EPERM, -EPERM, "operation not permitted")                                                    \
    X(ENOENT, -ENOENT, "no such file or directory")                                                \
    X(ESRCH, -ESRCH, "no such process")                                                            \
    X(EINTR, -EINTR, "interrupted system call")                                                    \
    X(EIO, -EIO, "input/output error")                                                             \
    X(E2BIG, -E2BIG, "argument list too long")                                                     \
    X(EBADF, -EBADF, "bad file descriptor or wrong direction")                                     \
    X(ECHILD, -ECHILD, "not a child of this process")                                              \
    X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                                         \
    X(ENOMEM, -ENOMEM, "out of memory")                                                            \
    X(EACCES, -EACCES, "permission denied")                                                        \
    X(EFAULT, -EFAULT, "bad address")                                                              \
    X(EBUSY, -EBUSY, "device or resource busy")                                                    \
    X(EEXIST, -EEXIST, "already exists")                                                           \
    X(ENODEV, -ENODEV, "no such device")                                                           \
    X(EINVAL, -EINVAL, "invalid argument")                                                         \
    X(ENFILE, -ENFILE, "too many open files in system")                                            \
    X(EMFILE, -EMFILE, "too many open files")                                                      \
    X(ENOSPC, -ENOSPC, "no space left on device")                                                  \
    X(EPIPE, -EPIPE, "broken pipe")                                                                \
    X(ERANGE, -ERANGE, "result out of range")                                                      \
    X(EDEADLK, -EDEADLK, "operation would deadlock")                                               \
    X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                                                \
    X(ENOSYS, -ENOSYS, "function not implemented")                                                 \
    X(EPROTO, -EPROTO, "protocol error")                                                           \
    X(EOVERFLOW, -EOVERFLOW, "value too large for defined data type")                              \
    X(EMSGSIZE, -EMSGSIZE, "message too long")                                                     \
    X(ENOTSUP, -ENOTSUP, "operation not supported")                                                \
    X(EADDRINUSE, -EADDRINUSE, "address already in use")                                           \
    X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                                      \
    X(ENETUNREACH, -ENETUNREACH, "network unreachable")                                            \
    X(ECONNABORTED, -ECONNABORTED, "connection aborted")                                           \
    X(ECONNRESET, -ECONNRESET, "connection reset by peer")                                         \
    X(ENOBUFS, -ENOBUFS, "no buffer space available")                                              \
    X(ENOTCONN, -ENOTCONN, "not connected")                                                        \
    X(ECONNREFUSED, -ECONNREFUSED, "connection refused")                                           \
    X(EHOSTUNREACH, -EHOSTUNREACH, "host unreachable")                                             \
    X(EOWNERDEAD, -EOWNERDEAD, "owner died")                                                       \
    X(ENOTRECOVERABLE, -ENOTRECOVERABLE, "state not recoverable")

/* The library's own codes, X(name, value, message). */
#define MPROC_LIBERR_TABLE(X)                                                                      \
    X(ETIMEDOUT, -1000, "timed out")                                                               \
    X(ECLOSED, -1001, "object is closed")                                                          \
    X(EEOF, -1002, "end of file: the peer closed")                                                 \
    X(ETOOSMALL, -1003, "buffer too small for the message")                                        \
    X(EBADSTATE, -1004, "call not valid in the object's current state")                            \
    X(ERUNNING, -1005, "process has not exited")                                                   \
    X(ENOTSTARTED, -1006, "process was never started")                                             \
    X(ESTARTED, -1007, "process was already started")                                              \
    X(ECHILDSTART, -1008, "child process failed to start")                                         \
    X(EUNKNOWN, -1009, "unknown error")                                                            \
    X(EBROKEN, -1010, "barrier is broken")                                                         \
    X(ETASK, -1011, "the task failed")                                                             \
    X(EWORKERDIED, -1012, "the worker running the task died")                                      \
    X(ECANCELLED, -1013, "the task was cancelled")                                                 \
    X(ETIMELIMIT, -1014, "the task ran past its time limit")                                       \
    X(ESHUTDOWN, -1015, "the pool or executor is shut down")                                       \
    X(EAUTH, -1016, "authentication failed")                                                       \
    X(EMETHOD, -1017, "a manager object's method failed")

/* All codes: MPROC_OK and the negative MPROC_E* values above. */
enum mproc_error {
    MPROC_OK = 0,
#define MPROC__ENUM(n, v, m) MPROC_##n = (v),
    MPROC_ERRNO_TABLE(MPROC__ENUM) MPROC_LIBERR_TABLE(MPROC__ENUM)
#undef MPROC__ENUM
    /* The name of mproc 0.1 for MPROC_ETIMELIMIT (a task ran past its time
     * limit), too close to MPROC_ETIMEDOUT (a call timed out). */
    MPROC_ETASKTIMEDOUT MPROC_DEPRECATED("use MPROC_ETIMELIMIT") = MPROC_ETIMELIMIT,
};

/* A static, human-readable message for `code`. Never NULL. For a negative
 * errno value not in the table, the C library's message (thread-safe).
 * Thread-safe. */
MPROC_API const char *mproc_strerror(int code);

/* Writes the message for `code` into buf (always NUL-terminated when
 * len > 0) and returns buf. Thread-safe. */
MPROC_API char *mproc_strerror_r(int code, char *buf, size_t len);

/* The symbolic name of `code`, e.g. "MPROC_ETIMEDOUT"; "MPROC_OK" for 0;
 * "MPROC_E?" for a code no table names. Thread-safe. */
MPROC_API const char *mproc_err_name(int code);

/* Python's uncaught exception, for programs that stop at the first error:
 * when rc < 0, writes "<program>: <what>: <message> (<name>)" to stderr
 * and exits with status 1 (exit(), so atexit handlers and stdio flushing
 * run); otherwise returns rc unchanged, so a count or a byte length goes
 * on through it. what may be NULL. */
MPROC_API int mproc_check(int rc, const char *what);

/* MPROC_CHECK(call): mproc_check on the call's result, naming the call's
 * text and its place: `MPROC_CHECK(mproc_queue_new(&q, NULL));` stops the
 * program with "prog: file.c:12: mproc_queue_new(&q, NULL): ..." if the
 * call fails. For code that handles errors itself, test the result. */
#define MPROC_CHECK(call) mproc_check((call), __FILE__ ":" MPROC__STR(__LINE__) ": " #call)
#define MPROC__STR(x)     MPROC__STR2(x)
#define MPROC__STR2(x)    #x

/* ---- timeouts ----------------------------------------------------------- */

/* Every blocking call takes `int timeout_ms`: MPROC_FOREVER (-1) blocks,
 * 0 tries once, N > 0 waits at most N milliseconds and then returns
 * MPROC_ETIMEDOUT. Any other negative value is MPROC_EINVAL. The timeout is
 * turned into a monotonic deadline once; interrupted waits are retried
 * without extending it. */
#define MPROC_FOREVER (-1)

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
MPROC_API long long mproc_now_ns(void);

/* ---- logging ------------------------------------------------------------ */

/* Levels, with Python's values. */
enum mproc_log_level {
    MPROC_LOG_SUBDEBUG = 5,
    MPROC_LOG_DEBUG = 10,
    MPROC_LOG_INFO = 20,
    MPROC_LOG_SUBWARNING = 25,
    MPROC_LOG_WARNING = 30,
    MPROC_LOG_ERROR = 40,
    MPROC_LOG_CRITICAL = 50,
    MPROC_LOG_OFF = 100,
};

/* A logger hook: receives the level, the current process's name and the
 * formatted message (no trailing newline). Called from any thread. */
typedef void (*mproc_logger_fn)(int level, const char *process_name, const char *msg,
                                void *userdata);

/* Sends log lines of `level` and above to stderr, formatted
 * "[INFO/Process-1] message", each written with one write(2) so lines from
 * several processes do not interleave. MPROC_LOG_OFF turns stderr logging
 * off. Children inherit the setting. Thread-safe. */
MPROC_API void mproc_log_to_stderr(int level);

/* Installs a logger hook (NULL removes it) called for lines of `level` and
 * above, in addition to stderr logging. Thread-safe. */
MPROC_API void mproc_set_logger(mproc_logger_fn fn, int level, void *userdata);

/* The lowest level any sink currently accepts (MPROC_LOG_OFF if none). */
MPROC_API int mproc_log_level(void);

/* Logs a message at `level` through the configured sinks. Thread-safe. */
MPROC_API void mproc_log(int level, const char *fmt, ...) MPROC_PRINTF(2, 3);
MPROC_API void mproc_vlog(int level, const char *fmt, va_list ap);

/* The name of a level ("INFO"), or "Level N". */
MPROC_API const char *mproc_log_level_name(int level);

#ifdef __cplusplus
}
#endif
#endif
