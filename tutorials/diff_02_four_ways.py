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
# # Lesson 2: four ways to differentiate
#
# *Follows section 5.5 of the book chapter "CNN Learning" (Khan et al.): analytical (5.5.1),
# numerical (5.5.2, eq. 5.35), symbolic (5.5.3, the 10th derivative of exp(sin x)) and automatic
# differentiation (5.5.4, eqs. 5.36-5.37).*
#
# The book names four ways to get a derivative onto a computer. We take them in turn on the same
# function, eq. 5.36 at x = 0.5, and measure what each one costs and how many digits it gets right:
#
# 1. **analytical**: differentiate by hand, type in the formula (eq. 5.37);
# 2. **numerical**: difference quotients, whose error traces a U-shaped curve in the step size;
# 3. **symbolic**: let SymPy apply the rules, and watch the expressions swell;
# 4. **automatic**: the chain rule applied to the program's graph (lesson 1), exact to machine
#    precision.
#
# Pictures go to `tutorials/_output/diff_02_four_ways/` (or `$TUTORIAL_OUTPUT`). No Graphviz needed.

# %%
import os
import sys
import time
from math import comb
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
from autodiff.examples import eq_5_36, eq_5_37

from chainrule.lessons import show, show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_02_four_ways"
OUT.mkdir(parents=True, exist_ok=True)

U = np.finfo(np.float64).eps  # machine epsilon of float64, 2.2e-16: the spacing of numbers near 1
X0 = 0.5

# %% [markdown]
# Every method will be judged against one reference: SymPy's derivative of eq. 5.36 evaluated with
# 30 significant digits, far more than a float64 holds, so its own error does not show.

# %%
s = sp.Symbol("x", real=True)
EQ_5_36 = sp.exp(sp.sin(s) + sp.sin(s) ** 2) + sp.sin(sp.exp(s) + sp.exp(s) ** 2)


def exact(expr, at=X0):
    """The value of a SymPy expression at x = at, correct to 30 digits, as a float."""
    return float(expr.evalf(30, subs={s: sp.Rational(str(at))}))


REFERENCE = exact(sp.diff(EQ_5_36, s))


def rel_err(value, reference=REFERENCE):
    return abs(value - reference) / abs(reference)


print(f"dy/dx at x = {X0}: {REFERENCE!r}")

# %% [markdown]
# ## 1. Analytical differentiation (5.5.1)
#
# For $y = x^2$ the rule for powers gives $dy/dx = 2x$ (eq. 5.34). For eq. 5.36 the same rules,
# applied by hand with patience, give eq. 5.37; `autodiff.examples.eq_5_37` is that formula typed
# into NumPy. It is exact, up to the rounding of each floating-point operation in it, and it is
# fast, but someone had to derive it, and every new layer needs a new derivation.

# %%
analytical = float(eq_5_37(X0))
print(f"eq. 5.37: {analytical!r}  (rel. error {rel_err(analytical):.1e})")
assert rel_err(analytical) < 1e-14

# %% [markdown]
# ## 2. Numerical differentiation (5.5.2)
#
# Newton's difference quotient (eq. 5.35) estimates the slope from two function values:
#
# $$f'(x) \approx \frac{f(x+h) - f(x)}{h}.$$
#
# How small should $h$ be? Try a few:

# %%
def newton_quotient(f, x, h):
    """Eq. 5.35: the slope of the chord from (x, f(x)) to (x + h, f(x + h))."""
    return (f(x + h) - f(x)) / h


for h in [1e-1, 1e-4, 1e-8, 1e-12]:
    estimate = newton_quotient(eq_5_36, X0, h)
    print(f"h = {h:.0e}:  {estimate:.15f}   rel. error {rel_err(estimate):.1e}")

# %% [markdown]
# Smaller is better only up to a point. Two errors compete:
#
# - **truncation**: Taylor's theorem, $f(x+h) = f(x) + h f'(x) + \tfrac{h^2}{2} f''(\xi)$, says
#   the quotient is off by about $\tfrac{h}{2}|f''|$: it shrinks with $h$ (order 1);
# - **round-off**: $f(x+h)$ and $f(x)$ each carry a rounding error of about $u|f|$
#   ($u = 2.2\times10^{-16}$), and the subtraction cancels their leading digits, leaving an error
#   of about $2u|f|/h$ that *grows* as $h$ shrinks.
#
# Their sum is smallest near $h \approx \sqrt{u} \approx 10^{-8}$, where about half of the 16
# digits survive. The **central** difference $\frac{f(x+h)-f(x-h)}{2h}$ cancels the $h^2$ term of
# the Taylor series: truncation $O(h^2)$, best near $h \approx u^{1/3}$, 10 to 11 digits. The
# **complex step** $\operatorname{Im} f(x + ih)/h$ does no subtraction at all, so there is no
# round-off to fight: any tiny $h$ gives all 16 digits (it needs $f$ to be analytic, written with
# operations that accept complex numbers).
#
# `ad.eps_sweep` measures the error of each method for steps from $10^{-1}$ down to $10^{-14}$.
# We draw the curves together with the model for the forward difference.

