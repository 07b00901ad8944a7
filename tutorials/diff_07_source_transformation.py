# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 7: source transformation, the adjoint program written out
#
# *Follows section 5.5.4 of the book chapter "CNN Learning" (Khan et al.): the worked example
# eq. 5.36, its decomposition eq. 5.38 and its adjoints eq. 5.39; and the third way to implement
# automatic differentiation that the AD literature names beside operator overloading (Baydin et
# al. 2018): source transformation, as in Tapenade, JAX (jaxpr + XLA) and Zygote.*
#
# The engine of lessons 1 to 6 **overloads operators**: each `sin`, `+`, `**` on a Tensor runs
# NumPy and records a node; `backward()` then *interprets* the recorded graph, node by node, in
# Python. Clear, and it costs: every primitive allocates a fresh array, and the sweep's
# bookkeeping is paid at every call.
#
# **Source transformation** does the sweep once, symbolically: it writes the derivative *as a
# program*, the statements of eq. 5.39 in a programming language, and hands that program to a
# compiler. `ad.compile(f, x0)` records `f` once at `x0`, runs the reverse sweep once more with
# recording on (so every adjoint statement is itself a recorded primitive), writes forward and
# adjoint statements as Python source, and compiles it with Numba. We will
#
# 1. read the generated code for eq. 5.36 and find eq. 5.38 and eq. 5.39 in it, line by line;
# 2. see what "recorded once" means: branches, masks, static arguments, loops, `ad.explain`;
# 3. fuse a whole array program into one loop and time it against NumPy and the eager engine.
#
# Everything goes to `tutorials/_output/diff_07_source_transformation/` (or `$TUTORIAL_OUTPUT`),
# the generated modules and Numba's machine code included.

# %%
import os
import subprocess
import sys
import textwrap
import timeit
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository, so that `autodiff` imports without installing
import autodiff as ad
from autodiff.examples import eq_5_36, eq_5_37

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_07_source_transformation"
OUT.mkdir(parents=True, exist_ok=True)
CACHE = OUT / "compiled"   # the generated modules, and Numba's machine code beside them

# %% [markdown]
# ## 1. The generated code is eq. 5.38, then eq. 5.39
#
# The engine records eq. 5.36 as the nine statements of eq. 5.38 (lesson 1 printed them with
# `ad.print_graph`). `ad.compile` writes those statements, then one line per adjoint
# $\bar v = \partial y / \partial v$, named `v_bar`, in the order of Algorithm 2 (the nodes from
# last to first). Each line is eq. 5.39 with a local derivative of eq. 5.40 put in:

# %%
cf = ad.compile(eq_5_36, 0.5, cache=CACHE)
print(cf.source)

# %% [markdown]
# Read the adjoints against eq. 5.39:
#
# - `d_bar = y_bar` and `h_bar = y_bar`: $dy/dd = dy/dh = 1$, times the seed $\bar y = 1$
#   (a default argument: give another seed and the same code computes a vector-Jacobian product);
# - `c_bar = d_bar * d`: $dy/dc = dy/dd \cdot dd/dc$ with $dd/dc = \exp(c)$, which **is** $d$:
#   the reverse sweep reuses the forward value instead of computing $\exp$ again;
# - `a_bar = c_bar + b_bar * (2.0 * a)`: $a$ has two consumers ($b = a^2$ and $c = a + b$), so its
#   adjoint is the **sum** of their contributions, the fan-out of Algorithm 2 written explicitly;
#   so are `e_bar` (consumers $f$ and $g$) and `x_bar` (consumers $a$ and $e$).
#
# Nine forward statements, nine adjoint statements of the same size: the **cheap-gradient
# principle** is visible in the code itself. The lines are held to the engine's own printout and
# the derivative to eq. 5.37:

# %%
body = cf.source.split("y_bar=1.0):\n")[1].split("\n    return")[0].splitlines()
lines = [line.strip() for line in body]
assert lines[:9] == ad.graph_code(eq_5_36(ad.Tensor(0.5, requires_grad=True, name="x"))).splitlines()
assert lines[9:] == ["h_bar = y_bar", "g_bar = h_bar * cos(g)", "f_bar = g_bar", "e_bar = g_bar + f_bar * (2.0 * e)",
                     "d_bar = y_bar", "c_bar = d_bar * d", "b_bar = c_bar", "a_bar = c_bar + b_bar * (2.0 * a)",
                     "x_bar = e_bar * e + a_bar * cos(x)"]
