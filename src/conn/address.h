/* Listener/Client addresses: parsing the string forms (listener.h) and
 * naming a bound socket. */
#ifndef MPROC_INTERNAL_ADDRESS_H
#define MPROC_INTERNAL_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef enum { MPROC__ADDR_UNIX = 1, MPROC__ADDR_TCP = 2 } mproc__addr_kind;

typedef struct mproc__addr {
    mproc__addr_kind kind;
    /* UNIX: the socket address (a path, or an abstract name) */
    struct sockaddr_un un;
    socklen_t un_len;
    bool abstract;
    /* TCP: host ("" for any) and port, to resolve with getaddrinfo */
    char host[256];
    char port[6];
} mproc__addr;

/* Parses a non-empty address string. Errors: MPROC_EINVAL (malformed),
 * MPROC_ENAMETOOLONG. */
int mproc__addr_parse(const char *s, mproc__addr *a);

/* The string form of a socket address (as mproc__addr_parse reads it) in
 * a new malloc'd string, or NULL when out of memory or of an unknown
 * family. */
char *mproc__addr_format(const struct sockaddr *sa, socklen_t len);

/* Resolves a TCP address: getaddrinfo results to free with freeaddrinfo.
 * passive: for bind (an empty host means every interface).
 * Errors: MPROC_ENOENT (does not resolve), MPROC_ENOMEM. */
struct addrinfo;
int mproc__addr_resolve(const mproc__addr *a, bool passive, struct addrinfo **out);

#endif