# %%
sweeps = {method: ad.eps_sweep(eq_5_36, X0, method, exact=REFERENCE) for method in ("forward", "central", "complex")}
for method, sweep in sweeps.items():
    best_eps, best_err = sweep.best()
    print(f"{method:8s} best step {best_eps:.0e}, error {best_err:.1e}")

second = exact(sp.diff(EQ_5_36, s, 2))
value = float(eq_5_36(X0))
eps = sweeps["forward"].eps
model = (eps / 2 * abs(second) + 2 * U * abs(value) / eps) / abs(REFERENCE)

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for sweep in sweeps.values():
    sweep.plot(ax)
ax.loglog(eps, model, "k--", lw=1, label=r"model $h|f''|/2 + 2u|f|/h$ (forward)")
ax.set_title("Error of difference quotients for eq. 5.36 at x = 0.5")
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "eps_u_curves.svg")

# %% [markdown]
# What the curves show, asserted: the forward difference has slope 1 (error $\propto h$) while
# truncation dominates, the central one slope 2; the forward curve is a U whose bottom is near
# $\sqrt u$, with the round-off branch climbing back up for tiny steps, as the model predicts; the
# complex step is exact to round-off once $h$ is small.

# %%
forward, central, complex_step = sweeps["forward"], sweeps["central"], sweeps["complex"]
assert abs(forward.slope(1e-6, 1e-2) - 1) < 0.2        # truncation O(h)
assert abs(central.slope(1e-4, 1e-1) - 2) < 0.3        # truncation O(h^2)
best_eps, best_err = forward.best()
assert 1e-10 <= best_eps <= 1e-6 and 1e-10 < best_err < 1e-6   # the bottom of the U, near sqrt(u)
h_star = 2 * np.sqrt(U * abs(value) / abs(second))             # where the model is smallest
assert abs(np.log10(best_eps) - np.log10(h_star)) <= 1         # the model's bottom, to a decade
assert forward.error[-1] > 100 * best_err                     # the round-off branch at h = 1e-14
assert central.best()[1] < best_err / 10                      # central: more digits
assert np.all(complex_step.error[complex_step.eps <= 1e-8] < 1e-14)  # complex step: no round-off

# %% [markdown]
# ### Higher derivatives
#
# The book warns that numerical differentiation "works poorly, particularly for the calculation of
# higher order derivatives". The $k$-th central difference
# $\frac{1}{h^k}\sum_{j=0}^{k} (-1)^j \binom{k}{j} f\left(x + (\tfrac{k}{2} - j)h\right)$
# divides the round-off by $h^k$, so the balance with truncation moves to ever larger steps and
# ever fewer digits. We give it every advantage, picking for each order the step that happens to
# be best (which needs the exact answer, so is not possible in practice), on the book's
# $\exp(\sin x)$, and compare with the engine's $k$-th derivative (forward mode nested $k$ times).

# %%
def central_difference(f, x, k, h):
    """The k-th central difference quotient of f at x with step h."""
    return sum((-1) ** j * comb(k, j) * f(x + (k / 2 - j) * h) for j in range(k + 1)) / h ** k


def exp_sin(x):
    return ad.exp(ad.sin(x))


orders = np.arange(1, 11)
steps = np.logspace(0, -6, 31)
numerical_best, automatic = [], []
for k in orders:
    truth = exact(sp.diff(sp.exp(sp.sin(s)), s, int(k)))
    scale = max(1.0, abs(truth))
    numerical_best.append(min(abs(central_difference(exp_sin, X0, k, h) - truth) for h in steps) / scale)
    automatic.append(abs(ad.derivative(exp_sin, order=int(k))(X0) - truth) / scale)
