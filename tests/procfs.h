/* Reading /proc: counting the entries of a directory (a process's
 * threads, its open fds), a process's stat line. Shared by the Check
 * tests (through testutil.h) and the fault suite, so it uses nothing of
 * Check. */
#ifndef MPROC_TESTS_PROCFS_H
#define MPROC_TESTS_PROCFS_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

/* Entries of a directory whose names do not start with '.'; -1 if it
 * cannot be opened. */
static inline int tu_count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Entries of /proc/<pid>/<what> (task: threads, fd: open fds); -1 if the
 * process is gone. */
static inline int tu_count_proc(pid_t pid, const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
    return tu_count_dir(path);
}

/* The fields of /proc/<pid>/stat after the command name, from the state
 * letter on ("S 1234 ..."), read into buf (cap bytes); NULL if the
 * process is gone. */
static inline const char *tu_proc_stat(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *r = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    return r && r[1] == ' ' ? r + 2 : NULL;
}

#endif
