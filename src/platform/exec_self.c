/* The environment of a re-executed program image (platform/exec_self.h).
 *
 * The new image runs mproc's start-up code only if it loads mproc by
 * itself: when mproc is linked into the program, or is a shared library
 * that the program's start-up loads (a DT_NEEDED dependency of the program
 * or of one of its dependencies, or in LD_PRELOAD). Only a library the
 * program dlopen'ed (directly or as a dependency of a dlopen'ed one) must
 * be preloaded; then it goes first in LD_PRELOAD (after a sanitizer
 * runtime the program started with, which must stay first), and the new
 * image puts LD_PRELOAD back as it was. Which case holds is found once,
 * from the dynamic sections of the loaded objects. */
#include "platform/exec_self.h"

#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#define WAS_VAR  MPROC__ENV_PRELOAD_WAS
#define MAX_OBJS 1024

/* ---- which objects the program's start-up loads -------------------------- */

typedef struct obj {
    const char *name; /* the path it was loaded from; "" for the program */
    const ElfW(Phdr) * phdr;
    ElfW(Half) phnum;
    uintptr_t bias;
    const ElfW(Dyn) * dyn; /* NULL: none */
    const char *strtab;    /* NULL: none found */
    bool startup;
} obj;

typedef struct objs {
    obj *o;
    size_t n;
} objs;

static bool in_segment(const obj *o, uintptr_t addr)
{
    for (ElfW(Half) i = 0; i < o->phnum; i++) {
        const ElfW(Phdr) *ph = &o->phdr[i];
        if (ph->p_type == PT_LOAD && addr >= o->bias + ph->p_vaddr &&
            addr - (o->bias + ph->p_vaddr) < ph->p_memsz)
            return true;
    }
    return false;
}

static int collect(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    objs *all = data;
    if (all->n == MAX_OBJS) return 1;
    obj *o = &all->o[all->n++];
    *o = (obj){.name = info->dlpi_name ? info->dlpi_name : "",
               .phdr = info->dlpi_phdr,
               .phnum = info->dlpi_phnum,
               .bias = info->dlpi_addr};
    for (ElfW(Half) i = 0; i < o->phnum; i++)
        if (o->phdr[i].p_type == PT_DYNAMIC)
            o->dyn = (const ElfW(Dyn) *)(o->bias + o->phdr[i].p_vaddr);
    /* The loader relocates DT_STRTAB in place on most targets, not where
     * the dynamic section is read-only: take whichever lies in the object. */
    for (const ElfW(Dyn) *d = o->dyn; d && d->d_tag != DT_NULL; d++) {
        if (d->d_tag != DT_STRTAB) continue;
        uintptr_t v = (uintptr_t)d->d_un.d_ptr;
        if (in_segment(o, v))
            o->strtab = (const char *)v;
        else if (in_segment(o, o->bias + v))
            o->strtab = (const char *)(o->bias + v);
    }
    return 0;
}

static const char *soname(const obj *o)
{
    for (const ElfW(Dyn) *d = o->dyn; o->strtab && d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_SONAME) return o->strtab + d->d_un.d_val;
    return NULL;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Whether the loader would take o for the object named `want` (a DT_NEEDED
 * or LD_PRELOAD entry): the same path, or the same file name or soname. */
static bool names(const obj *o, const char *want, size_t len)
{
    if (!o->name[0] || len == 0) return false;
    if (memchr(want, '/', len)) return strlen(o->name) == len && !memcmp(o->name, want, len);
    const char *so = soname(o), *bn = base_name(o->name);
    return (strlen(bn) == len && !memcmp(bn, want, len)) ||
           (so && strlen(so) == len && !memcmp(so, want, len));
}

static bool mark(objs *all, const char *want, size_t len)
{
    bool changed = false;
    for (size_t i = 0; i < all->n; i++)
        if (!all->o[i].startup && names(&all->o[i], want, len)) all->o[i].startup = changed = true;
    return changed;
}

/* Marks what the program's start-up loads: the program, LD_PRELOAD's
 * entries, and every DT_NEEDED of those, transitively. */
static void mark_startup(objs *all)
{
    all->o[0].startup = true; /* dl_iterate_phdr gives the program first */
    const char *pre = mproc__setting(MPROC__SET_LD_PRELOAD);
    for (const char *p = pre; p && *p;) {
        size_t len = strcspn(p, " :");
        mark(all, p, len);
        p += len;
        p += strspn(p, " :");
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < all->n; i++) {
            const obj *o = &all->o[i];
            if (!o->startup || !o->strtab) continue;
            for (const ElfW(Dyn) *d = o->dyn; d->d_tag != DT_NULL; d++) {
                if (d->d_tag != DT_NEEDED) continue;
                const char *want = o->strtab + d->d_un.d_val;
                changed |= mark(all, want, strlen(want));
            }
        }
    }
}

/* A sanitizer runtime, which must come first in the initial library list. */
static bool is_sanitizer_runtime(const obj *o)
{
    static const char *const rts[] = {"libasan.so",       "libhwasan.so",       "libtsan.so",
                                      "libclang_rt.asan", "libclang_rt.hwasan", "libclang_rt.tsan"};
    const char *bn = base_name(o->name);
    for (size_t i = 0; i < MPROC__COUNTOF(rts); i++)
        if (strncmp(bn, rts[i], strlen(rts[i])) == 0) return true;
    return false;
}

/* ---- the plan, found once ------------------------------------------------- */

enum { PLAN_NONE, PLAN_LOADS_ITSELF, PLAN_PRELOAD };

