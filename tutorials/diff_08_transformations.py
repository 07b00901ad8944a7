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
# # Lesson 8: transformations: custom rules, hooks, per-example gradients, checkpoints
#
# *Follows JAX's documentation ("Custom derivative rules", `jax.vmap`, `jax.checkpoint`) and
# PyTorch's (`Tensor.register_hook`, `torch.autograd.detect_anomaly`); Abadi et al. (2016) for
# per-example clipping (DP-SGD), Chen et al. (2016) for checkpointing.*
#
# Lessons 1-7 took the gradient as the engine computes it. Real training code changes *how* it
# is computed, without touching the model:
#
# 1. a **custom rule** (`ad.custom_vjp`): log-sum-exp as one node whose backward pass is the
#    soft-max, stable where the composed formula overflows;
# 2. a rule that **changes** the gradient: JAX's `clip_gradient`, the identity forward and a
#    clipped backward;
# 3. **hooks** (`t.register_hook`): look at, or change, an adjoint in the middle of the reverse
#    sweep, from outside the function; we watch a gradient vanish through 20 sigmoid layers;
# 4. **per-example gradients** (`ad.vmap(ad.grad(loss))`): one gradient per training example,
#    clipped one by one as DP-SGD does;
# 5. **checkpoints** (`ad.checkpoint`): the same gradient, bit for bit, with less memory;
# 6. **anomaly mode** (`ad.detect_anomaly()`): where a NaN in the gradient came from.
#
# Pictures go to `tutorials/_output/diff_08_transformations/` (or `$TUTORIAL_OUTPUT`); the graph
# pictures need Graphviz's `dot` program.

# %%
import gc
import os
import sys
import time
import tracemalloc
from functools import partial
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

from chainrule.lessons import show, show_figure, show_picture

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_08_transformations"
OUT.mkdir(parents=True, exist_ok=True)


def softmax(z):
    """Soft-max in NumPy, shifted by the maximum (lesson 5): the reference for section 1."""
    e = np.exp(z - z.max())
    return e / e.sum()


# %% [markdown]
# ## 1. A custom rule: the stable log-sum-exp
#
# $\mathrm{LSE}(\mathbf{x}) = \log \sum_i e^{x_i}$ is everywhere a classifier computes a
# log-probability (lesson 5: $\log y_c = z_c - \mathrm{LSE}(\mathbf{z})$). Its gradient is the
# soft-max, $\partial\,\mathrm{LSE} / \partial x_i = e^{x_i} / \sum_j e^{x_j}$. Written as the
# formula, three nodes (`exp`, `sum`, `log`), it breaks at $\mathbf{x} = (1000, 999, 998)$:
# $e^{1000}$ overflows, the value is `inf`, and the reverse sweep computes
# $\bar{b} = 1/\infty = 0$ for the sum, then $\bar{x} = e^{x} \cdot 0 = \infty \cdot 0 =$ `nan`.
#
# `@ad.custom_vjp` declares the function's reverse rule ourselves, as `jax.custom_vjp` does:
# `fwd` returns the value and the *residuals* the backward pass needs (here the soft-max, computed
# once, shifted by the maximum); `bwd(residuals, g)` returns one cotangent per argument
# ($g \cdot \mathrm{softmax}(\mathbf{x})$). The engine records the call as **one node**, named after
# the function, and its reverse sweep calls `bwd` there instead of going through `exp`, `sum`, `log`.

# %%
def naive_logsumexp(x):
    return ad.log(ad.sum(ad.exp(x)))


@ad.custom_vjp
def logsumexp(x):
    m = ad.max(x)
    return m + ad.log(ad.sum(ad.exp(x - m)))     # shifted: every exponent <= 0


def logsumexp_fwd(x):
    e = ad.exp(x - ad.max(x))
    return logsumexp(x), e / ad.sum(e)           # the value, and the residual: softmax(x)


def logsumexp_bwd(p, g):
    return (g * p,)                              # one cotangent per argument: g softmax(x)


