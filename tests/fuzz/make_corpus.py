#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<name>
(one folder per target; the input formats are described at the top of each
tests/fuzz/fuzz_<name>.c). Files already there and not made here (the
regression inputs of crashes found) are left alone. Usage:
python3 make_corpus.py

manager_request: what one client sends a manager after authentication, a
sequence of framed CBOR requests (see src/manager/manager.h), calling
every built-in type's methods. Object ids 1..n are the objects the input
made, in order (the fuzz target maps them).
"""
import hashlib
import hmac
import os
import struct

CREATE, CALL, INCREF, DECREF, SHUTDOWN = 1, 2, 3, 4, 5
HANDLE_TAG, HANDLE_OBJ = 0x6D70, 0x6D67


class Handle:
    def __init__(self, ref):
        self.ref = ref


class Indef(list):
    """A list encoded with an indefinite length."""


def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    if v is None:
        return b"\xf6"
    if v is True or v is False:
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, Handle):
        return head(6, HANDLE_TAG) + cbor([HANDLE_OBJ, v.ref])
    if isinstance(v, Indef):
        return b"\x9f" + b"".join(cbor(x) for x in v) + b"\xff"
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(v)


def frame(payload, long=False):
    if long:  # Python's form for messages over 2 GiB, legal for any size
        return struct.pack(">iQ", -1, len(payload)) + payload
    return struct.pack(">i", len(payload)) + payload


def conn(*reqs):
    return b"".join(frame(cbor(r)) for r in reqs)


def create(typeid, args=None):
    return [CREATE, typeid, args]


def call(oid, method, *args):
    return [CALL, oid, method, list(args)]


MANAGER_SEEDS = {
    "dict": conn(
        create("dict"),
        call(1, "setitem", "k", 1), call(1, "setitem", 2, [1, 2.5, None, b"x"]),
        call(1, "getitem", "k"), call(1, "get", "missing", 7), call(1, "keys"),
        call(1, "values"), call(1, "items"), call(1, "update", {"a": 1, "b": True}),
        call(1, "pop", "a"), call(1, "pop", "zz", 0), call(1, "setdefault", "s", "d"),
        call(1, "len"), call(1, "contains", "k"), call(1, "delitem", "k"),
        call(1, "copy"), call(1, "clear"), [INCREF, 1], [DECREF, 1]),
    "list": conn(
        create("list", [[3, 1, 2]]),
        call(1, "append", "x"), call(1, "extend", [4, 5]), call(1, "getitem", -1),
        call(1, "setitem", 0, 9), call(1, "delitem", 1), call(1, "getslice", 0, 2),
        call(1, "setslice", 1, 2, [7, 8]), call(1, "len"), call(1, "pop"),
        call(1, "insert", 0, 1), call(1, "remove", 9), call(1, "index", 8),
        call(1, "count", 8), call(1, "sort"), call(1, "reverse"), call(1, "copy"),
        call(1, "contains", 7)),
    "set_namespace": conn(
        create("set", [[1, 2]]), call(1, "add", 3), call(1, "discard", 1),
        call(1, "remove", 2), call(1, "contains", 3), call(1, "len"), call(1, "copy"),
        call(1, "clear"), create("Namespace"), call(2, "setattr", "name", "Sam"),
        call(2, "getattr", "name"), call(2, "delattr", "name"), call(2, "copy")),
    "value_array": conn(
        create("Value", ["i", 5]), call(1, "get"), call(1, "set", 6),
        create("Value", ["d", 1.5]), call(2, "set", 2),
        create("Array", ["d", [1.0, 2.0, 3.0]]), call(3, "getitem", 1),
        call(3, "setitem", 0, 4.5), call(3, "len"), call(3, "copy"),
        create("Array", ["u", ["a", "b"]]), create("Array", ["c", [b"x"]])),
    "queue": conn(
        create("Queue", [2]), call(1, "put", "a"), call(1, "put", {"k": [1]}, 0),
        call(1, "put", "c", 0), call(1, "qsize"), call(1, "full"), call(1, "get"),
        call(1, "get", 0), call(1, "get", 0), call(1, "empty"),
        create("JoinableQueue"), call(2, "put", 1), call(2, "get"), call(2, "task_done"),
        call(2, "join", 0), call(2, "task_done")),
    "locks": conn(
        create("Lock"), call(1, "acquire"), call(1, "acquire", 0), call(1, "release"),
        call(1, "release"), create("RLock"), call(2, "acquire"), call(2, "acquire"),
        call(2, "release"), call(2, "release"), create("Semaphore", [1]),
        call(3, "acquire"), call(3, "get_value"), call(3, "release"),
        create("BoundedSemaphore", [1]), call(4, "release"), call(4, "acquire", 0)),
    "events": conn(
        create("Condition"), call(1, "acquire"), call(1, "notify"), call(1, "notify", 2),
        call(1, "notify_all"), call(1, "wait", 0), call(1, "release"),
        create("Event"), call(2, "is_set"), call(2, "set"), call(2, "wait"), call(2, "clear"),
        create("Barrier", [1]), call(3, "wait"), call(3, "parties"), call(3, "n_waiting"),
        call(3, "broken"), call(3, "abort"), call(3, "reset"), create("Barrier", [2]),
        call(4, "wait", 0)),
    "nested": conn(
        create("dict"), create("list", [[1, 2]]),
        call(1, "setitem", "l", Handle(2)), [DECREF, 2], call(1, "getitem", "l"),
        [INCREF, 2], call(2, "append", 3), call(1, "delitem", "l"), create("Queue"),
        call(3, "put", [Handle(1), Handle(2)]), call(3, "get")),
    "errors": conn(
        create("nosuchtype"), call(9, "len"), call(1, "len"), create("dict"),
        call(1, "nosuchmethod"), call(1, "getitem", "missing"), [CALL, 1, "len", 5],
        [DECREF, 1], [DECREF, 1], [INCREF, 99], [99], "not a list", [CALL]),
    "indefinite": frame(cbor(Indef([CREATE, "list", Indef([Indef([1, 2])])])))
    + frame(b"\x9f\x02\x01\x7f\x62ap\x64pend\xff\x9f\x5f\x41x\x41y\xff\xff\xff"),
    "long_frame": frame(cbor(create("dict")), long=True)
    + frame(cbor(call(1, "setitem", "k", "v")), long=True),
    # Found by the fuzzer: a set made from a map leaked its state.
    "set_from_map": conn(create("set", [{0: 0}]), call(1, "copy")),
    "shutdown": conn(create("Event"), [SHUTDOWN], call(1, "set")),
}


# ---- conn_frames: [config] [n] [n steps] [stream] --------------------------

SOCKET, PIPE, SPIN = 0, 1, 8
MAX16, MAX300, MAX70000, MAX1M = 0, 2, 4, 6


def write(k):  # the next 2^k stream bytes (k >= 20: all)
    return k << 3


RECV, VALUE, POLL, WRITE_ALL = 1, 3, 4, 5


def recv_into(k):  # a buffer of 2^k - 1 bytes
    return k << 3 | 2


def conn_input(config, steps, stream):
    assert len(steps) < 256
    return bytes([config, len(steps)]) + bytes(steps) + stream


SMALL = conn(create("dict"), call(1, "len"))  # three frames of CBOR
BIG = frame(bytes(range(256)) * 160)  # 40 KiB: read straight into the message

CONN_SEEDS = {
    "socket_whole": conn_input(MAX1M | SOCKET, [WRITE_ALL, RECV, RECV, VALUE, RECV], SMALL),
    "pipe_whole": conn_input(MAX1M | PIPE, [WRITE_ALL, RECV, VALUE, RECV, RECV], SMALL),
    # a byte at a time: headers and payloads resumed after timeouts
    "socket_trickle": conn_input(MAX300 | SOCKET, [write(0), RECV, POLL] * 30, SMALL),
    "pipe_trickle": conn_input(MAX300 | PIPE, [write(0), RECV, POLL] * 30, SMALL),
    "spin_trickle": conn_input(MAX300 | SOCKET | SPIN, [write(1), RECV] * 20, SMALL),
    "into_small_cap": conn_input(
        MAX1M | SOCKET,
        [write(2), recv_into(3), write(3), recv_into(1), recv_into(5), write(20),
         recv_into(0), recv_into(8), RECV],
        frame(b"hello, world") + frame(b"") + frame(b"x" * 100)),
    "into_then_bytes": conn_input(
        MAX1M | PIPE, [write(5), recv_into(7), RECV, write(20), recv_into(7), RECV],
        frame(b"y" * 100) + frame(b"z" * 40)),
    "long_header": conn_input(
        MAX300 | SOCKET, [write(2), RECV, write(3), RECV, write(20), VALUE],
        frame(cbor([1, "two", 3.0]), long=True) + frame(cbor({"k": None}), long=True)),
    "big_socket": conn_input(MAX70000 | SOCKET, [write(12), RECV, write(14), RECV], BIG + SMALL),
    "big_pipe": conn_input(MAX70000 | PIPE, [write(12), RECV, write(14), RECV], BIG + SMALL),
    "negative_length": conn_input(MAX300 | SOCKET, [WRITE_ALL, RECV, RECV, RECV],
                                  frame(b"ok") + struct.pack(">i", -2) + b"junk"),
    "over_max": conn_input(MAX16 | PIPE, [WRITE_ALL, RECV, RECV],
                           frame(b"short") + frame(b"x" * 17)),
    "over_max_long": conn_input(MAX16 | SOCKET, [WRITE_ALL, RECV],
                                struct.pack(">iQ", -1, 1 << 40)),
    "torn_payload": conn_input(MAX300 | SOCKET, [WRITE_ALL, RECV], frame(b"whole")
                               + struct.pack(">i", 50) + b"part"),
    "torn_header": conn_input(MAX300 | PIPE, [WRITE_ALL, RECV], frame(b"whole") + b"\0\0"),
    "bad_values": conn_input(MAX300 | SOCKET, [WRITE_ALL, VALUE, VALUE, VALUE],
                             frame(b"\xff") + frame(b"\x82\x01") + frame(cbor([1]))),
    "empty": conn_input(MAX16 | SOCKET, [RECV, POLL], b""),
}

# ---- value_decode: [limits] [CBOR] ------------------------------------------

DEFAULT = 0


def limits(depth=0, items=0, nbytes=0, trailing=False):
    """Indexes into the target's tables: depth (default, 1, 3, 16), items
    (default, 1, 5, 64), bytes (default, default, 3, 40)."""
    return bytes([depth | items << 2 | nbytes << 4 | (0x40 if trailing else 0)])


NESTED = [1, [2, [3, [4, [5]]]], {"a": {"b": {"c": [None]}}}]
VALUE_SEEDS = {
    "scalars": limits() + cbor([0, 23, 24, 255, 256, 65536, 1 << 32, (1 << 64) - 1, -1, -24,
                                -25, -(1 << 63), True, False, None, 1.5, -0.0, "", b""]),
    "floats": limits() + b"\x85\xf9\x3c\x00\xf9\x7e\x00\xfa\x7f\x80\x00\x00"
    + b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x01\xf9\x80\x00",
    "strings": limits() + cbor(["h\u00e9llo", "\u20ac\U0001f600", b"\x00\xff", "x" * 30]),
    "indefinite": limits() + b"\x9f\x7f\x62ab\x61c\xff\x5f\x41x\x40\xff\xbf\x01\x02\xff\xff",
    "map_dup_keys": limits() + b"\xa3\x01\x61a\x02\x61b\x01\x61c",
    "map_keys": limits() + cbor({1: 2, "s": [1], b"b": {}, 2.5: None, False: True}),
    "handle": limits() + cbor([Handle(7), Handle(0)]) + b"",
    "handle_type": limits() + head(6, HANDLE_TAG) + cbor([0xffffffff, (1 << 64) - 1]),
    "nested": limits() + cbor(NESTED),
    "nested_depth3": limits(depth=2) + cbor(NESTED),
    "items5": limits(items=2) + cbor([1, 2, 3, 4]),
    "items5_over": limits(items=2) + cbor([1, 2, 3, 4, 5]),
    "bytes40": limits(nbytes=3) + cbor(["x" * 20, b"y" * 20]),
    "bytes3_over": limits(nbytes=2) + cbor("abcd"),
    "trailing": limits(trailing=True) + cbor({"k": [1, 2]}),
    "truncated": limits(trailing=True) + cbor([1, 2, 3])[:-1],
    "bad_utf8": limits() + b"\x62\xc0\xaf",
    "bad_tag": limits() + b"\xc1\x00",
    "undefined": limits() + b"\x81\xf7",
    "huge_len": limits() + b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x00",
    "deep": limits() + b"\x81" * 70 + b"\x00",
    "stray_break": limits() + b"\x82\x01\xff",
}

# ---- auth_server, auth_client: [config] [what the peer sends] ---------------
# The library's nonce is fixed by the targets: bytes 1, 2, ..., 40.

NONCE = bytes(range(1, 41))
DIGESTS = ["sha256", "sha384", "sha3_256", "sha3_384", "md5"]
KEY_A = b"mproc fuzz key"
KEY_B = bytes((i * 7 + 3) & 0xFF for i in range(1024))
REJECT_LEGACY, FAMILY_KEY, BIG_KEY = 8, 16, 32


def key_of(config):
    return KEY_B if config & BIG_KEY else KEY_A


def our_challenge(config):
    """The library's challenge, without "#CHALLENGE#"."""
    d = config & 7
    return ("{%s}" % DIGESTS[d if d < 5 else 0]).encode() + NONCE


