/* Once-per-process library start-up. */
#include "arena/arena.h"
#include "conn/auth.h"
#include "base/base.h"
#include "process/process.h"
#include "mproc/arena.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* At exit(): Python's exit function, then this thread's allocator cache
 * back to the arena (which outlives a process that is not the family's
 * last: a process the program forked itself, say). */
static void atexit_handler(void)
{
    mproc__exit_function();
    mproc__arena_thread_flush();
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
    mproc__self_init();
    mproc__authkey_init();
    /* The arena exists before any child does, so every child shares it. A
     * failure is kept and returned by the calls that need the arena. */
    (void)mproc_arena_init(NULL);
    atexit(atexit_handler);
}

void mproc__init(void)
{
    pthread_once(&once, init_once);
}
