"""Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier:
mproc against Python's multiprocessing, under each start method."""
import threading
import time
import unittest

from mputil import both, join_thread, only_mproc, run


def hold_lock(lock, held, release):
    with lock:
        held.set()
        release.wait(30)


def count_up(lock, value_q, n):
    for _ in range(n):
        with lock:
            v = value_q.get()
            value_q.put(v + 1)


def notify_after(cond, flag_q):
    time.sleep(0.1)
    with cond:
        flag_q.put(1)
        cond.notify()


def set_event(ev):
    time.sleep(0.05)
    ev.set()


def barrier_party(bar, q):
    q.put(bar.wait(30))


def sem_take(sem, q):
    q.put(sem.acquire(timeout=0.1))


@both(methods=('fork',))
class LocalSemantics:
    """Single-process behaviour: the same results and exceptions."""

    def test_lock(self):
        lock = self.mp.Lock()
        self.assertTrue(lock.acquire())
        self.assertFalse(lock.acquire(False))
        t0 = time.monotonic()
        self.assertFalse(lock.acquire(timeout=0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        lock.release()
        self.assertRaises(ValueError, lock.release)
        with lock:
            pass
        self.assertTrue(lock.acquire(timeout=1))
        lock.release()

    def test_acquire_arguments(self):
        # Python's signature, keywords included, for Lock and Semaphore.
        for obj in (self.mp.Lock(), self.mp.RLock(), self.mp.Semaphore(1)):
            self.assertTrue(obj.acquire(block=True, timeout=None))
            if not isinstance(obj, type(self.mp.RLock())):
                self.assertFalse(obj.acquire(block=False))
                self.assertFalse(obj.acquire(True, 0.05))
                self.assertFalse(obj.acquire(timeout=-1))
            obj.release()
            self.assertTrue(obj.acquire(False))
            obj.release()
            self.assertRaises(TypeError, obj.acquire, spam=1)
            self.assertRaises(TypeError, obj.acquire, True, None, 1)
            self.assertRaises(TypeError, obj.release, 1)

    def test_lock_locked(self):
        if not hasattr(self.mp.Lock(), 'locked'):
            self.skipTest('this Python has no Lock.locked()')
        lock = self.mp.Lock()
        self.assertFalse(lock.locked())
        with lock:
            self.assertTrue(lock.locked())
        self.assertFalse(lock.locked())

    def test_rlock(self):
        lock = self.mp.RLock()
        self.assertTrue(lock.acquire())
        self.assertTrue(lock.acquire())
        lock.release()
        lock.release()
        self.assertRaises(AssertionError, lock.release)
        with lock:
            with lock:
                pass

    def test_semaphore(self):
        sem = self.mp.Semaphore(2)
        self.assertEqual(sem.get_value(), 2)
        self.assertTrue(sem.acquire())
        self.assertTrue(sem.acquire(False))
        self.assertFalse(sem.acquire(False))
        self.assertFalse(sem.acquire(timeout=0.1))
        self.assertEqual(sem.get_value(), 0)
        sem.release()
        sem.release()
        sem.release()  # unbounded
        self.assertEqual(sem.get_value(), 3)
        with sem:
            self.assertEqual(sem.get_value(), 2)

    def test_bounded_semaphore(self):
        sem = self.mp.BoundedSemaphore(1)
        sem.acquire()
        sem.release()
        self.assertRaises(ValueError, sem.release)

    def test_event(self):
        ev = self.mp.Event()
        self.assertFalse(ev.is_set())
        self.assertFalse(ev.wait(0.05))
        ev.set()
        self.assertTrue(ev.is_set())
        self.assertTrue(ev.wait())
        self.assertTrue(ev.wait(0))
        ev.clear()
        self.assertFalse(ev.is_set())

    def test_condition(self):
        cond = self.mp.Condition()
        self.assertRaises(AssertionError, cond.wait, 0.01)
        with cond:
            self.assertFalse(cond.wait(0.05))
            self.assertFalse(cond.wait_for(lambda: False, 0.05))
            self.assertEqual(cond.wait_for(lambda: 5, 0.05), 5)
            cond.notify()
            cond.notify_all()
        cond = self.mp.Condition(self.mp.Lock())
        with cond:
            self.assertFalse(cond.wait(0.01))

    def test_condition_threads(self):
        cond = self.mp.Condition()
        state = []

        def waiter():
            with cond:
                cond.wait_for(lambda: state, 10)
                state.append('woke')
        ts = [threading.Thread(target=waiter) for _ in range(3)]
        for t in ts:
            t.start()
        time.sleep(0.1)
        with cond:
            state.append('go')
            cond.notify_all()
        for t in ts:
            join_thread(t, 10)
        self.assertEqual(state.count('woke'), 3)

    def test_barrier_threads(self):
        bar = self.mp.Barrier(3, timeout=10)
        self.assertEqual(bar.parties, 3)
        self.assertEqual(bar.n_waiting, 0)
        self.assertFalse(bar.broken)
        out = []
        ts = [threading.Thread(target=lambda: out.append(bar.wait())) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            join_thread(t, 10)
        self.assertEqual(sorted(out), [0, 1, 2])
        bar.abort()
        self.assertTrue(bar.broken)
        self.assertRaises(threading.BrokenBarrierError, bar.wait)
        bar.reset()
        self.assertFalse(bar.broken)

    def test_barrier_timeout_breaks(self):
        bar = self.mp.Barrier(2)
        self.assertRaises(threading.BrokenBarrierError, bar.wait, 0.05)
        self.assertTrue(bar.broken)

    def test_pickle_outside_spawning(self):
        import pickle
        for obj in (self.mp.Lock(), self.mp.Event(), self.mp.Semaphore()):
            self.assertRaises(RuntimeError, pickle.dumps, obj)


@both()
class AcrossProcesses:
    def test_lock_held_by_child(self):
        lock, held, release = self.mp.Lock(), self.mp.Event(), self.mp.Event()
        p = self.mp.Process(target=hold_lock, args=(lock, held, release))
        p.start()
        self.assertTrue(held.wait(30))
        self.assertFalse(lock.acquire(timeout=0.1))
        release.set()
        self.assertTrue(lock.acquire(timeout=30))
        lock.release()
        p.join(30)
        self.assertEqual(p.exitcode, 0)

    def test_lock_counts(self):
        lock, q = self.mp.Lock(), self.mp.Queue()
        q.put(0)
        ps = [self.mp.Process(target=count_up, args=(lock, q, 50)) for _ in range(3)]
        for p in ps:
            p.start()
        for p in ps:
            p.join(60)
        self.assertEqual(q.get(timeout=10), 150)

    def test_condition_notify(self):
        cond, q = self.mp.Condition(), self.mp.Queue()
        with cond:
            p = self.mp.Process(target=notify_after, args=(cond, q))
            p.start()
            self.assertTrue(cond.wait(30))
            self.assertEqual(q.get(timeout=10), 1)
        p.join(30)

    def test_event(self):
        ev = self.mp.Event()
        self.assertEqual(run(self.mp, set_event, ev), 0)
        self.assertTrue(ev.is_set())

    def test_barrier(self):
        bar, q = self.mp.Barrier(3), self.mp.Queue()
        ps = [self.mp.Process(target=barrier_party, args=(bar, q)) for _ in range(2)]
        for p in ps:
            p.start()
        idx = bar.wait(30)
        got = sorted([idx, q.get(timeout=30), q.get(timeout=30)])
        self.assertEqual(got, [0, 1, 2])
        for p in ps:
            p.join(30)

    def test_semaphore(self):
        sem, q = self.mp.Semaphore(0), self.mp.Queue()
        self.assertEqual(run(self.mp, sem_take, sem, q), 0)
        self.assertFalse(q.get(timeout=10))
        sem.release()
        self.assertEqual(run(self.mp, sem_take, sem, q), 0)
        self.assertTrue(q.get(timeout=10))
        self.assertEqual(sem.get_value(), 0)


def die_holding(lock):
    lock.acquire()
    import os
    os._exit(0)


@only_mproc()
class BeyondPython:
    def test_owner_died(self):
        lock = self.mp.Lock()
        self.assertEqual(run(self.mp, die_holding, lock), 0)
        with self.assertRaises(self.mod.OwnerDiedError):
            lock.acquire(timeout=10)
        self.assertTrue(lock.locked())
        lock.make_consistent()
        lock.release()
        self.assertTrue(lock.acquire(timeout=1))
        lock.release()
        # The same through acquire() with no argument, and a Value's lock
        for lk in (lock, self.mp.Value('i', 0).get_lock()):
            self.assertEqual(run(self.mp, die_holding, lk), 0)
            with self.assertRaises(self.mod.OwnerDiedError):
                lk.acquire()
            lk.make_consistent()
            lk.release()
            self.assertTrue(lk.acquire())
            lk.release()
            # released once too often: Python's errors, through the same path
            self.assertRaises(ValueError if lk is lock else AssertionError, lk.release)

    def test_relock_raises_instead_of_hanging(self):
        lock = self.mp.Lock()
        lock.acquire()
        self.assertRaises(RuntimeError, lock.acquire)
        self.assertFalse(lock.acquire(timeout=0.05))
        lock.release()

    def test_objects_outlive_the_parent_handle(self):
        # The parent drops its handles at once; the child still uses them.
        q = self.mp.Queue()
        p = self.mp.Process(target=set_event, args=(self.mp.Event(),))
        p.start()
        p.join(30)
        self.assertEqual(p.exitcode, 0)
        del q


if __name__ == '__main__':
    unittest.main()
