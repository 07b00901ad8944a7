"""Runs ``benchmarks/engine_problems.py``'s problems on both sides and prints section 4 of ``engine.py``.

The PyTorch side runs in ``engine.py --torch-worker``'s own process (:func:`torch_worker`), which
imports torch and never Numba, on one thread. It reads the inputs from an .npz and answers requests
on stdin, one JSON line each: ``prepare`` a problem (a warm-up call of each function, refusals
caught, the value, the gradients written to an .npz: never a pickle) and ``time`` one sample of one
of its functions. Our side runs under ``threadpoolctl.threadpool_limits(1)`` (and Numba's
``set_num_threads(1)`` once anything has imported Numba) and alternates: a torch sample, then ours,
``repeats`` times; each time is the best of its samples, each sample the mean of enough calls to
last ``SAMPLE_S`` with the garbage collector off (``engine.best_time``'s recipe, split into samples
so that the two sides take turns: load from other work on the machine falls on both alike, and they
never run at once). It prints each problem's times beside torch's, the ratios against the goals, the
largest differences of the gradients and a summary.
"""
from __future__ import annotations

import contextlib
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import timeit

import numpy as np

import autodiff as ad
from engine_problems import build, select

GOAL_GRAD, GOAL_PRIMAL = 1.0, 1.2
SAMPLE_S = 0.05          # each timed sample runs the call this long at least (many calls for tiny problems)
QUICK = dict(repeats=2, sample_s=0.002)     # --quick: a smoke run, its numbers not worth reading
TIMES = ("primal", "recording", "grad")
LABELS = {"primal": "primal, no grad", "recording": "primal, recording", "grad": "value and gradient"}


def attempt(fn):
    """(result, None), or (None, 'ExceptionName: its first line') when the call raises."""
    try:
        return fn(), None
    except Exception as error:  # a refusal is reported in the table, never hidden
        return None, f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


class Timed:
    """One side's three functions of a problem: each called once (a warm-up, and any refusal caught), once
    more to choose how many calls a sample makes, then timed one sample at a time."""

    def __init__(self, fns, sample_s):
        self.fns, self.errors, self.number = fns, {}, {}
        for what, fn in fns.items():
            _, self.errors[what] = attempt(fn)
            if self.errors[what] is None:
                start = time.perf_counter()
                fn()
                self.number[what] = max(1, int(sample_s / max(time.perf_counter() - start, 1e-9)))

    def sample(self, what):
        """Seconds per call, the mean over one sample (timeit: the garbage collector off while it runs)."""
        return timeit.Timer(self.fns[what]).timeit(self.number[what]) / self.number[what]


def value_and_grads(timed):
    """The value and gradients of the 'grad' function as floats and arrays, or {} if it was refused."""
    if timed.errors["grad"] is not None:
        return {}
    value, grads = timed.fns["grad"]()
    return dict(value=float(value), grads=[np.asarray(g) for g in grads])


# --- the PyTorch worker's side (runs in its own process; torch imported here only) -----------------------

def torch_worker(config):
    """Torch on one thread, answering the requests on stdin (one JSON line each) on stdout; the first line it
    writes says its version. {"prepare": name}: errors, value (gradients to <out>/<name>.npz); {"time": name,
    "what": ...}: seconds per call, one sample. EOF ends it."""
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    stored, sample_s = np.load(config["inputs"]), QUICK["sample_s"] if config["quick"] else SAMPLE_S
    prepared, shared = {}, {}                  # shared: the tiny variants, one torch function and the same inputs
    print(json.dumps(dict(version=torch.__version__, threads=torch.get_num_threads())), flush=True)
    for line in iter(sys.stdin.readline, ""):
        request = json.loads(line)
        if "time" in request:
            reply = dict(seconds=prepared[request["time"]].sample(request["what"]))
        else:
            problem = select(request["prepare"])[0]
            key = (problem.theirs, json.dumps(config["scalars"][problem.name]))
            if key not in shared:
                shared[key] = Timed(torch_functions(torch, problem, stored, config), sample_s)
            timed = prepared[problem.name] = shared[key]
            result = value_and_grads(timed)
            np.savez(os.path.join(config["out"], f"{problem.name}.npz"),
                     **dict(zip(config["args"][problem.name], result.pop("grads", []))))
            reply = dict(result, errors=timed.errors)
        print(json.dumps(reply), flush=True)