print("order:             ", " ".join(f"{k:7d}" for k in orders))
print("numerical (best h):", " ".join(f"{e:7.0e}" for e in numerical_best))
print("automatic:         ", " ".join(f"{e:7.0e}" for e in automatic))

fig, ax = plt.subplots(figsize=(6.5, 4.2))
floor = U / 10  # an exact answer (error 0) is drawn at the bottom of the plot
ax.semilogy(orders, np.maximum(numerical_best, floor), "o-", label="k-th central difference, best step")
ax.semilogy(orders, np.maximum(automatic, floor), "s-", label="automatic (forward mode, nested k times)")
ax.set_xlabel("order k of the derivative of exp(sin x) at x = 0.5")
ax.set_ylabel("relative error")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "higher_order_errors.svg")

# %% [markdown]
# Asserted: the difference quotients lose digits order by order (at $k = 10$ not even two are
# left, even with the best step), while automatic differentiation keeps all of them.

# %%
assert numerical_best[-1] > 1e-2 and numerical_best[-1] > 1e6 * numerical_best[0]
assert min(numerical_best[4:]) > 1e-5
assert max(automatic) < 1e-12

# %% [markdown]
# ## 3. Symbolic differentiation (5.5.3)
#
# A computer algebra system applies the differentiation rules to expressions. `ad.to_sympy` turns
# the graph recorded from our Python function into a SymPy expression; SymPy differentiates it,
# and the result is eq. 5.37 (SymPy has already written $\exp(x)^2$ as $\exp(2x)$).

# %%
expr = ad.to_sympy(eq_5_36, "x")
print("f(x)  =", expr)
derivative_expr = sp.diff(expr, sp.Symbol("x"))      # the plain symbol x, as to_sympy makes it
print("f'(x) =", derivative_expr)
x_ = sp.Symbol("x")
eq_5_37_sympy = (sp.cos(sp.exp(2 * x_) + sp.exp(x_)) * (2 * sp.exp(2 * x_) + sp.exp(x_))
                 + sp.exp(sp.sin(x_) ** 2 + sp.sin(x_)) * (sp.cos(x_) + 2 * sp.cos(x_) * sp.sin(x_)))
assert sp.simplify(derivative_expr - eq_5_37_sympy) == 0

# %% [markdown]
# ### The 10th derivative of exp(sin x)
#
# The book's example: the 10th derivative of $f(x) = \exp(\sin x)$, "cumbersome" by hand and
# inaccurate numerically. The book prints MATLAB's answer, which starts
#
# `256*exp(sin(x))*cos(x)^2 - exp(sin(x))*sin(x) - 5440*exp(sin(x))*cos(x)^4 + 2352*exp(sin(x))*cos(x)^6 - ...`
#
# SymPy gives the same expression. Divided by $\exp(\sin x)$ and expanded, it is a polynomial in
# $S = \sin x$ and $C = \cos x$, and we can read off the book's coefficients.

# %%
d10 = sp.diff(sp.exp(sp.sin(s)), s, 10)
S, C = sp.symbols("S C")
polynomial = sp.Poly(sp.expand(d10 / sp.exp(sp.sin(s))).subs({sp.sin(s): S, sp.cos(s): C}), S, C)
print(f"{len(polynomial.terms())} terms, for example:")
for monomial in (C ** 2, S, C ** 4, C ** 6):
    print(f"  {int(polynomial.coeff_monomial(monomial)):6d} * exp(sin(x)) * {monomial}")
assert [polynomial.coeff_monomial(m) for m in (C ** 2, S, C ** 4, C ** 6)] == [256, -1, -5440, 2352]

# %% [markdown]
# ### Expression swell
#
# The book's criticism of symbolic differentiation is that it "often leads to complex and long
# expressions". Let us measure it. For $\exp(\sin x)$ we count, for each order $k = 1 \dots 10$,
# the size of SymPy's $k$-th derivative (`sympy.count_ops`: the number of operations in the
# expression written out as a tree) and the number of nodes of the graph that the engine builds
# for the $k$-th derivative (forward mode applied $k$ times, `ad.derivative`).

# %%
def graph_size(t):
    """The number of nodes in the recorded graph behind Tensor t."""
    return len(ad.toposort([t])[0])


sympy_sizes, graph_sizes = [], []
expr_k = sp.exp(sp.sin(s))
t0 = time.perf_counter()
for k in orders:
    expr_k = sp.diff(expr_k, s)
    sympy_sizes.append(int(sp.count_ops(expr_k)))
