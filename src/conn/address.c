/* Address strings for listeners and clients (see listener.h), told apart
 * in this order:
 *   "@name"          an abstract Unix socket name;
 *   a '/' anywhere   a Unix socket path;
 *   '[' first        TCP over IPv6: "[v6addr]:port" and nothing else;
 *   a ':' anywhere   TCP: "host:port" split at the last ':', host empty or
 *                    made of letters, digits, '.', '-', '_';
 *   anything else    a Unix socket path (relative: "sock").
 * A port is 1 to 5 decimal digits, at most 65535. What is TCP by this rule
 * but malformed (a bad port, a bad host) is MPROC_EINVAL, never a path. */
#include "conn/address.h"
#include "base/base.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A decimal port 0..65535: 1 to 5 digits. */
static bool is_port(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5 || strspn(p, "0123456789") != n) return false;
    return atol(p) <= 65535;
}

/* A host name or an IPv4 address, or empty (every interface). */
static bool is_host(const char *h, size_t n)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
    for (size_t i = 0; i < n; i++)
        if (!h[i] || !strchr(ok, h[i])) return false;
    return true;
}

/* An IPv6 address, with an optional "%zone" (an interface). */
static bool is_v6(const char *h, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    const char *pct = memchr(h, '%', n);
    size_t alen = pct ? (size_t)(pct - h) : n;
    if (alen == 0 || alen >= sizeof buf || (pct && pct + 1 == h + n)) return false;
    memcpy(buf, h, alen);
    buf[alen] = '\0';
    struct in6_addr a6;
    return inet_pton(AF_INET6, buf, &a6) == 1;
}

static int set_tcp(mproc__addr *a, const char *host, size_t hlen, const char *port)
{
    if (hlen >= sizeof a->host || !is_port(port)) return MPROC_EINVAL;
    a->kind = MPROC__ADDR_TCP;
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    strcpy(a->port, port);
    return 0;
}

int mproc__addr_parse(const char *s, mproc__addr *a)
{
    memset(a, 0, sizeof *a);
    if (!s || !*s) return MPROC_EINVAL;
    if (s[0] != '@' && !strchr(s, '/')) {
        if (s[0] == '[') { /* [v6]:port */
            const char *close = strchr(s, ']');
            if (!close || close[1] != ':' || !is_v6(s + 1, (size_t)(close - s - 1)))
                return MPROC_EINVAL;
            return set_tcp(a, s + 1, (size_t)(close - s - 1), close + 2);
        }
        const char *colon = strrchr(s, ':');
        if (colon) { /* host:port */
            if (!is_host(s, (size_t)(colon - s))) return MPROC_EINVAL;
            return set_tcp(a, s, (size_t)(colon - s), colon + 1);
        }
    }
    a->kind = MPROC__ADDR_UNIX;
    a->un.sun_family = AF_UNIX;
    size_t n = strlen(s);
    if (s[0] == '@') { /* abstract: a NUL, then the name (not NUL-terminated) */
        if (n == 1) return MPROC_EINVAL;
        if (n > sizeof a->un.sun_path) return MPROC_ENAMETOOLONG;
        a->abstract = true;
        memcpy(a->un.sun_path + 1, s + 1, n - 1);
        a->un_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (n >= sizeof a->un.sun_path) return MPROC_ENAMETOOLONG;
    memcpy(a->un.sun_path, s, n + 1);
    a->un_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

char *mproc__addr_format(const struct sockaddr *sa, socklen_t len)
{
    char buf[sizeof(struct sockaddr_un) + INET6_ADDRSTRLEN + 16];
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? len - off : 0;
        if (n > 0 && un->sun_path[0] == '\0') { /* abstract */
            buf[0] = '@';
            memcpy(buf + 1, un->sun_path + 1, n - 1);
            buf[n] = '\0';
        } else {
            size_t k = strnlen(un->sun_path, n);
            memcpy(buf, un->sun_path, k);
            buf[k] = '\0';
        }
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        char h[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, h, sizeof h);
        snprintf(buf, sizeof buf, "%s:%u", h, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        char h[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof h);
        snprintf(buf, sizeof buf, "[%s]:%u", h, (unsigned)ntohs(in6->sin6_port));
    } else {
        return NULL;
    }
    return strdup(buf);
}

int mproc__addr_resolve(const mproc__addr *a, bool passive, struct addrinfo **out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (passive) hints.ai_flags |= AI_PASSIVE;
    int e = getaddrinfo(a->host[0] ? a->host : NULL, a->port, &hints, out);
    if (e == 0) return 0;
    if (e == EAI_MEMORY) return MPROC_ENOMEM;
    if (e == EAI_SYSTEM) return MPROC__ERRNO();
    return MPROC_ENOENT;
}
