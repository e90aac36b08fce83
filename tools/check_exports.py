#!/usr/bin/env python3
"""Checks the symbols libmproc.so exports (docs/install.md, "ABI").

Reads the dynamic symbol table with `nm -D --defined-only` and checks
  1. that every exported symbol is an mproc_* name (not mproc__*, the
     library's internal prefix, and nothing of its dependencies);
  2. that the exported names are exactly those of the baseline file
     (abi/libmproc.symbols, one name a line, sorted): a name removed or
     renamed breaks the ABI and fails; a name added fails too, until it is
     added to the baseline in the same change.

Usage: check_exports.py LIBMPROC_SO BASELINE
       check_exports.py --write LIBMPROC_SO BASELINE   (rewrites the baseline)

The baseline is the release library's (-DBUILD_TESTING=OFF). A test
build's library exports the same names: its test hooks are hidden
(tools/check_test_hooks.py lists them); were one exported, it would fail
check 1 here as in a release build.

Exit status 0 when all holds, 1 with one line per finding, 2 on bad usage.
"""
import re
import subprocess
import sys

HEADER = """\
# The names libmproc.so exports: its ABI baseline (docs/install.md).
# Checked by the CTest abi_symbols (tools/check_exports.py). Removing or
# renaming a name is an ABI break; a new public name is added here in the
# change that adds it (tools/check_exports.py --write LIB THIS_FILE).
"""
NAME = re.compile(r"^mproc_[a-z0-9]")  # mproc_x..., not mproc__x...


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{lib}: nm -D failed: {out.stderr.strip()}")
    names = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        # "address type name"; absolute symbols (A) such as version nodes aside.
        if len(parts) == 3 and parts[1] not in ("A",):
            names.add(parts[2].split("@")[0])
    return names


def main(argv):
    write = len(argv) == 4 and argv[1] == "--write"
    if write:
        argv = argv[1:]
    if len(argv) != 3:
        print(__doc__.split("Usage:")[1].split("\n\n")[0], file=sys.stderr)
        return 2
    lib, baseline_path = argv[1], argv[2]
    try:
        names = exported(lib)
    except (OSError, RuntimeError) as e:
        print(e)
        return 1
    if not names:
        print(f"{lib}: exports nothing (no dynamic symbol table?)")
        return 1
    if write:
        with open(baseline_path, "w") as f:
            f.write(HEADER + "".join(n + "\n" for n in sorted(names)))
        print(f"{baseline_path}: {len(names)} names written")
        return 0
    problems = [f"{lib}: exports {n}, not an mproc_* name" for n in sorted(names) if not NAME.match(n)]
    with open(baseline_path) as f:
        base = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    for n in sorted(base - names):
        problems.append(f"{lib}: {n} is in {baseline_path} but no longer exported (an ABI break)")
    for n in sorted(names - base):
        if NAME.match(n):
            problems.append(f"{lib}: exports {n}, not in {baseline_path}: add it there "
                            f"(check_exports.py --write) if it is a new public name")
    for p in problems:
        print(p)
    if not problems:
        print(f"{lib}: {len(names)} exported names, all mproc_*, as in {baseline_path}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
