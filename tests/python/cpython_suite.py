"""CPython's own multiprocessing and concurrent.futures test suites, run
against mproc (docs/python.md, "CPython's test suite against mproc").

    python3 cpython_suite.py [-j N] [--methods fork,spawn,forkserver]
                             [--suites mp,futures] [--markdown FILE]
                             [--keep DIR] [--only CLASS-PATTERNS]

runs, for each start method, the test classes of Lib/test/_test_multiprocessing.py
of the interpreter running this file (as CPython's test_multiprocessing_fork,
_spawn and _forkserver do: install_tests_in_module_dict), and the classes of
Lib/test/test_concurrent_futures.py, each in a worker process of its own
(in parallel, -j), with `multiprocessing` aliased to mproc (and
`concurrent.futures` to mproc.futures) in the worker and in every child it
starts. It prints passed / failed / errors / skipped per test class, and
exits 1 if a class of MUST_PASS has a failure or an error (or did not run),
77 if the interpreter has no test suite (Debian: libpython3.X-testsuite).

The alias. `multiprocessing` is a module holding mproc's names; where mproc
lacks a name of Python's module surface (Pool, Manager, Value, ...), the
name raises NotInMproc when called, so the classes that use it fail
or error and say so. Submodules: mproc's own where it has one; for the API
modules it does not have yet (managers, pool, sharedctypes, shared_memory;
concurrent.futures and its process and thread modules) a placeholder module
whose classes raise NotInMproc when used; for Python's internals
that the suite itself uses (util, heap, resource_tracker, forkserver, dummy,
...) Python's module, and the tests of those internals are in SKIP.

Each test has PER_TEST seconds (a timer signal raises in the worker); a
worker that hangs past that or dies is restarted after the test it was
running, which is counted as an error.
"""
import argparse
import fnmatch
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import unittest

WORKER_ENV = 'MPROC_SUITE_WORKER'  # "<suite>:<method>" in a worker and its children
OUT_ENV = 'MPROC_SUITE_OUT'
ONLY_ENV = 'MPROC_SUITE_ONLY'  # --only: the classes a worker runs (patterns, comma-separated)
PER_TEST = 60        # seconds for one test
WORKER_BUDGET = 600  # seconds for one worker (a start method), restarts included
MAX_RESTARTS = 8

