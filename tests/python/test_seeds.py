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

# (seed file prefix, index of its ```python block, comparison)
PROGRAMS = [
    ('000_', 0, 'multiset'),  # Queue + 3 Process workers, current_process().name
    ('000_', 1, 'multiset'),
    ('004_', 0, 'exact'),     # set_start_method('spawn'), Queue, Process
    ('004_', 1, 'exact'),     # get_context('spawn')
    ('000_', 2, 'exact'),     # Manager().Value; its workers fail as Python's do
]


def blocks(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return re.findall(r'```python\n(.*?)```', text, re.S)


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
    return lines


class Seeds(unittest.TestCase):
    def test_programs(self):
        files = sorted(os.listdir(SEEDS))
        for prefix, index, mode in PROGRAMS:
            seed = [f for f in files if f.startswith(prefix)][0]
            src = blocks(os.path.join(SEEDS, seed))[index]
            self.assertIn('multiprocessing', src)
            mine = to_mproc(src)
            self.assertNotEqual(mine, src)
            with self.subTest(seed=seed, block=index), tempfile.TemporaryDirectory() as tmp:
                want = run(src, tmp, 'prog_stdlib.py')
                got = run(mine, tmp, 'prog_mproc.py')
                self.assertEqual(got[0], want[0], 'exit status; stderr:\n' + got[2])
                self.assertTrue(want[1], 'the program printed nothing')
                self.assertEqual(normalise(got[1], mode), normalise(want[1], mode))
                self.assertEqual(got[2] == '', want[2] == '', got[2] + want[2])


if __name__ == '__main__':
    if not os.path.isdir(SEEDS):
        print('no seeds at %s: skipped' % SEEDS)
        sys.exit(77)
    unittest.main()
