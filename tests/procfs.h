/* Counting the entries of a directory, mostly of /proc: a process's
 * threads and open fds. Shared by the Check tests (through testutil.h)
 * and the fault suite, so it uses nothing of Check. */
#ifndef MPROC_TESTS_PROCFS_H
#define MPROC_TESTS_PROCFS_H

#include <dirent.h>
#include <stdio.h>
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

#endif
