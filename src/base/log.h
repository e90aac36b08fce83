/* Logging internals. */
#ifndef MPROC_INTERNAL_LOG_H
#define MPROC_INTERNAL_LOG_H

#include <stdbool.h>

/* Sets the process name log lines carry (the process layer calls this). */
void mproc__log_set_name(const char *name);

/* The level mproc_log_to_stderr set (MPROC_LOG_OFF if none), passed on to
 * children of a new program image. */
int mproc__log_stderr_level(void);

/* Fast check before formatting: would `level` be logged at all? */
bool mproc__log_enabled(int level);

#define MPROC__DEBUG(...)                                                                          \
    do {                                                                                           \
        if (mproc__log_enabled(MPROC_LOG_DEBUG)) mproc_log(MPROC_LOG_DEBUG, __VA_ARGS__);          \
    } while (0)
#define MPROC__INFO(...)                                                                           \
    do {                                                                                           \
        if (mproc__log_enabled(MPROC_LOG_INFO)) mproc_log(MPROC_LOG_INFO, __VA_ARGS__);            \
    } while (0)

#endif
