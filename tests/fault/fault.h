/* The fault suite: real workloads run through the public API, faults
 * injected from outside (SIGKILL, SIGSTOP/SIGCONT, the death of a family's
 * parent) at moments chosen by observed progress, and the guarantees
 * checked after each trial: no hang, exactly-once delivery of what was
 * acknowledged, no leak, and the structure usable again.
 *
 * Processes: the driver (main) forks one trial process per trial; the
 * trial process runs the workload's participants as mproc children under
 * the start method being tested, injects the fault, joins everything and
 * checks. The driver measures the arena around the trial process's whole
 * life and kills its process group if it overruns (a hang). Participants
 * report through their exit status and shared memory in the arena. */
#ifndef MPROC_FAULT_H
#define MPROC_FAULT_H

#include "../mix64.h"
#include "mproc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- scenarios ------------------------------------------------------------ */

typedef enum ft_fault {
    FT_KILL = 1,   /* SIGKILL of a random participant at a random moment */
    FT_STOP = 2,   /* SIGSTOP, a pause, SIGCONT of random participants */
    FT_PARENT = 3, /* SIGKILL of the parent of a family of participants */
} ft_fault;

typedef struct ft_trial ft_trial;

typedef struct ft_scenario {
    const char *name; /* e.g. "queue-8b-maxsize-kill" */
    void (*run)(ft_trial *t);
    ft_fault fault;
    const void *param; /* the workload's variant */
} ft_scenario;

/* The scenario tables, each ended by an entry with a NULL name. */
extern const ft_scenario ft_queue_scenarios[];
extern const ft_scenario ft_pool_scenarios[];
extern const ft_scenario ft_manager_scenarios[];
extern const ft_scenario ft_lock_scenarios[];
extern const ft_scenario ft_sync_scenarios[];

/* ---- what a trial reports to the driver (a shared anonymous page) ---------- */

typedef struct ft_report {
    long hangs;             /* waits that ran past their deadline */
    long lost;              /* acknowledged items not delivered, partial items, wrong errors */
    long duplicated;        /* items delivered (or run) more than once */
    long leaked;            /* fds, processes, files left behind */
    long kills;             /* processes the fault killed */
    size_t arena_allowance; /* arena bytes the kills may have lost (documented) */
    int finished;           /* 1 once the trial process got to its end */
} ft_report;

/* ---- the trial process ------------------------------------------------------ */

#define FT_MAXPARTS 32

/* Child exit codes. */
enum {
    FT_EXIT_OK = 0,
    FT_EXIT_HANG = 3, /* a wait ran past its deadline */
    FT_EXIT_PEER = 4, /* a wait ended with an error naming a dead peer */
    FT_EXIT_ERR = 5,  /* an unexpected error (the child printed it) */
    FT_EXIT_BAD = 6,  /* a broken guarantee seen by the child (it printed it) */
};
/* The exit code of an adopted process that its own parent had reaped. */
#define FT_CODE_REAPED (-1000)

/* A participant (a process of the workload). */
typedef struct ft_part {
    mproc_process *p; /* NULL for a process the trial did not start itself */
    pid_t pid;
    int role;    /* the workload's */
    bool killed; /* by the fault */
    bool done;   /* joined (or reaped) */
    int code;    /* exit code once done: N or -SIGNUM */
    int threads; /* thread count just before a kill */
    bool daemon;
    int tag; /* the workload's (e.g. the index of its shared slot) */
} ft_part;

struct ft_trial {
    const ft_scenario *sc;
    mproc_start_method method;
    const char *mname;
    const mproc_context *ctx;
    uint64_t seed, rng;
    int hang_ms;
    ft_report *rep;
    size_t max_block; /* the largest arena block a participant handles */
    ft_part parts[FT_MAXPARTS];
    int nparts;
    pid_t owned[64]; /* children mproc made for the trial process (pool workers, servers) */
    int nowned;
    struct { /* descendants of a killed participant, seen just before the kill */
        pid_t pid;
        int threads;
    } doomed[64];
    int ndoomed;
    char tag[160]; /* "scenario method seed=0x..." for messages */
};

/* A header every participant's argument bytes start with. */
typedef struct ft_hdr {
    char tag[160];
    int hang_ms;
    int index;
    uint64_t seed;
} ft_hdr;

/* In a child of a family parent: waits until the parent has recorded
 * every child (*gate != 0), so that the trial knows them all before any
 * work is done. False (after a note) if that takes the hang time or the
 * parent died first. NULL gate: true at once. */
bool ft_gate(_Atomic int *gate, const ft_hdr *h);
/* In a family parent whose work is done: waits to be killed (the trial
 * kills it once progress passes its threshold), for at most 4 hang times. */
