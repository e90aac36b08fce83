"""Spawn and forkserver children (docs/python.md, "Start methods").

The core starts the new image as `python -c "...; mproc._child.main()"`
(mproc_embed_set_argv): its start-up code maps the family arena before
Python starts, then Python imports this module, and main() hands over to
the core (mproc_embed_child_main), which runs the child's target: _run
below, with the payload the parent made. _run has Python's own
multiprocessing.spawn.prepare set up the interpreter (sys.path, the working
directory, the main module re-imported as __mp_main__), sets mproc's start
method, then unpickles the Process object and runs Python's bootstrap."""
import io
import multiprocessing.spawn as spawn
import multiprocessing.util as util
import os
import pickle
import subprocess
import sys

from . import _core
from . import process
from . import reduction

_pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _install_argv(server=None):
    code = ('import sys; sys.path.insert(0, %r); '
            'import mproc._child; mproc._child.main(%r)' % (_pkg_parent, server))
    flags = subprocess._args_from_interpreter_flags()
    _core.embed_set_argv([sys.executable or 'python3'] + flags + ['-c', code])


# set_forkserver_preload's module names (Python's default: ['__main__']),
# and what the image's argv last told a forkserver to preload.
_preload = ['__main__']
_installed = None


def set_preload(module_names):
    global _preload
    _preload = list(module_names)


def _server_argv():
    """Before a forkserver child starts: the next forkserver (the core
    starts one when none runs) preloads what Python's forkserver does
    (3.11 to 3.13): with the program's sys.path, the modules named, an
    ImportError ignored. Python's default, ['__main__'], imports nothing
    there (its server passes the main module's path under a key its
    preparation data never has), so then the argv stays the plain one."""
    global _installed
    names = [n for n in _preload if n != '__main__']
    server = {'preload': names, 'sys_path': list(sys.path)} if names else None
    if server != _installed:
        _install_argv(server)
        _installed = server


def main(server=None):
    """The entry of a new image: the core runs the pending child (or
    serves, in a forkserver, after importing server['preload']); never
    returns on success."""
    if server and _core.embed_is_server():
        sys.path[:] = server['sys_path']
        for name in server['preload']:
            try:
                __import__(name)
            except ImportError:
                pass
    _core.embed_child_main()


def _preparation_data(method):
    if method == 'forkserver':
        _server_argv()
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
    else:
        main_path = getattr(main_module, '__file__', None)
        if main_path is not None:
            if not os.path.isabs(main_path):
                main_path = os.path.join(os.getcwd(), main_path)
            d['init_main_from_path'] = os.path.normpath(main_path)
    return d


def _dumps_for_child(obj):
    """The pickle of obj for the child being spawned. Python's
    AuthenticationString (the Process's authkey, a manager's) pickles only
    while Python spawns; while mproc spawns, it travels as its bytes, made an
    AuthenticationString again in the child."""
    buf = io.BytesIO()
    pickler = reduction.ForkingPickler(buf, reduction.HIGHEST_PROTOCOL)
    # the registered reducers (shared ctypes objects, Python's registered
    # ones: a table of this pickler's own) and the authkey's
    pickler.dispatch_table[process.AuthenticationString] = _reduce_authkey
    pickler.dump(obj)
    return buf.getvalue()


def _reduce_authkey(key):
    return process.AuthenticationString, (bytes(key),)


def payload(process_obj, method):
    """The bytes a spawn or forkserver child gets, and the connections that
    travel with them."""
    prep = _preparation_data(method)
    with reduction.spawning() as s:
        proc = _dumps_for_child(process_obj)
    return pickle.dumps((prep, proc)), s.conns


def _prepare(data):
    """Python's own preparation of a spawned interpreter (name, authkey,
    sys.path, sys.argv, working directory, the main module re-run as
    __mp_main__), then the start method, which is mproc's contexts' to
    know, not Python's."""
    data = dict(data)
    method = data.pop('start_method', None)
    spawn.prepare(data)
    if method is not None:
        from . import context
        context.set_start_method(method, force=True)


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
