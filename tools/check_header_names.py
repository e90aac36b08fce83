#!/usr/bin/env python3
"""Checks that every mproc_* / MPROC_* name a comment in the public headers
mentions is declared by them: a function, a type or tag, a macro or an
enum constant.

Usage: check_header_names.py [--cc COMPILER] [INCLUDE_DIR]

What counts as declared comes from the C preprocessor, so that names made
by macros (the error codes of base.h's X-macro tables) count too:
  - every macro that the headers define (cc -E -dM), and
  - every mproc_* / MPROC_* identifier left in the preprocessed code of the
    headers themselves (prototypes, typedefs, struct and enum tags, enum
    constants). The headers compile, so such an identifier is declared.
  - every environment variable the library reads (the "MPROC_..." names
    of the settings table, src/base/settings.[ch] beside INCLUDE_DIR): a
    comment may name those.
A mention is a whole word starting with mproc_ or MPROC_ inside a /* */ or
// comment, in any .h file under INCLUDE_DIR. Not mentions: a prefix
written as a pattern ("MPROC_E*", "MPROC_E?", "mproc_X_new" where X is an
upper-case placeholder), a variable set in the text ("NAME=value"), and
the plural of a declared name ("mproc_values").
Prints each undeclared mention as file:line: name and exits 1 if any.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

NAME = re.compile(r"\b(?:mproc|MPROC)_[A-Za-z0-9_]*")
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


def headers(root):
    for d, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith(".h"):
                yield os.path.join(d, f)


def mentions(path):
    """(line, name) for every name a comment of path mentions."""
    text = open(path, encoding="utf-8").read()
    for m in COMMENT.finditer(text):
        body = m.group(0)
        if not (body.startswith("/*") or body.startswith("//")):
            continue  # a string or character literal
        first_line = text.count("\n", 0, m.start()) + 1
        for n in NAME.finditer(body):
            name, after = n.group(0), body[n.end() : n.end() + 1]
            if after in ("*", "?", "="):
                continue  # a pattern (MPROC_E*) or an assignment
            if re.search(r"(?:^|_)X(?:_|$)", name[6:]):
                continue  # a placeholder: mproc_X_new
            if name.endswith("_"):
                continue  # a bare prefix
            yield first_line + body.count("\n", 0, n.start()), name


def declared(cc, root, hdrs):
    """The names the headers declare (see the module's doc)."""
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as t:
        for h in hdrs:
            t.write('#include "%s"\n' % os.path.abspath(h))
        tu = t.name
    try:
        base = [cc, "-std=c11", "-D_GNU_SOURCE", "-I", root, "-E"]
        macros = subprocess.run(base + ["-dM", tu], check=True, capture_output=True, text=True)
        code = subprocess.run(base + [tu], check=True, capture_output=True, text=True)
    finally:
        os.unlink(tu)
    names = set()
    for line in macros.stdout.splitlines():
        m = re.match(r"#define\s+([A-Za-z_]\w*)", line)
        if m:
            names.add(m.group(1))
    root_abs = os.path.abspath(root)
    ours = False
    for line in code.stdout.splitlines():
        m = re.match(r'#\s*\d+\s+"([^"]*)"', line)
        if m:  # a line marker: whose text follows
            ours = os.path.abspath(m.group(1)).startswith(root_abs + os.sep)
            continue
        if ours:
            names.update(NAME.findall(line))
    return names


def environment(root):
    """The MPROC_* environment variables the library reads: the names of
    its settings table (src/base/settings.c, settings.h)."""
    base = os.path.join(root, "..", "src", "base")
    names = set()
    for f in ("settings.c", "settings.h"):
        text = open(os.path.join(base, f), encoding="utf-8").read()
        names.update(re.findall(r'"(MPROC_\w+)"', text))
    if not names:
        sys.exit(f"check_header_names: no MPROC_* name in {base}/settings.[ch]")
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("include", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "include"))
    args = ap.parse_args()
    hdrs = list(headers(args.include))
    if not hdrs:
        print("check_header_names: no headers under %s" % args.include, file=sys.stderr)
        return 2
    known = declared(args.cc, args.include, hdrs) | environment(args.include)
    bad = 0
    for h in hdrs:
        for line, name in mentions(h):
            if name not in known and not (name.endswith("s") and name[:-1] in known):
                print("%s:%d: %s is mentioned but not declared in the headers" % (os.path.relpath(h), line, name))
                bad += 1
    if bad:
        print("check_header_names: %d undeclared name(s)" % bad, file=sys.stderr)
        return 1
    print("check_header_names: every name in %d headers' comments is declared" % len(hdrs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