# Tests not run against mproc, by name (a class, or Class.test_name; `*`
# as in shell patterns), each with the reason. Only tests of CPython
# internals that mproc does not have belong here.
SKIP = {
    'WithThreads*': 'multiprocessing.dummy: threads of this process, Python\'s own module; '
                    'nothing of mproc runs',
    '*TestHeap': 'multiprocessing.heap: the allocator behind Python\'s sharedctypes; mproc\'s '
                 'shared values live in the family arena',
    'TestResourceTracker': 'multiprocessing.resource_tracker: mproc has no tracker process '
                           '(named objects are cleaned up by the core)',
    'TestSimpleQueue.test_closed': 'SimpleQueue._reader / _writer, the pipe behind Python\'s '
                                   'SimpleQueue; mproc\'s is the core\'s queue',
    '*TestQueue.test_queue_feeder_*': 'Queue._on_queue_feeder_error, Python\'s feeder thread; '
                                      'mproc has none (put pickles at once)',
    '*TestCondition.test_notify*': 'check_invariant reads Python\'s Condition internals '
                                   '(_sleeping_count, _woken_count, _wait_semaphore)',
    '_TestImportStar': 'lists the files of Python\'s package (popen_spawn_win32, ...) in '
                       'multiprocessing\'s folder',
    '*TestFinalize': 'multiprocessing.util.Finalize: Python\'s internal exit hooks',
    'TestForkAwareThreadLock': 'multiprocessing.util.ForkAwareThreadLock: Python\'s internal',
    'TestNoForkBomb': 'runs Python\'s own multiprocessing in a script it starts (mp_fork_bomb.py)',
    'TestStartMethod.test_preload_resources': 'runs Python\'s own multiprocessing in a script '
                                              '(mp_preload.py)',
    'TestStdinBadfiledescriptor.test_flushing': 'needs multiprocessing.util._flush_std_streams '
                                                'of Python',
    'SemLockTests': '_multiprocessing.SemLock: Python\'s C semaphore; mproc\'s are the core\'s',
    'TestNamedResource': 'runs Python\'s own multiprocessing in a script it starts',
    'MiscTestCase': 'compares multiprocessing.__all__ with the names Python\'s modules define',
    '*TestConnection.test_missing_fd_transfer': 'writes a byte to a duplex Pipe end\'s '
        'fileno() in the child: Python\'s duplex Pipe is a socketpair, mproc\'s two pipes (the '
        'fd is the read end), so the byte never comes and the parent waits for ever',
    'TestInvalidHandle': 'Connection(-1): Python\'s Connection over a raw handle; mproc\'s '
                         'Connection wraps a core connection',
    '*TestLogging.test_level': 'multiprocessing.util._logger internals',
    # test_concurrent_futures: ProcessPoolExecutor's internals
    'ProcessPool*ProcessPoolExecutorTest.test_saturation': 'counts executor._processes, '
        'Python\'s executor\'s own dict of its Process objects',
    'ProcessPool*ProcessPoolExecutorTest.test_idle_process_reuse_*': 'counts executor._processes '
        '(Python\'s executor starts its workers one by one as tasks come; mproc\'s at once)',
    'ProcessPool*ProcessPoolExecutorTest.test_max_tasks_per_child': 'reads executor._processes',
    'ProcessPool*ProcessPoolExecutorTest.test_killed_child': 'kills a worker through '
        'executor._processes (and expects the whole executor to break: in mproc a dead worker '
        'fails only its task, by design)',
    'ProcessPool*ProcessPoolShutdownTest.test_context_manager_shutdown': 'joins the workers '
        'through executor._processes',
    'ProcessPool*ProcessPoolShutdownTest.test_processes_terminate': 'joins the workers through '
        'executor._processes',
    'ProcessPool*ProcessPoolShutdownTest.test_shutdown_no_wait': 'joins the workers through '
        'executor._processes',
    'ProcessPool*ProcessPoolShutdownTest.test_del_shutdown': 'joins '
        'executor._executor_manager_thread, Python\'s executor\'s own thread',
    'ProcessPool*ExecutorDeadlockTest.test_shutdown_deadlock_pickle': 'reads '
        'executor._executor_manager_thread, Python\'s executor\'s own thread',
}

