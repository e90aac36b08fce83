"""The seeds' Python programs, verbatim, run with Python's multiprocessing
and with mproc (the imports rewritten by this test, one line each), their
outputs compared: line by line, or as multisets where the order (and which
worker takes which item) is legitimately not fixed.

Only the programs the package covers so far are listed in PROGRAMS (docs/
python.md says which remain). The seeds are read from MPROC_SEEDS_DIR
(default: ../shared/seeds beside the source tree); without them the
program exits with 77, which CTest reports as skipped."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.environ.get('MPROC_SEEDS_DIR',
                       os.path.join(HERE, '..', '..', '..', 'shared', 'seeds'))

# (seed file prefix, where its program is, comparison): where is the index
# of a ```python block, the name of a program of UNFENCED, or (first,
# last[, n]): the text from the n-th line (default the first) that starts
# with `first` to the next line that is `last`. Comparisons: exact (line by
# line), multiset (the lines in any order), race (line by line, numbers
# masked in lines that report a racy count), silent (prints nothing).
PROGRAMS = [
    ('000_', 0, 'multiset'),  # Queue + 3 Process workers, current_process().name
    ('000_', 1, 'multiset'),
    ('000_', 2, 'exact'),     # Manager().Value; its workers fail as Python's do
    ('001_', ('from multiprocessing import Process', '        process.join()'),
     'silent'),               # os.cpu_count() processes
    ('001_', ('from multiprocessing import Process, Value, Array', "    print('end main')"),
     'race'),                 # Value and Array raced by two processes each
    ('001_', ('from multiprocessing import Lock', "    print('end main')"),
     'exact'),                # the same under a Lock
    ('001_', ('from multiprocessing import Queue', 'print(first)'), 'exact'),  # a local Queue
    ('001_', ('from multiprocessing import Process, Queue', "    print('end main')"),
     'multiset'),             # two producers, one Queue
    ('001_', ('from multiprocessing import Pool', '    print(result)'), 'exact'),  # Pool().map
    ('002_', ('import multiprocessing', '        p.join()'), 'multiset'),  # 5 workers
    ('002_', ('import multiprocessing', "    print(f'Received: {message}')", 1),
     'exact'),                # Queue from a child
    ('002_', ('import multiprocessing', '        p.join()', 2), 'multiset'),  # Lock, 5 workers
    ('003_', 'square_list', 'exact'),  # a global list is not shared (unfenced)
    ('003_', 'square_sum', 'exact'),   # Array('i', 4), Value('i') in a child
    ('003_', 'records', 'exact'),      # Manager().list in two children
    ('003_', 'queue', 'exact'),        # Queue filled by one child, emptied by another
    ('003_', 'pipe', 'multiset'),      # Pipe between a sender and a receiver
    ('004_', 0, 'exact'),     # set_start_method('spawn'), Queue, Process
    ('004_', 1, 'exact'),     # get_context('spawn')
]
# Not programs, so not run: 001's "lock as a context manager" (a function
# alone), 003's line-by-line commentary, and 004's fragments after its
# second block (a Pool's and a Queue's lines without a program around
# them).

# Seeds whose programs are not in code fences, with their indentation lost
# in the text: each by a name, the lines of its first and last statement,
# and the levels of the lines that reindent()'s rules cannot tell (a
# loop's body of more than one statement). The test restores the
# indentation and runs that same text with multiprocessing and with mproc.
UNFENCED = {
    'square_list': (r'^result = \[\]$',
                    r'^print\("Result\(in main program\).*$', ()),
    'square_sum': (r'^def square_list\(mylist, result, square_sum\):$',
                   r'^print\("Sum of squares\(in main program\).*$', ()),
    'records': (r'^def print_records\(records\):$', r'^p2\.join\(\)$', ()),
    'queue': (r'^def square_list\(mylist, q\):$', r'^p2\.join\(\)$', ()),
    'pipe': (r'^def sender\(conn, msgs\):$', r'^p2\.join\(\)$',
             ((r'conn\.send\(msg\)$', 2), (r'print\("Sent the message', 2),
              (r'conn\.close\(\)$', 1), (r'while 1:$', 1), (r'msg = conn\.recv\(\)$', 2),
              (r'if msg == "END":$', 2), (r'break$', 3), (r'print\("Received the message', 2))),
}


def blocks(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return re.findall(r'```python\n(.*?)```', text, re.S)


def unfenced(path, name):
    """The program `name` of UNFENCED in the seed at path, re-indented; a
    line `import multiprocessing` right before its first line belongs to
    it."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    first, last, fixed = UNFENCED[name]
    i = next(n for n, l in enumerate(lines) if re.match(first, l))
    j = next(n for n, l in enumerate(lines) if n > i and re.match(last, l))
    while lines[i - 1].startswith('import ') or lines[i - 1].startswith('# '):
        i -= 1
    return reindent(lines[i:j + 1], fixed)


