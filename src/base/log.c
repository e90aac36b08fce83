/* Logging: "[LEVEL/ProcessName] message" to stderr and/or a hook. */
#include "base/base.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int stderr_level = MPROC_LOG_OFF;
static int hook_level = MPROC_LOG_OFF;
static mproc_logger_fn hook_fn;
static void *hook_ud;
static atomic_int min_level = MPROC_LOG_OFF;
/* The current process name: a string that outlives every use (the process
 * layer never frees the current name). */
static const char *_Atomic proc_name = "MainProcess";

static void update_min(void)
{
    int m = stderr_level;
    if (hook_fn && hook_level < m) m = hook_level;
    atomic_store(&min_level, m);
}

void mproc_log_to_stderr(int level)
{
    MPROC__LOCK(&log_mu);
    stderr_level = level;
    update_min();
    MPROC__UNLOCK(&log_mu);
}

void mproc_set_logger(mproc_logger_fn fn, int level, void *userdata)
{
    MPROC__LOCK(&log_mu);
    hook_fn = fn;
    hook_level = level;
    hook_ud = userdata;
    update_min();
    MPROC__UNLOCK(&log_mu);
}

int mproc__log_stderr_level(void)
{
    MPROC__LOCK(&log_mu);
    int l = stderr_level;
    MPROC__UNLOCK(&log_mu);
    return l;
}

int mproc_log_level(void)
{
    return atomic_load(&min_level);
}

bool mproc__log_enabled(int level)
{
    return level >= atomic_load(&min_level);
}

void mproc__log_set_name(const char *name)
{
    atomic_store(&proc_name, name ? name : "");
}

const char *mproc_log_level_name(int level)
{
    switch (level) {
    case MPROC_LOG_SUBDEBUG:
        return "SUBDEBUG";
    case MPROC_LOG_DEBUG:
        return "DEBUG";
    case MPROC_LOG_INFO:
        return "INFO";
    case MPROC_LOG_SUBWARNING:
        return "SUBWARNING";
    case MPROC_LOG_WARNING:
        return "WARNING";
    case MPROC_LOG_ERROR:
        return "ERROR";
    case MPROC_LOG_CRITICAL:
        return "CRITICAL";
    default:
        return "Level";
    }
}

void mproc_vlog(int level, const char *fmt, va_list ap)
{
    if (!mproc__log_enabled(level) || !fmt) return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);

    const char *name = atomic_load(&proc_name);
    MPROC__LOCK(&log_mu);
    int to_stderr = level >= stderr_level;
    mproc_logger_fn fn = level >= hook_level ? hook_fn : NULL;
    void *ud = hook_ud;
    MPROC__UNLOCK(&log_mu);

    if (to_stderr) {
        char line[1300], lvl[24];
        const char *ln = mproc_log_level_name(level);
        if (strcmp(ln, "Level") == 0) {
            snprintf(lvl, sizeof lvl, "Level %d", level);
            ln = lvl;
        }
        int n = snprintf(line, sizeof line, "[%s/%s] %s\n", ln, name, msg);
        if (n > (int)sizeof line - 1) {
            n = sizeof line - 1;
            line[n - 1] = '\n';
        }
        if (n > 0) (void)mproc__write_all(STDERR_FILENO, line, (size_t)n);
    }
    if (fn) fn(level, name, msg, ud);
}

void mproc_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mproc_vlog(level, fmt, ap);
    va_end(ap);
}
