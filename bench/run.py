#!/usr/bin/env python3
"""Benchmark driver (see BENCH.md).

Usage: python3 bench/run.py BUILD_DIR [OUT_JSON]

For each row runs bench_mproc, py_anchor.py and bench_floor, and for a row
with peers (other libraries doing the same work) `bench_floor ROW PEER` for
each; prints a table (peers on a second line: figure and mproc's ratio to
it) and writes OUT_JSON (default BUILD_DIR/bench.json), peers in a "peers" object. A run that
fails, times out or does not support the row gives null (for a peer, the
reason is printed). BENCH_QUICK=1 shortens every row;
BENCH_ONLY=prefix runs only rows whose name starts with the prefix.
BENCH_CPUS=0 (or 0,1 ...) pins every run to those CPUs: steadier figures on
a noisy machine, where cross-CPU wake-ups make pipe rows vary a lot.
Otherwise the two busy processes of the counter, wake and queue rows (but
not queue.mpmc) run on different CPUs, in every runner and peer alike (see
bench_pin_apart): a wake-up that crosses CPUs costs far more on some
machines, so the pipe peer of the queue rows can be well below the
(unpinned) pipe.throughput rows.
Rows cluster.* (when the cluster layer was built: BUILD_DIR/bench/
bench_cluster.cfg names its launcher) run bench_cluster under mpiexec with
each row's number of ranks; their floor and peers are other runs (see
CLUSTER_ROWS), the mpi4py peer under the launcher of mpi4py's own MPI.
Rows py.* (when the Python package was built: BUILD_DIR/python/mproc)
run one Python program of bench/ twice, `PY bench/py_X.py stdlib ROW`
(the python column) and `PY bench/py_X.py mproc ROW` with
PYTHONPATH=BUILD_DIR/python (the mproc column), PY being the interpreter
the package was built for; a row whose program is missing, or whose part
of the package does not import yet, is null with the reason printed (see
PY_ROWS).
Exits 1 if a bench_mproc (or bench_cluster, or a py.* row's mproc) run
failed (as opposed to an unsupported row).
"""
import glob
import json
import math
import os
import shutil
import signal
import subprocess
import sys

# (name, unit, better[, peers]) -- add rows here, then teach the three
# runners (peers: bench_floor_peers.c).
QUEUE_PEERS = ("pipe", "posix_mq", "zeromq")
ROWS = [
    ("process.start_join.fork", "ms", "lower"),
    ("process.start_join.spawn", "ms", "lower"),
    ("process.start_join.forkserver", "ms", "lower"),
    ("pipe.throughput.8B", "msgs/s", "higher"),
    ("pipe.throughput.1MiB", "MB/s", "higher"),
    ("pipe.throughput.duplex.8B", "msgs/s", "higher"),
    ("pipe.throughput.duplex.1MiB", "MB/s", "higher"),
    ("pipe.pingpong.8B", "us", "lower"),
    ("lock.uncontended", "ns", "lower"),
    ("counter.locked.2proc", "ops/s", "higher"),
    ("counter.locked.2proc.rlock", "ops/s", "higher"),
    ("wake.pingpong", "us", "lower"),
    ("wake.pingpong.event", "us", "lower"),
    ("arena.alloc_free.64B", "ns", "lower"),
    ("arena.alloc_free.64B.batch", "ns", "lower"),
    ("value.codec.seed_dict", "ops/s", "higher"),
    ("queue.spsc.8B", "msgs/s", "higher", QUEUE_PEERS),
    ("queue.mpmc.2x2.8B", "msgs/s", "higher"),
    ("queue.spsc.1MiB", "MB/s", "higher", QUEUE_PEERS),
    ("queue.pingpong.8B", "us", "lower"),
    # Pools and executors: mproc's default start method (forkserver), and
    # Python's pools under 'forkserver' too (see py_anchor.py); 2 workers.
    ("pool.apply_async.rtt", "us", "lower"),
    ("pool.apply_async.pipelined", "us", "lower"),
    ("executor.submit.pipelined", "us", "lower"),
    ("pool.map.trivial_100k", "us", "lower"),
    ("pool.map.zero_copy_10M", "MB/s", "higher"),
    ("pool.map.cpu_bound", "s", "lower", ("sequential",)),
    ("pool.create_close_join", "ms", "lower"),
    ("pool.create_close_join.fork", "ms", "lower"),
    # Managers: the default start method on each side; sequential proxy
    # calls from the starting process (see bench_mproc_manager.c).
    ("manager.dict_set.local", "ops/s", "higher"),
    ("manager.dict_get.local", "ops/s", "higher"),
    ("manager.list_append.local", "ops/s", "higher"),
    ("manager.dict_set.remote", "ops/s", "higher"),
    ("manager.pipelined.remote", "ops/s", "higher"),
    ("manager.start_shutdown", "ms", "lower"),
]

