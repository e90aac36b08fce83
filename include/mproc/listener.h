/* mproc — listeners and clients (multiprocessing.connection.Listener and
 * Client), with Python's authkey challenge/response handshake.
 *
 * Addresses are strings, told apart in this order:
 *   NULL or ""       a private temporary Unix socket path (a new directory
 *                    in $TMPDIR or /tmp; both removed when the listener is
 *                    closed), as Python's arbitrary_address does
 *   "@name"          a Linux abstract Unix socket name (Python spells it
 *                    "\0name"); nothing to remove on close
 *   with a '/'       a Unix socket path ("/run/x.sock", "./name:123")
 *   "[v6addr]:port"  TCP over IPv6, e.g. "[::1]:0", "[fe80::1%eth0]:80"
 *   with a ':'       TCP, "host:port" (split at the last ':'); host a name
 *                    or an IPv4 address (letters, digits, '.', '-', '_'),
 *                    empty for every interface
 *   anything else    a Unix socket path relative to the working directory
 *                    ("sock"); write one with a ':' as "./name:123"
 * A port is 1 to 5 decimal digits, at most 65535; 0 lets the kernel pick a
 * free port. A string that is TCP by these rules but malformed ("h:70000",
 * "h:", "h:x", "[::1]:99999", "[::1]", "a b:1", "::1:80") is
 * MPROC_EINVAL, never a Unix path.
 *
 * Connections made by a listener or a client are ordinary mproc_conn
 * stream connections (see conn.h), byte-compatible with Python's.
 *
 * Authentication (Python's deliver_challenge / answer_challenge): with a
 * key, the listener challenges the client, then the client challenges the
 * listener. A challenge is "#CHALLENGE#{digest}" followed by 40 fresh
 * random bytes; the answer is "{digest}" followed by the HMAC of the
 * challenge under the key (HMAC from OpenSSL, compared in constant time);
 * the verdict is "#WELCOME#" or "#FAILURE#". This is the handshake of
 * Python 3.12 and later. Python 3.11 and older speak the legacy one: a bare
 * 20-byte challenge answered with a bare 16-byte HMAC-MD5. Both are
 * understood unless `reject_legacy` is set; then a legacy peer (or any use
 * of MD5) fails with MPROC_EAUTH here and gets an authentication error
 * (#FAILURE#) on its side. Nothing an unauthenticated peer sends is read
 * beyond the handshake messages, each capped at 256 bytes.
 */
#ifndef MPROC_LISTENER_H
#define MPROC_LISTENER_H

#include "conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest authkey accepted, in bytes. */
#define MPROC_AUTHKEY_MAX 1024

/* Authentication settings; all zero means no authentication (Python's
 * authkey=None). */
typedef struct mproc_auth {
    /* The key (key_len bytes, 1..MPROC_AUTHKEY_MAX); copied by the call
     * that takes it. NULL: no authentication, unless family_key. */
    const void *key;
    size_t key_len;
    /* With key NULL: use the family authkey (mproc_get_authkey) as it is
     * at the time of the call, as Python's managers use
     * current_process().authkey. */
    bool family_key;
    /* Refuse the legacy HMAC-MD5 handshake and MD5 digests. */
    bool reject_legacy;
    /* The digest our challenges name: "sha256" (NULL), "sha384",
     * "sha3_256", "sha3_384" or "md5". */
    const char *digest;
    /* Bound on one whole handshake in milliseconds: 0 means 10000,
     * MPROC_FOREVER none. A client's handshake runs from its connection
     * (see mproc_listener_accept); the client's own timeout bounds its
     * side too. */
    int timeout_ms;
} mproc_auth;

/* ---- the family authkey --------------------------------------------------- */

/* The current process's authkey (Python's current_process().authkey): 32
 * random bytes (OpenSSL RAND_bytes) made once at the root of the family,
 * inherited by children under every start method. Copies it to
 * buf[0..cap) and sets *len. Errors: MPROC_EINVAL (NULL len, or NULL buf
 * with cap > 0), MPROC_ETOOSMALL (cap < the key's length: *len is set),
 * MPROC_EIO (no randomness). Thread-safe. */
MPROC_API int mproc_get_authkey(void *buf, size_t cap, size_t *len);

/* Replaces the current process's authkey (children started afterwards
 * inherit the new one). The bytes are copied.
 * Errors: MPROC_EINVAL (NULL key, len 0 or over MPROC_AUTHKEY_MAX).
 * Thread-safe. */
MPROC_API int mproc_set_authkey(const void *key, size_t len);

/* ---- listener ------------------------------------------------------------- */

/* A listener (opaque). */
typedef struct mproc_listener mproc_listener;

/* Options for mproc_listener_new; zero (or NULL) means defaults. */
typedef struct mproc_listener_opts {
    mproc_auth auth; /* authenticate every accepted client with this */
    int backlog;     /* listen(2) backlog; 0 means 64 */
} mproc_listener_opts;

