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
# # Lesson 4: back-propagation as a product of Jacobians
#
# *Follows Tomasi, "Training Convolutional Neural Networks", section 3 (eqs. 2-5 and Algorithm 1)
# and the appendix on the Jacobians of ReLU and ReLU + max-pooling layers.*
#
# A network is a chain of layers, $\mathbf{x}^{(k)} = f^{(k)}(\mathbf{x}^{(k-1)}, \mathbf{w}^{(k)})$,
# followed by a loss $\ell$. The chain rule turns its gradient into products of **Jacobian
# matrices**, one pair per layer:
#
# $$\frac{\partial \ell}{\partial \mathbf{w}^{(k)}} = \frac{\partial \ell}{\partial \mathbf{x}^{(k)}}
#   \frac{\partial \mathbf{x}^{(k)}}{\partial \mathbf{w}^{(k)}} \quad (2) \qquad
#   \frac{\partial \ell}{\partial \mathbf{x}^{(k-1)}} = \frac{\partial \ell}{\partial \mathbf{x}^{(k)}}
#   \frac{\partial \mathbf{x}^{(k)}}{\partial \mathbf{x}^{(k-1)}} \quad (3) \qquad
#   \frac{\partial \ell}{\partial \mathbf{x}^{(K)}} = \frac{\partial \ell}{\partial \mathbf{p}} \quad (4)$$
#
# (derivatives of a scalar with respect to a vector are *row* vectors). In this lesson we write
# every Jacobian of a tiny network out in NumPy, as the appendix gives them, run Algorithm 1 with
# them, and hold the result to the engine's reverse sweep. Then we do the same for the appendix's
# ReLU + max-pooling layer.
#
# Pictures go to `tutorials/_output/diff_04_backprop_jacobians/` (or `$TUTORIAL_OUTPUT`).

# %%
import os
import sys
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

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "diff_04_backprop_jacobians"
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. A tiny network, Tomasi's way
#
# Three layers ($K = 3$, as in Tomasi's Fig. 2): two ReLU layers and a soft-max layer, on inputs
# with $d_0 = 3$ entries and $e = 3$ classes. Each layer multiplies its input, extended with a 1,
# by a weight matrix that holds the biases in its last column:
# $\mathbf{a}^{(k)} = W^{(k)} \tilde{\mathbf{x}}^{(k-1)}$ with
# $\tilde{\mathbf{x}} = [\mathbf{x}; 1]$, then applies its activation. The loss is the cross-entropy
# $\ell(y, \mathbf{p}) = -\log p_y$.

# %%
DIMS = [3, 4, 4, 3]   # d_0 (input), d_1, d_2, and e = d_3 (classes)
K = len(DIMS) - 1
rng = np.random.default_rng(4)
weights = [rng.normal(0, 0.8, (DIMS[k + 1], DIMS[k] + 1)) for k in range(K)]   # W^(1), W^(2), W^(3)


def tilde(x):
    """x extended with a 1, so that the bias is the last column of W."""
    return np.append(x, 1.0)


def softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


def layer(k, W, x_prev):
    """x^(k) = f^(k)(W^(k) x~^(k-1)): ReLU for the hidden layers, soft-max for the last (k counts from 0)."""
    a = W @ tilde(x_prev)
    return softmax(a) if k == K - 1 else np.maximum(a, 0)


