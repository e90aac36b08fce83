/* How a local client and the server thread serving it wait for each
 * other's next message on their pair of arena queues (manager/manager.h).
 *
 * A waiter first spins on its queue (the queue's own spin), so that a
 * sequential call costs no sleep and no wake-up, but only while the other
 * side last ran on another CPU: when both share one, the other side cannot
 * answer while we spin, and both spinning in turn made every call cost two
 * full spins, two sleeps and two wake-ups (a dict get at 70 us instead of
 * 1 us, in one run in three, depending on where the scheduler had put the
 * two). Each side sets the spin of the queue it waits on (the client's
 * replies, the server's requests), when it changes. */
#include "manager/manager.h"
#include "queue/queue.h"
#include "platform/platform.h"

void mproc__mgr_channel_tune(mproc__mgr_channel *ch)
{
    atomic_store(&ch->cpu[0], -1);
    atomic_store(&ch->cpu[1], -1);
}

int mproc__mgr_channel_get(mproc__mgr_channel *ch, int side, void **buf, size_t *len,
                           int timeout_ms)
{
    mproc_queue *q = side == MPROC__MGR_SERVER ? ch->req : ch->rep;
    int me = mproc__current_cpu();
    if (atomic_load_explicit(&ch->cpu[side], memory_order_relaxed) != me)
        atomic_store_explicit(&ch->cpu[side], me, memory_order_relaxed);
    int other = atomic_load_explicit(&ch->cpu[!side], memory_order_relaxed);
    bool spin = other != me || me < 0;
    if (spin != !ch->no_spin[side]) {
        ch->no_spin[side] = !spin;
        mproc__queue_set_spin(q, spin ? MPROC__MGR_SPIN_LOCAL_NS : 0);
    }
    return mproc_queue_get(q, buf, len, timeout_ms);
}
