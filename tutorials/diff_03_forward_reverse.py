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
# # Lesson 3: forward mode and reverse mode
#
# *Follows section 5.5.4 of the book chapter "CNN Learning" (Khan et al.), which names the two
# modes of automatic differentiation, and Baydin et al. (2018), to which it refers.*
#
# Lesson 1 swept the graph of eq. 5.36 **backwards** (reverse mode, Algorithm 2). The same graph
# can be swept **forwards**, pushing a *tangent* (a directional derivative) along with each value.
# Both sweeps give exact derivatives; they differ in what one sweep delivers:
#
# - a forward sweep gives $J u$: the derivative of **every output** along **one input direction**
#   (one column of the Jacobian $J$);
# - a reverse sweep gives $v^\top J$: the derivative of **one output combination** with respect to
#   **every input** (one row of $J$).
#
# So the cheaper mode depends on the shape of $f: \mathbb{R}^n \to \mathbb{R}^m$. We will
#
# 1. build forward mode from scratch with **dual numbers** and see the same tangents on the graph;
# 2. count sweeps and time full Jacobians as $n$ and $m$ grow;
# 3. nest the modes for higher derivatives: Hessians and Hessian-vector products.
#
# Pictures go to `tutorials/_output/diff_03_forward_reverse/` (or `$TUTORIAL_OUTPUT`); the graph
# pictures need Graphviz's `dot` program.

# %%
import os
import sys
import time
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository, so that `autodiff` imports without installing
import autodiff as ad
from autodiff.examples import eq_5_37, rosenbrock, rosenbrock_hessian

from chainrule.lessons import show, show_figure, show_picture, show_steps

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_03_forward_reverse"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. Dual numbers
#
# Extend the real numbers with a symbol $\varepsilon$ that is not zero but squares to zero,
# $\varepsilon^2 = 0$. Taylor's theorem then stops after the first term:
#
# $$f(a + b\varepsilon) = f(a) + f'(a)\,b\,\varepsilon .$$
#
# Evaluate a program on $x + 1\varepsilon$ and the $\varepsilon$ part of the result is the
# derivative. Each operation only needs its own rule: $(a + b\varepsilon)(c + d\varepsilon) =
# ac + (ad + bc)\varepsilon$, $\sin(a + b\varepsilon) = \sin a + b\cos a\,\varepsilon$, and so on.
# That is forward mode, in a dozen lines. Every dual number created is appended to a `TAPE`, so we
# can look at the intermediate values afterwards.

# %%
TAPE = []


class Dual:
    """a + b·ε with ε² = 0: a value and its tangent, carried together."""

    def __init__(self, value, tangent):
        self.value, self.tangent = value, tangent
        TAPE.append(self)

    def __add__(self, other):
        if isinstance(other, Dual):
            return Dual(self.value + other.value, self.tangent + other.tangent)
        return Dual(self.value + other, self.tangent)

    __radd__ = __add__

    def __mul__(self, other):
        if isinstance(other, Dual):
            return Dual(self.value * other.value, self.value * other.tangent + self.tangent * other.value)
        return Dual(self.value * other, self.tangent * other)

    __rmul__ = __mul__

    def __pow__(self, p):  # a constant exponent
        return Dual(self.value ** p, p * self.value ** (p - 1) * self.tangent)


def dual_sin(u):
    return Dual(np.sin(u.value), np.cos(u.value) * u.tangent)


def dual_exp(u):
    e = np.exp(u.value)
    return Dual(e, e * u.tangent)


def f(x, sin=ad.sin, exp=ad.exp):
    """Eq. 5.36 as in lesson 1, with the elementary functions as parameters."""
    a = sin(x)
    b = a ** 2
    c = a + b
    d = exp(c)
    e = exp(x)
    f = e ** 2
    g = e + f
    h = sin(g)
    return d + h


TAPE.clear()
y_dual = f(Dual(0.5, 1.0), sin=dual_sin, exp=dual_exp)
print(f"f(0.5) = {y_dual.value:.12f}, f'(0.5) = {y_dual.tangent:.12f}")
print(f"eq. 5.37:                    {eq_5_37(0.5):.12f}")
assert abs(y_dual.tangent - eq_5_37(0.5)) <= 1e-14 * abs(eq_5_37(0.5))