# %% [markdown]
# ## 2. The Jacobians of one layer (eq. 5 and the appendix)
#
# For a layer whose activation acts point by point, the appendix gives
#
# $$\frac{\partial x_i^{(k)}}{\partial W_{qj}^{(k)}} = \delta_{iq}\, \frac{df^{(k)}}{da_i^{(k)}}\, \tilde{x}_j^{(k-1)}
# \qquad \frac{\partial x_i^{(k)}}{\partial x_j^{(k-1)}} = \frac{df^{(k)}}{da_i^{(k)}}\, W_{ij}^{(k)} ,$$
#
# with $df/da = 1$ for $a \ge 0$ and 0 otherwise for the ReLU. The Kronecker delta says that
# $x_i$ depends only on row $i$ of $W$. For the weights we flatten $W$ row by row, so that
# $\partial \mathbf{x}^{(k)} / \partial \mathbf{w}^{(k)}$ is a $d_k \times d_k(d_{k-1} + 1)$ matrix.
# The soft-max is not point by point: $p_i$ depends on every $a_q$, through the soft-max Jacobian
# $S = \partial \mathbf{p} / \partial \mathbf{a} = \operatorname{diag}(\mathbf{p}) - \mathbf{p}\mathbf{p}^\top$
# (derived in lesson 5). The same formulas hold with the diagonal matrix of $df/da_i$ replaced by $S$.

# %%
def layer_jacobians(k, W, x_prev):
    """(dx^(k)/dx^(k-1), dx^(k)/dw^(k)) of layer k at its stored input, as Tomasi's matrices (eq. 5)."""
    a = W @ tilde(x_prev)
    if k == K - 1:
        p = softmax(a)
        D = np.diag(p) - np.outer(p, p)              # dp_i/da_q: the soft-max Jacobian S
    else:
        D = np.diag((a >= 0).astype(float))         # dx_i/da_q = delta_iq f'(a_i): the ReLU's
    J_x = D @ W[:, :-1]                             # dx_i/dx_j = sum_q D_iq W_qj (the bias column has no x_j)
    J_W = np.einsum("iq,j->iqj", D, tilde(x_prev)).reshape(len(a), -1)   # dx_i/dW_qj = D_iq x~_j
    return J_x, J_W


# %% [markdown]
# Before using them, we check each layer's two Jacobians against the engine's: the same layer
# written with autodiff operations, and `ad.jacobian` of it with respect to its input and to its
# weights.

# %%
def ad_layer(k, W, x_prev):
    """Layer k written with the engine's operations."""
    a = W @ ad.concatenate([x_prev, np.ones(1)])
    return ad.softmax(a) if k == K - 1 else ad.relu(a)


x0 = rng.normal(size=DIMS[0])
xs = [x0]
for k in range(K):
    xs.append(layer(k, weights[k], xs[-1]))
    a = weights[k] @ tilde(xs[k])
    assert np.all(np.abs(a) > 1e-9)  # no activation sits on the ReLU's kink, where conventions differ