# The cluster.* rows (BENCH.md): (name, unit, better, ranks, floor, peers).
# ranks: mpiexec -n for bench_cluster (rank 0 runs the row, the others
# serve); floor and each peer: ("cluster_floor",) a raw MPI ping-pong
# (bench_cluster_floor, 2 ranks), ("mproc", ROW) / ("floor", ROW, PEER)
# another row's figure, ("mpi4py", RANKS) mpi4py.futures doing the same
# (py_mpi4py.py). Measured once per run where rows share them.
SEQUENTIAL = ("floor", "pool.map.cpu_bound", "sequential")
CLUSTER_ROWS = [
    ("cluster.apply.rtt", "us", "lower", 2, ("cluster_floor",), {"mpi4py": ("mpi4py", 2)}),
    ("cluster.submit.pipelined", "us", "lower", 3, None, {"mpi4py": ("mpi4py", 3)}),
    ("cluster.map.cpu_bound", "s", "lower", 3, ("mproc", "pool.map.cpu_bound"),
     {"pool.map.cpu_bound": ("mproc", "pool.map.cpu_bound"), "sequential": SEQUENTIAL}),
] + [(f"cluster.map.scaling.{n}", "s", "lower", n + 1, SEQUENTIAL, {"sequential": SEQUENTIAL})
     for n in (1, 2, 4)]

# The py.* rows (BENCH.md): (name, unit, better, program in bench/, the
# name in the mproc package the row needs: an attribute path, whose parts
# are imported as submodules where they are not attributes). A row runs
# when its program exists and that name imports; null otherwise, with the
# reason (never a figure of something else).
PY_ROWS = [
    ("py.queue.small", "msgs/s", "higher", "py_queue.py", "Queue"),
    ("py.queue.mpmc", "msgs/s", "higher", "py_queue.py", "Queue"),
    ("py.queue.1MiB", "MB/s", "higher", "py_queue.py", "Queue"),
    ("py.pool.map.trivial", "us", "lower", "py_pool.py", "Pool"),
    ("py.pool.apply_async.rtt", "us", "lower", "py_pool.py", "Pool"),
    ("py.executor.submit.pipelined", "us", "lower", "py_pool.py",
     "futures.ProcessPoolExecutor"),
    ("py.lock.uncontended", "ns", "lower", "py_process.py", "Lock"),
    ("py.value.locked_increment.2proc", "ops/s", "higher", "py_value.py", "Value"),
    ("py.manager.dict_set", "ops/s", "higher", "py_manager.py", "Manager"),
    ("py.process.start_join.spawn", "ms", "lower", "py_process.py", "Process"),
]

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
TIMEOUT = 30 if QUICK else 120  # seconds per run
UNSUPPORTED = 2  # exit status of a runner for a row it does not support
CPUS = {int(c) for c in os.environ.get("BENCH_CPUS", "").split(",") if c.strip()}
HERE = os.path.dirname(os.path.abspath(__file__))


def find_binary(build, name):
    for path in (os.path.join(build, "bench", name), os.path.join(build, name)):
        if os.access(path, os.X_OK):
            return path
    return None