def reindent(lines, fixed=()):
    """Indentation for flattened Python: `import`, `def`, `class` and `if
    __name__` lines are at the top level; a line ending in ':' opens a
    block one level in; a docstring is one statement; the block of a `for`
    or `while` inside a function is its next statement (the seeds' loops
    are one line long); everything else stays at the current level.
    A line that matches a pattern of `fixed` is at that pattern's level
    (and a block it opens is not taken for a one-statement loop)."""
    out, level, loop, doc = [], 0, False, False
    for line in lines:
        text = line.strip()
        if doc:
            out.append('    ' * level + text)
            doc = not text.endswith('"""')
            continue
        pinned = next((lvl for pat, lvl in fixed if re.search(pat, text)), None)
        if pinned is not None:
            level, loop = pinned, False
        elif re.match(r'(import |from |def |class |if __name__)', text):
            level = 0
        out.append('    ' * level + text)
        if text.startswith('"""') and not (len(text) > 3 and text.endswith('"""')):
            doc = True
        elif text.endswith(':'):
            loop = (pinned is None and level > 0 and
                    re.match(r'(for|while) ', text) is not None)
            level += 1
        elif loop and text and not text.startswith('#'):
            loop = False
            level -= 1
    return '\n'.join(out) + '\n'


def program(path, where):
    """A ```python block by index, a program of UNFENCED by its name, or the
    text from the line that starts with where[0] to the first line after it
    that is where[1]."""
    if isinstance(where, int):
        return blocks(path)[where]
    if isinstance(where, str):
        return unfenced(path, where)
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines(keepends=True)
    nth = where[2] if len(where) > 2 else 0
    first = [i for i, l in enumerate(lines) if l.startswith(where[0])][nth]
    last = next(i for i in range(first, len(lines)) if lines[i].rstrip() == where[1])
    return ''.join(lines[first:last + 1])


def to_mproc(src):
    """The one-line rewrite of each multiprocessing import."""
    out = []
    for line in src.splitlines(keepends=True):
        line = re.sub(r'^(\s*)import multiprocessing as (\w+)', r'\1import mproc as \2', line)
        line = re.sub(r'^(\s*)import multiprocessing(\s*)$', r'\1import mproc as multiprocessing\2',
                      line)
        line = re.sub(r'^(\s*)from multiprocessing(\.\w+)? import', r'\1from mproc\2 import', line)
        out.append(line)
    return ''.join(out)


def run(src, tmp, name):
    path = os.path.join(tmp, name)
    with open(path, 'w') as f:
        f.write(src)
    # Block-buffered output, as a program's piped stdout is by default: with
    # PYTHONUNBUFFERED, print's text and its newline are two writes, which
    # concurrent workers interleave (with Python's multiprocessing too).
    env = dict(os.environ)
    env.pop('PYTHONUNBUFFERED', None)
    r = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=120,
                       cwd=tmp, env=env)
    return r.returncode, r.stdout, r.stderr


def normalise(out, mode):
    lines = out.splitlines()
    if mode == 'multiset':
        return sorted(re.sub(r'Worker-\d+', 'Worker-N', l) for l in lines)
    if mode == 'race':
        return [re.sub(r'\d+(\.\d+)?', 'N', l) if 'at end' in l else l for l in lines]
    return lines


class Seeds(unittest.TestCase):
    def test_programs(self):
        files = sorted(os.listdir(SEEDS))
        for prefix, index, mode in PROGRAMS:
            seed = [f for f in files if f.startswith(prefix)][0]
            src = program(os.path.join(SEEDS, seed), index)
            self.assertIn('multiprocessing', src)
            mine = to_mproc(src)
            self.assertNotEqual(mine, src)
            with self.subTest(seed=seed, block=str(index)), tempfile.TemporaryDirectory() as tmp:
                want = run(src, tmp, 'prog_stdlib.py')
                got = run(mine, tmp, 'prog_mproc.py')
                self.assertEqual(got[0], want[0], 'exit status; stderr:\n' + got[2])
                if mode == 'silent':
                    self.assertEqual((want[1], got[1]), ('', ''))
                else:
                    self.assertTrue(want[1], 'the program printed nothing')
                self.assertEqual(normalise(got[1], mode), normalise(want[1], mode))
                self.assertEqual(got[2] == '', want[2] == '', got[2] + want[2])


if __name__ == '__main__':
    if not os.path.isdir(SEEDS):
        print('no seeds at %s: skipped' % SEEDS)
        sys.exit(77)
    unittest.main()