for k in range(K):
    J_x, J_W = layer_jacobians(k, weights[k], xs[k])
    engine_J_x = ad.jacobian(lambda v: ad_layer(k, weights[k], v))(xs[k])
    engine_J_W = ad.jacobian(lambda W: ad_layer(k, W, xs[k]))(weights[k])    # shape (d_k, d_k, d_{k-1} + 1)
    np.testing.assert_allclose(J_x, engine_J_x, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(J_W, engine_J_W.reshape(J_W.shape), rtol=1e-13, atol=1e-15)
    print(f"layer {k + 1}: dx/dx_prev {J_x.shape}, dx/dw {J_W.shape}: equal to the engine's")

# %% [markdown]
# ## 3. Algorithm 1: back-propagation
#
# Tomasi's Algorithm 1 runs the forward pass, storing every $\mathbf{x}^{(k)}$, then starts from
# $\mathbf{g} = \partial \ell / \partial \mathbf{p}$ (eq. 4; for $\ell = -\log p_y$ it is
# $-1/p_y$ at position $y$ and 0 elsewhere) and walks back through the layers: eq. 2 gives the
# layer's weight gradient, eq. 3 moves $\mathbf{g}$ one layer down. Over a mini-batch it keeps a
# running average of the per-sample gradients.
#
# One detail: the algorithm as printed loops over $k = K, \dots, 2$, which would never produce
# $\partial \ell / \partial \mathbf{w}^{(1)}$. Eq. 2 holds for $k = K, \dots, 1$ and eq. 3 is only
# needed for $k \ge 2$, so we run eq. 2 down to layer 1 and skip the last step of eq. 3.

# %%
def backprop(samples, weights):
    """Algorithm 1: the average loss and its gradient with respect to every W^(k)."""
    grad_L = [np.zeros_like(W) for W in weights]
    L = 0.0
    for n, (x_n, y_n) in enumerate(samples, start=1):
        xs = [x_n]
        for k in range(K):                                   # forward propagation, storing x^(k)
            xs.append(layer(k, weights[k], xs[-1]))
        p = xs[-1]
        g = np.zeros_like(p)
        g[y_n] = -1 / p[y_n]                                 # eq. 4: dl/dp for l = -log p_y
        grad_l = [None] * K
        for k in reversed(range(K)):                         # back-propagation, k = K, ..., 1
            J_x, J_W = layer_jacobians(k, weights[k], xs[k])
            grad_l[k] = (g @ J_W).reshape(weights[k].shape)  # eq. 2
            if k > 0:
                g = g @ J_x                                  # eq. 3
        grad_L = [((n - 1) * G + G_n) / n for G, G_n in zip(grad_L, grad_l)]   # running average
        L = ((n - 1) * L - np.log(p[y_n])) / n
    return L, grad_L


samples = [(rng.normal(size=DIMS[0]), int(rng.integers(DIMS[-1]))) for _ in range(5)]
L, grads = backprop(samples, weights)
print(f"mini-batch of {len(samples)}: L_T = {L:.6f}")

# %% [markdown]
# The engine computes the same risk, $L_T = \frac{1}{N}\sum_n \ell_n$ (eq. 1), by recording the
# whole mini-batch as one graph and sweeping it once in reverse. Its gradients equal ours:

# %%
W_tensors = [ad.Tensor(W, requires_grad=True, name=f"W{k + 1}") for k, W in enumerate(weights)]


def ad_network(ws, x):
    for k, W in enumerate(ws):
        x = ad_layer(k, W, x)
    return x


risk = sum(-ad.log(ad_network(W_tensors, x_n)[y_n]) for x_n, y_n in samples) / len(samples)
risk.backward()
assert abs(risk.item() - L) <= 1e-14 * abs(L)
for k, (W, G) in enumerate(zip(W_tensors, grads)):
    np.testing.assert_allclose(W.grad, G, rtol=1e-12, atol=1e-15)
    print(f"dL/dW^({k + 1}): Algorithm 1 and the engine agree ({G.size} entries)")

# %% [markdown]
# ## 4. The whole chain, and why nobody forms these matrices
#
# Unrolling eq. 3 shows that the gradient with respect to the input is a product of all the
# Jacobians, in the order of the layers reversed. For one sample the shapes chain up as
# $(1 \times 3)(3 \times 4)(4 \times 4)(4 \times 3)$:

# %%
x_n, y_n = samples[0]
xs = [x_n]
for k in range(K):
    xs.append(layer(k, weights[k], xs[-1]))
row = np.zeros(DIMS[-1])
row[y_n] = -1 / xs[-1][y_n]
jacobians = [layer_jacobians(k, weights[k], xs[k]) for k in range(K)]
chain = row @ jacobians[2][0] @ jacobians[1][0] @ jacobians[0][0]
engine = ad.grad(lambda v: -ad.log(ad_network(weights, v)[y_n]))(x_n)
np.testing.assert_allclose(chain, engine, rtol=1e-12, atol=1e-15)
print("dl/dx^(0) =", np.round(chain, 6), "(the product of the Jacobians; the engine agrees)")
assert np.abs(chain).max() > 1e-3  # a live path through the network: the check is not 0 == 0

# %% [markdown]
# The weight Jacobians are mostly zeros. Because of the Kronecker delta, $\partial\mathbf{x}/\partial\mathbf{w}$
# of a ReLU layer has at most $d_{k-1} + 1$ nonzeros per row out of $d_k(d_{k-1} + 1)$, and its
# product with $\mathbf{g}$ collapses to an outer product:
#
# $$\mathbf{g}\,\frac{\partial \mathbf{x}^{(k)}}{\partial \mathbf{w}^{(k)}} = \left(\mathbf{g} \odot f'(\mathbf{a}^{(k)})\right) \tilde{\mathbf{x}}^{(k-1)\top}$$
#
# That is what real code computes (and what the engine's `matmul` rule does): a vector-Jacobian
# product, never the Jacobian. As Tomasi says, "in practice, the matrices would be very sparse, and
# convolutions and explicit loops over appropriate indices are used instead".

# %%
k = 1                                              # layer 2, a ReLU layer
J_x, J_W = jacobians[k]
g_k = row @ jacobians[2][0]                        # dl/dx^(2)
a = weights[k] @ tilde(xs[k])
outer = np.outer(g_k * (a >= 0), tilde(xs[k]))
np.testing.assert_allclose((g_k @ J_W).reshape(outer.shape), outer, rtol=1e-13, atol=1e-15)
nonzero_fraction = np.count_nonzero(J_W) / J_W.size
print(f"dx^(2)/dw^(2) is {J_W.shape[0]} x {J_W.shape[1]}: {np.count_nonzero(J_W)} of {J_W.size} entries nonzero")
assert np.count_nonzero(J_W) <= DIMS[k + 1] * (DIMS[k] + 1)   # at most one row of W per output
assert nonzero_fraction <= 1 / DIMS[k + 1]

fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), gridspec_kw={"width_ratios": [3, 4, 4, 20]})
pictures = [(jacobians[0][0], "dx(1)/dx(0)"), (jacobians[1][0], "dx(2)/dx(1)"), (jacobians[2][0], "dp/dx(2)"),
            (jacobians[1][1], "dx(2)/dw(2)  (rows of W laid end to end)")]
