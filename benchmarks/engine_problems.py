"""Section 4 of ``benchmarks/engine.py``: problems a numerical user writes, beside PyTorch eager (issue 32).

Each problem: ``make`` builds its inputs from a seeded NumPy generator; ``ours`` writes the maths as
NumPy-style code on autodiff Tensors (``np.exp``, ``np.einsum``... dispatch to the engine's ops;
``ad.logsumexp``, which NumPy lacks); ``theirs`` writes it line for line with ``torch``, passed in:
torch is imported only in the worker (``engine.py --torch-worker``, a process without Numba).
Three times each, the best of several samples after a warm-up, torch's samples and ours in turns
(``engine_problems_run.py``), one thread on both sides (``torch.set_num_threads(1)`` there;
threadpoolctl and Numba's ``set_num_threads`` here): primal, no grad (Tensors not requiring grad /
``torch.no_grad()``); primal, recording (every input requires grad on both sides, no backward); value
and gradient (``ad.value_and_grad(f, argnums=all)`` / fresh leaves ``torch.from_numpy(a).requires_grad_()``,
forward, ``backward()``, the value and the ``.grad``s read back as arrays, as ours returns them).
Goals: gradient ratio ours / torch <= 1.0, primal <= 1.2. Inputs go to the worker in an .npz, its
gradients come back in another (never a pickle), and their largest difference from ours is printed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import autodiff as ad

# --- 1. Gaussian mixture log-likelihood (ADBench's GMM objective, no Wishart prior, no constant) -----------

def gmm_make(rng, n, d, k):
    args = dict(alphas=rng.normal(size=k), means=rng.normal(size=(k, d)), logdiag=0.1 * rng.normal(size=(k, d)),
                free=0.1 * rng.normal(size=(k, d, d)))
    return args, dict(X=rng.normal(size=(n, d)), eye=np.eye(d))


def gmm_ours(alphas, means, logdiag, free, *, X, eye):
    n = X.shape[0]
    L = np.exp(logdiag)[:, :, None] * eye + np.tril(free, -1)        # (K, d, d), lower triangular
    xc = X[:, None, :] - means[None]                                 # (n, K, d)
    Lx = np.einsum("kij,nkj->nki", L, xc)
    sq = np.sum(Lx ** 2, axis=2)                                     # (n, K)
    inner = alphas + np.sum(logdiag, axis=1) - 0.5 * sq
    return np.sum(ad.logsumexp(inner, axis=1)) - n * ad.logsumexp(alphas)


def gmm_torch(torch, alphas, means, logdiag, free, *, X, eye):
    n = X.shape[0]
    L = torch.exp(logdiag)[:, :, None] * eye + torch.tril(free, -1)
    xc = X[:, None, :] - means[None]
    Lx = torch.einsum("kij,nkj->nki", L, xc)
    sq = torch.sum(Lx ** 2, dim=2)
    inner = alphas + torch.sum(logdiag, dim=1) - 0.5 * sq
    return torch.sum(torch.logsumexp(inner, dim=1)) - n * torch.logsumexp(alphas, dim=0)


# --- 2. log-sum-exp, shifted by the max -------------------------------------------------------------------

def lse_make(rng, n):
    return dict(x=rng.normal(size=n)), {}


def lse_ours(x):
    m = np.max(x)
    return np.log(np.sum(np.exp(x - m))) + m


def lse_torch(torch, x):
    m = torch.max(x)
    return torch.log(torch.sum(torch.exp(x - m))) + m


# --- 3. RK4 on Lotka-Volterra: the state a (2,) Tensor, indexed and stacked -------------------------------

def ode_make(rng, steps):
    args = dict(params=np.array([1.5, 1.0, 1.0, 3.0]) + 0.05 * rng.normal(size=4),
                y0=np.array([1.0, 1.0]) + 0.05 * rng.normal(size=2))
    return args, dict(target=np.array([2.0, 0.5]), steps=steps, h=1.0 / steps)


def lotka_volterra_ours(y, p):
    a, b, c, d = p[0], p[1], p[2], p[3]
    return np.stack([a * y[0] - b * y[0] * y[1], c * y[0] * y[1] - d * y[1]])


def ode_ours(params, y0, *, target, steps, h):
    y = y0
    for _ in range(steps):
        k1 = lotka_volterra_ours(y, params)
        k2 = lotka_volterra_ours(y + h / 2 * k1, params)
        k3 = lotka_volterra_ours(y + h / 2 * k2, params)
        k4 = lotka_volterra_ours(y + h * k3, params)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return np.sum((y - target) ** 2)


def lotka_volterra_torch(torch, y, p):
    a, b, c, d = p[0], p[1], p[2], p[3]
    return torch.stack([a * y[0] - b * y[0] * y[1], c * y[0] * y[1] - d * y[1]])


def ode_torch(torch, params, y0, *, target, steps, h):
    y = y0
    for _ in range(steps):
        k1 = lotka_volterra_torch(torch, y, params)
        k2 = lotka_volterra_torch(torch, y + h / 2 * k1, params)
        k3 = lotka_volterra_torch(torch, y + h / 2 * k2, params)
        k4 = lotka_volterra_torch(torch, y + h * k3, params)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return torch.sum((y - target) ** 2)


# --- 4. Determinant by cofactor expansion along the first row (n! products) -------------------------------

def det_make(rng, n):
    return dict(A=rng.normal(size=(n, n))), {}


def det_ours(A):
    n = A.shape[0]
    if n == 1:
        return A[0, 0]
    total = 0.0
    for j in range(n):
        minor = np.concatenate([A[1:, :j], A[1:, j + 1:]], axis=1)
        total = total + (-1) ** j * A[0, j] * det_ours(minor)
    return total


def det_torch(torch, A):
    n = A.shape[0]
    if n == 1:
        return A[0, 0]
    total = 0.0
    for j in range(n):
        minor = torch.cat([A[1:, :j], A[1:, j + 1:]], dim=1)
        total = total + (-1) ** j * A[0, j] * det_torch(torch, minor)
    return total


def det_oracle(A):
    """The textbook gradient: d det(A) / dA = det(A) A^-T."""
    return [np.linalg.det(A) * np.linalg.inv(A).T]


# --- 5. Bundle adjustment (ADBench's BA objective), vectorised over the observations ----------------------

def ba_make(rng, cams, pts, obs):
    cameras = np.concatenate([0.1 * rng.normal(size=(cams, 3)), 0.1 * rng.normal(size=(cams, 3)),   # rot, center
                              1.0 + 0.1 * rng.random((cams, 1)), 0.01 * rng.normal(size=(cams, 2)),  # f, x0
                              0.01 * rng.normal(size=(cams, 2))], axis=1)                            # distortion
    points = np.concatenate([rng.uniform(-1, 1, (pts, 2)), rng.uniform(5, 10, (pts, 1))], axis=1)  # in front
    args = dict(cams=cameras, X=points, w=rng.uniform(0.5, 1.5, obs))
    cam_idx, pt_idx = rng.integers(0, cams, obs), rng.integers(0, pts, obs)
    return args, dict(feats=0.2 * rng.normal(size=(obs, 2)), cam_idx=cam_idx, pt_idx=pt_idx)


def ba_ours(cams, X, w, *, feats, cam_idx, pt_idx):
    c = cams[cam_idx]                                                # (m, 11): one camera per observation
    rot, center, f, x0, rad = c[:, 0:3], c[:, 3:6], c[:, 6:7], c[:, 7:9], c[:, 9:11]
    xc = X[pt_idx] - center
    theta = np.sqrt(np.sum(rot ** 2, axis=1, keepdims=True))        # Rodrigues: |rot| about rot / |rot|
    axis = rot / theta
    cos, sin = np.cos(theta), np.sin(theta)
    xr = xc * cos + np.cross(axis, xc) * sin + axis * (np.sum(axis * xc, axis=1, keepdims=True) * (1 - cos))
    proj = xr[:, 0:2] / xr[:, 2:3]
    rsq = np.sum(proj ** 2, axis=1, keepdims=True)
    distorted = proj * (1 + rad[:, 0:1] * rsq + rad[:, 1:2] * rsq * rsq)
    reproj = w[:, None] * (distorted * f + x0 - feats)
    return np.sum(reproj ** 2) + np.sum((1 - w * w) ** 2)


def ba_torch(torch, cams, X, w, *, feats, cam_idx, pt_idx):
    c = cams[cam_idx]
    rot, center, f, x0, rad = c[:, 0:3], c[:, 3:6], c[:, 6:7], c[:, 7:9], c[:, 9:11]
    xc = X[pt_idx] - center
    theta = torch.sqrt(torch.sum(rot ** 2, dim=1, keepdim=True))
    axis = rot / theta
    cos, sin = torch.cos(theta), torch.sin(theta)
    xr = xc * cos + torch.linalg.cross(axis, xc) * sin + axis * (torch.sum(axis * xc, dim=1, keepdim=True) * (1 - cos))
    proj = xr[:, 0:2] / xr[:, 2:3]
    rsq = torch.sum(proj ** 2, dim=1, keepdim=True)
    distorted = proj * (1 + rad[:, 0:1] * rsq + rad[:, 1:2] * rsq * rsq)
    reproj = w[:, None] * (distorted * f + x0 - feats)
    return torch.sum(reproj ** 2) + torch.sum((1 - w * w) ** 2)


# --- 6. Least squares in a Vandermonde basis; x held as a Tensor, as torch users hold torch tensors -------

def ls_make(rng, n, N):
    x = rng.uniform(-1, 1, n)
    return dict(w=0.1 * rng.normal(size=N)), dict(xt=x, y=np.sin(3 * x) + 0.1 * rng.normal(size=n), N=N)


def ls_ours(w, *, xt, y, N):
    A = np.vander(xt, N)
    return np.sum((A @ w - y) ** 2)


def ls_torch(torch, w, *, xt, y, N):
    A = torch.vander(xt, N)
    return torch.sum((A @ w - y) ** 2)


# --- 7. A tiny function: NumPy's dispatch (np.tanh on a Tensor) against autodiff's own names ------------

def tiny_make(rng, n):
    return dict(x=rng.normal(size=n)), {}


def tiny_numpy(x):
    return np.sum(np.tanh(x) * 2 + x)


def tiny_autodiff(x):
    return ad.sum(ad.tanh(x) * 2 + x)


def tiny_torch(torch, x):
    return torch.sum(torch.tanh(x) * 2 + x)


@dataclass
class Problem:
    name: str
    title: str             # with {size} fields
    make: Callable
    ours: Callable
    theirs: Callable
    full: dict
    quick: dict
    repeats: int = 7
    tensor_consts: tuple = ()          # constants the user holds as (non-grad) Tensors on our side
    oracle: Callable | None = None     # a textbook gradient beside torch's
    group: str = ""


PROBLEMS = [
    Problem("gmm", "Gaussian mixture log-likelihood, n={n}, d={d}, K={k}; grad wrt alphas, means, logdiag, free",
            gmm_make, gmm_ours, gmm_torch, dict(n=2000, d=32, k=25), dict(n=20, d=3, k=2)),
    Problem("logsumexp", "m = max(x); log(sum(exp(x - m))) + m on {n:,} float64", lse_make, lse_ours, lse_torch,
            dict(n=1_000_000), dict(n=1000)),
    Problem("ode", "RK4, {steps} steps of Lotka-Volterra (y[0], y[1], stack); grad wrt params (4), y0 (2)",
            ode_make, ode_ours, ode_torch, dict(steps=100), dict(steps=5)),
    Problem("det", "determinant by cofactor expansion, {n}x{n} (slices + concatenate); grad wrt A",
            det_make, det_ours, det_torch, dict(n=7), dict(n=4), repeats=3, oracle=det_oracle),
    Problem("ba", "bundle adjustment, {cams} cameras, {pts:,} points, {obs:,} observations; grad wrt all three",
            ba_make, ba_ours, ba_torch, dict(cams=50, pts=10_000, obs=50_000), dict(cams=3, pts=20, obs=50)),
    Problem("vander", "least squares, A = np.vander(xt, {N}) on {n:,} points; grad wrt w (the {N} weights)",
            ls_make, ls_ours, ls_torch, dict(n=100_000, N=16), dict(n=200, N=4), tensor_consts=("xt",)),
    Problem("tiny-numpy", "sum(np.tanh(x) * 2 + x) on a ({n},) Tensor (NumPy's dispatch)", tiny_make, tiny_numpy,
            tiny_torch, dict(n=3), dict(n=3), group="tiny"),
    Problem("tiny-autodiff", "sum(ad.tanh(x) * 2 + x) on a ({n},) Tensor (autodiff's names)", tiny_make,
            tiny_autodiff, tiny_torch, dict(n=3), dict(n=3), group="tiny"),
]
NAMES = sorted({p.name for p in PROBLEMS} | {p.group for p in PROBLEMS if p.group})


def select(only):
    """The problems named (a problem's name or its group's, comma-separated), in the table's order."""
    wanted = {w.strip() for w in only.split(",") if w.strip()} if only else set(NAMES)
    unknown = wanted - set(NAMES)
    if unknown:
        raise SystemExit(f"--only: no problem named {', '.join(sorted(unknown))}; the names: {', '.join(NAMES)}")
    return [p for p in PROBLEMS if p.name in wanted or p.group in wanted]


def build(problem, quick, seed):
    """(size, args, array constants, number constants) of a problem, from its own seeded generator."""
    size = problem.quick if quick else problem.full
    args, consts = problem.make(np.random.default_rng(seed), **size)
    arrays = {k: v for k, v in consts.items() if isinstance(v, np.ndarray)}
    return size, args, arrays, {k: v for k, v in consts.items() if k not in arrays}