void ft_linger(const ft_hdr *h);

/* The children a family parent started, recorded in shared memory so that
 * the trial can adopt them once the parent is dead. */
#define FT_MAXFAM 16
typedef struct ft_family {
    _Atomic int n;     /* children recorded */
    _Atomic int ready; /* 1 once the parent recorded them all (their ft_gate) */
    _Atomic pid_t pid[FT_MAXFAM];
    int role[FT_MAXFAM];
    int tag[FT_MAXFAM];
    bool daemon[FT_MAXFAM];
} ft_family;

/* In a family parent: starts fn(arg) as a child under ctx (a daemon if
 * daemon) and records it with its role and tag. The handle goes to *out,
 * or is dropped if out is NULL. Returns 0 or the error of starting it. */
int ft_family_child(ft_family *f, const mproc_context *ctx, mproc_target_fn fn, const void *arg,
                    size_t len, int role, int tag, bool daemon, mproc_process **out);
/* In the trial: adopts every child the family recorded (ft_adopt), with
 * its tag. */
void ft_adopt_family(ft_trial *t, ft_family *f);

/* Random numbers from the trial's seed. */
uint64_t ft_rand(ft_trial *t);
/* Uniform in [lo, hi] (hi >= lo). */
uint64_t ft_range(ft_trial *t, uint64_t lo, uint64_t hi);

/* Prints "fault <tag>: message" on stderr (one write). */
void ft_note(const ft_trial *t, const char *fmt, ...) MPROC_PRINTF(2, 3);
void ft_child_note(const ft_hdr *h, const char *fmt, ...) MPROC_PRINTF(2, 3);
/* Fills h for participant number index. */
void ft_hdr_init(const ft_trial *t, ft_hdr *h, int index);

/* Allocates zeroed arena memory or ends the trial (an arena failure is not
 * what the suite tests). */
void *ft_calloc(size_t n);

/* Starts target(arg) as a participant under the trial's start method. NULL
 * (after a note; counted as lost) if it could not be started. */
ft_part *ft_start(ft_trial *t, mproc_target_fn fn, const void *arg, size_t len, int role,
                  bool daemon);
/* Records a process the trial did not start (a child of a family parent,
 * reparented to the trial process once that parent died). */
ft_part *ft_adopt(ft_trial *t, pid_t pid, int role, bool daemon);

/* Records a child that mproc made on the trial process's behalf (a pool
 * worker, a manager server): mproc must have reaped it by the end. */
void ft_own(ft_trial *t, pid_t pid);

/* Joins (or reaps) a participant within ms. A participant still running
 * then is counted as a hang, killed and joined. Returns its exit code.
 * The exit codes FT_EXIT_HANG/ERR/BAD are counted (hang, lost, lost). */
int ft_join(ft_trial *t, ft_part *p, int ms);
/* Joins every participant not yet joined (of the roles in a mask). */
void ft_join_all(ft_trial *t, int ms);
void ft_join_roles(ft_trial *t, unsigned role_mask, int ms);
/* Kills every participant still running (after a hang) and joins it. */
void ft_kill_rest(ft_trial *t);

/* True while the participant runs (not joined; may have exited). */
bool ft_alive(const ft_part *p);

/* Waits until *progress >= threshold: true. False when it stalled (no
 * change for the trial's hang time), counted as a hang if a participant
 * still runs then. */
bool ft_wait_progress(ft_trial *t, _Atomic uint64_t *progress, uint64_t threshold);

/* Spins a random few microseconds, so that the fault's moment varies
 * within one step of progress. */
void ft_jitter(ft_trial *t);

/* Picks a random running participant whose role is in the mask (bit
 * 1 << role). NULL if none. */
ft_part *ft_pick(ft_trial *t, unsigned role_mask);

/* SIGKILL: records the thread count (for the arena allowance), kills, and
 * marks the participant killed. The arena allowance grows by the documented
 * loss of one kill: the thread caches and one block of max_block. The
 * descendants of the victim are recorded with their thread counts: those
 * that die by SIGKILL in turn (daemons) add their own loss when reaped. */
void ft_kill(ft_trial *t, ft_part *p);
/* SIGSTOP, a pause of 1..ms_max milliseconds, SIGCONT. */
void ft_stop(ft_trial *t, ft_part *p, int ms_max);
/* The same for a process that is not a participant (a pool worker, a
 * server); ft_kill_pid returns its thread count. */
int ft_kill_pid(ft_trial *t, pid_t pid);
void ft_stop_pid(ft_trial *t, pid_t pid, int ms_max);