def torch_functions(torch, problem, stored, config):
    """The three functions timed on the torch side: primal under no_grad, recording, value and gradient."""
    args = [stored[f"{problem.name}__{k}"] for k in config["args"][problem.name]]
    consts = {k: torch.from_numpy(stored[f"{problem.name}__{k}"]) for k in config["consts"][problem.name]}
    consts.update(config["scalars"][problem.name])
    f, plain = problem.theirs, [torch.from_numpy(a) for a in args]
    tracked = [torch.from_numpy(a).requires_grad_() for a in args]

    def primal():
        with torch.no_grad():
            return f(torch, *plain, **consts)

    def value_and_grad():
        leaves = [torch.from_numpy(a).requires_grad_() for a in args]
        loss = f(torch, *leaves, **consts)
        loss.backward()
        return loss.detach().numpy(), [t.grad.numpy() for t in leaves]

    return dict(primal=primal, recording=lambda: f(torch, *tracked, **consts), grad=value_and_grad)


class TorchWorker:
    """The worker process, asked for one sample at a time: torch's samples and ours take turns."""

    def __init__(self, command, config):
        self.stderr = tempfile.TemporaryFile(mode="w+")      # a file, not a pipe: a full pipe would block it
        self.out, self.proc, self.hello = config["out"], None, None
        try:
            self.proc = subprocess.Popen(command(config), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.stderr, text=True)
        except OSError as error:
            print(f"  PyTorch worker failed to start: {error}")
            return
        self.hello = self.ask({})

    def ask(self, request):
        """The reply to one request, or None (and the worker given up) if it has ended."""
        if request:
            if self.hello is None:
                return None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line:
            return json.loads(line)
        self.hello = None
        self.stderr.seek(0)
        print("  PyTorch worker failed:\n    " + self.stderr.read().strip()[-3000:].replace("\n", "\n    "))
        return None

    def prepare(self, name, arg_names):
        """Torch's errors and value for one problem, its gradients under 'grads' (None where it has none)."""
        result = self.ask({"prepare": name})
        if result is not None:
            stored = np.load(os.path.join(self.out, f"{name}.npz"))
            result["grads"] = [stored[k] for k in arg_names] if all(k in stored for k in arg_names) else None
        return result

    def close(self):
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            self.proc.wait()
        self.stderr.close()


# --- our side, and the table -------------------------------------------------------------------------------

@contextlib.contextmanager
def one_thread():
    """BLAS on one thread (threadpoolctl) for the block, and Numba too whenever something has imported it."""
    from threadpoolctl import threadpool_limits

    numba = sys.modules.get("numba")
    before = numba.get_num_threads() if numba else None
    with threadpool_limits(1):
        try:
            yield
        finally:
            if "numba" in sys.modules:        # as before the block, or Numba's default if imported in it
                numba = sys.modules["numba"]
                numba.set_num_threads(numba.config.NUMBA_NUM_THREADS if before is None else before)


def our_functions(problem, args, consts):
    """The three functions timed on our side: on Tensors not requiring grad, requiring grad, value_and_grad."""
    def f(*xs):
        return problem.ours(*xs, **consts)
    arrays = list(args.values())
    plain, tracked = [ad.Tensor(a) for a in arrays], [ad.Tensor(a, requires_grad=True) for a in arrays]
    value_and_grad = ad.value_and_grad(f, argnums=tuple(range(len(arrays))))
    return dict(primal=lambda: f(*plain), recording=lambda: f(*tracked), grad=lambda: value_and_grad(*arrays))