# Classes that must pass (no failure, no error, under every start method
# they run in) for the CTest to pass: the classes that cover the API mproc
# implements. A class joins the list when the API it covers is built and
# it passes; it leaves it only with a reason in docs/python.md.
# 'Class' must pass under every start method, 'Class@method' under that
# one (the others are listed in docs/python.md with the reason).
MUST_PASS = {
    'mp': [
        # processes, Pipe/Connection, Listener/Client/wait
        'WithProcessesTestProcess@fork', 'WithProcessesTestProcess@spawn',
        'WithProcessesTestSubclassingProcess', 'TestStartMethod', 'TestFlags',
        'TestStdinBadfiledescriptor', 'TestTimeouts', 'TestIgnoreEINTR',
        'WithProcessesTestConnection', 'WithProcessesTestPoll', 'WithProcessesTestPollEintr',
        'WithProcessesTestListener', 'WithProcessesTestListenerClient', 'TestWait',
        'TestInvalidFamily', 'OtherTest', 'WithProcessesTestPicklingConnections', 'TestCloseFds',
        # queues
        'WithProcessesTestQueue', 'TestSimpleQueue',
        # sync
        'WithProcessesTestLock', 'WithProcessesTestSemaphore', 'WithProcessesTestEvent',
        'WithProcessesTestBarrier',
        # logging
        'WithProcessesTestLogging',
        # shared values
        'WithProcessesTestValue', 'WithProcessesTestArray', 'WithProcessesTestSharedCTypes',
        'WithProcessesTestCondition',
        # managers
        'TestSyncManagerTypes', 'WithManagerTestBarrier', 'WithManagerTestCondition',
        'WithManagerTestContainers', 'WithManagerTestEvent', 'WithManagerTestLock',
        'WithManagerTestMyManager', 'WithManagerTestQueue', 'WithManagerTestSemaphore',
        'WithManagerTestRemoteManager', 'WithManagerTestManagerRestart',
        'WithProcessesTestManagerRestart',
        # pools
        'TestInitializers', 'WithProcessesTestPool', 'WithProcessesTestPoolWorkerErrors',
        'WithManagerTestPool',
    ],
    'futures': [
        'FutureTests', 'ThreadPoolAsCompletedTest', 'ThreadPoolExecutorTest',
        'ThreadPoolFailingInitializerTest', 'ThreadPoolInitializerTest', 'ThreadPoolShutdownTest',
        'ThreadPoolWaitTests',
        'ProcessPoolForkAsCompletedTest', 'ProcessPoolForkInitializerTest', 'ProcessPoolForkWaitTest',
        'ProcessPoolSpawnAsCompletedTest', 'ProcessPoolSpawnInitializerTest',
        'ProcessPoolSpawnWaitTest', 'ProcessPoolForkserverAsCompletedTest',
        'ProcessPoolForkserverInitializerTest', 'ProcessPoolForkserverWaitTest',
        'ProcessPoolForkFailingInitializerTest', 'ProcessPoolSpawnFailingInitializerTest',
        'ProcessPoolForkserverFailingInitializerTest',
        'ProcessPoolForkProcessPoolExecutorTest', 'ProcessPoolSpawnProcessPoolExecutorTest',
        'ProcessPoolForkserverProcessPoolExecutorTest',
        'ProcessPoolForkProcessPoolShutdownTest', 'ProcessPoolSpawnProcessPoolShutdownTest',
        'ProcessPoolForkserverProcessPoolShutdownTest',
        'ProcessPoolForkExecutorDeadlockTest', 'ProcessPoolSpawnExecutorDeadlockTest',
        'ProcessPoolForkserverExecutorDeadlockTest',
    ],
}

STD_INTERNALS = ('util', 'dummy', 'heap', 'resource_tracker', 'spawn',
                 'forkserver', 'popen_fork', 'popen_spawn_posix', 'popen_forkserver')
MP_MODULES = ('connection', 'context', 'process', 'queues', 'reduction', 'resource_sharer',
              'synchronize')
MP_API_MODULES = ('managers', 'pool', 'sharedctypes', 'shared_memory')


# ---- the alias ----------------------------------------------------------------


class NotInMproc(Exception):
    """Raised by the names of Python's API that mproc does not have yet
    (not NotImplementedError, which the suites take for "unavailable on
    this system" and skip)."""


class _MissingMeta(type):
    """A class of an API mproc does not have yet: using it raises."""

    def __call__(cls, *args, **kwargs):
        raise NotInMproc('mproc has no %s.%s yet' % (cls.__module__, cls.__qualname__))

    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        # Class-level calls made when a test module is imported (such as
        # BaseManager.register) do nothing; instances are never made.
        return _Noop()


class _Noop:
    def __call__(self, *args, **kwargs):
        return None


class _Placeholder(types.ModuleType):
    """A module of an API mproc does not have yet: each name is a class
    that raises NotInMproc when used."""

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        cls = _MissingMeta(name, (Exception,), {'__module__': self.__name__})
        setattr(self, name, cls)
        return cls


def _missing_function(name):
    def missing(*args, **kwargs):
        raise NotInMproc('mproc has no %s yet' % name)
    missing.__name__ = name.rsplit('.', 1)[-1]
    return missing


