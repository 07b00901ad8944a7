"""Winograd's larger tile, F(4x4, 3x3): its matrices and its tile transforms, for kernels.conv2d.winograd.

A 4x4 output tile from a 6x6 input tile takes 36 multiplications instead of 144 (F(2x2, 3x3): 64
for the same outputs), so the products, which are most of the work, shrink by 1.78x. The price is
in the matrices: their entries reach 5 and 8 (B^T) and 1/12 (G), and float32's error grows with them
(kernels.conv2d.winograd states and tests the bound).

The matrices are Toom-Cook's, built exactly here with fractions from the points at which the
polynomials are evaluated: 0, 1, -1, 1/2, -1/2 and infinity. Halves keep the entries of A^T exact
powers of two; with 2 and -2 instead A^T holds 8, and float32's error measured a little larger. For
F(m, r) (n = m + r - 1 points), y[i] = sum_k g[k] d[i + k] is

    y = A^T [(G g) * (B^T d)]       A^T[i, j] = p_j^i (m, n), G[j, k] = p_j^k / s_j (n, r),
                                     B^T = s * (the inverse of the evaluation matrix)^T (n, n)

the point at infinity taking the leading coefficient, and s_j the least multiple that makes row j of
B^T integers. In two dimensions, as for F(2x2, 3x3): Y = A^T [(G w G^T) * (B^T d B)] A.

The transforms are vector loops over long runs of entries, as kernels/conv2d/winograd_transforms.py's for
F(2x2, 3x3), written from the matrices' factored rows (B^T's second as 4(d3 + d4) - (d1 + d2), and so
on) with at most two store streams a loop, which LLVM vectorises; the tests hold them to the matrices.
The input image is laid out channels last with its columns in four phases (s % 4), so that column q of
every tile of a row is one contiguous run. The output tiles are winograd_transforms.output_tiles's.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .._cache import njit
from .winograd_transforms import CHUNK, CHUNK_ROW

#: The evaluation points (and infinity).
POINTS = (0, 1, -1, Fraction(1, 2), Fraction(-1, 2))


def toom_cook(points, m, r):
    """(A^T, G, B^T) of F(m, r) for the ``points`` (n - 1 of them, n = m + r - 1) and infinity, as lists of
    Fractions: y = A^T [(G g) * (B^T d)] is y[i] = sum over k < r of g[k] d[i + k], i < m.

    >>> at, g, bt = toom_cook((0, 1, -1), 2, 3)               # F(2, 3): Lavin and Gray's, up to signs
    >>> [[int(v) for v in row] for row in bt]
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]]
    """
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (m, r)):
        raise ValueError(f"m and r: expected integers >= 1, got m={m!r}, r={r!r}")
    n = m + r - 1
    pts = [Fraction(p) for p in points]
    if len(pts) != n - 1 or len(set(pts)) != n - 1:
        raise ValueError(f"points: F({m}, {r}) needs {n - 1} distinct points, got {tuple(points)}")
    evaluation = [[p ** i for i in range(n)] for p in pts] + [[Fraction(int(i == n - 1)) for i in range(n)]]
    coefficients = _inverse(evaluation)                    # the polynomial's coefficients from its values
    at = [[p ** i for p in pts] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = [[p ** k for k in range(r)] for p in pts] + [[Fraction(int(k == r - 1)) for k in range(r)]]
    bt = [[coefficients[i][j] for i in range(n)] for j in range(n)]
    for j in range(n):
        scale = math.lcm(*(v.denominator for v in bt[j]))
        bt[j] = [v * scale for v in bt[j]]
        g[j] = [v / scale for v in g[j]]
    return at, g, bt


def _inverse(matrix):
    """The inverse of a square matrix of Fractions (Gauss-Jordan, exact)."""
    n = len(matrix)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(matrix)]
    for c in range(n):
        pivot = next(r for r in range(c, n) if rows[r][c] != 0)
        rows[c], rows[pivot] = rows[pivot], rows[c]
        rows[c] = [v / rows[c][c] for v in rows[c]]
        for r in range(n):
            if r != c and rows[r][c] != 0:
                rows[r] = [a - rows[r][c] * b for a, b in zip(rows[r], rows[c])]
    return [row[n:] for row in rows]


_EXACT = toom_cook(POINTS, 4, 3)
#: A^T (4, 6), G (6, 3) and B^T (6, 6) of F(4, 3), float64 (G's sixths and twelfths rounded).
AT, G, BT = (np.array([[float(v) for v in row] for row in matrix]) for matrix in _EXACT)


@njit(cache=True)
def _edge(s, a, b, c, out, o, n):
    """out[o:o+n] = s[a:..] - 5 s[b:..] + 4 s[c:..] (rows 0 and 5 of B^T), 1-D arrays."""
    a, b, c, o = np.uint64(a), np.uint64(b), np.uint64(c), np.uint64(o)
    four, five = s.dtype.type(4), s.dtype.type(5)            # in the data's type (an int literal is float64's)
    for i in range(np.uint64(n)):
        out[o + i] = s[a + i] - five * s[b + i] + four * s[c + i]


@njit(cache=True)
def _middle(s, a1, a2, a3, a4, out, o1, o2, o3, o4, n):
    """Rows 1 to 4 of B^T from runs 1 to 4 (1-D arrays): 4(d3 + d4) - (d1 + d2), (d1 - d2) - 4(d3 - d4),
    4(d1 - d3) + 8(d2 - d4) and 8(d2 - d4) - 4(d1 - d3); two loops of two store streams each."""
    a1, a2, a3, a4 = np.uint64(a1), np.uint64(a2), np.uint64(a3), np.uint64(a4)
    o1, o2, o3, o4 = np.uint64(o1), np.uint64(o2), np.uint64(o3), np.uint64(o4)
    four, eight = s.dtype.type(4), s.dtype.type(8)
    for i in range(np.uint64(n)):
        d1, d2, d3, d4 = s[a1 + i], s[a2 + i], s[a3 + i], s[a4 + i]
        out[o1 + i] = four * (d3 + d4) - (d1 + d2)
        out[o2 + i] = (d1 - d2) - four * (d3 - d4)
    for i in range(np.uint64(n)):
        u, w = s[a1 + i] - s[a3 + i], s[a2 + i] - s[a4 + i]
        out[o3 + i] = four * u + eight * w
        out[o4 + i] = eight * w - four * u


@njit(cache=True)
def _bt(s, a, step, shift, out, o, o_step, n):
    """B^T d for the runs d_q of s at a + (q % 4)*step + (q // 4)*shift (q < 6), into out[o + j*o_step:..] (j < 6)."""
    _edge(s, a, a + 2 * step, a + shift, out, o, n)
    _middle(s, a + step, a + 2 * step, a + 3 * step, a + shift, out, o + o_step, o + 2 * o_step, o + 3 * o_step,
            o + 4 * o_step, n)
    _edge(s, a + step, a + 3 * step, a + step + shift, out, o + 5 * o_step, n)


@njit(cache=True)
def _at(s, a, step, out, o, o_step, n):
    """A^T m for the runs m_q of s at a + q*step (q < 6), into out[o + j*o_step:..] (j < 4): with s12 = m1 + m2,
    s34 = m3 + m4, d12 = m1 - m2, d34 = m3 - m4: m0 + s12 + s34, d12 + d34/2, s12 + s34/4, d12 + d34/8 + m5."""
    m0, m1, m2, m3, m4, m5 = (np.uint64(a), np.uint64(a + step), np.uint64(a + 2 * step), np.uint64(a + 3 * step),
                              np.uint64(a + 4 * step), np.uint64(a + 5 * step))
    y0, y1, y2, y3 = np.uint64(o), np.uint64(o + o_step), np.uint64(o + 2 * o_step), np.uint64(o + 3 * o_step)
    half, quarter, eighth = s.dtype.type(0.5), s.dtype.type(0.25), s.dtype.type(0.125)
    for i in range(np.uint64(n)):
        s12, s34 = s[m1 + i] + s[m2 + i], s[m3 + i] + s[m4 + i]
        out[y0 + i] = s[m0 + i] + s12 + s34
        out[y2 + i] = s12 + quarter * s34
    for i in range(np.uint64(n)):
        d12, d34 = s[m1 + i] - s[m2 + i], s[m3 + i] - s[m4 + i]
        out[y1 + i] = d12 + half * d34
        out[y3 + i] = d12 + eighth * d34 + s[m5 + i]


@njit(cache=True)
def _a(s, a, step, out, o, o_step, n):
    """A t for the runs t_q of s at a + q*step (q < 4), into out[o + j*o_step:..] (j < 6): t0, (t0 + t2) +- (t1 + t3),
    (t0 + t2/4) +- (t1/2 + t3/8), t3."""
    t0, t1, t2, t3 = np.uint64(a), np.uint64(a + step), np.uint64(a + 2 * step), np.uint64(a + 3 * step)
    u0, u1, u2, u3, u4, u5 = (np.uint64(o), np.uint64(o + o_step), np.uint64(o + 2 * o_step), np.uint64(o + 3 * o_step),
                              np.uint64(o + 4 * o_step), np.uint64(o + 5 * o_step))
    half, quarter, eighth = s.dtype.type(0.5), s.dtype.type(0.25), s.dtype.type(0.125)
    for i in range(np.uint64(n)):
        out[u0 + i] = s[t0 + i]
        out[u5 + i] = s[t3 + i]
    for i in range(np.uint64(n)):
        e, q = s[t0 + i] + s[t2 + i], s[t1 + i] + s[t3 + i]
        out[u1 + i] = e + q
        out[u2 + i] = e - q
    for i in range(np.uint64(n)):
        e, q = s[t0 + i] + quarter * s[t2 + i], half * s[t1 + i] + eighth * s[t3 + i]
        out[u3 + i] = e + q
        out[u4 + i] = e - q


@njit(cache=True)
def input_tiles(xt, th, tw, c_in, r, v, row, base):
    """v[(6i + j)*row + base + (ti*tw + tj)*C + c] = (B^T d B)[i, j] for the 6x6 tile d of channel c at
    (ti, tj) of xt (winograd_transforms.channels_last's with 4 phases of tw + 1 columns); r: scratch of
    6 rows of xt's (24 * (tw + 1) * C)."""
    part = (tw + 1) * c_in
    span = 4 * part
    n = tw * c_in
    for ti in range(th):
        _bt(xt, 4 * ti * span, span, 4 * span, r, 0, span, span)        # B^T d, down the rows
        for i in range(6):                                               # then times B, along the row
            _bt(r, i * span, part, c_in, v, 6 * i * row + base + ti * n, row, n)


@njit(cache=True)
def inverse(m, row, size, st, y, y_row):
    """y (16, y_row), flat: y[4i + j, col] = (A^T M[:, col] A)[i, j] for the columns col < size of m (36 rows
    of ``row`` entries, flat, row 6a + b for M's entry (a, b)). st: scratch of 24 * CHUNK_ROW entries."""
    for lo in range(0, size, CHUNK):
        n = min(CHUNK, size - lo)
        for b in range(6):                                   # A^T down the columns: st row 6i + b
            _at(m, b * row + lo, 6 * row, st, b * CHUNK_ROW, 6 * CHUNK_ROW, n)
        for i in range(4):                                   # then along the rows
            _at(st, 6 * i * CHUNK_ROW, CHUNK_ROW, y, 4 * i * y_row + lo, y_row, n)


@njit(cache=True, fastmath={"reassoc"})
def grad_quarters(src, th, tw, p, p_row, base, width, db):
    """p (16, p_row), flat: p[4a + b, base + f*width + ti*tw + tj] = src[f, 4ti + a, 4tj + b], 0 past src
    (F, Ho, Wo; one image's g, contiguous): the 16 entries of each 4x4 tile of g, apart; and db[f] += the
    sum of src[f] (``reassoc`` vectorises that sum, in an order fixed at compile time)."""
    f_out, ho, wo = src.shape
    flat, plane = src.reshape(-1), ho * wo
    stride, two, three = np.uint64(p_row), np.uint64(2), np.uint64(3)
    for f in range(f_out):
        at = f * plane
        total = db[f]
        for i in range(plane):
            total += flat[at + i]
        db[f] = total
        for h in range(4 * th):                 # row h of g: a = h % 4 of the tiles ti = h // 4, 0 past g
            dst = np.uint64((h % 4) * 4 * p_row + base + f * width + (h // 4) * tw)
            line, inside = np.uint64(at + h * wo), np.uint64(wo if h < ho else 0)
            for w in range(inside):
                p[dst + (w & three) * stride + (w >> two)] = flat[line + w]
            for w in range(inside, np.uint64(4 * tw)):
                p[dst + (w & three) * stride + (w >> two)] = 0


@njit(cache=True)
def grad_tiles(p, p_row, size, st, gg, row):
    """gg (36, row), flat: gg[6i + j, col] = (A t A^T)[i, j] for the 4x4 tile t of column col < size of p
    (grad_quarters's, rows p_row apart). st: scratch of 24 * CHUNK_ROW entries."""
    for lo in range(0, size, CHUNK):
        n = min(CHUNK, size - lo)
        for b in range(4):                  # A t, column b of t: st rows 4i + b
            _a(p, b * p_row + lo, 4 * p_row, st, b * CHUNK_ROW, 4 * CHUNK_ROW, n)
        for i in range(6):                  # then times A^T along the row
            _a(st, 4 * i * CHUNK_ROW, CHUNK_ROW, gg, 6 * i * row + lo, row, n)