sympy_seconds = time.perf_counter() - t0
t0 = time.perf_counter()
for k in orders:
    x = ad.Tensor(X0, requires_grad=True, name="x")
    graph_sizes.append(graph_size(ad.derivative(lambda t: ad.exp(ad.sin(t)), order=int(k))(x)))
graph_seconds = time.perf_counter() - t0
print("order:           ", " ".join(f"{k:6d}" for k in orders))
print("SymPy operations:", " ".join(f"{n:6d}" for n in sympy_sizes))
print("graph nodes:     ", " ".join(f"{n:6d}" for n in graph_sizes))
print(f"(SymPy {sympy_seconds:.2f} s, graphs {graph_seconds:.2f} s)")

# %% [markdown]
# Both grow, and here the graph grows *faster*: each forward sweep differentiates the whole graph
# of the previous derivative, copying its structure, so the node count multiplies by about 2.6
# per order, while SymPy collects like terms after each step. Expression swell is not "symbols
# bad, graphs good": it comes from repeating work that could be shared. (For high derivatives of
# one variable, *Taylor-mode* AD, which pushes truncated Taylor series through the graph, avoids
# the blow-up; this toolkit nests first-order sweeps, which is simple and exact but not cheap.)
#
# Where symbolic differentiation really swells is on **long programs**, which is what a network is.
# Take the logistic map $l_{n+1} = 4 l_n (1 - l_n)$, $l_1 = x$, iterated $n$ times: a loop of
# three operations. As an expression, $l_n$ repeats $l_{n-1}$ twice, and its derivative repeats
# both; the graph shares them. Compare the first derivative's size with the function's:

# %%
def logistic(x, n):
    for _ in range(n):
        x = 4 * x * (1 - x)
    return x


depths = np.arange(1, 8)
swell = {"sympy f": [], "sympy f'": [], "graph f": [], "graph f'": []}
for n in depths:
    ln = logistic(s, n)
    swell["sympy f"].append(int(sp.count_ops(ln)))
    swell["sympy f'"].append(int(sp.count_ops(sp.diff(ln, s))))
    x = ad.Tensor(0.3, requires_grad=True, name="x")
    swell["graph f"].append(graph_size(logistic(x, n)))
    swell["graph f'"].append(graph_size(ad.grad(lambda t: logistic(t, n))(x)))  # nested: a Tensor
for key, sizes in swell.items():
    print(f"{key:9s}", " ".join(f"{v:5d}" for v in sizes))

sympy_ratio = np.array(swell["sympy f'"]) / np.array(swell["sympy f"])
graph_ratio = np.array(swell["graph f'"]) / np.array(swell["graph f"])
print("derivative / function, SymPy:", np.round(sympy_ratio, 1))
print("derivative / function, graph:", np.round(graph_ratio, 1))

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.semilogy(orders, sympy_sizes, "o-", label="SymPy: operations in the k-th derivative")
left.semilogy(orders, graph_sizes, "s-", label="autodiff: nodes, forward mode nested k times")
left.set_xlabel("order k")
left.set_title(r"$d^k/dx^k\ \exp(\sin x)$: size of the k-th derivative")
left.legend(fontsize=8)
right.semilogy(depths, swell["sympy f"], "o--", color="C0", alpha=0.6, label="SymPy: l_n")
right.semilogy(depths, swell["sympy f'"], "o-", color="C0", label="SymPy: dl_n/dx")
right.semilogy(depths, swell["graph f"], "s--", color="C1", alpha=0.6, label="graph: l_n")
right.semilogy(depths, swell["graph f'"], "s-", color="C1", label="graph: l_n and dl_n/dx (reverse)")
right.set_xlabel("iterations n of l <- 4 l (1 - l)")
right.set_title("first derivative of the logistic map")
right.legend(fontsize=8)
for ax in (left, right):
    ax.set_ylabel("size")
    ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()
show_figure(fig, OUT / "expression_swell.svg")

# %% [markdown]
# The claims, asserted. For exp(sin x): both sizes grow with the order, and at order 10 SymPy's
# expression is the smaller one. For the logistic map: SymPy's derivative grows faster than the
# function (the ratio keeps rising), while the graph of function *and* derivative stays within a
# constant factor (under 3) of the function's: the book's "the complexity of the backward pass is
# almost the same as the forward pass".