def _import_or(name, fallback):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is None or not (name == e.name or name.startswith(e.name + '.')):
            raise
        return fallback()


def install_alias(futures=False):
    """Makes `import multiprocessing` (and, with futures,
    `concurrent.futures`) give mproc in this process (once: a forkserver
    child has it from its server)."""
    if getattr(sys.modules.get('multiprocessing'), '_mproc_alias', False):
        return
    import multiprocessing as std
    for n in STD_INTERNALS:
        importlib.import_module('multiprocessing.' + n)
    import mproc
    alias = types.ModuleType('multiprocessing', 'mproc under the name multiprocessing')
    alias.__path__ = []
    alias.__file__ = mproc.__file__
    alias._mproc_alias = True
    for k, v in vars(mproc).items():
        if not k.startswith('__'):
            setattr(alias, k, v)
    for name in std.__all__:
        if not hasattr(mproc, name):
            setattr(alias, name, _missing_function('multiprocessing.' + name))
    subs = {}
    for n in MP_MODULES + MP_API_MODULES:
        subs[n] = _import_or('mproc.' + n,
                             lambda n=n: _Placeholder('multiprocessing.' + n))
    for n in STD_INTERNALS:
        subs[n] = _import_or('mproc.' + n, lambda n=n: sys.modules['multiprocessing.' + n])
    # A forkserver imports the modules the tests ask it to preload
    # (test.test_multiprocessing_forkserver, which imports the tests) in a
    # new interpreter, before any child re-imports this file: this file
    # is preloaded first, so that the alias is there before them.
    runner = os.path.splitext(os.path.basename(__file__))[0]

    def set_forkserver_preload(module_names, _set=mproc.set_forkserver_preload):
        _set([runner] + list(module_names))
    alias.set_forkserver_preload = set_forkserver_preload
    sys.modules['multiprocessing'] = alias
    for n, m in subs.items():
        sys.modules['multiprocessing.' + n] = m
        setattr(alias, n, m)
    if futures:
        import concurrent
        import concurrent.futures
        import concurrent.futures._base  # noqa: F401 (Future states: Python's internals)
        fut = _import_or('mproc.futures', lambda: _Placeholder('concurrent.futures'))
        sys.modules['concurrent.futures'] = fut
        concurrent.futures = fut
        for n in ('process', 'thread'):
            m = _import_or('mproc.futures.' + n,
                           lambda n=n: _Placeholder('concurrent.futures.' + n))
            sys.modules['concurrent.futures.' + n] = m
        base = _import_or('mproc.futures._base', lambda: sys.modules['concurrent.futures._base'])
        sys.modules['concurrent.futures._base'] = base


def _worker_spec():
    spec = os.environ.get(WORKER_ENV)
    if not spec:
        return None, None
    suite, _, method = spec.partition(':')
    return suite, method


# In a worker, and in each child it starts (which imports this file again as
# __mp_main__ under spawn and forkserver), the alias comes before the tests.
_SUITE, _METHOD = _worker_spec()
if _SUITE:
    install_alias(futures=_SUITE == 'futures')
    if _SUITE == 'mp':
        import test._test_multiprocessing as _tm
        _tm.install_tests_in_module_dict(globals(), _METHOD)


# ---- the worker -------------------------------------------------------------------


class _TestTimeout(Exception):
    pass


def _class_of(test):
    """(class name, test name) of a test or of a class-level error holder."""
    if isinstance(test, unittest.case._SubTest):
        test = test.test_case
    tid = test.id()
    if isinstance(test, unittest.suite._ErrorHolder):
        # "setUpClass (module.Class)" / "setUpModule (module)"
        desc = test.description
        inner = desc[desc.find('(') + 1:desc.rfind(')')]
        return inner.rsplit('.', 1)[-1], desc.split(' ')[0]
    parts = tid.split('.')
    return parts[-2], parts[-1]


