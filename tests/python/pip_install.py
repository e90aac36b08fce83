"""`pip install ./python` offline (no index, no build isolation: only what
Debian installed), from a copy of the source tree in a temporary
directory, then a child under each start method from the installed
package. Exits 77 (skipped) when this Python lacks pip or wheel."""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

PROG = r'''
import sys, mproc as mp
def f(q, c):
    q.put(('hi', mp.current_process().name))
    c.send(c.recv() * 2)
if __name__ == '__main__':
    assert mp.__file__.startswith(sys.argv[2]), mp.__file__
    mp.set_start_method(sys.argv[1])
    q = mp.Queue()
    a, b = mp.Pipe()
    p = mp.Process(target=f, args=(q, b))
    p.start()
    a.send(21)
    print(q.get(timeout=30), a.recv())
    p.join(30)
    print(p.exitcode)
'''


def main():
    try:
        import pip  # noqa: F401
        import wheel  # noqa: F401
    except ImportError as e:
        print('%s: no %s: skipped' % (sys.executable, e.name))
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'src')
        for d in ('python', 'src', 'include'):
            shutil.copytree(os.path.join(ROOT, d), os.path.join(src, d),
                            ignore=shutil.ignore_patterns('build', '*.egg-info', '__pycache__'))
        target = os.path.join(tmp, 'site')
        r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index',
                            '--no-build-isolation', '--target', target,
                            os.path.join(src, 'python')], capture_output=True, text=True)
        if r.returncode:
            print(r.stdout, r.stderr)
            return 1
        prog = os.path.join(tmp, 'prog.py')
        with open(prog, 'w') as f:
            f.write(PROG)
        env = dict(os.environ, PYTHONPATH=target)
        for m in ('fork', 'spawn', 'forkserver'):
            r = subprocess.run([sys.executable, prog, m, target], capture_output=True, text=True,
                               env=env, timeout=120)
            want = "('hi', 'Process-1') 42\n0\n"
            print(m, repr(r.stdout), r.stderr)
            if r.returncode or r.stdout != want:
                return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