for x in (0.5, -1.0, 1.5):
    y, dy = cf(x)
    assert abs(dy - eq_5_37(x)) <= 1e-13 * abs(eq_5_37(x)), (x, dy)
    y0, dy0 = ad.value_and_grad(eq_5_36)(x)                 # the eager engine, the reference
    assert abs(y - y0) <= 1e-14 * abs(y0) and abs(dy - dy0) <= 1e-14 * abs(dy0)
print(f"dy/dx at 0.5: {cf(0.5)[1]:.15f} (eq. 5.37: {eq_5_37(0.5):.15f})")

# %% [markdown]
# Forward mode is the same transformation with tangents $\dot v = dv/dx$ pushed forwards, each
# line right after the value it differentiates (lesson 3's sweep, written out):

# %%
forward = ad.compile(eq_5_36, 0.5, mode="forward", cache=CACHE)
tangent_lines = [line.strip() for line in forward.source.splitlines() if "_dot = " in line]
print("\n".join(tangent_lines))
assert tangent_lines[0] == "a_dot = x_dot * cos(x)" and tangent_lines[-1] == "y_dot = d_dot + h_dot"
assert abs(forward(0.5, 1.0)[1] - eq_5_37(0.5)) < 1e-13

# %% [markdown]
# ## 2. Recorded once: what that means
#
# `f` runs once, at the example argument, on *traced* values; what is compiled is what it computed.
# A traced value's numbers cannot be read while `f` is recorded, since whatever `f` read would be
# frozen at the example point (`jax.jit` has the same rule). So a comparison `x > 1.0` is recorded
# as an op (a mask of 0.0 and 1.0), and a Python `if` on it is a **decision**: `ad.compile` records
# `f` once for each way through its decisions and writes a dispatcher that keeps the `if`, each
# line of it pointing at the user's line it comes from:

# %%
def clipped(x):
    if x > 1.0:
        return ad.sin(x)
    return x * x


cc = ad.compile(clipped, 0.5, cache=CACHE)
dispatcher = cc.source.split("def clipped_value_and_grad(")[1]
print("def clipped_value_and_grad(" + dispatcher)
assert dispatcher.count("if clipped_value_and_grad_if1(x):") == 1 and "`if x > 1.0:`" in dispatcher
for x in (0.5, 2.0, -1.0):        # compiled at 0.5, right on both sides of the branch
    assert cc(x) == ad.value_and_grad(clipped)(x)
    print(f"x = {x:+.1f}: value {cc(x)[0]:+.4f}, gradient {cc(x)[1]:+.4f}")

# %% [markdown]
# What cannot become part of the program is refused, in one line naming the line of `f` and the
# way out: `float(x)`, `x.value`, `np.asarray(x)`, `math.sin(x)`. An argument `f` must see as a plain
# number (a loop count, a flag) is declared **static**, as in `jax.jit`: it is not traced, and the
# program is compiled once per value.

# %%
def power(x, n):
    y = x
    for _ in range(int(n)):
        y = y * x
    return y


try:
    ad.compile(power, 0.5, 3.0)
    raise AssertionError("int() of a traced value must be refused")
except ad.CompileError as err:
    print(textwrap.fill(str(err), 100))
    assert "int()" in str(err) and "static_argnums" in str(err)
cp = ad.compile(power, 0.5, 3, static_argnums=1, cache=CACHE)
assert cp(1.5, 3) == ad.value_and_grad(power)(1.5, 3) and cp(1.5, 5) == ad.value_and_grad(power)(1.5, 5)