def measure(cmd, row, peer=None, label=None, env=None):
    """Runs cmd + [row] (+ [peer]); returns (figure or None, failed).
    label: how messages name the run (default: the row and peer); env: the
    run's environment (default: ours)."""
    if cmd is None:
        return None, False
    args = cmd + [row] + ([peer] if peer else [])
    if peer:
        row = f"{row} {peer}"
    row = label or row
    pin = (lambda: os.sched_setaffinity(0, CPUS)) if CPUS else None
    # A session of its own, so a timeout can kill the run's children too.
    r = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, preexec_fn=pin, env=env)
    try:
        out, err = r.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(r.pid, signal.SIGKILL)
        r.communicate()
        print(f"  {row}: {os.path.basename(cmd[-1])} timed out", file=sys.stderr)
        return None, True
    if r.returncode == UNSUPPORTED:
        why = err.strip().splitlines()[-1:]
        if (peer or label) and why:
            print(f"  {row}: null: {why[0]}", file=sys.stderr)
        return None, False
    try:
        value = float(out.strip())
    except ValueError:
        value = None
    if r.returncode != 0 or value is None or not math.isfinite(value) or value <= 0:
        why = err.strip().splitlines()[-1:] or [f"exit {r.returncode}, output {out!r}"]
        print(f"  {row}: {os.path.basename(cmd[-1])} failed: {why[0]}", file=sys.stderr)
        return None, True
    return value, False


def ratio(mine, other, better):
    """>1 means mproc is better."""
    if mine is None or other is None:
        return None
    return mine / other if better == "higher" else other / mine


def fmt(v, suffix=""):
    return "null" if v is None else f"{v:.4g}{suffix}"


def cluster_launcher(build):
    """[mpiexec, -n] + flags for bench_cluster, from bench_cluster.cfg
    (written by CMake when the cluster layer is built), or None."""
    path = os.path.join(build, "bench", "bench_cluster.cfg")
    if not os.path.exists(path) or find_binary(build, "bench_cluster") is None:
        return None
    with open(path) as f:
        cfg = json.load(f)
    if not cfg.get("mpiexec"):
        return None
    return [cfg["mpiexec"], cfg.get("numproc_flag") or "-n"], cfg.get("preflags") or []


def bind_flags(mpiexec):
    """The launcher's flags that bind each rank to a core of its own (the
    MPI ping-pong floor, and the rows whose ranks fit the CPUs: two
    busy-polling ranks must not share a CPU)."""
    name = os.path.basename(mpiexec)
    if "openmpi" in name or "orterun" in name:
        return ["--bind-to", "core"]
    if "mpich" in name or "hydra" in name:
        return ["-bind-to", "core"]
    return []


