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
# # Lesson 5: soft-max and cross-entropy
#
# *Follows the lecture "Classification and Optimization in CNNs" (soft-max, its Jacobian, the
# cross-entropy loss with its worked example, the gradient y - t, and why libraries fuse the two)
# and Tomasi, "Training Convolutional Neural Networks", section 1 (the soft-max simplex) and 2 (loss).*
#
# A classifier's last layer turns a vector of scores $\mathbf{z}$ (the *logits*) into
# probabilities with the soft-max, and training compares them with the true class through the
# cross-entropy. We will
#
# 1. see where the soft-max puts its outputs: the **soft-max simplex** and its decision regions;
# 2. redo the lecture's worked example, $-\log_2(0.775) = 0.3677$;
# 3. derive the soft-max **Jacobian** and check it three ways;
# 4. derive the famous gradient $\partial L/\partial \mathbf{z} = \mathbf{y} - \mathbf{t}$, draw it
#    on the graph and check it;
# 5. see why the two are computed as **one fused operation**: the naive formula overflows.
#
# Pictures go to `tutorials/_output/diff_05_softmax_cross_entropy/` (or `$TUTORIAL_OUTPUT`); the
# graph pictures need Graphviz's `dot` program.

# %%
import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
from matplotlib.patches import Polygon

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository, so that `autodiff` imports without installing
import autodiff as ad

from chainrule.lessons import show, show_figure, show_picture

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_05_softmax_cross_entropy"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. The soft-max simplex
#
# $$y_c = S(\mathbf{z})_c = \frac{e^{z_c}}{\sum_{d} e^{z_d}}, \qquad c = 1 \dots C .$$
#
# Every output is positive and they add up to 1, so $\mathbf{y}$ lies in the **soft-max simplex**
# $P = \{\mathbf{p} \in \mathbb{R}^C : \mathbf{p} \ge 0,\ \sum_c p_c = 1\}$, the convex hull of the
# $C$ unit vectors (Tomasi, section 1). Adding the same number to every logit changes nothing
# (the factor $e^{c}$ cancels), which is why $C$ logits fill only a $(C-1)$-dimensional simplex.

