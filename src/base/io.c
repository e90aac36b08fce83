/* Whole-buffer writes and exact reads on blocking fds (base/io.h). */
#include "base/io.h"

#include <poll.h>
#include <unistd.h>

int mproc__write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n;
        MPROC__RETRY_EINTR(n, write(fd, p, len));
        if (n < 0) return MPROC__ERRNO();
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int mproc__wait_fd(int fd, short events, const mproc__deadline *dl)
{
    struct pollfd pf = {.fd = fd, .events = events};
    int n;
    MPROC__RETRY_EINTR(n, poll(&pf, 1, mproc__deadline_poll_ms(dl)));
    if (n > 0) return 0;
    if (n == 0) return MPROC_ETIMEDOUT;
    return MPROC__ERRNO();
}

int mproc__read_exact(int fd, void *buf, size_t len, const mproc__deadline *dl)
{
    size_t got = 0;
    while (got < len) {
        int rc = mproc__wait_fd(fd, POLLIN, dl);
        if (rc) return rc;
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR) continue; /* wait again: the deadline may have passed */
        if (n < 0) return MPROC__ERRNO();
        if (n == 0) return MPROC_EEOF;
        got += (size_t)n;
    }
    return 0;
}