# %% [markdown]
# ### The same tangents on the graph
#
# The engine's forward mode does the same thing on the recorded graph: it visits the nodes in
# evaluation order and applies each primitive's *forward rule* (its jvp) to the incoming tangents.
# The forward trace table is Algorithm 1 with a tangent column, and that column is, number for
# number, the $\varepsilon$ parts on our tape. Below it, the graph with its tangents, and the
# forward sweep's step-through player (in a notebook; as a script it is written to
# `forward_steps.html`): step it with the buttons or the arrow keys and watch each tangent
# assembled from its inputs' tangents.

# %%
x = ad.Tensor(0.5, requires_grad=True, name="x")
y = f(x)
table = ad.trace_table(y, mode="forward", wrt=x)
show(table)
assert [row["tangent"] for row in table.rows] == [f"{d.tangent:.6g}" for d in TAPE]
assert [row["value"] for row in table.rows] == [f"{d.value:.6g}" for d in TAPE]

tangent_picture = ad.draw(y, show=("value", "tangent"), wrt=x, names="letters")
show_picture(tangent_picture, OUT / "tangents.svg")
steps = ad.draw_steps(y, mode="forward", names="letters")
show_steps(steps, OUT / "forward_steps")  # the pictures, and the player forward_steps.html
assert f"tangent {eq_5_37(0.5):.4g}" in tangent_picture.source
assert any("dc = dc/da·da + dc/db·db" in step.source for step in steps)

# %% [markdown]
# One forward sweep gave $dv/dx$ for **every** node $v$ (the tangent column); one reverse sweep
# (lesson 1) gave $dy/dv$ for every node (the adjoint column). With one input and one output both
# cost one sweep. The difference shows with many inputs or many outputs.
#
# ## 2. The cost of a full Jacobian
#
# For $f: \mathbb{R}^n \to \mathbb{R}^m$, `ad.jacobian(f, mode="forward")` needs one forward sweep
# per input (seeding the tangent $e_k$ gives column $k$), and `mode="reverse"` one reverse sweep per
# output (seeding the adjoint $e_i$ gives row $i$). (The engine pushes all those seeds through the
# graph together, as one batched sweep, the way `jax.jacfwd` maps a jvp with `vmap`; the work is
# still one sweep's worth per seed.) To *count* sweeps rather than trust the documentation, we
# declare a primitive of our own, an identity function whose rules count the seeds that pass, and
# put it in front of the input. Every forward sweep passes through its jvp rule once, every reverse
# sweep through its vjp rule once; a batched sweep carries its seeds together (`batch_size` of them).

# %%
SWEEPS = {"forward": 0, "reverse": 0}


def _count(mode):
    def rule(g, out, x):
        SWEEPS[mode] += getattr(g, "batch_size", 1)   # the seeds a batched sweep carries together
        return g  # the identity's derivative: pass the tangent (or adjoint) through
    return rule


@ad.primitive(vjp=[_count("reverse")], jvp=[_count("forward")])
def sweep_counter(x):
    """The identity, counting how many sweeps pass through it."""
    return x


def count_sweeps(fn):
    """Run fn() and return (its result, {mode: sweeps}, seconds)."""
    SWEEPS.update(forward=0, reverse=0)
    start = time.perf_counter()
    result = fn()
    return result, dict(SWEEPS), time.perf_counter() - start


# %% [markdown]
# Two families of functions, each as simple as possible:
#
# - many inputs, one output (a loss): $f(x) = \sum_i \sin(x_i)\, e^{-x_i^2}$, $\mathbb{R}^n \to \mathbb{R}$;
# - one input, many outputs (a curve): $g(t)_k = \sin(k t)\, e^{-t}$, $k = 1 \dots m$, $\mathbb{R} \to \mathbb{R}^m$.
#
# Their Jacobians are known in closed form, so we check the values as well as the cost.

# %%
def loss(x):
    x = sweep_counter(x)
    return ad.sum(ad.sin(x) * ad.exp(-x * x))


def curve_of_length(m):
    k = np.arange(1.0, m + 1)

    def curve(t):
        t = sweep_counter(t)
        return ad.sin(k * t) * ad.exp(-t)

    return curve


sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256]
rng = np.random.default_rng(0)
records = []
for size in sizes:
    for name, fn, point in (("loss", loss, rng.uniform(-1, 1, size)), ("curve", curve_of_length(size), 0.7)):
        for mode in ("forward", "reverse"):
            seconds = []
            for _ in range(3):  # best of three: timings on a shared machine are noisy
                jac, sweeps, sec = count_sweeps(lambda: ad.jacobian(fn, mode=mode)(point))
                seconds.append(sec)
            records.append(dict(function=name, size=size, mode=mode, point=point, sweeps=sweeps,
                                seconds=min(seconds), jac=jac))

header = ("function", "n or m", "forward sweeps", "reverse sweeps", "forward ms", "reverse ms")
print(f"{header[0]:8s} {header[1]:>6s} {header[2]:>15s} {header[3]:>15s} {header[4]:>11s} {header[5]:>11s}")
for size in sizes:
    for name in ("loss", "curve"):
        fw, rv = [r for r in records if r["function"] == name and r["size"] == size]
        print(f"{name:8s} {size:6d} {fw['sweeps']['forward']:15d} {rv['sweeps']['reverse']:15d} "
              f"{1e3 * fw['seconds']:11.2f} {1e3 * rv['seconds']:11.2f}")

# %% [markdown]
# The counts are the whole story, and they are exact, so we assert them: for the loss
# ($\mathbb{R}^n \to \mathbb{R}$) forward mode needs $n$ sweeps and reverse mode **one**; for the
# curve ($\mathbb{R} \to \mathbb{R}^m$) it is the other way round. Both modes give the same
# Jacobian, and it is the closed-form one. (The times, plotted below, follow the counts; we do not
# assert them, since a busy machine can make any single measurement slow.)

# %%
for r in records:
    size, sweeps = r["size"], r["sweeps"]
    if r["function"] == "loss":
        expected = {"forward": size, "reverse": 0} if r["mode"] == "forward" else {"forward": 0, "reverse": 1}
    else:
        expected = {"forward": 1, "reverse": 0} if r["mode"] == "forward" else {"forward": 0, "reverse": size}
    assert sweeps == expected, (r["function"], size, r["mode"], sweeps)

def closed_form(record):
    """The Jacobian worked out by hand, at the record's point."""
    p = record["point"]
    if record["function"] == "loss":  # d/dx_i of sin(x_i) exp(-x_i^2)
        return (np.cos(p) - 2 * p * np.sin(p)) * np.exp(-p * p)
    k = np.arange(1.0, record["size"] + 1)  # d/dt of sin(k t) exp(-t)
    return (k * np.cos(k * p) - np.sin(k * p)) * np.exp(-p)


for r in records:
    np.testing.assert_allclose(r["jac"], closed_form(r), rtol=1e-13, atol=1e-15)

