"""Helpers of the Python package's tests: each test class runs against
Python's multiprocessing and against mproc, under each start method, so
that mproc is checked against what Python does."""
import multiprocessing
import sys
import unittest

import mproc

METHODS = ('fork', 'spawn', 'forkserver')
MODULES = (('stdlib', multiprocessing), ('mproc', mproc))


def both(methods=METHODS, modules=MODULES):
    """Class decorator: a TestCase per (module, start method), with
    self.mp the module's context for the method and self.mod the module."""
    def deco(cls):
        g = sys.modules[cls.__module__].__dict__
        for modname, mod in modules:
            for m in methods:
                name = '%s_%s_%s' % (cls.__name__, modname, m)
                g[name] = type(name, (cls, unittest.TestCase),
                               {'mp': mod.get_context(m), 'mod': mod, 'method': m,
                                'is_mproc': mod is mproc})
        return cls
    return deco


def only_mproc(methods=METHODS):
    return both(methods, (('mproc', mproc),))


def run(ctx, target, *args, timeout=60):
    """Starts target(*args) in a child, joins it; its exit code."""
    p = ctx.Process(target=target, args=args)
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError('child did not end in %ss' % timeout)
    return p.exitcode