/* Creates a listening socket bound to `address` (see the top of this
 * file). All fds are close-on-exec.
 * Errors: MPROC_EINVAL (a malformed address or bad options, a key of
 * length 0), MPROC_ENAMETOOLONG (a Unix path over 107 bytes),
 * MPROC_EADDRINUSE, MPROC_EADDRNOTAVAIL, MPROC_EACCES, MPROC_ENOENT (the
 * directory does not exist, or the host name does not resolve),
 * MPROC_EMFILE, MPROC_ENOMEM, MPROC_EIO (no randomness for the family
 * key). */
MPROC_API int mproc_listener_new(mproc_listener **out, const char *address,
                                 const mproc_listener_opts *opts);

/* Waits for a client and accepts it. *out is a new connection owned by the
 * caller (mproc_conn_free). With a key, the handshakes of all the clients
 * that connected run at once, none blocking the others, each bounded by
 * opts.auth.timeout_ms from its connection; accept returns the first
 * client whose handshake succeeds, so a silent or slow client never delays
 * another. A handshake still under way when timeout_ms passes goes on at
 * the next accept (of any thread); at most min(backlog, 256) are under way
 * at once (more clients wait in the backlog).
 * Errors: MPROC_ETIMEDOUT (no client accepted in time), MPROC_EAUTH (a
 * client failed its handshake, broke off during it, or was silent past its
 * bound: it is dropped, and the listener goes on accepting),
 * MPROC_ECLOSED, MPROC_EINVAL, MPROC_EMFILE, MPROC_ENOMEM.
 * Several threads may accept at once; closing during an accept is not
 * allowed. A forked child that inherits the listener may accept too (the
 * handshakes under way at the fork stay the parent's). */
MPROC_API int mproc_listener_accept(mproc_listener *l, mproc_conn **out, int timeout_ms);

/* The address clients use to reach the listener, with the real port for
 * port 0 and the real path for a temporary address ("@name" for an
 * abstract name, "[addr]:port" for IPv6). Lives as long as the listener
 * object. "" for NULL. */
MPROC_API const char *mproc_listener_address(const mproc_listener *l);

/* The fd to wait on before mproc_listener_accept (poll(2), or
 * MPROC_WAITABLE_FD in mproc_wait): readable when accept has work. Without
 * a key, the listening socket, readable when a client waits. With a key,
 * an epoll fd over the listening socket and the handshakes under way,
 * readable when a client waits or a handshake can go on; each accept
 * (timeout 0 is fine) moves them on. Owned by the listener (a fork child
 * gets its own). Errors: MPROC_EINVAL, MPROC_ECLOSED, MPROC_EMFILE (a fork
 * child could not make its own). */
MPROC_API int mproc_listener_fileno(const mproc_listener *l);

/* Closes the socket and, in the process that created the listener,
 * removes its Unix socket path (and the private directory of a temporary
 * address). The object stays valid (its address too); accept then returns
 * MPROC_ECLOSED. A second close is harmless; NULL is a no-op. */
MPROC_API void mproc_listener_close(mproc_listener *l);

/* Closes (if open) and frees the listener. NULL is a no-op. */
MPROC_API void mproc_listener_free(mproc_listener *l);

/* ---- client --------------------------------------------------------------- */

/* Options for mproc_client; zero (or NULL) means defaults. */
typedef struct mproc_client_opts {
    mproc_auth auth; /* answer the listener's challenge, then challenge it */
} mproc_client_opts;

/* Connects to the listener at `address` (a TCP name may resolve to
 * several addresses: each is tried) and, with a key, runs the handshake.
 * timeout_ms bounds connecting and the handshake together. *out is a new
 * connection owned by the caller. Thread-safe.
 * Errors: MPROC_EINVAL (NULL or empty address, bad options),
 * MPROC_ENAMETOOLONG, MPROC_ECONNREFUSED / MPROC_ENOENT (nobody listens
 * there), MPROC_ETIMEDOUT, MPROC_EAUTH (the handshake failed: wrong key,
 * refused legacy peer, a peer that does not authenticate),
 * MPROC_ENETUNREACH, MPROC_EHOSTUNREACH, MPROC_EADDRNOTAVAIL, MPROC_EMFILE,
 * MPROC_ENOMEM. */
MPROC_API int mproc_client(mproc_conn **out, const char *address, const mproc_client_opts *opts,
                           int timeout_ms);

/* ---- the handshake on any connection -------------------------------------- */

/* Python's deliver_challenge: challenges the peer, checks its answer and
 * tells it the verdict. Run by the side that accepted.
 * Errors: MPROC_EAUTH (wrong answer, legacy refused, the peer broke off),
 * MPROC_ETIMEDOUT (timeout_ms or auth->timeout_ms passed), MPROC_EINVAL
 * (NULL, or no key in auth), MPROC_ECLOSED, MPROC_EPIPE, MPROC_EIO. */
MPROC_API int mproc_deliver_challenge(mproc_conn *c, const mproc_auth *auth, int timeout_ms);

/* Python's answer_challenge: answers the peer's challenge and reads the
 * verdict. Run by the side that connected. Errors: as
 * mproc_deliver_challenge. */
MPROC_API int mproc_answer_challenge(mproc_conn *c, const mproc_auth *auth, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
