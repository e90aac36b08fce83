/* pipe_sender_receiver — C twin of seed 003's pipe program.
 *
 * A sender process sends four messages down one end of a pipe; a receiver
 * process reads them from the other end and prints them until it gets
 * "END". The pipe is duplex, like Python's default Pipe().
 *
 * The Python original:
 *
 *     def sender(conn, msgs):
 *         for msg in msgs:
 *             conn.send(msg)
 *             print("Sent the message: {}".format(msg))
 *         conn.close()
 *
 *     def receiver(conn):
 *         while 1:
 *             msg = conn.recv()
 *             if msg == "END":
 *                 break
 *             print("Received the message: {}".format(msg))
 *
 *     if __name__ == "__main__":
 *         msgs = ["hello", "hey", "hru?", "END"]
 *         parent_conn, child_conn = multiprocessing.Pipe()
 *         p1 = multiprocessing.Process(target=sender, args=(parent_conn,msgs))
 *         p2 = multiprocessing.Process(target=receiver, args=(child_conn,))
 *         p1.start()
 *         p2.start()
 *         p1.join()
 *         p2.join()
 *
 * Where Python pickles each string, this sends its bytes (without the
 * terminating NUL) with mproc_conn_send_bytes.
 *
 * Closing ends: with the fork method every process inherits both ends of
 * the pipe. Each child closes the end it does not use, and the parent
 * closes both once the children are started. That way the receiver's end
 * sees end of file if the sender dies before sending "END", instead of
 * blocking forever on an end that some process still holds open.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each child gets: a copy of these bytes. The connection handles
 * travel as fds under every start method; the messages are in the bytes
 * themselves (a pointer to the parent's data would mean nothing in a
 * spawned child). */
struct pipe_args {
    mproc_conn *conn;  /* the end this child uses */
    mproc_conn *other; /* the peer's end, which this child closes */
    char msgs[4][8];   /* sender only: the messages */
    size_t nmsgs;      /* sender only: how many */
};

/* Target of p1: sends every message, then closes its end. */
static int sender(void *arg)
{
    const struct pipe_args *a = arg;

    mproc_conn_free(a->other); /* the receiver's end: not ours */
    for (size_t i = 0; i < a->nmsgs; i++) {
        MPROC_CHECK(mproc_conn_send_bytes(a->conn, a->msgs[i], strlen(a->msgs[i])));
        printf("Sent the message: %s\n", a->msgs[i]);
    }
    mproc_conn_free(a->conn); /* conn.close() */
    return 0;
}

/* Target of p2: prints each message until "END" arrives. */
static int receiver(void *arg)
{
    const struct pipe_args *a = arg;

    mproc_conn_free(a->other); /* the sender's end: not ours */
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_conn_recv_bytes(a->conn, &buf, &len, MPROC_FOREVER);
        if (rc == MPROC_EEOF) {
            fprintf(stderr, "pipe_sender_receiver: the sender closed before sending END\n");
            return 1;
        }
        MPROC_CHECK(rc);

        /* The message is not NUL-terminated: compare and print by length. */
        int is_end = len == 3 && memcmp(buf, "END", 3) == 0;
        if (!is_end) printf("Received the message: %.*s\n", (int)len, (const char *)buf);
        free(buf);
        if (is_end) break;
    }
    mproc_conn_free(a->conn);
    return 0;
}

int main(void)
{
    mproc_conn *parent_conn, *child_conn;
    MPROC_CHECK(mproc_pipe(&parent_conn, &child_conn, true));
    struct pipe_args sender_args = {parent_conn, child_conn, {"hello", "hey", "hru?", "END"}, 4};
    struct pipe_args receiver_args = {.conn = child_conn, .other = parent_conn};
    mproc_process *p[2];
    MPROC_CHECK(mproc_process_start_new(&p[0], sender, &sender_args, sizeof sender_args, NULL));
    MPROC_CHECK(
        mproc_process_start_new(&p[1], receiver, &receiver_args, sizeof receiver_args, NULL));
    MPROC_FREE(parent_conn, child_conn); /* the parent uses neither end: the children have theirs */
    MPROC_CHECK(mproc_process_join_free_all(p, 2, MPROC_FOREVER, NULL));
    return 0;
}