def mpi4py_launcher():
    """(python, [mpiexec], flags) for the mpi4py peer, with the launcher of
    the MPI that mpi4py was built with (Debian's: Open MPI), or (None, why)."""
    probe = ("import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI; "
             "print(MPI.Get_library_version())")
    for py in dict.fromkeys(("/usr/bin/python3", sys.executable)):
        if not os.access(py, os.X_OK):
            continue
        try:
            r = subprocess.run([py, "-c", probe], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode != 0:
            continue
        if "Open MPI" in r.stdout:
            exe, flags = shutil.which("mpiexec.openmpi"), ["--allow-run-as-root", "--oversubscribe"]
        elif "MPICH" in r.stdout:
            exe, flags = shutil.which("mpiexec.mpich"), []
        else:
            return None, f"mpi4py's MPI is neither Open MPI nor MPICH: {r.stdout.strip()[:60]}"
        if exe is None:
            return None, "no mpiexec for mpi4py's MPI"
        return (py, [exe, "-n"], flags), None
    return None, "no python3 with mpi4py (Debian: python3-mpi4py)"


def cluster_rows(build, runners, rows, line):
    """Measures and prints the cluster.* rows; returns (results, failed)."""
    launch = cluster_launcher(build)
    if launch is None:
        print("  cluster.*: skipped, the cluster layer was not built (no MPI)", file=sys.stderr)
        return [], False
    (mpiexec, preflags), cache = launch, {}
    bench_cluster = find_binary(build, "bench_cluster")
    cluster_floor = find_binary(build, "bench_cluster_floor")
    py4, why4 = mpi4py_launcher()
    ncpus = len(CPUS) if CPUS else len(os.sched_getaffinity(0))  # the runs' CPUs

    def other(spec, row):
        """The figure of a floor or peer spec, measured once per run."""
        if spec is None:
            return None
        if spec not in cache:
            kind = spec[0]
            if kind == "cluster_floor":
                bind = bind_flags(mpiexec[0]) if 2 <= ncpus else []
                cmd = mpiexec + ["2"] + preflags + bind + [cluster_floor]
                cmd = cmd if cluster_floor else None
                cache[spec] = measure(cmd, row, label=f"{row} floor")[0]
            elif kind == "mproc":
                cache[spec] = measure(runners["mproc"], spec[1])[0]
            elif kind == "floor":
                cache[spec] = measure(runners["floor"], spec[1], spec[2])[0]
            elif kind == "mpi4py" and py4 is None:
                print(f"  {row} mpi4py: null: {why4}", file=sys.stderr)
                cache[spec] = None
            elif kind == "mpi4py":
                py, exe, flags = py4
                cmd = exe + [str(spec[1])] + flags + [py, "-m", "mpi4py.futures",
                                                      os.path.join(HERE, "py_mpi4py.py")]
                cache[spec] = measure(cmd, row, label=f"{row} mpi4py")[0]
        return cache[spec]

    results, failed = [], False
    for name, unit, better, ranks, floor, peers in rows:
        res = {"name": name, "unit": unit, "better": better}
        # Bound to a core each when the ranks fit the CPUs, as the floor and
        # as Open MPI (the mpi4py peer's launcher) does by default for
        # 2 ranks: unbound, busy ranks now and then share a CPU.
        bind = bind_flags(mpiexec[0]) if ranks <= ncpus else []
        res["mproc"], bad = measure(mpiexec + [str(ranks)] + preflags + bind + [bench_cluster],
                                    name)
        failed |= bad
        res["python"] = None
        res["floor"] = other(floor, name)
        res["peers"] = {p: other(spec, name) for p, spec in peers.items()}
        results.append(res)
        print(line.format(name, unit, better, fmt(res["mproc"]), fmt(None), fmt(res["floor"]),
                          fmt(None, "x"), fmt(ratio(res["mproc"], res["floor"], better), "x")),
              flush=True)
        print("  peers:  " + "   ".join(
            f"{p} {fmt(v)} ({fmt(ratio(res['mproc'], v, better), 'x')})"
            for p, v in res["peers"].items()), flush=True)
    return results, failed


PY_PROBE = """import importlib, sys
obj, name = importlib.import_module("mproc"), "mproc"
for part in sys.argv[1].split("."):
    name += "." + part
    if hasattr(obj, part):
        obj = getattr(obj, part)
        continue
    try:
        obj = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        sys.exit("there is no " + name)
"""


def python_package(build):
    """(interpreter, environment) to run the mproc package of the build
    tree, or (None, why not). The interpreter is the one the package was
    built for (CMake's MPROC_PYTHON), else ours."""
    pkg = os.path.join(build, "python", "mproc")
    if not glob.glob(os.path.join(pkg, "_core*.so")):
        return None, f"the Python package was not built (no {pkg}/_core*.so: Python headers?)"
    py = sys.executable
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for ln in f:
                if ln.startswith("MPROC_PYTHON:"):
                    py = ln.split("=", 1)[1].strip() or py
    except OSError:
        pass
    env = dict(os.environ)
    path = os.path.abspath(os.path.join(build, "python"))
    env["PYTHONPATH"] = os.pathsep.join([path] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                   else []))
    return (py, env), None


