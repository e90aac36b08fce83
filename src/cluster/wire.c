/* Function references across ranks, task messages, and the program's
 * identity (cluster/cluster.h).
 *
 * A function of the program is named by its offset, as arena/fnref.h does
 * for module 0: every rank runs the same program (checked at start-up), so
 * the offset resolves there to the same function. A function of a shared
 * library is named by the library's path and the offset in it, and the
 * rank loads that library if it has not. */
#include "cluster/cluster.h"
#include "arena/fnref.h"
#include "base/log.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FNREF_OFF_BITS 48 /* arena/fnref.h: [module:16 | offset:48] */

int mproc__cluster_fn_make(const void *fn, cl_fn *out)
{
    mproc__fnref ref;
    int rc = mproc__fnref_make(fn, &ref);
    if (rc) return rc;
    if (ref >> FNREF_OFF_BITS == 0) { /* the program */
        out->pathlen = 0;
        out->off = ref;
        return 0;
    }
    Dl_info di;
    struct link_map *lm = NULL;
    if (!dladdr1(fn, &di, (void **)&lm, RTLD_DL_LINKMAP) || !lm || !lm->l_name || !lm->l_name[0]) {
        mproc_log(MPROC_LOG_ERROR, "cluster: cannot find the library of function %p", fn);
        return MPROC_EINVAL;
    }
    char path[PATH_MAX];
    if (!realpath(lm->l_name, path)) return MPROC_EINVAL;
    size_t n = strlen(path);
    if (n >= sizeof out->path) return MPROC_ENAMETOOLONG;
    memcpy(out->path, path, n + 1);
    out->pathlen = (uint32_t)n;
    out->off = (uint64_t)((uintptr_t)fn - (uintptr_t)lm->l_addr);
    return 0;
}

void *mproc__cluster_fn_resolve(const char *path, uint32_t pathlen, uint64_t off)
{
    if (pathlen == 0) return off >> FNREF_OFF_BITS ? NULL : mproc__fnref_resolve(off);
    char p[PATH_MAX];
    if (pathlen >= sizeof p) return NULL;
    memcpy(p, path, pathlen);
    p[pathlen] = '\0';
    void *h = dlopen(p, RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen(p, RTLD_NOW | RTLD_GLOBAL);
    struct link_map *lm = NULL;
    if (!h || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm) {
        const char *why = dlerror();
        mproc_log(MPROC_LOG_ERROR, "cluster: cannot load %s: %s", p, why ? why : "unknown error");
        return NULL;
    }
    return (void *)((uintptr_t)lm->l_addr + (uintptr_t)off); /* the handle is kept */
}

void mproc__cluster_task_msg_at(void *m, const cl_fn *fn, const cl_task_hdr *hdr,
                                const void *payload, size_t plen)
{
    cl_task_hdr h = *hdr;
    h.pathlen = fn->pathlen;
    h.off = fn->off;
    memcpy(m, &h, sizeof h);
    memcpy((char *)m + sizeof h, fn->path, fn->pathlen);
    if (plen && payload) memcpy((char *)m + sizeof h + fn->pathlen, payload, plen);
}

void *mproc__cluster_task_msg(const cl_fn *fn, const cl_task_hdr *hdr, const void *payload,
                              size_t plen, size_t *len, int *rc)
{
    size_t total = sizeof(cl_task_hdr) + fn->pathlen;
    if (plen > (size_t)INT_MAX - total) {
        *rc = MPROC_EMSGSIZE;
        return NULL;
    }
    total += plen;
    char *m = mproc__cluster_msg_alloc(total);
    if (!m) {
        *rc = MPROC_ENOMEM;
        return NULL;
    }
    mproc__cluster_task_msg_at(m, fn, hdr, payload, plen);
    *len = total;
    *rc = 0;
    return m;
}

/* ---- the program's identity -------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

#define FNV_START 0xcbf29ce484222325ULL

/* The GNU build id of the program (the first object dl_iterate_phdr
 * reports). */
static int build_id_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uint64_t *id = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const char *desc = name + ((nh->n_namesz + 3) & ~3u);
            if (desc + nh->n_descsz > end) break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                *id = fnv1a(FNV_START, desc, nh->n_descsz);
                return 1;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    return 1; /* only the program */
}

uint64_t mproc__cluster_program_id(void)
{
    uint64_t id = 0;
    dl_iterate_phdr(build_id_cb, &id);
    if (id) return id;
    /* No build id: the executable's bytes. */
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint64_t h = FNV_START;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) h = fnv1a(h, buf, (size_t)n);
    close(fd);
    return n < 0 ? 0 : h;
}

/* ---- messages larger than a posted receive ---------------------------------------- */

/* The body goes first: when its announcement is taken, the body's envelope
 * has come before it on the same ordered path (the two are never matched
 * by one receive, so MPI's non-overtaking rule does not order them: the
 * transports, MPICH's and Open MPI's, deliver a peer's messages in
 * order). */
void mproc__cluster_isend(const void *buf, size_t n, int dest, int tag, MPI_Comm comm,
                          MPI_Request *req)
{
    if (n <= CL_POST_BYTES) {
        MPI_Isend(buf, (int)n, MPI_BYTE, dest, tag, comm, req);
        return;
    }
    MPI_Isend(buf, (int)n, MPI_BYTE, dest, CL_TAG_BODY, comm, req);
    MPI_Request ann;
    MPI_Isend(NULL, 0, MPI_BYTE, dest, tag, comm, &ann);
    MPI_Request_free(&ann);
}

bool mproc__cluster_posted(MPI_Comm comm, int src, int tag, cl_kbuf *post, MPI_Request *req,
                           MPI_Status *st)
{
    if (*req == MPI_REQUEST_NULL) {
        if (!mproc__cluster_kbuf(post, CL_POST_BYTES))
            mproc__panic("cluster: out of memory for a receive buffer");
        MPI_Irecv(post->p, (int)CL_POST_BYTES, MPI_BYTE, src, tag, comm, req);
    }
    int flag = 0;
    MPI_Test(req, &flag, st);
    return flag != 0;
}

const char *mproc__cluster_taken(MPI_Comm comm, const MPI_Status *st, const cl_kbuf *post,
                                 cl_kbuf *big, size_t *n)
{
    int c = 0;
    MPI_Get_count(st, MPI_BYTE, &c);
    if (c > 0) {
        *n = (size_t)c;
        return post->p;
    }
    MPI_Status bs;
    MPI_Probe(st->MPI_SOURCE, CL_TAG_BODY, comm, &bs);
    MPI_Get_count(&bs, MPI_BYTE, &c);
    char *p = mproc__cluster_kbuf(big, c > 0 ? (size_t)c : 1);
    if (!p) mproc__panic("cluster: out of memory for a message of %d bytes", c);
    MPI_Recv(p, c, MPI_BYTE, st->MPI_SOURCE, CL_TAG_BODY, comm, MPI_STATUS_IGNORE);
    *n = (size_t)c;
    return p;
}