# %%
assert all(np.diff(sympy_sizes) > 0) and all(np.diff(graph_sizes) > 0)
assert sympy_sizes[-1] > 20 * sympy_sizes[0]
assert graph_sizes[-1] > 2 * graph_sizes[-2] and sympy_sizes[-1] < graph_sizes[-1]
assert all(np.diff(sympy_ratio) > 0) and sympy_ratio[-1] > 10
assert all(graph_ratio < 3) and all(np.diff(swell["graph f'"]) == swell["graph f'"][1] - swell["graph f'"][0])

# %% [markdown]
# ## 4. Automatic differentiation (5.5.4)
#
# The engine records the graph and sweeps it (lesson 1). Its derivatives are exact up to the
# rounding of each elementary operation: the same digits as the closed forms. We check both modes
# on eq. 5.36 and the 10th derivative of exp(sin x) at several points, against SymPy with 30 digits.

# %%
reverse = ad.grad(eq_5_36)(X0)
_, forward_mode = ad.jvp(eq_5_36, (X0,), (1.0,))
print(f"reverse mode: {reverse!r}  rel. error {rel_err(reverse):.1e}")
print(f"forward mode: {forward_mode!r}  rel. error {rel_err(forward_mode):.1e}")
assert rel_err(reverse) < 1e-14 and rel_err(forward_mode) < 1e-14

d10_engine = ad.derivative(lambda t: ad.exp(ad.sin(t)), order=10)
points = np.linspace(-2, 2, 9)
worst = 0.0
for p in points:
    engine_value, sympy_value = d10_engine(float(p)), exact(d10, at=float(p))
    worst = max(worst, abs(engine_value - sympy_value) / max(1.0, abs(sympy_value)))
print(f"10th derivative of exp(sin x) at {len(points)} points: worst relative error {worst:.1e}")
assert worst < 1e-12

# %% [markdown]
# `ad.compare` puts every method the toolkit knows side by side (numerical methods at their
# default steps). The summary below ranks them by error, with the cost of each.

# %%
table = ad.compare(eq_5_36, X0)
show(table)

results = {
    "analytical (eq. 5.37)": (analytical, "a derivation by hand"),
    "numerical, forward (eq. 5.35)": (ad.numerical_derivative(eq_5_36, X0, "forward"), "2 evaluations of f"),
    "numerical, central": (ad.numerical_derivative(eq_5_36, X0, "central"), "2 evaluations of f"),
    "numerical, complex step": (ad.numerical_derivative(eq_5_36, X0, "complex"), "1 complex evaluation"),
    "symbolic (SymPy)": (float(derivative_expr.evalf(subs={x_: X0})), "an expression that can swell"),
    "automatic, reverse": (reverse, "1 evaluation + 1 sweep"),
    "automatic, forward": (forward_mode, "1 evaluation + 1 sweep"),
}
print(f"\n{'method':30s} {'dy/dx':>20s}  {'rel. error':>10s}  cost")
for method, (v, cost) in results.items():
    print(f"{method:30s} {v:20.16f}  {rel_err(v):10.1e}  {cost}")

errors = {method: rel_err(v) for method, (v, _) in results.items()}
assert errors["numerical, forward (eq. 5.35)"] > errors["numerical, central"] > 1e-13
assert max(errors[m] for m in results if not m.startswith("numerical, forward") and m != "numerical, central") < 1e-14

# %% [markdown]
# ## Exercises
#
# 1. **Where is the bottom of the U?** Minimise the model $\tfrac{h}{2}|f''| + 2u|f|/h$ by hand and
#    compare the optimal $h$ with `forward.best()`. Derive the same model for the central difference
#    (truncation $\tfrac{h^2}{6}|f'''|$) and check it against `central.best()`.
# 2. **Complex step limits.** Try `ad.numerical_derivative(lambda x: ad.abs(x - 0.2) * x, 0.5,
#    "complex")`. Why does the engine refuse, and what would go wrong if it did not?
# 3. **Float32.** Repeat the forward-difference sweep on `lambda x: eq_5_36(np.float32(x))`. Where is
#    the bottom of the U now, and why ($u_{32} = 1.2 \times 10^{-7}$)?
# 4. **Swell by hand.** Print `sp.diff(logistic(s, 3), s)` and find the repeated subexpressions.
#    Then `sp.cse` it: how small does it get, and what does that say about graphs?
# 5. **Higher order, three ways.** Compute the 4th derivative of exp(sin x) at 0.5 with nested
#    central differences, with SymPy and with `ad.derivative`. How many digits does each get?