def py_rows(build, rows, line):
    """Measures and prints the py.* rows; returns (results, failed)."""
    pkg, why = python_package(build)
    if pkg is None:
        print(f"  py.*: skipped, {why}", file=sys.stderr)
        return [], False
    py, env = pkg
    probed = {}
    results, failed = [], False
    for name, unit, better, program, needs in rows:
        res = {"name": name, "unit": unit, "better": better,
               "mproc": None, "python": None, "floor": None}
        path = os.path.join(HERE, program)
        if not os.path.exists(path):
            print(f"  {name}: not available: no bench/{program}", file=sys.stderr)
        else:
            if needs not in probed:
                try:
                    r = subprocess.run([py, "-c", PY_PROBE, needs], env=env,
                                       capture_output=True, text=True, timeout=60)
                    last = r.stderr.strip().splitlines()[-1:]
                    probed[needs] = None if r.returncode == 0 else (
                        last[0] if last else f"exit {r.returncode}")
                except (OSError, subprocess.TimeoutExpired) as e:
                    probed[needs] = str(e)
            if probed[needs] is not None:
                print(f"  {name}: not available: {probed[needs]}", file=sys.stderr)
            else:
                res["python"] = measure([py, path, "stdlib"], name, label=name)[0]
                res["mproc"], bad = measure([py, path, "mproc"], name, label=name, env=env)
                failed |= bad
        results.append(res)
        print(line.format(name, unit, better, fmt(res["mproc"]), fmt(res["python"]), fmt(None),
                          fmt(ratio(res["mproc"], res["python"], better), "x"), fmt(None, "x")),
              flush=True)
    return results, failed


def main():
    if len(sys.argv) not in (2, 3) or not os.path.isdir(sys.argv[1]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build = sys.argv[1]
    runners = {}
    for col, name in (("mproc", "bench_mproc"), ("floor", "bench_floor")):
        path = find_binary(build, name)
        if path is None:
            print(f"warning: {name} not found in {build}; its column is null", file=sys.stderr)
        runners[col] = [path] if path else None
    runners["python"] = [sys.executable, os.path.join(HERE, "py_anchor.py")]

    only = os.environ.get("BENCH_ONLY", "")
    rows = [r for r in ROWS if r[0].startswith(only)]
    crows = [r for r in CLUSTER_ROWS if r[0].startswith(only)]
    prows = [r for r in PY_ROWS if r[0].startswith(only)]
    width = max([len(r[0]) for r in rows + crows + prows] + [3])
    head = ["unit", "better", "mproc", "python", "floor", "vs python", "vs floor"]
    line = "{:<%d}  {:<6}  {:<6}  {:>10}  {:>10}  {:>10}  {:>9}  {:>8}" % width
    print(line.format("row", *head))
    results, mproc_failed = [], False
    for name, unit, better, *peers in rows:
        res = {"name": name, "unit": unit, "better": better}
        for col in ("mproc", "python", "floor"):
            res[col], failed = measure(runners[col], name)
            mproc_failed |= failed and col == "mproc"
        if peers:
            res["peers"] = {p: measure(runners["floor"], name, p)[0] for p in peers[0]}
        results.append(res)
        vs_py = ratio(res["mproc"], res["python"], better)
        vs_floor = ratio(res["mproc"], res["floor"], better)
        print(line.format(name, unit, better, fmt(res["mproc"]), fmt(res["python"]),
                          fmt(res["floor"]), fmt(vs_py, "x"), fmt(vs_floor, "x")), flush=True)
        if peers:
            print("  peers:  " + "   ".join(
                f"{p} {fmt(v)} ({fmt(ratio(res['mproc'], v, better), 'x')})"
                for p, v in res["peers"].items()), flush=True)

    if prows:
        pres, pfailed = py_rows(build, prows, line)
        results += pres
        mproc_failed |= pfailed

    if crows:
        cres, cfailed = cluster_rows(build, runners, crows, line)
        results += cres
        mproc_failed |= cfailed

    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(build, "bench.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r) for r in results) + "\n]\n")
    print(f"wrote {out}  (vs, and peers' (...x): >1x means mproc is better)")
    return 1 if mproc_failed else 0


if __name__ == "__main__":
    sys.exit(main())
