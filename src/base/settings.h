/* The environment variables mproc reads, in one table (docs/settings.md).
 *
 * Every read of the environment in src/ goes through mproc__setting, so
 * that this table is the whole list. The accessor reads the environment at
 * each call: a site that reads its variable once (at start-up, say) does
 * so by calling it once. */
#ifndef MPROC_INTERNAL_SETTINGS_H
#define MPROC_INTERNAL_SETTINGS_H

typedef enum mproc__setting_id {
    /* For users: set them to change what the library does. */
    MPROC__SET_KEEP_SIGPIPE,  /* MPROC_KEEP_SIGPIPE (base) */
    MPROC__SET_CPU_COUNT,     /* MPROC_CPU_COUNT (process) */
    MPROC__SET_ARENA_ADDR,    /* MPROC_ARENA_ADDR (arena) */
    MPROC__SET_ARENA_SIZE,    /* MPROC_ARENA_SIZE (arena) */
    MPROC__SET_START_METHOD,  /* MPROC_START_METHOD (process) */
    MPROC__SET_MANAGER_LOCAL, /* MPROC_MANAGER_LOCAL (manager) */
    MPROC__SET_CLUSTER_BEAT,  /* MPROC_CLUSTER_HEARTBEAT_MS (cluster) */
    MPROC__SET_CLUSTER_PIDFD, /* MPROC_CLUSTER_PIDFD_WATCH (cluster) */
    /* Internal: the child protocol. A parent sets them in the environment
     * of the new image it starts; the child's code reads them before main
     * and removes them. */
    MPROC__SET_PRELOAD_WAS, /* MPROC_PRELOAD_WAS (platform) */
    MPROC__SET_SHM_TRACKER, /* MPROC_SHM_TRACKER (shm) */
    MPROC__SET_SPAWN,       /* MPROC_SPAWN (process) */
    /* The system's, read as other programs read them. */
    MPROC__SET_LD_PRELOAD, /* LD_PRELOAD (platform) */
    MPROC__SET_TMPDIR,     /* TMPDIR (conn) */
    MPROC__SET_COUNT
} mproc__setting_id;

/* The child protocol's names, for the sites that write them into the
 * environment of a new image. */
#define MPROC__ENV_PRELOAD_WAS "MPROC_PRELOAD_WAS"
#define MPROC__ENV_SHM_TRACKER "MPROC_SHM_TRACKER"
#define MPROC__ENV_SPAWN       "MPROC_SPAWN"

/* The variable's name ("MPROC_CPU_COUNT"). */
const char *mproc__setting_name(mproc__setting_id id);

/* The variable's value; when it is unset or empty, the table's default
 * (NULL for a variable whose default the reading site computes). The
 * child-protocol variables are returned as set, empty or not, and NULL
 * when unset: their presence is the message. */
const char *mproc__setting(mproc__setting_id id);

#endif