def answer(config, msg, digest="sha256", legacy=False):
    """The answer to a challenge msg (after "#CHALLENGE#")."""
    mac = hmac.new(key_of(config), msg, "md5" if legacy else digest).digest()
    return mac if legacy else ("{%s}" % digest).encode() + mac


PEER_NONCE = bytes(range(100, 140))


def peer_challenge(digest="sha256", legacy=False):
    if legacy:
        return b"#CHALLENGE#" + PEER_NONCE[:20]
    return b"#CHALLENGE#" + ("{%s}" % digest).encode() + PEER_NONCE


def server_input(config, digest="sha256", peer_digest="sha256", legacy=False,
                 peer_legacy=False, verdict=b"#WELCOME#"):
    return bytes([config]) + frame(answer(config, our_challenge(config), digest, legacy)) \
        + frame(peer_challenge(peer_digest, peer_legacy)) + frame(verdict)


def client_input(config, digest="sha256", peer_digest="sha256", legacy=False,
                 peer_legacy=False, verdict=b"#WELCOME#"):
    chal = peer_challenge(peer_digest, peer_legacy)
    return bytes([config]) + frame(chal) + frame(verdict) \
        + frame(answer(config, our_challenge(config), digest, legacy))


def wrong(data):
    return data[:-1] + bytes([data[-1] ^ 1])