/* Thresholds for the fault, in (0, total): one for a kill, three sorted
 * ones for stops. Returns how many. */
int ft_thresholds(ft_trial *t, uint64_t total, uint64_t out[3]);

/* The trial's fault (FT_STOP: a stop of up to 30 ms; otherwise a kill,
 * joined at once) on a random running participant of the roles (a mask).
 * Returns it (p->killed says which), NULL if none runs. */
ft_part *ft_strike(ft_trial *t, unsigned role_mask);
/* Once *progress passes each of the nth thresholds th: ft_jitter, then
 * ft_strike on the roles, and on_kill(t, victim, ud) after each kill (if
 * not NULL). Stops early if progress stalls or no participant of the roles
 * runs. Returns the number of kills. */
int ft_faults(ft_trial *t, _Atomic uint64_t *progress, const uint64_t *th, int nth,
              unsigned role_mask, void (*on_kill)(ft_trial *t, ft_part *victim, void *ud),
              void *ud);

/* A process of the trial reaped with exit code `code`: if a SIGKILL it was
 * not sent by the fault killed it (a daemon of a dead parent), or a
 * SIGTERM (a manager's server at its owner's death: docs/managers.md), the
 * arena allowance grows by that process's documented loss. */
void ft_reaped(ft_trial *t, pid_t pid, int code);

/* Counts. */
void ft_hang(ft_trial *t, const char *fmt, ...) MPROC_PRINTF(2, 3);
void ft_lost(ft_trial *t, long n, const char *fmt, ...) MPROC_PRINTF(3, 4);
void ft_dup(ft_trial *t, long n, const char *fmt, ...) MPROC_PRINTF(3, 4);
void ft_leak(ft_trial *t, long n, const char *fmt, ...) MPROC_PRINTF(3, 4);
/* An unexpected return code of an mproc call made by the trial itself. */
void ft_err(ft_trial *t, const char *what, int rc);

/* Milliseconds since a mproc_now_ns() value. */
long long ft_ms_since(long long t0);
void ft_sleep_ms(long ms);

/* ---- leak checks (leaks.c) ----------------------------------------------------- */

int ft_count_fds(void);
/* The pids of this process's children (from /proc), up to cap; their count. */
int ft_children(pid_t *out, int cap, bool *zombie);
int ft_children_of(pid_t parent, pid_t *out, int cap);
int ft_children_zombie(pid_t parent, pid_t *out, int cap, bool *zombie);
/* Threads of a process (from /proc), 0 if it is gone. */
int ft_threads(pid_t pid);
/* Open fds of a process (from /proc), -1 if it is gone. */
int ft_fds_of(pid_t pid);
/* Bytes in live arena blocks (the arena's own figure). */
size_t ft_arena_used(void);
/* Entries of a directory, as one string "a b c" (empty: none). Returns the
 * count. */
int ft_list_dir(const char *dir, char *out, size_t cap);

/* ---- self-checking messages and the delivery ledger (ledger.c) ------------------ */

/* A message of len bytes (>= 8) from producer prod, number seq: 8 bytes
 * hold producer, sequence number and a checksum; longer ones a header and
 * a pattern over every byte keyed by (prod, seq). */
void ft_msg_fill(void *buf, size_t len, uint32_t prod, uint32_t seq);
/* True if buf[0..len) is a whole, intact message; gives prod and seq. */
bool ft_msg_check(const void *buf, size_t len, uint32_t *prod, uint32_t *seq);
#define FT_MARKER_PROD 15u /* a marker, not data: (15, 0) */

#define FT_MAXPROD 8
/* Who put and who got what, in the arena. */
typedef struct ft_ledger {
    uint32_t nprod, per_prod;
    _Atomic uint32_t acked[FT_MAXPROD];   /* puts that returned 0 */
    _Atomic uint32_t putting[FT_MAXPROD]; /* 1 while a put is in flight */
    _Atomic uint32_t bad;                 /* partial or corrupt items got */
    _Atomic uint64_t progress;            /* items got */
    _Atomic uint8_t *seen;                /* nprod * per_prod delivery counts */
} ft_ledger;

ft_ledger *ft_ledger_new(uint32_t nprod, uint32_t per_prod);
void ft_ledger_free(ft_ledger *l);
/* Records one item got (in any process). False for an item that cannot
 * have been put (counted as bad). */
bool ft_ledger_got(ft_ledger *l, uint32_t prod, uint32_t seq);
/* Checks: every acknowledged item got exactly once, the one in flight of a
 * producer at most once, nothing else; `may_lose` items may be missing (got
 * by consumers killed in the middle of a get). */
void ft_ledger_check(ft_trial *t, ft_ledger *l, long may_lose);

#endif
