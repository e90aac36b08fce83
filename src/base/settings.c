/* The environment variables mproc reads (base/settings.h,
 * docs/settings.md). */
#include "base/settings.h"

#include <stdbool.h>
#include <stdlib.h>

typedef struct setting_def {
    const char *name;
    const char *def; /* when unset or empty; NULL: the reading site computes it */
    bool raw;        /* child protocol: as set, and NULL when unset */
} setting_def;

/* Meaning, reader and default of each are in docs/settings.md. */
static const setting_def table[MPROC__SET_COUNT] = {
    [MPROC__SET_KEEP_SIGPIPE] = {"MPROC_KEEP_SIGPIPE", "0", false},
    [MPROC__SET_CPU_COUNT] = {"MPROC_CPU_COUNT", NULL, false},
    [MPROC__SET_ARENA_ADDR] = {"MPROC_ARENA_ADDR", NULL, false},
    [MPROC__SET_ARENA_SIZE] = {"MPROC_ARENA_SIZE", NULL, false},
    [MPROC__SET_START_METHOD] = {"MPROC_START_METHOD", NULL, false},
    [MPROC__SET_MANAGER_LOCAL] = {"MPROC_MANAGER_LOCAL", "1", false},
    [MPROC__SET_CLUSTER_BEAT] = {"MPROC_CLUSTER_HEARTBEAT_MS", "10000", false},
    [MPROC__SET_CLUSTER_PIDFD] = {"MPROC_CLUSTER_PIDFD_WATCH", "1", false},
    [MPROC__SET_PRELOAD_WAS] = {MPROC__ENV_PRELOAD_WAS, NULL, true},
    [MPROC__SET_SHM_TRACKER] = {MPROC__ENV_SHM_TRACKER, NULL, true},
    [MPROC__SET_SPAWN] = {MPROC__ENV_SPAWN, NULL, true},
    [MPROC__SET_LD_PRELOAD] = {"LD_PRELOAD", NULL, false},
    [MPROC__SET_TMPDIR] = {"TMPDIR", "/tmp", false},
};

const char *mproc__setting_name(mproc__setting_id id)
{
    return table[id].name;
}

const char *mproc__setting(mproc__setting_id id)
{
    const setting_def *s = &table[id];
    const char *v = getenv(s->name);
    if (s->raw) return v;
    return v && *v ? v : s->def;
}
