/* Whole-buffer read/write on blocking fds. */
#include "internal/base.h"

#include <unistd.h>

int mproc__write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return MPROC__ERRNO();
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int mproc__read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return MPROC__ERRNO();
        }
        if (n == 0) return MPROC_EEOF;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
