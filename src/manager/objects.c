/* The manager server's object table: ids, reference counts, types. One
 * table per process (a process serves at most one manager at a time). */
#include "manager/server.h"
#include "arena/arena.h"
#include "arena/fnref.h"
#include "mproc/arena.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static mgr_obj *table[BUCKETS];
static uint64_t next_id;

static mgr_obj **slot(uint64_t id)
{
    mgr_obj **pp = &table[id % BUCKETS];
    while (*pp && (*pp)->id != id) pp = &(*pp)->next;
    return pp;
}

int mproc__mgr_obj_add(const mproc_type_def *type, void *state, uint64_t *id)
{
    mgr_obj *o = calloc(1, sizeof *o);
    if (!o) return MPROC_ENOMEM;
    o->type = type;
    o->state = state;
    o->refs = 1;
    MPROC__LOCK(&mu);
    o->id = ++next_id;
    o->next = table[o->id % BUCKETS];
    table[o->id % BUCKETS] = o;
    MPROC__UNLOCK(&mu);
    *id = o->id;
    return 0;
}

mgr_obj *mproc__mgr_obj_get(uint64_t id)
{
    MPROC__LOCK(&mu);
    mgr_obj *o = *slot(id);
    if (o) o->refs++;
    MPROC__UNLOCK(&mu);
    return o;
}

bool mproc__mgr_obj_ref(uint64_t id, int delta)
{
    mgr_obj *dead = NULL;
    MPROC__LOCK(&mu);
    mgr_obj **pp = slot(id);
    if (*pp) {
        (*pp)->refs += delta;
        if ((*pp)->refs <= 0) {
            dead = *pp;
            *pp = dead->next;
        }
    }
    bool found = *pp || dead;
    MPROC__UNLOCK(&mu);
    if (dead) { /* outside the lock: its state may drop references of its own */
        if (dead->type->destroy) dead->type->destroy(dead->state);
        free(dead);
    }
    return found;
}

void mproc__mgr_obj_put(mgr_obj *o)
{
    if (o) mproc__mgr_obj_ref(o->id, -1);
}

/* The handles in v, appended to ids[0..*n) (up to cap; *n counts all). */
static void collect(const mproc_value *v, uint64_t *ids, size_t cap, size_t *n)
{
    switch (mproc_value_kind_of(v)) {
    case MPROC_V_HANDLE: {
        uint32_t type;
        uint64_t ref;
        if (!mproc_value_get_handle(v, &type, &ref) && type == MPROC__HANDLE_OBJ) {
            if (*n < cap) ids[*n] = ref;
            (*n)++;
        }
        break;
    }
    case MPROC_V_LIST:
        for (size_t i = 0; i < mproc_value_len(v); i++)
            collect(mproc_value_list_get(v, i), ids, cap, n);
        break;
    case MPROC_V_MAP:
        for (size_t i = 0; i < mproc_value_len(v); i++) {
            mproc_value *k, *x;
            mproc_value_map_entry(v, i, &k, &x);
            collect(k, ids, cap, n);
            collect(x, ids, cap, n);
        }
        break;
    default:
        break;
    }
}

bool mproc__mgr_hold_new(const mproc_value *v)
{
    size_t n = 0;
    collect(v, NULL, 0, &n);
    if (n == 0) return true;
    uint64_t *ids = malloc(n * sizeof *ids);
    if (!ids) return false;
    size_t m = 0;
    collect(v, ids, n, &m);
    size_t done = 0;
    while (done < n && mproc__mgr_obj_ref(ids[done], +1)) done++;
    bool ok = done == n;
    while (!ok && done > 0) mproc__mgr_obj_ref(ids[--done], -1);
    free(ids);
    return ok;
}

void mproc__mgr_hold(const mproc_value *v, int delta)
{
    switch (mproc_value_kind_of(v)) {
    case MPROC_V_HANDLE: {
        uint32_t type;
        uint64_t ref;
        if (!mproc_value_get_handle(v, &type, &ref) && type == MPROC__HANDLE_OBJ)
            mproc__mgr_obj_ref(ref, delta);
        break;
    }
    case MPROC_V_LIST:
        for (size_t i = 0; i < mproc_value_len(v); i++)
            mproc__mgr_hold(mproc_value_list_get(v, i), delta);
        break;
    case MPROC_V_MAP:
        for (size_t i = 0; i < mproc_value_len(v); i++) {
            mproc_value *k, *x;
            mproc_value_map_entry(v, i, &k, &x);
            mproc__mgr_hold(k, delta);
            mproc__mgr_hold(x, delta);
        }
        break;
    default:
        break;
    }
}

uint64_t mproc__mgr_family_token(void)
{
    uintptr_t t = mproc__arena_slot_get(MPROC__SLOT_FAMILY_TOKEN);
    if (t) return t;
    uint64_t fresh = mproc__image_token(); /* random, nonzero */
    mproc__arena_slot_cas(MPROC__SLOT_FAMILY_TOKEN, 0, (uintptr_t)fresh);
    return mproc__arena_slot_get(MPROC__SLOT_FAMILY_TOKEN);
}

#define CHANNEL_MAGIC 0x6e616843u /* "Chan" */

int mproc__mgr_channel_new(mproc__mgr_channel **out)
{
    mproc__mgr_channel *ch;
    int rc = mproc_arena_calloc((void **)&ch, sizeof *ch);
    if (rc) return rc;
    if ((rc = mproc_queue_new(&ch->req, NULL)) || (rc = mproc_queue_new(&ch->rep, NULL))) {
        mproc_queue_free(ch->req);
        mproc_arena_free(ch);
        return rc;
    }
    mproc__mgr_channel_tune(ch);
    atomic_store(&ch->held, MPROC__MGR_CH_CLIENT | MPROC__MGR_CH_SERVER);
    ch->magic = CHANNEL_MAGIC;
    *out = ch;
    return 0;
}

bool mproc__mgr_channel_valid(const mproc__mgr_channel *ch)
{
    return ch && mproc_arena_contains(ch) && ch->magic == CHANNEL_MAGIC;
}

void mproc__mgr_channel_release(mproc__mgr_channel *ch, unsigned share)
{
    if (!ch) return;
    uint32_t old = atomic_fetch_and(&ch->held, ~share);
    if (!(old & share) || (old & ~share)) return; /* released before, or the other's is held */
    ch->magic = 0;
    mproc_queue_free(ch->req);
    mproc_queue_free(ch->rep);
    mproc_arena_free(ch);
}