# %%
def softmax(z):
    """Soft-max along the last axis, shifted by the maximum (section 5 explains why)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


rng = np.random.default_rng(0)
logits = rng.normal(0, 2.5, (4000, 3))
P = softmax(logits)
assert np.all(P >= 0) and np.allclose(P.sum(axis=1), 1, rtol=0, atol=1e-15)      # in the simplex
np.testing.assert_allclose(softmax(logits + 7.5), P, rtol=1e-13, atol=1e-16)       # shift invariance
assert np.array_equal(P.argmax(axis=1), logits.argmax(axis=1))                    # order preserved

# %% [markdown]
# With $C = 2$ classes the simplex is a segment, and the soft-max is the logistic sigmoid of the
# difference of the logits: $y_1 = \sigma(z_1 - z_2)$. With $C = 3$ it is a triangle. Classifying by
# $\arg\max \mathbf{p}$ splits it into **decision regions** $P_c = \{p_c \ge p_j \text{ for } j \ne c\}$:
# convex (their boundaries are the straight lines $p_c = p_j$), meeting at the *unit point*
# $\mathbf{1}/C$, where all logits are equal. The network's job, seen from here, is to move every
# input into the right region.

# %%
z2 = rng.normal(size=(50, 2))
np.testing.assert_allclose(softmax(z2)[:, 0], 1 / (1 + np.exp(-(z2[:, 0] - z2[:, 1]))), rtol=1e-14)

unit_point = softmax(np.zeros(3))
np.testing.assert_allclose(unit_point, 1 / 3, rtol=1e-15)
in_region = [np.all(unit_point[c] >= unit_point) for c in range(3)]
assert all(in_region)                       # the unit point lies on every region's boundary

labels = P.argmax(axis=1)
for c in range(3):                           # convexity: midpoints of two points of P_c stay in P_c
    members = P[labels == c]
    pairs = rng.integers(0, len(members), (200, 2))
    midpoints = (members[pairs[:, 0]] + members[pairs[:, 1]]) / 2
    assert np.all(midpoints.argmax(axis=1) == c)

# %%
VERTICES = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])   # e_1, e_2, e_3 in the plane
COLORS = ["#60a5fa", "#f59e0b", "#34d399"]


def to_plane(p):
    """Barycentric coordinates: the point of the triangle with weights p on its corners."""
    return p @ VERTICES


fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
grid = np.linspace(-6, 6, 301)
Z1, Z2 = np.meshgrid(grid, grid)
Z = np.stack([Z1, Z2, np.zeros_like(Z1)], axis=-1)                      # z_3 = 0 (shift invariance)
left.contourf(Z1, Z2, softmax(Z).argmax(axis=-1), levels=[-0.5, 0.5, 1.5, 2.5], colors=COLORS, alpha=0.6)
left.set_xlabel("$z_1$")
left.set_ylabel("$z_2$")
for c, where in enumerate([(3.5, -3.5), (-3.5, 3.5), (-3.5, -3.5)]):
    left.text(*where, f"class {c + 1}", ha="center", fontsize=9)
left.set_title("logits ($z_3 = 0$), coloured by arg max")
left.set_aspect("equal")

midpoints = (VERTICES + np.roll(VERTICES, -1, axis=0)) / 2            # of edges 12, 23, 31
centre = to_plane(unit_point)
for c in range(3):   # region P_c: corner c, the midpoints of its two edges, the unit point
    corner = [VERTICES[c], midpoints[c], centre, midpoints[c - 1]]
    right.add_patch(Polygon(corner, closed=True, facecolor=COLORS[c], alpha=0.35, edgecolor="none"))
    right.plot(*np.array([centre, midpoints[c]]).T, color="#1d4ed8", lw=1.5)
points = to_plane(P[:600])
right.scatter(points[:, 0], points[:, 1], s=4, c=[COLORS[c] for c in labels[:600]], edgecolors="k", linewidths=0.2)
right.plot(*np.vstack([VERTICES, VERTICES[:1]]).T, "k-", lw=1)
right.plot(*centre, "ko")
right.annotate("unit point 1/3", centre, xytext=(8, -14), textcoords="offset points", fontsize=8)
for c, name in enumerate(["$e_1$ (class 1)", "$e_2$ (class 2)", "$e_3$ (class 3)"]):
    right.annotate(name, VERTICES[c], xytext=(-30 if c == 0 else (-30 if c == 1 else 6), -14 if c < 2 else 4),
                   textcoords="offset points")
right.set_title("soft-max outputs in the 2-simplex, with the regions $P_c$")
right.set_aspect("equal")
right.axis("off")
fig.tight_layout()
show_figure(fig, OUT / "softmax_simplex.svg")

# %% [markdown]
# ## 2. Cross-entropy: the lecture's worked example
#
# The cross-entropy between the one-hot truth $\mathbf{t}$ and the soft-max output $\mathbf{y}$ is
# $L_{CE} = -\sum_i t_i \log y_i$, which is $-\log y_c$ for the true class $c$ (Tomasi's
# $\ell(y, \mathbf{p}) = -\log p_y$). The lecture's example has four classes, the first one true:
#
# $$L_{CE} = -\left[1 \log_2(0.775) + 0 \log_2(0.116) + 0 \log_2(0.039) + 0 \log_2(0.070)\right]
#          = -\log_2(0.775) = 0.3677$$
#
# and a more confident prediction, $-\log_2(0.936) = 0.095$. The lecture measures in **bits**
# ($\log_2$); frameworks use the natural logarithm (**nats**): the two differ by the factor $\ln 2$.

# %%
T = np.array([1.0, 0.0, 0.0, 0.0])
S = np.array([0.775, 0.116, 0.039, 0.070])
assert abs(S.sum() - 1) < 1e-15

L_bits = -np.sum(T * np.log2(S))
print(f"L_CE = {L_bits:.4f} bits = {L_bits * np.log(2):.4f} nats")
assert round(L_bits, 4) == 0.3677
assert round(-np.log2(0.936), 3) == 0.095

# The same number from logits, with the engine. Any logits whose soft-max is S will do: z = log S.
z_lecture = np.log(S)
np.testing.assert_allclose(softmax(z_lecture), S, rtol=1e-15)
L_nats = -(T * ad.log_softmax(z_lecture)).sum()
assert abs(L_nats / np.log(2) - L_bits) < 1e-14
assert abs(L_nats - (-np.log(S[0]))) < 1e-15            # Tomasi's form: -log p_y

# %% [markdown]
# ## 3. The soft-max Jacobian
#
# Write $\Sigma = \sum_d e^{z_d}$. By the quotient rule,
#
# - for $i = j$: $\dfrac{\partial y_i}{\partial z_i} = \dfrac{e^{z_i}\Sigma - e^{z_i}e^{z_i}}{\Sigma^2}
#   = \dfrac{e^{z_i}}{\Sigma}\cdot\dfrac{\Sigma - e^{z_i}}{\Sigma} = y_i(1 - y_i)$;
# - for $i \ne j$: $\dfrac{\partial y_i}{\partial z_j} = \dfrac{0 - e^{z_i}e^{z_j}}{\Sigma^2} = -y_i y_j$.
#
# Together: $J = \operatorname{diag}(\mathbf{y}) - \mathbf{y}\mathbf{y}^\top$, or
# $\partial y_i / \partial z_j = y_i(\delta_{ij} - y_j)$. (The lecture's slide ends the $i \ne j$
# line with "$= y_i \cdot y_j$": the minus sign of its own numerator $0 - e^{z_i}e^{z_j}$ was lost.
# Its cross-entropy derivation on the next slide uses $-y_j y_i$, correctly.)
#
# Checked three ways: against SymPy's symbolic derivative, and against the engine's Jacobian in
# both modes. Then three properties that follow from $\sum_i y_i = 1$: $J$ is symmetric, its rows
# sum to zero, and so it is singular ($J\mathbf{1} = 0$: the shift that changes nothing).

# %%
C = 3
zs = sp.symbols(f"z1:{C + 1}", real=True)
ys = [sp.exp(zi) / sum(sp.exp(zd) for zd in zs) for zi in zs]
for i in range(C):
    for j in range(C):
        assert sp.simplify(sp.diff(ys[i], zs[j]) - ys[i] * (int(i == j) - ys[j])) == 0

z = np.array([1.2, -0.4, 0.3, 2.0])
y = softmax(z)
J = np.diag(y) - np.outer(y, y)
for mode in ("reverse", "forward"):
    np.testing.assert_allclose(ad.jacobian(ad.softmax, mode=mode)(z), J, rtol=1e-14, atol=1e-16)
np.testing.assert_allclose(J, J.T, rtol=0, atol=1e-17)
np.testing.assert_allclose(J.sum(axis=1), 0, atol=1e-16)
assert np.linalg.matrix_rank(J) == len(z) - 1
print("soft-max Jacobian at z =", z)
print(np.round(J, 4))

# %% [markdown]
# ## 4. Soft-max + cross-entropy: the gradient y - t
#
# Chain the two. With $\partial L / \partial y_j = -t_j / y_j$,
#
# $$\frac{\partial L}{\partial z_i} = -\sum_j \frac{t_j}{y_j}\frac{\partial y_j}{\partial z_i}
# = -\frac{t_i}{y_i} y_i (1 - y_i) - \sum_{j \ne i} \frac{t_j}{y_j}(-y_j y_i)
# = -t_i + y_i \sum_j t_j = y_i - t_i ,$$
#
# using $\sum_j t_j = 1$. The gradient is the prediction minus the truth: it sums to zero, it is
# negative only at the true class (raise that logit) and positive elsewhere (lower those). For the
# lecture's example it is $(0.775 - 1, 0.116, 0.039, 0.070)$.

# %%
g = -T / S                                           # dL/dy for the lecture's example (nats)
J_lecture = np.diag(S) - np.outer(S, S)
np.testing.assert_allclose(g @ J_lecture, S - T, rtol=1e-14, atol=1e-16)   # the chain, by hand


def cross_entropy(z, t):
    """Unfused: soft-max, then log, then the weighted sum (three separate nodes)."""
    return -(t * ad.log(ad.softmax(z))).sum()


def fused_cross_entropy(z, t):
    """Fused: log-softmax in one stable primitive, z - logsumexp(z)."""
    return -(t * ad.log_softmax(z)).sum()


for loss in (cross_entropy, fused_cross_entropy):
    np.testing.assert_allclose(ad.grad(loss)(z_lecture, T), S - T, rtol=1e-13, atol=1e-16)
    for _ in range(5):                               # and at random logits and labels
        z_r, t_r = rng.normal(0, 3, 6), np.eye(6)[rng.integers(6)]
        np.testing.assert_allclose(ad.grad(loss)(z_r, t_r), softmax(z_r) - t_r, rtol=1e-12, atol=1e-15)
print("dL/dz =", S - T, "= y - t")

# %% [markdown]
# On the graph: the adjoints flowing back through `log` and `softmax` arrive at $\mathbf{z}$ as
# $\mathbf{y} - \mathbf{t}$ (look at the `adjoint` line of node z). In the fused graph the same number
# comes out of a single rule.

# %%
z_node = ad.Tensor(z_lecture, requires_grad=True, name="z")
unfused_picture = ad.draw(cross_entropy(z_node, T), names="letters")
fused_picture = ad.draw(fused_cross_entropy(z_node, T), names="letters")
show_picture(unfused_picture, OUT / "cross_entropy_graph.svg")
show_picture(fused_picture, OUT / "fused_cross_entropy_graph.svg")
y_minus_t = "adjoint [" + ", ".join(f"{v:.4g}" for v in S - T) + "]"
assert y_minus_t in unfused_picture.source and y_minus_t in fused_picture.source

fig, ax = plt.subplots(figsize=(6, 3.4))
classes = np.arange(len(S))
ax.bar(classes - 0.25, S, 0.25, label="y (soft-max output)")
ax.bar(classes, T, 0.25, label="t (truth, one-hot)")
ax.bar(classes + 0.25, S - T, 0.25, label="dL/dz = y - t")
ax.axhline(0, color="k", lw=0.8)
ax.set_xticks(classes, [f"class {c + 1}" for c in classes])
ax.set_title("The lecture's example: the gradient is prediction minus truth")
ax.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "gradient_y_minus_t.svg")
assert abs((S - T).sum()) < 1e-15 and (S - T)[0] < 0 and np.all((S - T)[1:] > 0)

# %% [markdown]
# ## 5. Why the fused operation is stable
#
# Logits are unbounded. Computed as written, $e^{1000}$ overflows to `inf` and the soft-max becomes
# `inf / inf = nan`. Subtracting the largest logit first (as our `softmax` does) fixes the overflow,
# but not the other end: at $\mathbf{z} = (-1000, 0)$ the first probability is $e^{-1000}$, which
# underflows to exactly 0, and $-\log 0 = \infty$, although the true loss is a perfectly ordinary 1000.
#
# The fused form never forms the probability. It computes the log-probability directly,
#
# $$\log y_c = z_c - \log\sum_d e^{z_d} = z_c - m - \log\sum_d e^{z_d - m}, \qquad m = \max_d z_d ,$$
#
# where every exponent is $\le 0$ (no overflow) and the sum contains $e^0 = 1$ (no $\log 0$). This
# is why the lecture notes that libraries "combine the two as one layer" (`log_softmax` here,
# `softmax_cross_entropy_with_logits` or `CrossEntropyLoss` elsewhere), and why its gradient,
# $\mathbf{y} - \mathbf{t}$, stays finite too.

# %%
big = np.array([1000.0, 999.0, 998.0])
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(big) / np.exp(big).sum()
print("naive soft-max of (1000, 999, 998):", naive)
assert np.all(np.isnan(naive))
stable = ad.log_softmax(big)
print("log-softmax of (1000, 999, 998):   ", stable)
assert np.all(np.isfinite(stable))
# Shift invariance, up to the rounding of numbers near 1000 (spacing 1000 u = 1.1e-13):
np.testing.assert_allclose(stable, ad.log_softmax(big - 1000), rtol=0, atol=4 * 1000 * np.finfo(float).eps)

z_far = np.array([-1000.0, 0.0])
t_far = np.array([1.0, 0.0])
with np.errstate(divide="ignore", invalid="ignore"):
    unfused_loss = float(-(t_far * np.log(softmax(z_far))).sum())
    unfused_grad = ad.grad(cross_entropy)(z_far, t_far)
fused_loss = float(fused_cross_entropy(z_far, t_far))
fused_grad = ad.grad(fused_cross_entropy)(z_far, t_far)
print(f"z = (-1000, 0), true class 1: unfused loss {unfused_loss}, gradient {unfused_grad}")
print(f"                              fused loss   {fused_loss}, gradient {fused_grad}")
assert np.isinf(unfused_loss) and not np.all(np.isfinite(unfused_grad))
assert fused_loss == 1000.0
np.testing.assert_allclose(fused_grad, softmax(z_far) - t_far, rtol=1e-15)   # y - t = (-1, 1)

# %% [markdown]
# ## Exercises
#
# 1. **Temperature.** Plot the images of the same logits under $\mathrm{softmax}(\mathbf{z}/\tau)$
#    for $\tau = 0.25, 1, 4$ on the simplex. Where do the points go as $\tau \to 0$ and $\tau \to \infty$?
#    Do the decision regions change?
# 2. **Binary case.** For $C = 2$ show that the cross-entropy with $y_1 = \sigma(z_1 - z_2)$ is the
#    logistic loss, and that its gradient with respect to $z_1 - z_2$ is $y_1 - t_1$. Check with `ad.grad`.
# 3. **Bits.** Redo section 2 in bits with the engine: what do you divide the gradient by?
# 4. **Label smoothing.** Replace $\mathbf{t}$ by $(1 - \epsilon)\mathbf{t} + \epsilon/C$. Does
#    $\partial L/\partial \mathbf{z} = \mathbf{y} - \mathbf{t}$ still hold (with the smoothed
#    $\mathbf{t}$)? Why does the derivation only need $\sum_j t_j = 1$?
# 5. **Where exactly does it break?** Find the smallest gap $z_2 - z_1$ for which the unfused loss
#    in float64 becomes `inf`, and explain the number ($e^{-745}$ is about the smallest float64).