static pthread_once_t plan_once = PTHREAD_ONCE_INIT;
static int plan;
static char plan_lib[PATH_MAX];     /* PLAN_PRELOAD: our library */
static char plan_runtime[PATH_MAX]; /* PLAN_PRELOAD: a sanitizer runtime to keep first, or "" */

/* Whether the program's start-up loads the object that holds addr; also
 * the path of a sanitizer runtime it starts with (or ""). */
static bool loaded_at_startup(const void *addr, char runtime[PATH_MAX])
{
    objs all = {calloc(MAX_OBJS, sizeof(obj)), 0};
    if (!all.o) return false; /* then preload: it works either way */
    dl_iterate_phdr(collect, &all);
    bool found = false, startup = false;
    if (all.n) {
        mark_startup(&all);
        for (size_t i = 0; i < all.n; i++) {
            if (!found && in_segment(&all.o[i], (uintptr_t)addr)) {
                found = true;
                startup = all.o[i].startup;
            }
            if (!runtime[0] && all.o[i].startup && is_sanitizer_runtime(&all.o[i]) &&
                strlen(all.o[i].name) < PATH_MAX)
                strcpy(runtime, all.o[i].name);
        }
    }
    free(all.o);
    return found && startup;
}

static void find_plan(void)
{
    if (getauxval(AT_SECURE)) return;
    Dl_info self, prog;
    if (!dladdr((void *)mproc__exec_env_make, &self) || !self.dli_fname) return;
    unsigned long entry = getauxval(AT_ENTRY);
    if (entry && dladdr((void *)entry, &prog) && prog.dli_fbase == self.dli_fbase) {
        plan = PLAN_LOADS_ITSELF; /* linked into the program */
        return;
    }
    if (!self.dli_fname[0] || !realpath(self.dli_fname, plan_lib)) return;
    plan = loaded_at_startup((void *)mproc__exec_env_make, plan_runtime) ? PLAN_LOADS_ITSELF
                                                                         : PLAN_PRELOAD;
}

/* How to re-execute: PLAN_LOADS_ITSELF (the new image runs our code by
 * itself), PLAN_PRELOAD (only if plan_lib is preloaded), PLAN_NONE (not at
 * all). */
static int exec_plan(void)
{
    pthread_once(&plan_once, find_plan);
    return plan;
}

bool mproc__exec_self_possible(void)
{
    return exec_plan() != PLAN_NONE;
}

static bool has_name(const char *entry, const char *name, size_t nlen)
{
    return strncmp(entry, name, nlen) == 0 && entry[nlen] == '=';
}

/* environ[i] is read only for i < n, and n is 0 when environ is NULL: the
 * analyzer merges the two and sees a NULL dereference. */
MPROC__ANALYZER_OFF("-Wanalyzer-null-dereference")
int mproc__exec_env_make(const char *assign, mproc__exec_env *out)
{
    extern char **environ;
    *out = (mproc__exec_env){0};
    int plan = exec_plan();
    if (plan == PLAN_NONE) return MPROC_ENOTSUP;
    const char *eq = strchr(assign, '=');
    size_t alen = eq ? (size_t)(eq - assign) : strlen(assign);
    size_t n = 0;
    while (environ && environ[n]) n++;
    char **envp = malloc((n + 4) * sizeof *envp);
    if (!envp) return MPROC_ENOMEM;
    const char *old_preload = NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (has_name(environ[i], assign, alen) || has_name(environ[i], WAS_VAR, strlen(WAS_VAR)))
            continue;
        if (plan == PLAN_PRELOAD && has_name(environ[i], "LD_PRELOAD", 10)) {
            old_preload = environ[i] + 11;
            continue;
        }
        envp[k++] = environ[i];
    }
    envp[k++] = (char *)assign;
    if (plan == PLAN_PRELOAD) {
        const char *rt = plan_runtime, *lib = plan_lib;
        size_t len = 11 + (rt[0] ? strlen(rt) + 1 : 0) + strlen(lib) +
                     (old_preload ? 1 + strlen(old_preload) : 0) + 1;
        size_t wlen = sizeof WAS_VAR + 1 + (old_preload ? strlen(old_preload) : 0) + 1;
        out->preload = malloc(len);
        out->was = malloc(wlen);
        if (!out->preload || !out->was) {
            free(envp);
            mproc__exec_env_free(out);
            return MPROC_ENOMEM;
        }
        snprintf(out->preload, len, "LD_PRELOAD=%s%s%s%s%s", rt, rt[0] ? " " : "", lib,
                 old_preload ? " " : "", old_preload ? old_preload : "");
        snprintf(out->was, wlen, WAS_VAR "=%s%s", old_preload ? "1" : "0",
                 old_preload ? old_preload : "");
        envp[k++] = out->preload;
        envp[k++] = out->was;
    }
    envp[k] = NULL;
    out->envp = envp;
    return 0;
}
MPROC__ANALYZER_ON

void mproc__exec_env_free(mproc__exec_env *e)
{
    free(e->envp);
    free(e->preload);
    free(e->was);
    *e = (mproc__exec_env){0};
}

void mproc__exec_env_restore(void)
{
    const char *was = mproc__setting(MPROC__SET_PRELOAD_WAS);
    if (!was) return;
    if (was[0] == '1')
        setenv("LD_PRELOAD", was + 1, 1);
    else
        unsetenv("LD_PRELOAD");
    unsetenv(WAS_VAR);
}

const char *mproc__self_exe(void)
{
    return "/proc/self/exe";
}

char *mproc__program_name(void)
{
    extern char *program_invocation_name;
    return program_invocation_name;
}
