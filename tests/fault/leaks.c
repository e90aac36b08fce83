/* What the fault suite measures from outside: fds, children (and which
 * are zombies), threads, directory listings, arena usage. */
#include "fault.h"
#include "../procfs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ft_count_fds(void)
{
    int n = tu_count_dir("/proc/self/fd");
    return n < 0 ? -1 : n - 1; /* the directory's own fd */
}

int ft_fds_of(pid_t pid)
{
    return tu_count_proc(pid, "fd");
}

int ft_threads(pid_t pid)
{
    int n = tu_count_proc(pid, "task");
    return n < 0 ? 0 : n;
}

/* Reads the state and parent of /proc/<pid>/stat. */
static bool proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char buf[512];
    const char *fields = tu_proc_stat(pid, buf, sizeof buf);
    int pp;
    if (!fields || sscanf(fields, "%c %d", state, &pp) != 2) return false;
    *ppid = pp;
    return true;
}

int ft_children(pid_t *out, int cap, bool *zombie)
{
    return ft_children_zombie(getpid(), out, cap, zombie);
}

int ft_children_of(pid_t parent, pid_t *out, int cap)
{
    return ft_children_zombie(parent, out, cap, NULL);
}

int ft_children_zombie(pid_t me, pid_t *out, int cap, bool *zombie)
{
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char st;
        pid_t pp;
        if (!proc_stat((pid_t)pid, &st, &pp) || pp != me) continue;
        if (n < cap) {
            out[n] = (pid_t)pid;
            if (zombie) zombie[n] = st == 'Z';
        }
        n++;
    }
    closedir(d);
    return n;
}

size_t ft_arena_used(void)
{
    mproc_arena_info info;
    if (mproc_arena_info_get(&info) != 0) return 0;
    return info.allocated;
}

int ft_list_dir(const char *dir, char *out, size_t cap)
{
    if (cap) out[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    size_t used = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        n++;
        int w =
            snprintf(out + used, cap > used ? cap - used : 0, "%s%s", used ? " " : "", e->d_name);
        if (w > 0) used += (size_t)w;
        if (used >= cap) used = cap ? cap - 1 : 0;
    }
    closedir(d);
    return n;
}