# %% [markdown]
# A Python `for` over a *traced* count cannot be recorded (the count is a traced number), and over a
# plain count it is unrolled: 1,000 steps would put 1,000 copies of the body in the program. Loops are
# written as JAX writes them, `ad.fori_loop(lower, upper, body, init)`, `ad.scan(f, init, xs)` and
# `ad.while_loop(cond, body, init)`: on the eager engine they are Python loops; compiled, the body is
# compiled once and the loop stays **one loop**, so the program's text does not grow with the trip
# count. Its adjoint is a loop too, over the same steps read backwards (the forward loop keeps each
# step's carry, the tape, for it):

# %%
def euler(x, steps):
    return ad.fori_loop(0, steps, lambda i, y: y + 0.01 * ad.sin(y * x), x)


short = ad.compile(lambda x: euler(x, 10), 0.5, cache=CACHE)
long = ad.compile(lambda x: euler(x, 1000), 0.5, cache=CACHE)
assert len(long.source.splitlines()) == len(short.source.splitlines())      # 10 steps or 1,000: one text
reverse_loop = "def backward(" + long.source.split("def backward(")[1]
print(reverse_loop)
assert "for t in range(n - 1, -1, -1):" in reverse_loop
for x in (0.5, -1.0):
    y, dy = long(x)
    y0, dy0 = ad.value_and_grad(lambda x: euler(x, 1000))(x)       # the eager engine: 1,000 recorded steps
    assert abs(y - y0) <= 1e-12 * abs(y0) and abs(dy - dy0) <= 1e-12 * abs(dy0)
    print(f"x = {x:+.1f}: y = {y:.6f}, dy/dx = {dy:.6f}")

# %% [markdown]
# ## `ad.explain`: the programs, the lines they come from, and what to check
#
# `ad.explain(f, *args)` prints what compile makes of `f` at a point: the forward program and the
# adjoint program, each line with the line of `f` it comes from (the adjoint of a line points at the
# line it differentiates), the gradient checked against finite differences there, the inputs the
# output does not depend on, and the first non-finite value with the line that made it. At
# $x = 0$, $\log(\sin^2 x)$ is $-\infty$, and explain says which line made it:

# %%
def log_sin_squared(x):
    a = ad.sin(x)
    b = a * a
    return ad.log(b)


report = str(ad.explain(log_sin_squared, 0.0))
print(report)
assert "a = sin(x)" in report and "x_bar = a_bar * cos(x)" in report
assert "y = log(b)" in report.split("non-finite values:")[1] and "FAILED" in report

# %% [markdown]
# Non-smooth primitives are fine: their local derivative is computed by the compiled code, not
# taken from the example point. ReLU's derivative is the step $H(x)$ (`ad.heaviside(x, 0.0)`: 1 for
# $x > 0$, 0 otherwise), written with the engine's ops in relu's rule, so the rule is recorded like
# the rest and printed as the comparison `x > 0`; compiled at $x = 0.5$, the gradient at $x = -0.5$
# is still right:

# %%
leaky = lambda x: ad.relu(x) + 0.1 * x
cr = ad.compile(leaky, 0.5, cache=CACHE)
print([line.strip() for line in cr.source.splitlines() if "x_bar =" in line][0])
for x in (0.5, -0.5):
    assert cr(x) == ad.value_and_grad(leaky)(x)
    print(f"x = {x:+.1f}: value {cr(x)[0]:+.2f}, gradient {cr(x)[1]:.1f}")

# %% [markdown]
# `max`, `min` and `prod` are compiled the same way: their rules find the ties (the maxima share
# the gradient) and the zeros with engine ops, so the compiled code finds them at each input.
# Another shape or dtype records and compiles again: each signature has its own code.

# %% [markdown]
# ## 3. Arrays: one fused loop, timed
#
# On an array, the elementwise statements become the body of **one loop** over the elements
# (`prange`: split over all cores), the sum of the output is accumulated in that same loop, and
# the adjoints follow in the same iteration: no temporary array is ever written. Primitives that
# are not elementwise (matrix products, sums over one axis...) would call NumPy between loops.

# %%
n = 1_000_000
x = np.random.default_rng(0).uniform(-1.0, 1.0, n)
summed = lambda x: ad.sum(eq_5_36(x))
ca = ad.compile(summed, x, cache=CACHE)
loop = ca.source.split("\n\n\n")[1]   # after the imports: the loop, then the driver
print(loop)
assert "@njit(parallel=True" in loop
assert ca.source.count("prange(n)") == 1 and ca.source.split("def f_value_and_grad(")[1].count("np.empty") == 1
y, dx = ca(x)
np.testing.assert_allclose(dx, eq_5_37(x), rtol=1e-12, atol=1e-12)