LABELS = {("loss", "forward"): "forward mode (n sweeps)", ("loss", "reverse"): "reverse mode (1 sweep)",
          ("curve", "forward"): "forward mode (1 sweep)", ("curve", "reverse"): "reverse mode (m sweeps)"}
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, name, xlabel in zip(axes, ("loss", "curve"), (r"inputs $n$ of the loss $f: \mathbb{R}^n \to \mathbb{R}$",
                                                     r"outputs $m$ of the curve $g: \mathbb{R} \to \mathbb{R}^m$")):
    for mode, marker in (("forward", "o-"), ("reverse", "s-")):
        rows = [r for r in records if r["function"] == name and r["mode"] == mode]
        ax.loglog(sizes, [1e3 * r["seconds"] for r in rows], marker, label=LABELS[name, mode])
    ax.set_xlabel(xlabel)
    ax.set_title(f"full Jacobian of the {name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
axes[0].set_ylabel("wall time (ms)")
fig.tight_layout()
show_figure(fig, OUT / "jacobian_cost.svg")

# %% [markdown]
# This is why neural networks are trained with reverse mode (back-propagation): the loss is one
# number and the parameters are millions, so one reverse sweep gives the whole gradient, where
# forward mode would need one sweep per parameter. The price is memory: the reverse sweep needs
# every intermediate value of the forward evaluation (the graph keeps them), while a forward
# sweep can forget each value once its children are computed.
#
# ## 3. Higher derivatives
#
# The engine's rules are written with the engine's own operations, so a derivative is itself a
# recorded graph and can be differentiated again. `ad.derivative(f, k)` runs forward mode $k$
# times; here on eq. 5.36, checked against SymPy.

# %%
s = sp.Symbol("x")
EQ_5_36 = sp.exp(sp.sin(s) + sp.sin(s) ** 2) + sp.sin(sp.exp(s) + sp.exp(s) ** 2)
for k in range(1, 5):
    engine = ad.derivative(f, order=k)(0.5)
    exact = float(sp.diff(EQ_5_36, s, k).evalf(30, subs={s: sp.Rational(1, 2)}))
    print(f"d^{k}y/dx^{k} at 0.5: engine {engine: .15e}, SymPy {exact: .15e}")
    assert abs(engine - exact) <= 1e-12 * abs(exact)

# %% [markdown]
# Nesting must keep the perturbations apart. In $\frac{d}{dx}\left[x \cdot \frac{d}{dy}(x + y)\right]_{y=1}$
# the inner derivative is 1, so the answer is 1; an implementation that confuses the inner and
# outer perturbations of $x$ answers 2. Each call differentiates only its own argument:

# %%
nested = ad.grad(lambda x: x * ad.grad(lambda y: x + y)(1.0))(1.0)
print("d/dx [x · d/dy (x + y)] =", nested)
assert nested == 1.0

# %% [markdown]
# ### Hessians and Hessian-vector products
#
# For a scalar function of $n$ variables the second derivative is the $n \times n$ Hessian $H$.
# *Forward-over-reverse*: one reverse sweep records the gradient $\nabla f$ as a graph; a forward
# sweep over that graph with tangent $v$ gives $H v$. The full Hessian needs $n$ forward sweeps
# (one per column); a **Hessian-vector product** needs just one, without ever forming $H$, which
# is how second-order methods handle millions of parameters. On the Rosenbrock function, whose
# Hessian `autodiff.examples.rosenbrock_hessian` writes out by hand:

# %%
def rosenbrock_counted(x):
    return rosenbrock(sweep_counter(x))


for n in (4, 16, 64):
    x = np.random.default_rng(n).uniform(-1.5, 1.5, n)
    v = np.random.default_rng(n + 1).normal(size=n)
    H, hessian_sweeps, hessian_seconds = count_sweeps(lambda: ad.hessian(rosenbrock_counted)(x))
    Hv, hvp_sweeps, hvp_seconds = count_sweeps(lambda: ad.hvp(rosenbrock_counted, x, v))
    print(f"n = {n:3d}: hessian {hessian_sweeps['reverse']} reverse + {hessian_sweeps['forward']:2d} forward sweeps "
          f"({1e3 * hessian_seconds:5.1f} ms); hvp {hvp_sweeps['reverse']} reverse + {hvp_sweeps['forward']} forward "
          f"({1e3 * hvp_seconds:4.1f} ms)")
    np.testing.assert_allclose(H, rosenbrock_hessian(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(H, H.T, rtol=0, atol=0)   # symmetric, to the last bit
    np.testing.assert_allclose(Hv, H @ v, rtol=1e-12, atol=1e-10)
    assert hessian_sweeps == {"reverse": 1, "forward": n}
    assert hvp_sweeps == {"reverse": 1, "forward": 1}

# %% [markdown]
# ## Exercises
#
# 1. **More dual numbers.** Give `Dual` division and `dual_log`, and differentiate
#    $\log(1 + x^2)/x$ at $x = 2$. Check against `ad.grad`.
# 2. **Directional derivatives.** For the loss above with $n = 3$, compute $J u$ for
#    $u = (1, -1, 2)$ with *one* call to `ad.jvp`, and check it against `ad.grad(loss)(x) @ u`.
#    Which mode computed what?
# 3. **Break-even.** For $f: \mathbb{R}^n \to \mathbb{R}^m$ with $n = m$, which mode would you pick?
#    Time `ad.jacobian` both ways on `lambda x: ad.tanh(A @ x)` with a random $64 \times 64$ `A`.
# 4. **Reverse-over-reverse.** Compute the Rosenbrock Hessian with `ad.jacobian(ad.grad(rosenbrock))`
#    and count its sweeps with `sweep_counter`. How does it compare with `ad.hessian`?
# 5. **Memory.** Run `y = f(x)` on a `Tensor` and count the nodes the graph keeps
#    (`len(ad.toposort([y])[0])`). How many would the `Dual` version need to keep, and why can it
#    forget them?