logsumexp.defvjp(logsumexp_fwd, logsumexp_bwd)

big = np.array([1000.0, 999.0, 998.0])
with np.errstate(over="ignore", invalid="ignore"):
    naive_value, naive_grad = float(naive_logsumexp(big)), ad.grad(naive_logsumexp)(big)
custom_value, custom_grad = float(logsumexp(big)), ad.grad(logsumexp)(big)
print(f"naive  LSE(1000, 999, 998) = {naive_value}, gradient {naive_grad}")
print(f"custom LSE(1000, 999, 998) = {custom_value:.12f}, gradient {custom_grad}")
assert np.isinf(naive_value) and np.all(np.isnan(naive_grad))
assert np.all(np.isfinite(custom_grad)) and abs(custom_grad.sum() - 1) < 1e-15
np.testing.assert_allclose(custom_grad, softmax(big), rtol=1e-15)
assert abs(custom_value - (1000 + np.log(1 + np.exp(-1) + np.exp(-2)))) < 1e-12

# At a moderate point, where the naive formula is fine, all of them agree, and with central
# differences (which know nothing of the rule we wrote):
x_mid = np.array([0.3, -1.2, 2.0, 0.7])
numeric = ad.numerical_gradient(logsumexp, x_mid)
for grad in (ad.grad(logsumexp)(x_mid), ad.grad(naive_logsumexp)(x_mid), ad.grad(ad.logsumexp)(x_mid)):
    np.testing.assert_allclose(grad, numeric, rtol=1e-8, atol=1e-10)
np.testing.assert_allclose(ad.grad(logsumexp)(x_mid), softmax(x_mid), rtol=1e-15)
print("gradient at", x_mid, "=", ad.grad(logsumexp)(x_mid), "(central differences:", numeric, ")")

# %% [markdown]
# On the graph, the custom function is a single node with a single rule, `vjp_logsumexp`: the
# intermediate `exp`, `sum` and `log` of its body were computed without being recorded. The two
# pictures are at $\mathbf{x} = (1000, 999, 998)$: look at the `adjoint` lines of the naive graph,
# where $0 \cdot \infty$ turns into `nan`.

# %%
x = ad.Tensor(big, requires_grad=True, name="x")
with np.errstate(over="ignore", invalid="ignore"):
    naive_graph = naive_logsumexp(x)
    naive_picture = ad.draw(naive_graph, names="letters")
custom_graph = logsumexp(x)
custom_picture = ad.draw(custom_graph, names="letters")
print(ad.graph_code(naive_graph))
print("--")
print(ad.graph_code(custom_graph))
assert ad.graph_code(naive_graph).splitlines() == ["a = exp(x)", "b = sum(a)", "y = log(b)"]
assert ad.graph_code(custom_graph).splitlines() == ["y = logsumexp(x)"]      # ONE node, named after it
assert "adjoint [nan, nan, nan]" in naive_picture.source
assert "y = logsumexp(x)" in custom_picture.source and "nan" not in custom_picture.source
show_picture(naive_picture, OUT / "naive_logsumexp.svg")
show_picture(custom_picture, OUT / "custom_logsumexp.svg")

# %% [markdown]
# ## 2. A rule that changes the gradient: `clip_gradient`
#
# A custom rule does not have to be the true derivative. JAX's documentation clips the gradient
# with one: the forward pass is the identity, the backward pass clips the cotangent to
# $[\mathit{lo}, \mathit{hi}]$. The bounds are numbers, not differentiated: `nondiff_argnums=(0, 1)`
# keeps them out of the differentiable arguments (they become the node's parameters, and `bwd`
# receives them first). Here $y = 10 \cdot \mathrm{clip\_gradient}(-1, 1, \sin x)$: the value is
# $10 \sin x$, but the adjoint $\bar{y} \cdot 10 = 10$ arriving at the clip is cut to 1, so
# $dy/dx = \cos x$ instead of $10 \cos x$.