def auth_seeds(make):
    return {
        "sha256": make(0),
        "each_digest": make(1, digest="sha384", peer_digest="sha3_384"),
        "sha3": make(2, digest="sha3_256", peer_digest="md5"),
        "sha3_384": make(3, digest="sha3_384", peer_digest="sha3_256"),
        "md5": make(4, digest="md5", peer_digest="sha256"),
        "legacy": make(0, legacy=True, peer_legacy=True),
        "legacy_refused": make(REJECT_LEGACY, legacy=True, peer_legacy=True),
        "md5_prefixed_refused": make(REJECT_LEGACY, digest="md5", peer_digest="md5"),
        "peer_legacy_refused": make(REJECT_LEGACY, peer_legacy=True),
        "reject_legacy_md5": make(REJECT_LEGACY | 4),
        "family_key": make(FAMILY_KEY | 1, digest="sha256"),
        "big_key": make(BIG_KEY | 2, digest="sha3_256"),
        "family_big_key": make(FAMILY_KEY | BIG_KEY, peer_digest="sha384"),
        "failure_verdict": make(0, verdict=b"#FAILURE#"),
        "wrong_mac": wrong(make(0)),
        "long_frames": bytes([0]) + b"".join(
            frame(m[4:], long=True) for m in split_frames(make(0)[1:])),
        "oversized": bytes([0]) + frame(b"x" * 257),
        "negative": bytes([0]) + struct.pack(">i", -5) + b"abcd",
        "empty": bytes([0]),
    }


def split_frames(data):
    out = []
    while data:
        n = struct.unpack(">i", data[:4])[0]
        out.append(data[:4 + n])
        data = data[4 + n:]
    return out


SEEDS = {
    "manager_request": MANAGER_SEEDS,
    "conn_frames": CONN_SEEDS,
    "value_decode": VALUE_SEEDS,
    "auth_server": auth_seeds(server_input),
    "auth_client": auth_seeds(client_input),
}


def main():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, seeds in SEEDS.items():
        out = os.path.join(top, target)
        os.makedirs(out, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
