/* Once-per-process library start-up and the module registry (module.h):
 * the modules' start-up, fork and exit hooks, run in rank order. */
#include "base/module.h"
#include "base/base.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

pid_t mproc__self_pid_v;

/* The registered modules, by rank (a list that only grows). mu guards the
 * links and is held across a fork, so the child sees a whole list. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static mproc__module *head, *tail;
static bool library_started; /* under mu: mproc__init has begun */

static pthread_once_t init_once_v = PTHREAD_ONCE_INIT;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The process the child hooks last ran in: this process, or the live
 * process it was made from (set where the fork handlers are installed and
 * inherited), so a child's own pid never matches before its hooks ran. */
static pid_t child_hooks_pid;

/* Marks m started; false when it already was (its init then is not ours
 * to run). */
static bool claim(mproc__module *m)
{
    bool was = false;
    return atomic_compare_exchange_strong(&m->started, &was, true);
}

static bool is_started(const mproc__module *m)
{
    return atomic_load_explicit(&m->started, memory_order_relaxed);
}

/* Set by the forking thread while it holds mu for a fork (pthread_atfork):
 * the child, whose only thread that is, unlocks mu. Not set when the
 * forkserver's clone (which runs no fork handlers) calls the child's hooks. */
static bool mu_held_for_fork;
/* In the child, while its hooks run: mu_held_for_fork as it was. */
static bool child_of_prepared_fork;

bool mproc__fork_was_prepared(void)
{
    return child_of_prepared_fork;
}

static void before_fork(void)
{
    MPROC__LOCK(&mu);
    mu_held_for_fork = true;
    for (mproc__module *m = tail; m; m = m->prev)
        if (is_started(m) && m->before_fork) m->before_fork();
}

static void after_fork_parent(void)
{
    for (mproc__module *m = head; m; m = m->next)
        if (is_started(m) && m->after_fork_parent) m->after_fork_parent();
    mu_held_for_fork = false;
    MPROC__UNLOCK(&mu);
}

void mproc__modules_after_fork_child(void)
{
    pid_t pid = getpid();
    if (pid == child_hooks_pid) return; /* they ran in this process already */
    child_hooks_pid = pid;
    /* After before_fork, this thread holds mu: unlocked as it was locked
     * (ThreadSanitizer sees a mutex made anew as still held, and the next
     * fork's lock as a double lock). Otherwise (the forkserver's clone)
     * another thread of the parent may have held it: made anew. */
    child_of_prepared_fork = mu_held_for_fork;
    if (mu_held_for_fork) {
        mu_held_for_fork = false;
        MPROC__UNLOCK(&mu);
    } else {
        mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    }
    if (library_started) mproc__self_pid_v = pid; /* first: every hook may use it */
    for (mproc__module *m = head; m; m = m->next)
        if (is_started(m) && m->after_fork_child) m->after_fork_child();
    child_of_prepared_fork = false;
}

static void install_atfork(void)
{
    child_hooks_pid = getpid();
    pthread_atfork(before_fork, after_fork_parent, mproc__modules_after_fork_child);
}

/* At exit(): the at_exit hooks from the top down (the process layer's
 * exit function, which ends the children, before the arena gives back this
 * thread's cache). mu is not held while a hook runs (one may take long,
 * and fork). */
static void run_at_exit(void)
{
    MPROC__LOCK(&mu);
    for (mproc__module *m = tail; m; m = m->prev) {
        if (!is_started(m) || !m->at_exit) continue;
        MPROC__UNLOCK(&mu);
        m->at_exit();
        MPROC__LOCK(&mu);
    }
    MPROC__UNLOCK(&mu);
}

void mproc__module_register(mproc__module *m)
{
    MPROC__LOCK(&mu);
    if (m->prev || m->next || head == m) { /* registered already */
        MPROC__UNLOCK(&mu);
        return;
    }
    /* after the last of a rank not above m's: one rank keeps the order of
     * registration */
    mproc__module *after = tail;
    while (after && after->rank > m->rank) after = after->prev;
    m->prev = after;
    m->next = after ? after->next : head;
    if (m->next)
        m->next->prev = m;
    else
        tail = m;
    if (after)
        after->next = m;
    else
        head = m;
    bool start = library_started && claim(m);
    MPROC__UNLOCK(&mu);
    if (start && m->init) m->init(); /* registered late: started now */
}

void mproc__module_start(mproc__module *m)
{
    mproc__module_register(m);
    pthread_once(&atfork_once, install_atfork);
    if (claim(m) && m->init) m->init();
}

const mproc__module *mproc__modules(void)
{
    MPROC__LOCK(&mu);
    const mproc__module *m = head;
    MPROC__UNLOCK(&mu);
    return m;
}

static void init_once(void)
{
    /* Like Python, mproc ignores SIGPIPE so that a dead reader turns into
     * MPROC_EPIPE instead of killing the writer. MPROC_KEEP_SIGPIPE=1 keeps
     * the program's disposition. A handler the program set is left alone. */
    if (*mproc__setting(MPROC__SET_KEEP_SIGPIPE) != '1') {
        struct sigaction sa;
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
            sa.sa_handler = SIG_IGN;
            sigaction(SIGPIPE, &sa, NULL);
        }
    }
    mproc__self_pid_v = getpid();
    pthread_once(&atfork_once, install_atfork);
    /* Every module registered so far, bottom up; one registered from now
     * on starts as it registers. mu is not held while an init runs. */
    MPROC__LOCK(&mu);
    library_started = true;
    for (mproc__module *m = head; m; m = m->next) {
        if (!claim(m)) continue;
        MPROC__UNLOCK(&mu);
        if (m->init) m->init();
        MPROC__LOCK(&mu);
    }
    MPROC__UNLOCK(&mu);
    atexit(run_at_exit);
}

void mproc__init(void)
{
    pthread_once(&init_once_v, init_once);
}
