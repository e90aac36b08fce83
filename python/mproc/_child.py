"""Spawn and forkserver children (docs/python.md, "Start methods").

The core starts the new image as `python -c "...; mproc._child.main()"`
(mproc_embed_set_argv): its start-up code maps the family arena before
Python starts, then Python imports this module, and main() hands over to
the core (mproc_embed_child_main), which runs the child's target: _run
below, with the payload the parent made. _run prepares the interpreter as
Python's spawn does (sys.path, the working directory, the main module
re-imported as __mp_main__), then unpickles the Process object and runs
it."""
import multiprocessing.util as util
import os
import pickle
import runpy
import subprocess
import sys
import types

from . import _core
from . import process
from . import reduction

_pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _install_argv():
    code = ('import sys; sys.path.insert(0, %r); '
            'import mproc._child; mproc._child.main()' % _pkg_parent)
    flags = subprocess._args_from_interpreter_flags()
    _core.embed_set_argv([sys.executable or 'python3'] + flags + ['-c', code])


def main():
    """The entry of a new image: the core runs the pending child (or
    serves, in a forkserver); never returns on success."""
    _core.embed_child_main()


def _preparation_data(method):
    d = dict(
        log_to_stderr=False,
        authkey=bytes(process.current_process().authkey),
        name=process.current_process().name,
        sys_path=list(sys.path),
        sys_argv=list(sys.argv),
        orig_dir=os.getcwd(),
        dir=os.getcwd(),
        start_method=method,
    )
    main_module = sys.modules['__main__']
    main_mod_name = getattr(main_module.__spec__, "name", None)
    if main_mod_name is not None and main_mod_name != '__main__':
        d['init_main_from_name'] = main_mod_name
    elif sys.platform != 'win32' or True:
        main_path = getattr(main_module, '__file__', None)
        if main_path is not None:
            if not os.path.isabs(main_path):
                main_path = os.path.join(os.getcwd(), main_path)
            d['init_main_from_path'] = os.path.normpath(main_path)
    return d


def payload(process_obj, method):
    """The bytes a spawn or forkserver child gets, and the connections that
    travel with them."""
    prep = _preparation_data(method)
    with reduction.spawning() as s:
        proc = reduction.dumps(process_obj)
    return pickle.dumps((prep, proc)), s.conns


def _fixup_main_from_name(mod_name):
    current_main = sys.modules['__main__']
    if mod_name == "__main__" or mod_name.endswith(".__main__"):
        return
    if getattr(current_main.__spec__, "name", None) == mod_name:
        return
    main_module = types.ModuleType("__mp_main__")
    main_content = runpy.run_module(mod_name, run_name="__mp_main__", alter_sys=True)
    main_module.__dict__.update(main_content)
    sys.modules['__main__'] = sys.modules['__mp_main__'] = main_module


def _fixup_main_from_path(main_path):
    current_main = sys.modules['__main__']
    main_name = os.path.splitext(os.path.basename(main_path))[0]
    if main_name == 'ipython':
        return
    if getattr(current_main, '__file__', None) == main_path:
        return
    main_module = types.ModuleType("__mp_main__")
    main_content = runpy.run_path(main_path, run_name="__mp_main__")
    main_module.__dict__.update(main_content)
    sys.modules['__main__'] = sys.modules['__mp_main__'] = main_module


def _prepare(data):
    if 'name' in data:
        process.current_process().name = data['name']
    if 'authkey' in data:
        process.current_process().authkey = data['authkey']
    if 'sys_path' in data:
        sys.path = data['sys_path']
    if 'sys_argv' in data:
        sys.argv = data['sys_argv']
    if 'dir' in data:
        os.chdir(data['dir'])
    if 'orig_dir' in data:
        process.ORIGINAL_DIR = data['orig_dir']
    if 'start_method' in data:
        from . import context
        context.set_start_method(data['start_method'], force=True)
    if 'init_main_from_name' in data:
        _fixup_main_from_name(data['init_main_from_name'])
    elif 'init_main_from_path' in data:
        _fixup_main_from_path(data['init_main_from_path'])


def _run(payload_bytes, conns):
    """Run by the core in the child: the exit code."""
    prep, proc = pickle.loads(payload_bytes)
    try:
        _prepare(prep)
        reduction._child_conns = conns
        process.current_process()._inheriting = True  # proxies: no incref yet
        try:
            process_obj = reduction.loads(proc)
        finally:
            del process.current_process()._inheriting
    except BaseException:
        import traceback
        traceback.print_exc()
        util._flush_std_streams()
        return 1
    finally:
        reduction._child_conns = None
    return process_obj._bootstrap(
        parent_sentinel=process._parent_sentinel(process_obj._parent_pid))