# %%
@partial(ad.custom_vjp, nondiff_argnums=(0, 1))
def clip_gradient(lo, hi, x):
    return x                                     # the identity


def clip_gradient_fwd(lo, hi, x):
    return x, None                               # no residuals needed


def clip_gradient_bwd(lo, hi, _, g):
    return (ad.clip(g, lo, hi),)                 # the cotangent, clipped


clip_gradient.defvjp(clip_gradient_fwd, clip_gradient_bwd)


def clipped(x):
    return 10 * clip_gradient(-1.0, 1.0, ad.sin(x))


x0 = 0.5
assert float(clipped(x0)) == 10 * np.sin(x0)                              # forward: untouched
assert ad.grad(clipped)(x0) == np.cos(x0)                                 # backward: 10 clipped to 1
assert ad.grad(lambda x: 10 * ad.sin(x))(x0) == 10 * np.cos(x0)           # without the clip
c = np.array([0.5, 3.0, -4.0])
np.testing.assert_array_equal(ad.grad(lambda v: ad.sum(c * clip_gradient(-1.0, 1.0, v)))(np.zeros(3)),
                              [0.5, 1.0, -1.0])                          # elementwise
print(ad.graph_code(clipped(ad.Tensor(x0, requires_grad=True, name="x"))))
try:                                                                      # a bound that requires grad
    clip_gradient(ad.Tensor(-1.0, requires_grad=True), 1.0, x0)
    raise AssertionError("a differentiated bound was accepted")
except TypeError as err:
    print("refused:", err)

# %% [markdown]
# ## 3. Hooks: the adjoint in the middle of the sweep
#
# `clip_gradient` had to be written into the function. A **hook** does the same from outside:
# `t.register_hook(fn)` asks the reverse sweep to call `fn(adjoint)` once $t$'s adjoint is complete
# (all its consumers have contributed) and to use what `fn` returns (None: keep it) before it flows
# on to $t$'s inputs. Here $a = e^x$, $b = a^2$, $y = \sin b$ at $x = 1$: the adjoint of $a$ is
# $2a \cos(b) = 2.44$, the hook clips it to 1, and the trace table shows the hooked row,
# `ā = hook(...)`, with the clipped value, and everything below it computed from that value.

# %%
x = ad.Tensor(1.0, requires_grad=True, name="x")
a = ad.exp(x)
handle = a.register_hook(lambda g: np.clip(g, -1.0, 1.0))
y = ad.sin(a ** 2)
hooked_table = ad.trace_table(y, mode="reverse")
show(hooked_table)
row = {r["node"]: r for r in hooked_table.rows}
unclipped = 2 * np.e * np.cos(np.e ** 2)
assert round(unclipped, 2) == 2.44 and row["a"]["rule"].startswith("a\u0304 = hook(") and row["a"]["adjoint"] == "1"
y.backward()
assert x.grad == np.e                                     # e^x times the clipped adjoint 1
handle.remove()                                           # the hook off again: the true gradient
np.testing.assert_allclose(ad.grad(lambda v: ad.sin(ad.exp(v) ** 2))(1.0), np.e * unclipped, rtol=1e-15)
# The same clip written into the function, with section 2's rule, gives the same number:
assert ad.grad(lambda v: ad.sin(clip_gradient(-1.0, 1.0, ad.exp(v)) ** 2))(1.0) == x.grad
print(f"dy/dx = {np.e * unclipped:.6f}; with the adjoint of a clipped to 1: {float(x.grad):.6f}")

# %% [markdown]
# ### Watching a gradient vanish
#
# A hook that returns None only looks. Hooked on every layer's output of a deep network, it records
# how large the gradient is at each depth, which is how vanishing gradients are found in practice
# (lesson `cnn_07_depth.py` measures the same thing). Take 20 sigmoid layers
# $\mathbf{h}_k = \sigma(W_k \mathbf{h}_{k-1})$ of 16 units, with orthogonal $W_k$ (they keep a
# vector's length). One layer back multiplies the gradient by $W_k^\top \operatorname{diag}(\sigma'(\cdot))$,
# and $\sigma' = \sigma(1-\sigma) \le 1/4$, so
#
# $$\left\|\frac{\partial L}{\partial \mathbf{h}_{k-1}}\right\| \le \frac{1}{4}
# \left\|\frac{\partial L}{\partial \mathbf{h}_k}\right\| :$$
#
# at least a factor 4 per layer, $4^{19} \approx 3 \cdot 10^{11}$ from the top to the first layer.