class _Result(unittest.TestResult):
    def __init__(self, out, done):
        super().__init__()
        self.out = out
        self.done = done
        self.failed_sub = set()
        self.t0 = time.monotonic()

    def _write(self, test, outcome, msg=''):
        cls, name = _class_of(test)
        if outcome == 'start':
            self.t0 = time.monotonic()
        rec = {'c': cls, 't': name, 'o': outcome, 'm': msg[:300],
               's': round(time.monotonic() - self.t0, 2)}
        self.out.write(json.dumps(rec) + '\n')
        self.out.flush()

    def startTest(self, test):
        super().startTest(test)
        self._write(test, 'start')
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, PER_TEST)
        import faulthandler
        faulthandler.dump_traceback_later(PER_TEST + 30, exit=True)

    def stopTest(self, test):
        signal.setitimer(signal.ITIMER_REAL, 0)
        import faulthandler
        faulthandler.cancel_dump_traceback_later()
        if test.id() not in self.failed_sub:
            pass
        super().stopTest(test)

    @staticmethod
    def _last_line(err):
        exc = err[1]
        return '%s: %s' % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else '')

    def addSuccess(self, test):
        if test.id() not in self.failed_sub:
            self._write(test, 'pass')

    def addError(self, test, err):
        super().addError(test, err)
        self._write(test, 'error', self._last_line(err))
        sys.stderr.write('ERROR %s\n%s\n' % (test, self._exc_info_to_string(err, test)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._write(test, 'fail', self._last_line(err))
        sys.stderr.write('FAIL %s\n%s\n' % (test, self._exc_info_to_string(err, test)))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None and test.id() not in self.failed_sub:
            self.failed_sub.add(test.id())
            failure = issubclass(err[0], test.failureException)
            self._write(test, 'fail' if failure else 'error', self._last_line(err))
            sys.stderr.write('SUBTEST %s\n%s\n' % (subtest, self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._write(test, 'skip', reason)

    def addExpectedFailure(self, test, err):
        self._write(test, 'pass', 'expected failure')

    def addUnexpectedSuccess(self, test):
        self._write(test, 'fail', 'unexpected success')


def _on_alarm(signum, frame):
    raise _TestTimeout('the test ran past %d s' % PER_TEST)


def _skip_reason(cls_name, test_name):
    for pat, reason in SKIP.items():
        if '.' in pat:
            pc, pt = pat.split('.', 1)
            if fnmatch.fnmatchcase(cls_name, pc) and fnmatch.fnmatchcase(test_name, pt):
                return reason
        elif fnmatch.fnmatchcase(cls_name, pat):
            return reason
    return None


def _iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _iter_tests(t)
        else:
            yield t


def worker():
    suite_name, method = _SUITE, _METHOD
    out_path = os.environ[OUT_ENV]
    done = set()
    if os.path.exists(out_path):
        with open(out_path) as f:
            for line in f:
                r = json.loads(line)
                done.add((r['c'], r['t']))
    if suite_name == 'mp':
        module = sys.modules[__name__]
    else:
        module = importlib.import_module('test.test_concurrent_futures')
    loader = unittest.TestLoader()
    tests = []
    only = [p for p in os.environ.get(ONLY_ENV, '').split(',') if p]
    for t in _iter_tests(loader.loadTestsFromModule(module)):
        if isinstance(t, unittest.loader._FailedTest):
            tests.append(t)
            continue
        cls, name = type(t).__name__, t._testMethodName
        if (cls, name) in done or (only and not any(fnmatch.fnmatchcase(cls, p) for p in only)):
            continue
        reason = _skip_reason(cls, name)
        if reason and _skip_reason(cls, '') == reason:  # the whole class
            type(t).__unittest_skip__ = True
            type(t).__unittest_skip_why__ = reason
        elif reason:
            setattr(type(t), name, unittest.skip(reason)(getattr(type(t), name)))
        tests.append(t)
    with open(out_path, 'a') as out:
        result = _Result(out, done)
        unittest.TestSuite(tests).run(result)
    return 0


# ---- the driver -------------------------------------------------------------------


def run_worker(suite, method, workdir, log):
    """Runs one worker to its end, restarting it after a test that hung or
    killed it. Returns the records and a note (None if it ended normally)."""
    out = os.path.join(workdir, '%s-%s.jsonl' % (suite, method))
    env = dict(os.environ, **{WORKER_ENV: '%s:%s' % (suite, method), OUT_ENV: out})
    deadline = time.monotonic() + WORKER_BUDGET
    note = None
    seen = -1  # tests ended when the worker last stopped
    for _ in range(MAX_RESTARTS + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            note = 'out of time (%d s)' % WORKER_BUDGET
            break
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__)], env=env,
                             stdout=log, stderr=log, start_new_session=True)
        try:
            rc = p.wait(left)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rc = 'killed after %d s' % WORKER_BUDGET
        try:
            os.killpg(p.pid, signal.SIGKILL)  # children it left behind
        except ProcessLookupError:
            pass
        if rc == 0:
            note = None
            break
        recs = _read(out)
        started = [r for r in recs if r['o'] == 'start']
        ended = {(r['c'], r['t']) for r in recs if r['o'] != 'start'}
        hung = [r for r in started if (r['c'], r['t']) not in ended]
        with open(out, 'a') as f:
            for r in hung:
                f.write(json.dumps({'c': r['c'], 't': r['t'], 'o': 'error',
                                    'm': 'the worker died or hung here (exit %s)' % rc}) + '\n')
        note = 'worker restarted (exit %s)' % rc
        if not hung:
            # Died between tests (a class's set-up or tear-down): restarted
            # while it makes progress, as the tests already ended are not
            # run again; the tests it never reached count as not run.
            note = 'worker failed (exit %s) outside a test' % rc
            if len(ended) <= seen:
                break
        seen = len(ended)
    return _read(out), note


def _read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def tally(records):
    """{class: [passed, failed, errors, skipped]} and the failures' lines."""
    res = {}
    bad = []
    final = {}
    for r in records:
        if r['o'] != 'start':
            final[(r['c'], r['t'])] = r
    for (c, t), r in final.items():
        row = res.setdefault(c, [0, 0, 0, 0])
        i = {'pass': 0, 'fail': 1, 'error': 2, 'skip': 3}[r['o']]
        row[i] += 1
        if i in (1, 2):
            bad.append('%s.%s: %s' % (c, t, r['m']))
    return res, bad


def table(columns, rows_by_col, title):
    classes = sorted(set().union(*[set(r) for r in rows_by_col.values()]) if rows_by_col else [])
    lines = ['', '### ' + title, '',
             '| class | ' + ' | '.join('%s (pass/fail/err/skip)' % c for c in columns) + ' |',
             '|---|' + '---|' * len(columns)]
    totals = {c: [0, 0, 0, 0] for c in columns}
    for cls in classes:
        cells = []
        for c in columns:
            row = rows_by_col.get(c, {}).get(cls)
            if row is None:
                cells.append('-')
            else:
                cells.append('%d/%d/%d/%d' % tuple(row))
                totals[c] = [a + b for a, b in zip(totals[c], row)]
        lines.append('| %s | %s |' % (cls, ' | '.join(cells)))
    lines.append('| **total** | %s |' % ' | '.join('%d/%d/%d/%d' % tuple(totals[c])
                                                   for c in columns))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('-j', type=int, default=min(4, max(2, os.cpu_count() or 1)),
                    help='workers at once (default: the CPUs, 2 to 4)')
    ap.add_argument('--methods', default='fork,spawn,forkserver')
    ap.add_argument('--suites', default='mp,futures')
    ap.add_argument('--markdown', help='also write the tables to this file')
    ap.add_argument('--keep', help='keep the logs and records in this directory')
    ap.add_argument('--only', help='run only the test classes that match these patterns '
                                   '(comma-separated, as in a shell: ProcessPool*Deadlock*)')
    args = ap.parse_args()
    if args.only:
        os.environ[ONLY_ENV] = args.only
    try:
        import test._test_multiprocessing  # noqa: F401
    except ImportError as e:
        print('cpython_suite: no test suite for %s (%s); on Debian install '
              'libpython%d.%d-testsuite' % (sys.executable, e, *sys.version_info[:2]))
        return 77
    methods = args.methods.split(',')
    suites = args.suites.split(',')
    jobs = []
    for s in suites:
        if s == 'mp':
            jobs += [('mp', m) for m in methods]
        elif s == 'futures':
            jobs.insert(0, ('futures', 'all'))  # the longest job first: the others fit beside it
    workdir = args.keep or tempfile.mkdtemp(prefix='mproc-cpython-suite-')
    os.makedirs(workdir, exist_ok=True)
    from concurrent.futures import ThreadPoolExecutor
    t0 = time.monotonic()
    results = {}

    def one(job):
        s, m = job
        t = time.monotonic()
        with open(os.path.join(workdir, '%s-%s.log' % job), 'wb') as log:
            if s == 'futures':
                try:
                    import test.test_concurrent_futures  # noqa: F401
                except ImportError as e:
                    return job, [], 'not run: %s (Debian: libpython%d.%d-testsuite)' % (
                        e, *sys.version_info[:2]), 0.0
            recs, note = run_worker(s, m, workdir, log)
        return job, recs, note, time.monotonic() - t

    with ThreadPoolExecutor(max(1, args.j)) as ex:
        for job, recs, note, secs in ex.map(one, jobs):
            results[job] = (recs, note, secs)
    status = 0
    out = ['CPython %s test suites against mproc %s (%s; %.0f s in all, -j %d)' % (
        sys.version.split()[0], _mproc_version(), sys.executable, time.monotonic() - t0, args.j)]
    problems = []
    for s in suites:
        cols = methods if s == 'mp' else ['all']
        by_col = {}
        notes = []
        for c in cols:
            if (s, c) not in results:
                continue
            recs, note, secs = results[(s, c)]
            rows, bad = tally(recs)
            by_col[c] = rows
            notes.append('%s: %.0f s%s' % (c, secs, '; ' + note if note else ''))
            for entry in MUST_PASS.get(s, []):
                cls, _, only = entry.partition('@')
                if only and only != c:
                    continue
                if args.only and not any(fnmatch.fnmatchcase(cls, p)
                                         for p in args.only.split(',')):
                    continue  # not asked for
                row = rows.get(cls)
                if row is None:
                    problems.append('%s %s: must-pass class %s did not run' % (s, c, cls))
                elif row[1] or row[2]:
                    problems.append('%s %s: must-pass class %s: %d failed, %d errors' % (
                        s, c, cls, row[1], row[2]))
                    problems += ['    ' + b for b in bad if b.startswith(cls + '.')]
            if note and not note.startswith('worker restarted'):
                problems.append('%s: %s' % (s, note))
        title = {'mp': 'Lib/test/_test_multiprocessing.py',
                 'futures': 'Lib/test/test_concurrent_futures.py'}[s]
        out += table(cols, by_col, title + ' (' + '; '.join(notes) + ')')
    must = sum(1 for k, v in MUST_PASS.items() if k in suites for e in v
               if not args.only or any(fnmatch.fnmatchcase(e.partition('@')[0], p)
                                       for p in args.only.split(',')))
    out += ['', 'must-pass classes: %d; problems: %d' % (must, len(problems))]
    out += problems
    text = '\n'.join(out) + '\n'
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(text)
    if any(not p.startswith('futures: not run') for p in problems):
        status = 1
    if status or args.keep:
        print('records and logs: %s' % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


def _mproc_version():
    try:
        import mproc
        return mproc.__version__
    except Exception as e:  # reported, not fatal for the table
        return '(%s)' % e


if __name__ == '__main__':
    if _SUITE:
        sys.exit(worker())
    sys.exit(main())