def measure(problem, ours, worker, their_errors, repeats):
    """{what: (our best, torch's best)}: torch's samples and ours in turns, ``repeats`` of each; torch's
    only where ``their_errors`` (None: no torch) says its function ran."""
    best = {}
    for what in TIMES:
        mine = theirs = None
        for _ in range(repeats):
            if their_errors is not None and their_errors[what] is None:
                reply = worker.ask({"time": problem.name, "what": what})
                if reply is not None:
                    theirs = min(theirs or reply["seconds"], reply["seconds"])
            if ours.errors[what] is None:
                t = ours.sample(what)
                mine = min(mine or t, t)
        best[what] = (mine, theirs)
    return best


def fmt(seconds):
    if seconds is None or seconds < 1e-3:
        return "      -   " if seconds is None else f"{seconds * 1e6:7.1f} us"
    return f"{seconds * 1e3:7.2f} ms" if seconds < 1 else f"{seconds:7.3f} s "


def largest_difference(ours, theirs):
    return max(float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(ours, theirs))


def profile(fn, seconds_per_call, top=5):
    """Our gradient under cProfile: the top functions by own time (tottime), in ms per call."""
    calls = max(1, min(200, int(1.0 / max(seconds_per_call or 1.0, 1e-9))))

    def calls_in_a_row():
        for _ in range(calls):
            fn()                    # each result dropped at once, as in the timing (a list would hold them all)
    profiler = cProfile.Profile()
    profiler.runcall(calls_in_a_row)
    stats = pstats.Stats(profiler).stats
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    print(f"      cProfile of our gradient, {calls} calls, top {top} by tottime (ms per call, calls per call):")
    for (path, line, name), (_, ncalls, tottime, cumtime, _) in rows:
        where = f"{os.path.relpath(path) if os.path.isabs(path) else path}:{line}({name})"
        print(f"        {tottime / calls * 1e3:9.3f} ms  cum {cumtime / calls * 1e3:9.3f} ms  "
              f"{ncalls / calls:9.0f}x  {where[-90:]}")


def report(problem, size, ours, theirs, oracle):
    """One problem's rows: three times beside torch's, the ratios and goals, the gradients' differences."""
    print(f"  {problem.name}: {problem.title.format(**size)}")
    ratios = {}
    for what in TIMES:
        mine, other = ours.get(what), (theirs or {}).get(what)
        goal = GOAL_GRAD if what == "grad" else GOAL_PRIMAL
        line = f"    {LABELS[what]:<20} ours {fmt(mine)}   torch {fmt(other)}"
        if mine is not None and other is not None:
            ratios[what] = mine / other
            line += f"   ratio {ratios[what]:6.2f}   goal <= {goal}: {'MET' if ratios[what] <= goal else 'NOT MET'}"
        for side, result in (("ours", ours), ("torch", theirs or {})):
            if result.get("errors", {}).get(what):
                line += f"   {side} refused: {result['errors'][what]}"
        print(line)
    if "grads" in ours and theirs and theirs.get("grads") is not None:
        scale = max(float(np.max(np.abs(g), initial=0.0)) for g in theirs["grads"])
        ratios["diff"] = largest_difference(ours["grads"], theirs["grads"])
        print(f"    max |our grad - torch's| {ratios['diff']:.1e} (largest |grad| {scale:.1e}); "
              f"|our value - torch's| {abs(ours['value'] - theirs['value']):.1e}")
    if "grads" in ours and oracle is not None:
        torch_side = theirs.get("grads") if theirs else None
        print(f"    max |our grad - det(A) inv(A).T| {largest_difference(ours['grads'], oracle):.1e}"
              + ("" if torch_side is None else f"; torch's {largest_difference(torch_side, oracle):.1e}"))
    return ratios


