/* The manager server's parts: the object table (manager/objects.c) and
 * the connection handling (manager/server.c). */
#ifndef MPROC_INTERNAL_MANAGER_SERVER_H
#define MPROC_INTERNAL_MANAGER_SERVER_H

#include "manager/manager.h"
#include "mproc/conn.h"

#include <stdint.h>

typedef struct mgr_obj {
    uint64_t id;
    const mproc_type_def *type;
    void *state;
    long refs; /* one per client reference and per container holding it */
    struct mgr_obj *next;
} mgr_obj;

/* A new object with one reference: *id. */
int mproc__mgr_obj_add(const mproc_type_def *type, void *state, uint64_t *id);
/* The object, with a reference taken for the caller (give it back with
 * mproc__mgr_obj_put), or NULL. */
mgr_obj *mproc__mgr_obj_get(uint64_t id);
void mproc__mgr_obj_put(mgr_obj *o);
/* Adds delta references; at zero the object is destroyed. False if there
 * is no such object. */
bool mproc__mgr_obj_ref(uint64_t id, int delta);
/* Serves on l (taken over: closed by a shutdown request) until a client
 * asks for shutdown. */
#include "mproc/listener.h"
/* l: made without authentication; each connection runs auth's handshake
 * in its own thread, so a slow or hostile client holds up nobody. */
int mproc__mgr_serve(mproc_listener *l, const mproc_auth *auth, const mproc_manager_opts *o,
                     void (*ready)(const char *address, void *ud), void *ud);

#ifdef MPROC_TESTING /* test hooks (docs/testing.md) */
/* One request handled as a connection's thread handles it (the reply, or
 * NULL when memory ran out), for a single client context that has no
 * connection; mproc__mgr_handle_reset then drops that context's
 * references, as a disconnect does. For the fuzz target
 * (tests/fuzz/fuzz_manager_request.c); not while serving. */
mproc_value *mproc__mgr_handle_request(const mproc_value *req);
void mproc__mgr_handle_reset(void);
#endif

#endif