# %% [markdown]
# Now the timing: the value alone in plain NumPy (written as eq. 5.38, so `sin(x)` and `exp(x)`
# are computed once each), the eager engine's `value_and_grad`, and the compiled one. The ratio to
# NumPy's value is the cheap-gradient principle measured; `benchmarks/compile.py` measures the
# same on a quiet machine, with PyTorch beside it.

# %%
def best(fn, number=1, repeat=3):
    fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def numpy_value(x):
    a, e = np.sin(x), np.exp(x)
    return np.sum(np.exp(a + a ** 2) + np.sin(e + e ** 2))


eager = ad.value_and_grad(summed)
times = {"NumPy: value only": best(lambda: numpy_value(x)), "eager: value and gradient": best(lambda: eager(x)),
         "compiled: value and gradient": best(lambda: ca(x))}
base = times["NumPy: value only"]
scalar = {"eager": best(lambda: ad.value_and_grad(eq_5_36)(0.5), 200), "compiled": best(lambda: cf(0.5), 20_000)}
print(f"eq. 5.36 on {n:,} float64 numbers ({os.cpu_count()} cores):")
for name, t in times.items():
    print(f"  {name:<30} {1e3 * t:8.1f} ms   {t / base:5.2f} x NumPy's value")
print(f"at a scalar, per call: eager {1e6 * scalar['eager']:.1f} us, compiled {1e6 * scalar['compiled']:.2f} us")
# (Timings are printed, not asserted: a busy machine could reorder them. The claim this lesson can
# assert, one fused loop with one array allocated, is asserted above; benchmarks/compile.py measures
# the ratios on a quiet machine.)

fig, ax = plt.subplots(figsize=(7, 2.6))
ax.barh(list(times)[::-1], [t / base for t in times.values()][::-1], color=["tab:green", "tab:orange", "tab:gray"])
ax.axvline(1.0, color="k", lw=0.8, ls="--")
ax.set_xlabel("time / NumPy's time for the value alone (eq. 5.36, 1e6 float64)")
fig.tight_layout()
show_figure(fig, OUT / "timings.svg")

# %% [markdown]
# The compiled module lives in a file named by a hash of its source, and Numba keeps its machine
# code beside it, so **another process** generating the same source loads it instead of compiling:

# %%
script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import autodiff as ad; "
          f"from autodiff.examples import eq_5_36; cf = ad.compile(eq_5_36, 0.5, cache={str(CACHE)!r}); "
          f"cf(0.5); print(cf.from_cache(), cf.path.name)")
found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
print(f"a second process: loaded from the cache: {found[0]} ({found[1]})")
assert found == ["True", cf.path.name]

# %% [markdown]
# ## Exercises
#
# 1. **By hand first.** Write the adjoint statements of $f(x) = x \sin(x) + \exp(x^2)$ as in
#    eq. 5.39, then compare with `ad.compile(f, 0.5).source`. Which line has a fan-out sum?
# 2. **Forward against reverse.** For $f(x_1, x_2) = \sin(x_1 x_2) + x_1$, count the lines of the
#    `mode="forward"` source (one tangent) and of the reverse source (both partials at once).
# 3. **The branch.** Rewrite `clipped` without an `if`, as `ad.where(x > 1.0, ad.sin(x), x * x)`, and
#    compile it. How many programs does the generated module hold now, and which values does the
#    compiled code compute that the dispatcher version does not?
# 4. **Fusion.** Compile `lambda w, x: ad.sum(ad.tanh(x @ w) ** 2)` for a $(100, 10)$ `x` and a
#    $(10, 5)$ `w`, and read the driver: which statements are loops and which call NumPy?
# 5. **Ties.** Read the vjp rule of `max` in `autodiff/ops/reductions.py`. Which of its
#    quantities depends on the values, and how is it written so that compiled code computes it?