def section(quick, only, seed, command, torch_missing, with_profile=False):
    """Section 4: each selected problem prepared on both sides, then timed, torch's samples and ours in turns.

    ``command(config)`` is the worker's command line; ``torch_missing`` says why torch is not run at all
    (None: it is).
    """
    chosen = select(only)
    repeats = [QUICK["repeats"]] if quick else sorted({p.repeats for p in chosen})
    title = (f"4. Problems (issue 32): ours beside PyTorch eager, float64, one thread each, best of "
             f"{'-'.join(map(str, repeats))} samples taken in turns")
    print(f"\n{title}\n{'-' * len(title)}")
    print_load("start")
    print("  primal, no grad: Tensors not requiring grad / under torch.no_grad(); primal, recording: the inputs"
          "\n  require grad on both sides; value and gradient: ad.value_and_grad / fresh torch leaves, backward()")
    built = {p.name: build(p, quick, seed) for p in chosen}
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.npz")
        np.savez(inputs, **{f"{name}__{k}": v for name, (_, args, arrays, _) in built.items()
                            for k, v in {**args, **arrays}.items()})
        config = dict(problems=True, quick=quick, inputs=inputs, out=tmp,
                      args={n: list(b[1]) for n, b in built.items()}, consts={n: list(b[2]) for n, b in built.items()},
                      scalars={n: b[3] for n, b in built.items()})
        worker = TorchWorker(command, config) if torch_missing is None else None
        if worker is not None and worker.hello is not None:
            print(f"  PyTorch {worker.hello['version']}, {worker.hello['threads']} thread, in its own process")
        else:
            print(f"  PyTorch {torch_missing or 'not measured: its worker failed (above)'}")
        try:
            with one_thread():
                for problem in chosen:
                    summary[problem.name] = run_problem(problem, built[problem.name], worker, quick, with_profile)
        finally:
            if worker is not None:
                worker.close()
    print_summary(summary)
    print_load("end")


def run_problem(problem, built, worker, quick, with_profile):
    """One problem on both sides: prepared, timed in turns, reported; (our times, the ratios)."""
    size, args, arrays, scalars = built
    theirs = worker.prepare(problem.name, list(args)) if worker is not None else None
    consts = {**scalars, **{k: ad.Tensor(v) if k in problem.tensor_consts else v for k, v in arrays.items()}}
    ours = Timed(our_functions(problem, args, consts), QUICK["sample_s"] if quick else SAMPLE_S)
    if "numba" in sys.modules:                       # imported before, or by an op on the way
        sys.modules["numba"].set_num_threads(1)
    best = measure(problem, ours, worker, theirs and theirs["errors"], QUICK["repeats"] if quick else problem.repeats)
    mine = dict(value_and_grads(ours), errors=ours.errors, **{w: best[w][0] for w in TIMES})
    if theirs is not None:
        theirs.update({w: best[w][1] for w in TIMES})
    oracle = problem.oracle(*args.values()) if problem.oracle else None
    ratios = report(problem, size, mine, theirs, oracle)
    if with_profile and mine["grad"] is not None:
        profile(ours.fns["grad"], mine["grad"])
    return mine, ratios


def print_load(when):
    if hasattr(os, "getloadavg"):     # other work on the machine shows here (the section's own is one process)
        print(f"  load average at the {when} (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def print_summary(summary):
    print("\n  summary: ratio ours / torch (goal: gradient <= 1.0, primal <= 1.2)")
    print(f"  {'problem':<15} {'primal':>8} {'recording':>10} {'gradient':>9} {'max |d grad|':>13}")
    for name, (_, ratios) in summary.items():
        cells = [f"{ratios[k]:.2f}" if k in ratios else "-" for k in TIMES]
        diff = f"{ratios['diff']:.1e}" if "diff" in ratios else "-"
        print(f"  {name:<15} {cells[0]:>8} {cells[1]:>10} {cells[2]:>9} {diff:>13}")
    if "tiny-numpy" in summary and "tiny-autodiff" in summary:
        (np_side, _), (ad_side, _) = summary["tiny-numpy"], summary["tiny-autodiff"]
        extra = [(np_side.get(k), ad_side.get(k)) for k in ("primal", "grad")]
        if all(a is not None and b is not None for a, b in extra):
            print(f"  NumPy's dispatch (tiny-numpy - tiny-autodiff): {(extra[0][0] - extra[0][1]) * 1e6:+.1f} us "
                  f"per primal call, {(extra[1][0] - extra[1][1]) * 1e6:+.1f} us per value-and-gradient call")
