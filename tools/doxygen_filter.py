#!/usr/bin/env python3
"""Doxygen's input filter for the public headers (docs/Doxyfile).

The headers document every declaration with a plain C comment; this filter
turns those comments into Doxygen's, so the headers stay as they are:
  - the file's first comment becomes its @file description;
  - a comment that ends right above a declaration documents it (/**);
    when it documents a run of declarations (no blank line between them),
    each of the run gets the same comment, on its own first line;
  - a comment after code on the same line documents that member (/**<);
  - comments that are not above a declaration (section rulers such as
    "---- errors ----", notes separated by a blank line) stay plain.
Line numbers are kept, so warnings point at the header's own lines.
"""
import re
import sys

DEPRECATED = re.compile(r'MPROC_DEPRECATED\("([^"]*)"\)')
MULTI = re.compile(r"^\s*[\w ]+\s+\w+(\s*,\s*\w+)+;\s*$")
RULER = re.compile(r"^\s*/\*\s*-{3,}")


def comment_end(lines, i, col):
    """Index of the line where the comment opening at lines[i][col] closes."""
    j = i
    start = col + 2
    while j < len(lines):
        if "*/" in lines[j][start:]:
            return j
        j += 1
        start = 0
    return len(lines) - 1


def decl_start(line):
    s = line.strip()
    return bool(s) and not s.startswith(("/*", "*", "#endif", "#else", "#if", "#include",
                                         "#undef", "}", "extern \"C\""))


def starts_decl_run(prev, line):
    """Whether line begins a new declaration (not the continuation of prev)."""
    p = prev.rstrip()
    if p.endswith("\\") or not p:
        return False
    if line.startswith("#define"):
        return True
    if not (p.endswith(";") or p.endswith("*/") or p.endswith("}") or re.match(r"^\s*#define", p)):
        return False
    s = line.strip()
    return bool(re.match(r"(MPROC_API|#define|typedef|enum|struct|[A-Za-z_][\w ]*[\s*]+\**\w+\s*[;\[:=(]|\w+\s*[,=])", s))


def escape_comment_backslashes(line):
    s = line.lstrip()
    if s.startswith(("/*", "* ")) or s == "*":
        return line.replace("\\", "\\\\").replace("#", "\\#")
    return line


def main():
    with open(sys.argv[1], encoding="utf-8") as f:  # doxygen runs "filter FILE"
        lines = f.read().split("\n")
    # A backslash in a comment is text (b'\x00'), not a Doxygen command.
    lines = [escape_comment_backslashes(l) for l in lines]
    out = list(lines)
    i = 0
    first = True
    while i < len(lines):
        line = lines[i]
        col = line.find("/*")
        if col < 0 or line.find("*/", 0, col) >= 0 or col > 0 and line[col - 1] == "/":
            i += 1
            continue
        end = comment_end(lines, i, col)
        before = line[:col]
        if first and not before.strip():
            out[i] = before + "/**" + line[col + 2:]
            out[end] = lines[end].replace("*/", "@file */", 1) if "*/" not in line[col + 2:] or end != i \
                else out[i].replace("*/", "@file */", 1)
            first = False
            i = end + 1
            continue
        first = False
        if before.strip():  # after code: documents that member
            out[i] = before + "/**<" + line[col + 2:]
            if MULTI.match(before) and end == i:  # "int64_t a, b, c; /* x */": each of them
                doc = " /**<" + line[col + 2:].rstrip() + " "
                out[i] = before.replace(",", doc + ",") + "/**<" + line[col + 2:]
            i = end + 1
            continue
        if RULER.match(line):
            # A ruler whose text goes on below it and that a declaration
            # follows at once documents that run with the text (the ruler
            # line itself is left out).
            if end > i and end + 1 < len(lines) and decl_start(lines[end + 1]):
                line = before + "/* "
                lines[i] = line
            else:
                i = end + 1
                continue
        # A comment on lines of its own documents what follows at once.
        nxt = end + 1
        if nxt < len(lines) and decl_start(lines[nxt]) and lines[end].rstrip().endswith("*/"):
            out[i] = before + "/**" + line[col + 2:]
            text = " ".join(l.strip().lstrip("/*").rstrip("*/").strip() if k else
                            line[col + 2:].strip().rstrip("*/").strip()
                            for k, l in enumerate(lines[i:end + 1]))
            text = text.replace("*/", "* /")
            # The run of declarations below it: each gets the same comment.
            k = nxt + 1
            indent = len(lines[nxt]) - len(lines[nxt].lstrip())
            while k < len(lines) and lines[k].strip() and "/*" not in lines[k].lstrip()[:2]:
                cur_indent = len(lines[k]) - len(lines[k].lstrip())
                if cur_indent == indent and starts_decl_run(lines[k - 1], lines[k]):
                    out[k] = lines[k][:indent] + "/** " + text + " */ " + lines[k][indent:]
                k += 1
        i = end + 1
    # A deprecated name without a comment of its own: its MPROC_DEPRECATED
    # message is its documentation.
    # Other declarations without one in a "deprecated names" section are
    # the names of mproc 0.1 that section's ruler speaks of.
    in_deprecated = False
    for k, l in enumerate(out):
        if RULER.match(lines[k]) or lines[k].startswith("/* ----"):
            in_deprecated = "deprecated" in lines[k]
        documented = k and (out[k - 1].rstrip().endswith("*/") or out[k - 1].rstrip().endswith("\\")
                            or DEPRECATED.match(lines[k - 1]))
        if documented or l.lstrip().startswith(("/*", "*")) or l.startswith((" ", "}", "{")):
            continue
        m = DEPRECATED.search(l)
        if m:
            out[k] = "/** @deprecated " + m.group(1) + ". */ " + l
        elif in_deprecated and decl_start(l) and not l.startswith("#endif"):
            out[k] = "/** @deprecated A name of mproc 0.1. */ " + l
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
