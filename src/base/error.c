/* Error codes: names and messages from the X-macro tables in base.h. */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int code;
    const char *name;
    const char *msg;
} err_entry;

static const err_entry err_table[] = {{0, "MPROC_OK", "success"},
#define ENTRY(n, v, m) {(v), "MPROC_" #n, (m)},
                                      MPROC_ERRNO_TABLE(ENTRY) MPROC_LIBERR_TABLE(ENTRY)
#undef ENTRY
};

static const err_entry *find(int code)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].code == code) return &err_table[i];
    return NULL;
}

const char *mproc_strerror(int code)
{
    const err_entry *e = find(code);
    if (e) return e->msg;
    if (code < 0 && code > -4096) {
        /* An errno value the table does not name: the C library's text.
         * strerrordesc_np returns static storage and is thread-safe. */
        const char *s = strerrordesc_np(-code);
        if (s) return s;
    }
    return "unknown error code";
}

char *mproc_strerror_r(int code, char *buf, size_t len)
{
    if (!buf || len == 0) return buf;
    snprintf(buf, len, "%s", mproc_strerror(code));
    return buf;
}

const char *mproc_err_name(int code)
{
    const err_entry *e = find(code);
    return e ? e->name : "MPROC_E?";
}

int mproc__err_from_errno(int e)
{
    if (e == ETIMEDOUT) return MPROC_ETIMEDOUT;
    if (e == EWOULDBLOCK) return MPROC_EAGAIN;
    if (e <= 0) return MPROC_EUNKNOWN;
    return -e;
}

void mproc__panic(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    fprintf(stderr, "mproc: fatal: %.*s\n", n, buf);
    abort();
}

const char *mproc_version(void)
{
    return MPROC_VERSION_STRING;
}
int mproc_version_number(void)
{
    return MPROC_VERSION_NUMBER;
}

int mproc_check(int rc, const char *what)
{
    if (rc >= 0) return rc;
    char buf[256];
    fflush(stdout); /* what the program printed comes before the error */
    fprintf(stderr, "%s: %s%s%s (%s)\n", program_invocation_short_name, what ? what : "",
            what ? ": " : "", mproc_strerror_r(rc, buf, sizeof buf), mproc_err_name(rc));
    exit(1);
}
