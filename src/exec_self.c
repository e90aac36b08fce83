/* The environment of a re-executed program image (internal/exec_self.h). */
#include "internal/exec_self.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#define WAS_VAR "MPROC_PRELOAD_WAS"

/* How to re-execute: 1 (our code is in the program), 2 (in the shared
 * library whose path goes to lib), 0 (not at all). */
static int exec_plan(char lib[PATH_MAX])
{
    if (getauxval(AT_SECURE)) return 0;
    Dl_info self, prog;
    if (!dladdr((void *)mproc__exec_env_make, &self) || !self.dli_fname) return 0;
    unsigned long entry = getauxval(AT_ENTRY);
    if (entry && dladdr((void *)entry, &prog) && prog.dli_fbase == self.dli_fbase) return 1;
    if (!self.dli_fname[0] || !realpath(self.dli_fname, lib)) return 0;
    return 2;
}

bool mproc__exec_self_possible(void)
{
    char lib[PATH_MAX];
    return exec_plan(lib) != 0;
}

static bool has_name(const char *entry, const char *name, size_t nlen)
{
    return strncmp(entry, name, nlen) == 0 && entry[nlen] == '=';
}

int mproc__exec_env_make(const char *assign, mproc__exec_env *out)
{
    extern char **environ;
    char lib[PATH_MAX];
    *out = (mproc__exec_env){0};
    int plan = exec_plan(lib);
    if (!plan) return MPROC_ENOTSUP;
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
        if (plan == 2 && has_name(environ[i], "LD_PRELOAD", 10)) {
            old_preload = environ[i] + 11;
            continue;
        }
        envp[k++] = environ[i];
    }
    envp[k++] = (char *)assign;
    if (plan == 2) {
        size_t len = 11 + strlen(lib) + (old_preload ? 1 + strlen(old_preload) : 0) + 1;
        size_t wlen = sizeof WAS_VAR + 1 + (old_preload ? strlen(old_preload) : 0) + 1;
        out->preload = malloc(len);
        out->was = malloc(wlen);
        if (!out->preload || !out->was) {
            free(envp);
            mproc__exec_env_free(out);
            return MPROC_ENOMEM;
        }
        snprintf(out->preload, len, "LD_PRELOAD=%s%s%s", lib, old_preload ? " " : "",
                 old_preload ? old_preload : "");
        snprintf(out->was, wlen, WAS_VAR "=%s%s", old_preload ? "1" : "0",
                 old_preload ? old_preload : "");
        envp[k++] = out->preload;
        envp[k++] = out->was;
    }
    envp[k] = NULL;
    out->envp = envp;
    return 0;
}

void mproc__exec_env_free(mproc__exec_env *e)
{
    free(e->envp);
    free(e->preload);
    free(e->was);
    *e = (mproc__exec_env){0};
}

void mproc__exec_env_restore(void)
{
    const char *was = getenv(WAS_VAR);
    if (!was) return;
    if (was[0] == '1')
        setenv("LD_PRELOAD", was + 1, 1);
    else
        unsetenv("LD_PRELOAD");
    unsetenv(WAS_VAR);
}