for ax, (M, title) in zip(axes, pictures):
    limit = np.abs(M).max() or 1.0
    ax.imshow(M, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Per-layer Jacobians of the tiny network for one sample (red > 0, blue < 0, pale grey = 0)", fontsize=10)
fig.tight_layout()
show_figure(fig, OUT / "jacobians.svg")

# %% [markdown]
# ## 5. The appendix: ReLU followed by max-pooling
#
# With max-pooling after the ReLU, output $i$ is the largest activation in a window $P(i)$:
# $p_i = \max_{q \in P(i)} h(a_q)$. Only the winner $\hat q$ matters, so
#
# $$\frac{\partial p_i}{\partial W_{qj}} = \delta_{q\hat q}\, \frac{df}{da_{\hat q}}\, \tilde{x}_j \qquad
# \frac{\partial p_i}{\partial x_j} = \frac{df}{da_{\hat q}}\, W_{\hat q j} .$$
#
# Our layer maps $d = 3$ inputs to 16 activations, viewed as a $4 \times 4$ map, and pools $2 \times 2$
# windows into 4 outputs. We make the last window "dead" (all four activations negative) on
# purpose: its maximum is a tie between zeros, and Tomasi's footnote says to pick any of them. Since
# $df/da = 0$ there, the choice does not matter: that row of both Jacobians is zero.

# %%
d = 3
W_pool = rng.normal(0, 1, (16, d + 1))
x_pool = rng.normal(size=d)
WINDOWS = [[4 * (2 * R + r) + 2 * C + c for r in range(2) for c in range(2)] for R in range(2) for C in range(2)]
W_pool[WINDOWS[3], -1] = -10.0    # a large negative bias: the last window's units never fire


def relu_maxpool(W, x):
    """NumPy: 16 ReLU activations as a 4x4 map, max-pooled over 2x2 windows: 4 outputs."""
    h = np.maximum(W @ tilde(x), 0)
    return np.array([h[window].max() for window in WINDOWS])


def relu_maxpool_jacobians(W, x):
    """The appendix's Jacobians, with q^ the winner of each window (the first one at a tie)."""
    a = W @ tilde(x)
    h = np.maximum(a, 0)
    J_W = np.zeros((len(WINDOWS),) + W.shape)
    J_x = np.zeros((len(WINDOWS), len(x)))
    for i, window in enumerate(WINDOWS):
        q_hat = window[int(np.argmax(h[window]))]
        f_prime = float(a[q_hat] >= 0)
        J_W[i, q_hat, :] = f_prime * tilde(x)     # delta_{q q^} f'(a_q^) x~_j
        J_x[i, :] = f_prime * W[q_hat, :-1]       # f'(a_q^) W_{q^ j}
    return J_x, J_W


def ad_relu_maxpool(W, x):
    h = ad.relu(W @ ad.concatenate([x, np.ones(1)]))
    windows = ad.reshape(h, (2, 2, 2, 2))          # (R, r, C, c): row 2R + r, column 2C + c
    return ad.reshape(ad.max(windows, axis=(1, 3)), (4,))


J_x, J_W = relu_maxpool_jacobians(W_pool, x_pool)
np.testing.assert_allclose(ad_relu_maxpool(W_pool, x_pool), relu_maxpool(W_pool, x_pool), rtol=1e-15)
np.testing.assert_allclose(J_x, ad.jacobian(lambda v: ad_relu_maxpool(W_pool, v))(x_pool), rtol=1e-13, atol=1e-15)
np.testing.assert_allclose(J_W, ad.jacobian(lambda W: ad_relu_maxpool(W, x_pool))(W_pool), rtol=1e-13, atol=1e-15)
assert not J_x[3].any() and not J_W[3].any()                     # the dead window
assert all(np.count_nonzero(J_W[i].any(axis=1)) == 1 for i in range(3))   # one row of W per live window
print("ReLU + max-pool: the appendix's Jacobians equal the engine's; the dead window's rows are zero")
print("the row of W that receives gradient, per live window:", [int(np.flatnonzero(J_W[i].any(axis=1))[0])
                                                                for i in range(3)])

# %% [markdown]
# A note on conventions. At $a = 0$ the ReLU has no derivative; Tomasi takes $df/da = 1$ there,
# the engine (like PyTorch and JAX) takes 0. Both are valid *sub-gradients*, and the choice only
# matters on a set of measure zero, which is why we checked above that no activation was exactly 0.

# %%
assert ad.grad(ad.relu)(0.0) == 0.0 and ad.grad(ad.relu)(1e-300) == 1.0

# %% [markdown]
# ## Exercises
#
# 1. **Bias as its own vector.** Rewrite `layer_jacobians` for $\mathbf{a} = W\mathbf{x} + \mathbf{b}$
#    with a separate bias. What is $\partial \mathbf{x}^{(k)}/\partial \mathbf{b}^{(k)}$, and what
#    does $\mathbf{g}$ times it simplify to?
# 2. **Forward instead.** Multiply the Jacobians of section 4 from the right (starting with
#    $J^{(1)}$) instead of from the left. You get the full $3 \times 3$ Jacobian
#    $\partial\mathbf{p}/\partial\mathbf{x}^{(0)}$ first. Count the multiplications both ways for
#    a network with $d_k = 1000$ in every layer.
# 3. **Tanh layers.** Replace the ReLU with tanh, update `layer_jacobians` ($f' = 1 - f^2$), and
#    re-run the checks.
# 4. **Overlapping windows.** Pool 3x3 windows with stride 1 over the 4x4 map. Which rows of $W$
#    can now receive gradient from two outputs, and how do their contributions combine in $\mathbf{g} J$?
# 5. **Tomasi's loop.** Run Algorithm 1 exactly as printed ($k = K, \dots, 2$): which gradient is
#    missing, and what would SGD then do to $W^{(1)}$?