# %%
rng = np.random.default_rng(0)
LAYERS, WIDTH = 20, 16
weights = [np.linalg.qr(rng.normal(size=(WIDTH, WIDTH)))[0] for _ in range(LAYERS)]   # orthogonal
norms = {}


def recorder(k):
    def record(g):
        norms[k] = float(np.linalg.norm(g))   # returns None: the adjoint flows on unchanged
    return record


h = ad.Tensor(rng.normal(size=WIDTH), requires_grad=True, name="x")
handles = []
for k, W in enumerate(weights, start=1):
    h = ad.sigmoid(W @ h)
    handles.append(h.register_hook(recorder(k)))
loss = ad.sum(h)
loss.backward()
per_layer = np.array([norms[k] for k in range(1, LAYERS + 1)])
ratios = per_layer[:-1] / per_layer[1:]
print("||dL/dh_k||, k = 1..20:", np.array2string(per_layer, precision=2))
print(f"ratio to the layer above: {ratios.min():.3f} to {ratios.max():.3f}; "
      f"first / last = {per_layer[0] / per_layer[-1]:.2e}")
assert per_layer[-1] == np.sqrt(WIDTH)                    # dL/dh_20 = (1, ..., 1)
assert np.all(ratios <= 0.25)                             # at least 4x smaller, layer after layer
assert per_layer[0] / per_layer[-1] < 0.25 ** (LAYERS - 1) * 1.000001 < 1e-11
for handle in handles:                                    # hooks off: a second sweep records nothing
    handle.remove()
norms.clear()
ad.grad(lambda v: ad.sum(ad.sigmoid(weights[0] @ v)))(np.ones(WIDTH))
assert norms == {}

fig, ax = plt.subplots(figsize=(7, 3.8))
depth = np.arange(1, LAYERS + 1)
ax.semilogy(depth, per_layer, "o-", label=r"$\|\partial L / \partial \mathbf{h}_k\|$ (recorded by hooks)")
ax.semilogy(depth, per_layer[-1] * 0.25 ** (LAYERS - depth), "k--", lw=1, label=r"bound $4^{-(20-k)}\,\|\mathbf{1}\|$")
ax.set_xlabel("layer k (1 = next to the input)")
ax.set_ylabel("gradient norm")
ax.set_xticks(depth)
ax.set_title("20 sigmoid layers: the gradient shrinks at least 4x per layer")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
show_figure(fig, OUT / "vanishing_gradient.svg")

# %% [markdown]
# ## 4. Per-example gradients with `vmap`
#
# `ad.grad(loss)` gives the gradient of one loss. Some algorithms need one gradient **per
# example**: DP-SGD (Abadi et al., 2016) clips each example's gradient to a norm $C$ before
# averaging (and adds noise), so that no single example can move the model much. Looping over
# the examples is slow; `ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))` maps the gradient of
# *one* example's loss over the batch: `None` passes the weights whole, `0` maps the inputs and
# labels along their first axis, and each primitive runs once for the whole batch.
#
# The model is logistic regression, $\ell(\mathbf{w}; \mathbf{x}, t) = \log(1 + e^{z}) - t z$
# with $z = \mathbf{w} \cdot \mathbf{x}$, whose gradient is $(\sigma(z) - t)\,\mathbf{x}$.
# Among 256 examples one is an **outlier**: a wrong label on an input 100 times too large.

# %%
def example_loss(w, x, t):
    z = ad.sum(w * x)
    return ad.log(1 + ad.exp(z)) - t * z


