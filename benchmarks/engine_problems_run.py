"""Runs ``benchmarks/engine_problems.py``'s problems on both sides and prints section 4 of ``engine.py``.

The PyTorch side (:func:`torch_worker`) runs in ``engine.py --torch-worker``'s own process, which
imports torch and never Numba: it reads the inputs from an .npz, and for each problem name it is
sent on stdin it times that problem on one thread, writes its gradients to an .npz (never a pickle)
and prints its times as one JSON line. Our side (:func:`section`) asks it for one problem, then times
the same problem itself at once under ``threadpoolctl.threadpool_limits(1)`` (and Numba's
``set_num_threads(1)`` once anything has imported Numba), so that each ratio compares numbers taken
seconds apart, under the same load, never at the same time. It prints each problem's times beside
torch's, the ratios against the goals, the largest differences of the gradients and a summary.
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

import numpy as np

import autodiff as ad
from engine_problems import build, select

GOAL_GRAD, GOAL_PRIMAL = 1.0, 1.2
SAMPLE_S = 0.05          # each timed sample runs the call this long at least (many calls for tiny problems)
QUICK = dict(repeats=2, sample_s=0.002)     # --quick: a smoke run, its numbers not worth reading
TIMES = ("primal", "recording", "grad")
LABELS = {"primal": "primal, no grad", "recording": "primal, recording", "grad": "value and gradient"}


def per_call(timer, fn, problem, quick):
    """Seconds per call: ``timer`` (engine.best_time: a warm-up, then the best of the problem's repeats) with
    enough calls per sample to last SAMPLE_S (fewer and shorter samples with --quick)."""
    repeat, sample_s = (QUICK["repeats"], QUICK["sample_s"]) if quick else (problem.repeats, SAMPLE_S)
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return timer(fn, max(1, int(sample_s / max(once, 1e-9))), repeat)


def attempt(fn):
    """(result, None), or (None, 'ExceptionName: its first line') when the call raises."""
    try:
        return fn(), None
    except Exception as error:  # a refusal is reported in the table, never hidden
        return None, f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


# --- the PyTorch worker's side (runs in its own process; torch imported here only) -----------------------

def torch_worker(config, timer):
    """Torch on one thread: a line naming a problem on stdin -> its times on stdout (one JSON line), its
    gradients in ``<out>/<name>.npz``. A first line says the version; an empty line or EOF ends it."""
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    stored = np.load(config["inputs"])
    done = {}                                  # the tiny variants: one torch function, the same inputs
    print(json.dumps(dict(version=torch.__version__, threads=torch.get_num_threads())), flush=True)
    for line in iter(sys.stdin.readline, ""):
        if not line.strip():
            break
        problem = select(line.strip())[0]
        arg_names, const_names = config["args"][problem.name], config["consts"][problem.name]
        key = (problem.theirs, json.dumps(config["scalars"][problem.name]))
        if key not in done:
            done[key] = torch_problem(torch, problem, stored, config, timer)
        out, grads = done[key]
        np.savez(os.path.join(config["out"], f"{problem.name}.npz"), **dict(zip(arg_names, grads)))
        print(json.dumps(out), flush=True)


def torch_problem(torch, problem, stored, config, timer):
    """(times and value, gradients as arrays) of one problem with torch."""
    arg_names, const_names = config["args"][problem.name], config["consts"][problem.name]
    args = [stored[f"{problem.name}__{k}"] for k in arg_names]
    consts = {k: torch.from_numpy(stored[f"{problem.name}__{k}"]) for k in const_names}
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
        return loss, [t.grad for t in leaves]

    fns = dict(primal=primal, recording=lambda: f(torch, *tracked, **consts), grad=value_and_grad)
    out = {}
    for what in TIMES:
        out[what], out[what + "_error"] = attempt(lambda: per_call(timer, fns[what], problem, config["quick"]))
    got, out["grad_error"] = attempt(value_and_grad) if out["grad_error"] is None else (None, out["grad_error"])
    if got is None:
        return out, []
    out["value"] = float(got[0])
    return out, [g.numpy() for g in got[1]]


class TorchWorker:
    """The worker process, asked for one problem at a time: its numbers and ours are taken back to back,
    in the same minute's load, and never at once (it waits on its stdin while we measure)."""

    def __init__(self, command, config):
        self.stderr = tempfile.TemporaryFile(mode="w+")      # a file, not a pipe: a full pipe would block it
        self.out, self.proc, self.hello = config["out"], None, None
        try:
            self.proc = subprocess.Popen(command(config), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.stderr, text=True)
        except OSError as error:
            print(f"  PyTorch worker failed to start: {error}")
            return
        self.hello = self.reply()

    def reply(self):
        line = self.proc.stdout.readline()
        if line:
            return json.loads(line)
        self.hello = None                                    # it has ended: nothing more is asked of it
        self.stderr.seek(0)
        print("  PyTorch worker failed:\n    " + self.stderr.read().strip()[-3000:].replace("\n", "\n    "))
        return None

    def ask(self, name, arg_names):
        """Torch's results for one problem, its gradients under 'grads' (None where it had none)."""
        if self.hello is None:
            return None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        result = self.reply()
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


def run_ours(problem, args, consts, timer, quick):
    """Our three times, value and gradients (or the refusals), as the worker's results for torch."""
    def f(*xs):
        return problem.ours(*xs, **consts)
    arrays = list(args.values())
    plain, tracked = [ad.Tensor(a) for a in arrays], [ad.Tensor(a, requires_grad=True) for a in arrays]
    value_and_grad = ad.value_and_grad(f, argnums=tuple(range(len(arrays))))
    fns = dict(primal=lambda: f(*plain), recording=lambda: f(*tracked), grad=lambda: value_and_grad(*arrays))
    out = {}
    for what in TIMES:
        _, out[what + "_error"] = attempt(fns[what])           # a refusal, before any timing
        if "numba" in sys.modules:                              # imported before, or by an op on the way
            sys.modules["numba"].set_num_threads(1)
        if out[what + "_error"] is None:
            out[what], out[what + "_error"] = attempt(lambda: per_call(timer, fns[what], problem, quick))
    if out["grad_error"] is None:
        value, grads = value_and_grad(*arrays)
        out["value"], out["grads"] = float(value), [np.asarray(g) for g in grads]
    out["fn"] = fns["grad"]
    return out


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
            if result.get(what + "_error"):
                line += f"   {side} refused: {result[what + '_error']}"
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


def section(quick, only, seed, timer, command, torch_missing, with_profile=False):
    """Section 4: for each selected problem, torch's times (its worker process, asked for this problem),
    then ours on one thread.

    ``command(config)`` is the worker's command line; ``torch_missing`` says why torch is not run at all
    (None: it is).
    """
    chosen = select(only)
    repeats = [QUICK["repeats"]] if quick else sorted({p.repeats for p in chosen})
    title = (f"4. Problems (issue 32): ours beside PyTorch eager, float64, one thread each, best of "
             f"{'-'.join(map(str, repeats))} after a warm-up")
    print(f"\n{title}\n{'-' * len(title)}")
    print_load("start")
    print("  primal, no grad: Tensors not requiring grad / under torch.no_grad(); primal, recording: the inputs"
          "\n  require grad on both sides; value and gradient: ad.value_and_grad / fresh torch leaves, backward()"
          "\n  (each problem: torch's numbers, then ours at once, so that both see the same load)")
    built = {p.name: build(p, quick, seed) for p in chosen}
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.npz")
        np.savez(inputs, **{f"{name}__{k}": v for name, (_, args, arrays, _) in built.items()
                            for k, v in {**args, **arrays}.items()})
        config = dict(problems=True, quick=quick, inputs=inputs, out=tmp, names=list(built),
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
                    size, args, arrays, scalars = built[problem.name]
                    theirs = worker.ask(problem.name, list(args)) if worker else None
                    consts = {**scalars, **{k: ad.Tensor(v) if k in problem.tensor_consts else v
                                            for k, v in arrays.items()}}
                    ours = run_ours(problem, args, consts, timer, quick)
                    oracle = problem.oracle(*args.values()) if problem.oracle else None
                    summary[problem.name] = (ours, report(problem, size, ours, theirs, oracle))
                    if with_profile and ours.get("grad") is not None:
                        profile(ours["fn"], ours["grad"])
        finally:
            if worker is not None:
                worker.close()
    print_summary(summary)
    print_load("end")


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
