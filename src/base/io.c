/* Whole-buffer writes on blocking fds. */
#include "base/base.h"

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