N, D = 256, 5
X = rng.normal(size=(N, D))
T = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) > 0).astype(float)
X[7], T[7] = 100 * X[7], 1 - T[7]                          # the outlier
w = np.full(D, 0.1)

per_example = ad.vmap(ad.grad(example_loss), in_axes=(None, 0, 0))
G = per_example(w, X, T)
G_loop = np.stack([ad.grad(example_loss)(w, X[i], T[i]) for i in range(N)])
np.testing.assert_allclose(G, G_loop, rtol=1e-14, atol=1e-15)           # the same gradients
sigma = 1 / (1 + np.exp(-(X @ w)))
np.testing.assert_allclose(G, (sigma - T)[:, None] * X, rtol=1e-12, atol=1e-15)   # (sigma(z) - t) x
batch_loss = lambda w: ad.mean(ad.vmap(example_loss, in_axes=(None, 0, 0))(w, X, T))     # grad of the map
np.testing.assert_allclose(ad.grad(batch_loss)(w), G.mean(axis=0), rtol=1e-12)          # = mean of the rows


def best_seconds(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


vmap_s = best_seconds(lambda: per_example(w, X, T))
loop_s = best_seconds(lambda: [ad.grad(example_loss)(w, X[i], T[i]) for i in range(N)])
print(f"{N} per-example gradients: vmap {1e3 * vmap_s:.2f} ms, Python loop {1e3 * loop_s:.1f} ms "
      f"({loop_s / vmap_s:.0f}x)")

# %% [markdown]
# With the per-example gradients in hand, clipping is one line of NumPy: scale each row down to
# norm $C$ if it is longer. Compare two averages with the mean gradient of the 255 clean examples:
# the plain mean is dragged towards the outlier (its gradient is a couple of hundred times longer
# than the others'), and clipping the *mean* (ordinary gradient clipping) would only shorten that
# vector, not turn it; clipping *each example* first leaves the outlier one vote among 256.

# %%
C = 1.0
lengths = np.linalg.norm(G, axis=1)
G_clipped = G * np.minimum(1.0, C / lengths)[:, None]
assert np.all(np.linalg.norm(G_clipped, axis=1) <= C * (1 + 1e-12))
clean = np.delete(G, 7, axis=0).mean(axis=0)
plain = G.mean(axis=0)
per_example_clipped = G_clipped.mean(axis=0)


def cosine(u, v):
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


print(f"outlier's gradient norm {lengths[7]:.1f}; the others' median {np.median(np.delete(lengths, 7)):.2f}")
for name, g in (("plain mean", plain), ("per-example clipped", per_example_clipped)):
    print(f"{name:20s} cosine with the clean mean {cosine(g, clean):+.3f}, with the outlier {cosine(g, G[7]):+.3f}")
assert lengths[7] > 50 * np.median(np.delete(lengths, 7))
assert cosine(plain, G[7]) > 0.8 and cosine(plain, clean) < 0.5               # the outlier's direction
assert cosine(per_example_clipped, clean) > 0.95                                 # the clean one

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.hist(lengths, bins=np.logspace(-1.5, 3, 37), color="#60a5fa")
left.axvline(C, color="k", ls="--", label=f"clip norm C = {C:g}")
left.annotate("the outlier", (lengths[7], 1), xytext=(lengths[7] / 30, 12), arrowprops=dict(arrowstyle="->"))
left.set_xscale("log")
left.set_xlabel(r"$\|\nabla_w \ell_i\|$")
left.set_ylabel("examples")
left.set_title(f"per-example gradient norms ({N} examples, by vmap)")
left.legend()
width = 0.25
for k, (name, g) in enumerate((("clean mean (255 examples)", clean), ("plain mean (256)", plain),
                               ("per-example clipped (256)", per_example_clipped))):
    right.bar(np.arange(D) + (k - 1) * width, g / np.linalg.norm(g), width, label=name)
right.axhline(0, color="k", lw=0.8)
right.set_xticks(np.arange(D), [f"$w_{j + 1}$" for j in range(D)])
right.set_title("direction of the averaged gradient (unit length)")
right.legend(fontsize=8)
fig.tight_layout()
show_figure(fig, OUT / "per_example_gradients.svg")

# %% [markdown]
# ## 5. Checkpoints: memory for time
#
# The reverse sweep needs the values of the forward pass (lesson 3), so a deep network holds every
# layer's intermediate arrays until the backward pass has used them. `ad.checkpoint(layer)` records
# a layer as **one node that keeps only its inputs**; in the reverse sweep it runs the layer again
# on them, recording this time, and sweeps that small graph. The arithmetic is the same, in the
# same order, so the gradients are the same **bit for bit**; the price is one more forward pass.
# (`jax.checkpoint`, `torch.utils.checkpoint`; with one checkpoint every $\sqrt{n}$ layers the
# memory of an $n$-layer network grows as $\sqrt{n}$, Chen et al. 2016.)
#
# We measure the peak memory of a forward and backward pass of a 32-layer tanh MLP with Python's
# `tracemalloc` (NumPy reports its arrays to it), with and without one checkpoint per layer.

# %%
def layer(h, w, b):
    return ad.tanh(h @ w + b)       # three (batch, width) arrays recorded: h @ w, + b, tanh


DEPTH, UNITS, BATCH = 32, 32, 128
params = [ad.Tensor(p, requires_grad=True) for _ in range(DEPTH)
          for p in (rng.normal(0, 1 / np.sqrt(UNITS), (UNITS, UNITS)), rng.normal(0, 0.1, UNITS))]
inputs = rng.normal(size=(BATCH, UNITS))


def gradients(remat):
    for p in params:
        p.zero_grad()
    step = ad.checkpoint(layer) if remat else layer
    h = inputs
    for w_k, b_k in zip(params[0::2], params[1::2]):
        h = step(h, w_k, b_k)
    ad.mean(h ** 2).backward()
    return [p.grad for p in params]


def peak_bytes(fn):
    """tracemalloc's peak while fn runs, above what was held when it started."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


plain_grads, remat_grads = gradients(False), gradients(True)
assert all(np.array_equal(g, r) for g, r in zip(plain_grads, remat_grads))     # bit for bit
peak_without, peak_with = peak_bytes(lambda: gradients(False)), peak_bytes(lambda: gradients(True))
seconds_without, seconds_with = best_seconds(lambda: gradients(False)), best_seconds(lambda: gradients(True))
print(f"{DEPTH} layers of {UNITS} units, batch {BATCH}: gradients bit-identical")
print(f"peak memory without checkpoints {peak_without / 2**20:.1f} MB, with {peak_with / 2**20:.1f} MB "
      f"({peak_without / peak_with:.1f}x less)")
print(f"time without {1e3 * seconds_without:.1f} ms, with {1e3 * seconds_with:.1f} ms "
      f"(the checkpointed backward runs every layer's forward again)")
assert peak_with < peak_without

three = ad.Tensor(np.ones((2, UNITS)), requires_grad=True, name="x")
for k in range(1, 4):
    w_k = ad.Tensor(params[2 * k - 2].value, requires_grad=True, name=f"w{k}")
    b_k = ad.Tensor(params[2 * k - 1].value, requires_grad=True, name=f"b{k}")
    three = ad.checkpoint(layer)(three, w_k, b_k)
print(ad.graph_code(three))     # one node per layer, keeping its inputs and the function to re-run
assert ad.graph_code(three).count("checkpoint(") == 3 and "fun=layer" in ad.graph_code(three)

# %% [markdown]
# ## 6. Anomaly mode: where did the NaN come from?
#
# The standard deviation of a batch, $s = \sqrt{\frac{1}{n}\sum_i (x_i - \bar{x})^2}$, is a loss
# term (or a normaliser) that works until a batch is constant. Then $s = 0$, $\sqrt{}'(0) = \infty$,
# and the next rule multiplies it by $\partial\,\mathrm{var}/\partial x_i = 0$: the gradient is
# `nan`, everywhere, with no error. (NumPy's warning, if it shows at all, points into the engine's
# rule, not at your line; here it is silenced, as training code often does.)
#
# `with ad.detect_anomaly():` (PyTorch's `torch.autograd.detect_anomaly`) checks every value of the
# forward pass and every cotangent of the reverse sweep, and stops at the **first** one that is not
# finite, with an `AnomalyError` naming the op, its node as in eq. 5.38, the line of your code that
# recorded it, its inputs and, for the usual suspects, the safe rewrite.

# %%
def std(x):
    d = x - ad.mean(x)
    return ad.sqrt(ad.mean(d * d))


constant = np.full(4, 3.0)
with np.errstate(divide="ignore", invalid="ignore"):
    silent = ad.grad(std)(constant)
print("gradient of std at a constant batch:", silent)
assert np.all(np.isnan(silent))

try:
    with ad.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        ad.grad(std)(constant)
    raise AssertionError("detect_anomaly let the NaN through")
except ad.AnomalyError as err:
    anomaly = err
print(str(anomaly).splitlines()[0])
print(str(anomaly).splitlines()[-1])
assert (anomaly.phase, anomaly.op) == ("reverse", "sqrt") and "in std" in anomaly.line
assert "rule returned inf" in str(anomaly) and "ad.sqrt(x + eps)" in str(anomaly)

# %% [markdown]
# The rewrite is the one batch normalisation uses: $\sqrt{\mathrm{var} + \epsilon}$. At a constant
# batch the gradient is now exactly 0 (the sum of squares does not change to first order), and
# elsewhere it is the old one, up to $\epsilon$; under `detect_anomaly` it runs through.

# %%
EPS = 1e-12


def safe_std(x):
    d = x - ad.mean(x)
    return ad.sqrt(ad.mean(d * d) + EPS)


with ad.detect_anomaly():
    fixed = ad.grad(safe_std)(constant)
print("gradient of sqrt(var + eps) at a constant batch:", fixed)
assert np.array_equal(fixed, np.zeros(4))
x_var = np.array([1.0, 2.0, 4.0, 7.0])
np.testing.assert_allclose(ad.grad(safe_std)(x_var), ad.grad(std)(x_var), rtol=1e-10)
np.testing.assert_allclose(ad.grad(safe_std)(x_var), ad.numerical_gradient(safe_std, x_var), rtol=1e-7)

# %% [markdown]
# ## Exercises
#
# 1. **Softplus.** $\log(1 + e^x)$ overflows at $x = 1000$ like section 1's formula. Write it with
#    `ad.custom_vjp` (the value $\max(x, 0) + \log(1 + e^{-|x|})$, the gradient $\sigma(x)$ as the
#    residual) and check it against `ad.numerical_gradient` at $x = \pm 3$ and for finiteness at $\pm 1000$.
# 2. **Gradient reversal.** The domain-adaptation trick (Ganin and Lempitsky, 2015) is the identity
#    forward and $-\lambda g$ backward. Write it like `clip_gradient`, with $\lambda$ in `nondiff_argnums`.
# 3. **A hook that counts.** Hook every node of `std`'s graph and print the order in which the
#    adjoints are completed. Compare it with the rows of `ad.trace_table(..., mode="reverse")`.
# 4. **tanh and ReLU.** Redo the vanishing-gradient plot with `ad.tanh` and `ad.relu` in place of
#    the sigmoid. What bound replaces the 1/4? How much does the gradient shrink over the 20 layers
#    now, and why does ReLU's shrink at all with orthogonal weights (count the active units)?
# 5. **Per-example Hessians.** Use `ad.vmap(ad.hessian(example_loss), in_axes=(None, 0, 0))` and
#    check one of them against $\sigma(z)(1 - \sigma(z))\,\mathbf{x}\mathbf{x}^\top$.
# 6. **Every other layer.** Checkpoint pairs of layers instead of single ones. What happens to the
#    peak memory and to the time?
