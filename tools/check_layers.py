#!/usr/bin/env python3
"""Checks that no layer of the library uses a higher one.

The layers, bottom up, are the folders of src/ (docs/architecture.md,
MPROC_LAYERS in CMakeLists.txt). A file may include the headers of its own
layer and of the layers below ("<layer>/<file>.h", and the public
"mproc/<file>.h" of a layer, PUBLIC), and its object may call
or read only names defined in its own layer or below (found with nm over
the objects of the build). A loop inside one layer's folder is allowed; a
use of a higher layer is not.

Usage: check_layers.py [--src DIR] BUILD_DIR   check the tree and the build
       check_layers.py --self-test             check the checker: it must
                                                find a wrong include and a
                                                wrong call in a small tree

Exit status 0 when clean, 1 with one line per finding, 2 on bad usage.
"""
import os
import re
import subprocess
import sys
import tempfile

LAYERS = ["base", "platform", "arena", "sync", "shm", "value", "conn", "queue",
          "process", "pool", "manager", "cluster"]
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([a-z_]+)\.h"', re.M)
# The public headers (include/mproc/), by the layer that implements them.
PUBLIC = {"base": "base", "arena": "arena", "sync": "sync", "shm": "shm", "value": "value",
          "conn": "conn", "listener": "conn", "queue": "queue", "process": "process",
          "context": "process", "wait": "process", "pool": "pool", "future": "pool",
          "manager": "manager", "cluster": "cluster"}
# Layers built as a library of their own (the cluster, only with MPI): the
# folder of their objects in a build.
SEPARATE = {"cluster": os.path.join("src", "cluster", "CMakeFiles", "mproc_cluster.dir")}

# Uses of a higher layer that are known and not yet removed: (file, layer
# used, why). Each must still happen (a stale entry is a finding too), so
# the list only shrinks.
KNOWN = []


def check_includes(src):
    found = []
    for layer in LAYERS:
        folder = os.path.join(src, layer)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for m in INCLUDE.finditer(text):
                if m.group(1) == "mproc" and m.group(2) not in PUBLIC:
                    line = text.count("\n", 0, m.start()) + 1
                    found.append((f"{layer}/{name}", "?",
                                  f"{layer}/{name}:{line}: includes mproc/{m.group(2)}.h, "
                                  f"a public header of no known layer (add it to PUBLIC)"))
                    continue
                used = PUBLIC.get(m.group(2)) if m.group(1) == "mproc" else m.group(1)
                if used in RANK and RANK[used] > RANK[layer]:
                    line = text.count("\n", 0, m.start()) + 1
                    found.append((f"{layer}/{name}", used,
                                  f"{layer}/{name}:{line}: includes {m.group(0).split()[-1]} "
                                  f"(layer {used} is above {layer})"))
    return found


def objects(objdir, src=None, separate=None):
    """{layer: [(object path, source name)]} under objdir/<layer>/, or the
    layer's folder in separate (with src: only those whose source is still
    there, not a stale object)."""
    out = {}
    for layer in LAYERS:
        folder = (separate or {}).get(layer) or os.path.join(objdir, layer)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".o") and (src is None or os.path.exists(
                    os.path.join(src, layer, name[:-2]))):
                out.setdefault(layer, []).append((os.path.join(folder, name), name[:-2]))
    return out


def nm(paths):
    """{path: (defined names, undefined names)}, with one run of nm."""
    out = {p: (set(), set()) for p in paths}
    if not paths:
        return out
    text = subprocess.run(["nm", "-A"] + paths, check=True, capture_output=True,
                          text=True).stdout
    for line in text.splitlines():
        path, _, rest = line.rpartition(":")  # "path:value type name"
        f = rest.split()
        if len(f) == 2 and f[0] == "U":
            out[path][1].add(f[1])
        elif len(f) == 3 and f[1] in "TDBRVWGSC":
            out[path][0].add(f[2])
    return out


def check_calls(objdir, src=None, separate=None):
    objs = objects(objdir, src, separate)
    table = nm([p for files in objs.values() for p, _ in files])
    where = {}  # name -> layer that defines it
    uses = []
    for layer, files in objs.items():
        for path, source in files:
            defined, undefined = table[path]
            for n in defined:
                where.setdefault(n, layer)
            uses.append((layer, source, undefined))
    found = []
    for layer, source, undefined in uses:
        for n in sorted(undefined):
            owner = where.get(n)
            if owner and RANK[owner] > RANK[layer]:
                found.append((f"{layer}/{source}", owner,
                              f"{layer}/{source}: uses {n} (defined in layer {owner}, above {layer})"))
    return found, bool(objs)


def check(src, objdir, separate=None):
    found = check_includes(src)
    calls, any_objects = check_calls(objdir, src, separate)
    if not any_objects:
        print(f"check_layers: no objects under {objdir}: build the library first", file=sys.stderr)
        return 2
    found += calls
    problems = []
    seen_known = set()
    for where, used, text in found:
        k = next((i for i, (f, l, _) in enumerate(KNOWN) if f == where and l == used), None)
        if k is None:
            problems.append(text)
        else:
            seen_known.add(k)
    for i, (f, l, why) in enumerate(KNOWN):
        if i not in seen_known:
            problems.append(f"{f}: no longer uses layer {l}: drop it from KNOWN ({why})")
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} finding(s); the layers, bottom up: "
              + " < ".join(LAYERS), file=sys.stderr)
        return 1
    return 0


def self_test():
    """A small tree with one wrong include and one wrong call: both found."""
    with tempfile.TemporaryDirectory() as d:
        src, obj = os.path.join(d, "src"), os.path.join(d, "obj")
        files = {
            "base/low.c": '#include "base/low.h"\nint mproc__low(void);\n'
                          'int mproc__high(void);\nint mproc__low(void) { return mproc__high(); }\n',
            "base/low.h": '#include "manager/high.h"\n',
            "manager/high.h": "int mproc__high(void);\n",
            "manager/high.c": '#include "base/low.h"\nint mproc__high(void) { return 1; }\n',
        }
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            with open(os.path.join(src, rel), "w") as f:
                f.write(text)
        for rel in ("base/low.c", "manager/high.c"):
            out = os.path.join(obj, rel + ".o")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            subprocess.run([os.environ.get("CC", "cc"), "-c", "-I", src, os.path.join(src, rel),
                            "-o", out], check=True)
        inc = check_includes(src)
        calls, _ = check_calls(obj)
        ok = ([w for w, _, _ in inc] == ["base/low.h"] and
              [(w, t.split()[2]) for w, _, t in calls] == [("base/low.c", "mproc__high")])
        # and a tree without the wrong include and call is clean
        os.remove(os.path.join(src, "base/low.h"))
        ok = ok and check_includes(src) == []
        print("check_layers self-test:", "found the wrong include and call" if ok else "FAILED",
              f"(includes: {inc}, calls: {calls})" if not ok else "")
        return 0 if ok else 1


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    args = argv[1:]
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    if len(args) == 3 and args[0] == "--src":
        src, args = args[1], args[2:]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    objdir = os.path.join(args[0], "CMakeFiles", "mproc_obj.dir", "src")
    separate = {layer: os.path.join(args[0], rel) for layer, rel in SEPARATE.items()}
    return check(os.path.normpath(src), objdir, separate)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
