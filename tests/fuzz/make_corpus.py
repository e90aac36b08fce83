#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_manager_request into tests/fuzz/corpus:
each file is what one client sends a manager after authentication, a
sequence of framed CBOR requests (see src/internal/manager.h), calling
every built-in type's methods. Object ids 1..n are the objects the input
made, in order (the fuzz target maps them). Usage: python3 make_corpus.py
"""
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


SEEDS = {
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


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
