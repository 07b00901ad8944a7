"""conv2d: the NumPy reference against a direct sum and the adjoint identities; the Numba CPU and the
numba.cuda kernels (in the simulator unless a GPU is asked for) against the reference; checks at the
boundary; dispatch."""
import re

import numpy as np
import pytest

import kernels
from kernels.backend import cuda_available
from kernels.conv2d import conv2d_backward_input, conv2d_backward_weight, conv2d_forward, cpu


def direct_conv2d(x, w, b, stride, padding, dilation, groups):
    """The forward formula summed term by term: seven nested loops (n, f, i, j, c, p, q)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n_images, n_channels, height, width = x.shape
    n_filters, cg, kh, kw = w.shape
    fg = n_filters // groups
    ho = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n_images, n_filters, ho, wo))
    for n in range(n_images):
        for f in range(n_filters):
            for i in range(ho):
                for j in range(wo):
                    total = 0.0 if b is None else b[f]
                    for c in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                h, v = i * sh + p * dh - ph, j * sw + q * dw - pw
                                if 0 <= h < height and 0 <= v < width:
                                    total += w[f, c, p, q] * x[n, (f // fg) * cg + c, h, v]
                    y[n, f, i, j] = total
    return y


def case(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, view=None):
    return dict(x_shape=x_shape, w_shape=w_shape, view=view,
                options=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


CASES = {
    "basic": case((2, 3, 7, 7), (4, 3, 3, 3)),
    "batch 1, one channel": case((1, 1, 6, 5), (2, 1, 3, 2)),
    "odd sizes": case((3, 2, 9, 7), (3, 2, 3, 5)),
    "stride 2, padding 1": case((2, 3, 8, 9), (4, 3, 3, 3), stride=2, padding=1),
    "stride (2, 3), padding (1, 2)": case((2, 2, 9, 10), (3, 2, 2, 3), stride=(2, 3), padding=(1, 2)),
    "dilation 2": case((2, 2, 9, 8), (3, 2, 3, 3), dilation=2, padding=1),
    "groups 2": case((2, 4, 7, 6), (6, 2, 3, 3), groups=2, padding=1),
    "depthwise (groups = C)": case((2, 3, 6, 6), (3, 1, 3, 3), groups=3, stride=2),
    "kernel size = input size": case((2, 3, 5, 4), (2, 3, 5, 4)),
    "1x1 kernel": case((2, 5, 4, 3), (3, 5, 1, 1)),
    "everything at once": case((3, 4, 11, 9), (4, 2, 3, 2), stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2),
    "non-contiguous: x[:, :, ::2]": case((2, 3, 7, 6), (4, 3, 3, 3), padding=1, view="strided"),
    "non-contiguous: transposed view": case((2, 3, 6, 7), (4, 3, 2, 3), stride=2, view="transposed"),
}


def make_input(shape, rng, view=None, dtype=np.float64):
    """A random array of ``shape``: contiguous, or a strided / transposed view with that shape."""
    n, c, h, w = shape
    if view == "strided":
        a = rng.standard_normal((n, c, 2 * h, w)).astype(dtype)[:, :, ::2]
    elif view == "transposed":
        a = rng.standard_normal((n, c, w, h)).astype(dtype).transpose(0, 1, 3, 2)
    else:
        a = rng.standard_normal(shape).astype(dtype)
    assert a.shape == shape and (view is None) == a.flags.c_contiguous
    return a


def problem(spec, seed=0, dtype=np.float64):
    """x, w, b and a cotangent g for one case (g shaped like the forward output)."""
    rng = np.random.default_rng(seed)
    x = make_input(spec["x_shape"], rng, spec["view"], dtype)
    w = rng.standard_normal(spec["w_shape"]).astype(dtype)
    b = rng.standard_normal(spec["w_shape"][0]).astype(dtype)
    g = make_input(output_shape(spec), rng, spec["view"], dtype)
    return x, w, b, g


def _pairs(options):
    """(stride, padding, dilation) as (int, int) pairs, and groups."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    return pair(options["stride"]), pair(options["padding"]), pair(options["dilation"]), options["groups"]


def output_shape(spec):
    """(N, F, Ho, Wo) from the output size formula."""
    (sh, sw), (ph, pw), (dh, dw), _ = _pairs(spec["options"])
    (n, _, h, w), (f, _, kh, kw) = spec["x_shape"], spec["w_shape"]
    return n, f, (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


# --- the reference ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["basic", "odd sizes", "stride (2, 3), padding (1, 2)", "dilation 2", "groups 2",
                                  "everything at once"])
def test_reference_forward_is_the_direct_sum(name):
    spec = CASES[name]
    x, w, b, _ = problem(spec)
    y = conv2d_forward(x, w, b, backend="numpy", **spec["options"])
    np.testing.assert_allclose(y, direct_conv2d(x, w, b, *_pairs(spec["options"])), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["basic", "stride (2, 3), padding (1, 2)", "dilation 2", "depthwise (groups = C)",
                                  "everything at once"])
def test_reference_backward_passes_are_the_adjoints_of_forward(name):
    """<conv(x, w), g> = <x, dconv_x(g, w)> = <w, dconv_w(g, x)>, since conv is linear in x and in w."""
    spec, opts = CASES[name], CASES[name]["options"]
    x, w, _, g = problem(spec)
    y = conv2d_forward(x, w, backend="numpy", **opts)
    dx = conv2d_backward_input(g, w, x.shape, backend="numpy", **opts)
    dw, db = conv2d_backward_weight(g, x, w.shape, backend="numpy", **opts)
    forward_side = np.vdot(y, g)
    assert np.vdot(x, dx) == pytest.approx(forward_side, rel=1e-12)
    assert np.vdot(w, dw) == pytest.approx(forward_side, rel=1e-12)
    np.testing.assert_allclose(db, g.sum(axis=(0, 2, 3)), rtol=1e-12)
    assert conv2d_backward_weight(g, x, w.shape, bias=False, backend="numpy", **opts)[1] is None


# --- Numba CPU against the reference -----------------------------------------------------------------

def close_to(got, want, rtol):
    """|got - want| <= rtol * max|want| elementwise: an error relative to the scale of the result."""
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_cpu_matches_reference_in_all_three_directions(name, dtype):
    spec, opts = CASES[name], CASES[name]["options"]
    x, w, b, g = problem(spec, dtype=dtype)
    # the oracle: the reference in float64 on the same values
    x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, w, b, g))
    y = conv2d_forward(x, w, b, backend="cpu", **opts)
    dx = conv2d_backward_input(g, w, x.shape, backend="cpu", **opts)
    dw, db = conv2d_backward_weight(g, x, w.shape, backend="cpu", **opts)
    want_y = conv2d_forward(x64, w64, b64, backend="numpy", **opts).astype(dtype)
    want_dx = conv2d_backward_input(g64, w64, x.shape, backend="numpy", **opts).astype(dtype)
    want_dw, want_db = (a.astype(dtype) for a in conv2d_backward_weight(g64, x64, w.shape, backend="numpy", **opts))
    close_to(y, want_y, TOLERANCE[dtype])
    close_to(dx, want_dx, TOLERANCE[dtype])
    close_to(dw, want_dw, TOLERANCE[dtype])
    close_to(db, want_db, TOLERANCE[dtype])


def test_cpu_without_bias():
    x, w, _, g = problem(CASES["basic"], dtype=np.float32)
    close_to(conv2d_forward(x, w, backend="cpu"), conv2d_forward(x, w, backend="numpy"), 1e-5)
    assert conv2d_backward_weight(g, x, w.shape, bias=False, backend="cpu")[1] is None


def test_cpu_is_deterministic():
    """Large enough for every thread to get work: two calls give bit-identical results."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 8, 14, 14), dtype=np.float32)
    w = rng.standard_normal((8, 4, 3, 3), dtype=np.float32)
    opts = dict(padding=1, groups=2)
    g = rng.standard_normal((16, 8, 14, 14), dtype=np.float32)
    runs = [(conv2d_forward(x, w, backend="cpu", **opts), conv2d_backward_input(g, w, x.shape, backend="cpu", **opts),
             *conv2d_backward_weight(g, x, w.shape, backend="cpu", **opts)) for _ in range(2)]
    for first, second in zip(*runs):
        assert np.array_equal(first, second)


# --- numba.cuda (the simulator: tiny shapes only) ---------------------------------------------------

needs_cuda = pytest.mark.skipif(not cuda_available(), reason="numba.cuda is not available (no GPU, simulator off)")

CUDA_CASES = {
    "padding 1": case((2, 2, 5, 5), (2, 2, 3, 3), padding=1),
    "stride, dilation, groups": case((1, 2, 5, 4), (2, 1, 2, 2), stride=(2, 1), padding=(0, 1), dilation=2, groups=2),
}


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CUDA_CASES))
def test_cuda_matches_reference_in_all_three_directions(name, dtype):
    spec, opts = CUDA_CASES[name], CUDA_CASES[name]["options"]
    x, w, b, g = problem(spec, seed=1, dtype=dtype)
    y = conv2d_forward(x, w, b, backend="cuda", **opts)
    dx = conv2d_backward_input(g, w, x.shape, backend="cuda", **opts)
    dw, db = conv2d_backward_weight(g, x, w.shape, backend="cuda", **opts)
    assert all(isinstance(a, np.ndarray) for a in (y, dx, dw, db))  # host in, host out
    close_to(y, conv2d_forward(x, w, b, backend="numpy", **opts), TOLERANCE[dtype])
    close_to(dx, conv2d_backward_input(g, w, x.shape, backend="numpy", **opts), TOLERANCE[dtype])
    want_dw, want_db = conv2d_backward_weight(g, x, w.shape, backend="numpy", **opts)
    close_to(dw, want_dw, TOLERANCE[dtype])
    close_to(db, want_db, TOLERANCE[dtype])


@needs_cuda
def test_cuda_device_arrays_stay_on_the_device():
    from numba import cuda

    spec, opts = CUDA_CASES["padding 1"], CUDA_CASES["padding 1"]["options"]
    x, w, b, g = problem(spec, seed=2, dtype=np.float32)
    xd, wd, bd, gd = (cuda.to_device(a) for a in (x, w, b, g))
    y = conv2d_forward(xd, wd, bd, backend="cuda", **opts)
    dx = conv2d_backward_input(gd, wd, x.shape, backend="cuda", **opts)
    dw, db = conv2d_backward_weight(gd, xd, w.shape, backend="cuda", **opts)
    assert not any(isinstance(a, np.ndarray) for a in (y, dx, dw, db))
    assert np.array_equal(y.copy_to_host(), conv2d_forward(x, w, b, backend="cuda", **opts))
    assert np.array_equal(dx.copy_to_host(), conv2d_backward_input(g, w, x.shape, backend="cuda", **opts))
    host_dw, host_db = conv2d_backward_weight(g, x, w.shape, backend="cuda", **opts)
    assert np.array_equal(dw.copy_to_host(), host_dw) and np.array_equal(db.copy_to_host(), host_db)
    with pytest.raises(TypeError, match="x is a CUDA device array, but backend 'cpu'"):
        conv2d_forward(xd, w, backend="cpu")


# --- checks at the boundary ---------------------------------------------------------------------------

X = np.ones((2, 4, 6, 6), dtype=np.float32)
W = np.ones((3, 4, 3, 3), dtype=np.float32)
G = np.ones((2, 3, 4, 4), dtype=np.float32)


@pytest.mark.parametrize("call, error, message", [
    (lambda: conv2d_forward(X[0], W), ValueError, r"x must be 4-D, got shape \(4, 6, 6\)"),
    (lambda: conv2d_forward(X, W[0]), ValueError, r"w must be 4-D, got shape \(4, 3, 3\)"),
    (lambda: conv2d_forward(X, W[:, :3]), ValueError, r"w must have shape \(F, C/groups, kh, kw\) = \(F, 4, kh, kw\)"),
    (lambda: conv2d_forward(X, W[:, :2], groups=2), ValueError, r"groups=2 must divide the number of filters F"),
    (lambda: conv2d_forward(X, W, groups=3), ValueError, r"groups=3 must divide the number of input channels C"),
    (lambda: conv2d_forward(X, W.astype(np.float64)), TypeError, r"w must have dtype float32 \(like the input\)"),
    (lambda: conv2d_backward_weight(np.ones((2, 3, 4, 4)), X, W.shape), TypeError,       # g float64: x named "like g"
     r"x must have dtype float64 \(like g\), got float32"),
    (lambda: conv2d_forward(X.astype(np.int64), W), TypeError, r"x must be float32 or float64, got int64"),
    (lambda: conv2d_forward(X, W, np.ones(4, np.float32)), ValueError, r"b must have shape \(F,\) = \(3,\)"),
    (lambda: conv2d_forward(X[:, :, :2], W), ValueError, r"height of x \(H=2\).*the output would be empty"),
    (lambda: conv2d_forward(X, W, dilation=(1, 3)), ValueError, r"width of x \(W=6\).*the output would be empty"),
    (lambda: conv2d_forward(X, W, stride=0), ValueError, r"stride must be >= 1, got \(0, 0\)"),
    (lambda: conv2d_forward(X, W, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: conv2d_forward(X, W, groups=0), ValueError, r"groups must be an int >= 1, got 0"),
    (lambda: conv2d_backward_input(G[:, :, 1:], W, X.shape), ValueError,
     r"g must have the forward output's shape \(N, F, Ho, Wo\) = \(2, 3, 4, 4\), got \(2, 3, 3, 4\)"),
    (lambda: conv2d_backward_input(G, W, (2, 4, 6)), ValueError, r"input_shape must be 4 positive ints"),
    (lambda: conv2d_backward_input(G, W.astype(np.float64), X.shape), TypeError, r"w must have dtype float32"),
    (lambda: conv2d_backward_weight(G, X, (3, 4, 3, 3), stride=2), ValueError,
     r"g must have the forward output's shape \(N, F, Ho, Wo\) = \(2, 3, 2, 2\)"),
    (lambda: conv2d_backward_weight(G, X.astype(np.float64), W.shape), TypeError, r"x must have dtype float32"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_non_contiguous_and_list_inputs_are_accepted():
    x = np.asfortranarray(X)
    assert not x.flags.c_contiguous
    assert np.array_equal(conv2d_forward(x, W, backend="cpu"), conv2d_forward(X, W, backend="cpu"))
    assert conv2d_forward(X.tolist(), W).dtype == np.float32


# --- dispatch ---------------------------------------------------------------------------------------------

def test_backends_numpy_and_cpu_agree_and_an_unknown_backend_is_refused():
    x, w, b, g = problem(CASES["everything at once"], dtype=np.float64)
    opts = CASES["everything at once"]["options"]
    close_to(conv2d_forward(x, w, b, backend="cpu", **opts), conv2d_forward(x, w, b, backend="numpy", **opts), 1e-12)
    with pytest.raises(ValueError, match=r"backend must be one of \('numpy', 'cpu', 'cuda'\), got 'gpu'"):
        conv2d_forward(x, w, b, backend="gpu", **opts)
    with pytest.raises(ValueError, match="backend must be one of"):
        conv2d_backward_input(g, w, x.shape, backend="torch", **opts)


THREAD_COUNT_RUN = """
import sys, numpy as np, kernels
rng = np.random.default_rng(5)
x = rng.standard_normal((37, 6, 12, 11), dtype=np.float32)
w = rng.standard_normal((8, 3, 3, 3), dtype=np.float32)
g = rng.standard_normal((37, 8, 6, 6), dtype=np.float32)
opts = dict(stride=2, padding=1, groups=2)
out = [kernels.conv2d_forward(x, w, np.ones(8, np.float32), **opts),
       kernels.conv2d_backward_input(g, w, x.shape, **opts), *kernels.conv2d_backward_weight(g, x, w.shape, **opts)]
sys.stdout.write(b"".join(a.tobytes() for a in out).hex())
"""


def test_cpu_results_do_not_depend_on_the_thread_count():
    """Backward weight sums the images in fixed chunks, whatever the number of threads: 1 and 2
    threads give the same bits (so do the other two directions, which write one image per thread)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    outputs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, PYTHONPATH=str(root))
        result = subprocess.run([sys.executable, "-c", THREAD_COUNT_RUN], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] and len(outputs[0]) > 1000


@pytest.mark.parametrize("backend", ["numpy", "cpu", pytest.param("cuda", marks=needs_cuda)])
def test_forward_with_fused_relu_is_max_of_the_forward_and_zero(backend):
    import kernels

    spec = CASES["everything at once"] if backend != "cuda" else CUDA_CASES["stride, dilation, groups"]
    x, w, b, _ = problem(spec, seed=4, dtype=np.float32)
    geometry = kernels.ConvGeometry(**spec["options"])
    plain = kernels.conv2d.forward(x, w, b, geometry, backend="numpy")
    fused = kernels.conv2d.forward(x, w, b, geometry, relu=True, backend=backend)
    assert (plain < 0).any() and (fused == 0).any()
    close_to(fused, np.maximum(plain, 0), 1e-5)


@pytest.mark.parametrize("backend", ["numpy", "cpu", pytest.param("cuda", marks=needs_cuda)])
def test_relu_grad_passes_g_where_the_fused_relu_output_is_positive(backend):
    import kernels

    rng = np.random.default_rng(6)
    out = np.maximum(rng.standard_normal((2, 3, 4, 5), dtype=np.float32), 0)   # zeros where relu cut
    g = rng.standard_normal(out.shape, dtype=np.float32)
    got = kernels.conv2d.relu_grad(g, out, backend=backend)
    assert got.dtype == np.float32 and (out == 0).any()
    assert np.array_equal(got, np.where(out > 0, g, 0).astype(np.float32))      # relu'(0) = 0
    with pytest.raises(ValueError, match=r"out must have g's shape \(2, 3, 4, 5\), got \(2, 3, 4, 4\)"):
        kernels.conv2d.relu_grad(g, out[..., :4], backend=backend)


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=needs_cuda)])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("wanted", [(True, True), (True, False), (False, True)])
def test_one_pass_backward_gives_what_is_asked_for_masked_by_the_fused_relu(backend, relu, wanted):
    """backward(...) = (backward_input, *backward_weight) of relu_grad(g, out) when relu_out is given,
    the oracle being the float64 reference of the separate directions on the masked g."""
    import kernels

    spec = CASES["everything at once"] if backend != "cuda" else CUDA_CASES["stride, dilation, groups"]
    x, w, b, g = problem(spec, seed=7, dtype=np.float32)
    geometry = kernels.ConvGeometry(**spec["options"])
    out = kernels.conv2d.forward(x, w, b, geometry, relu=True, backend="numpy") if relu else None
    input_grad, weight_grad = wanted
    dx, dw, db = kernels.conv2d.backward(g, x, w, geometry, input_grad=input_grad, weight_grad=weight_grad,
                                         relu_out=out, backend=backend)
    g64 = g.astype(np.float64) if out is None else np.where(out > 0, g, 0).astype(np.float64)
    assert out is None or (out == 0).any()
    want_dx = kernels.conv2d.backward_input(g64, w.astype(np.float64), x.shape, geometry, backend="numpy")
    want_dw, want_db = kernels.conv2d.backward_weight(g64, x.astype(np.float64), w.shape, geometry, backend="numpy")
    assert (dx is None) == (not input_grad) and (dw is None) == (db is None) == (not weight_grad)
    if input_grad:
        close_to(dx, want_dx.astype(np.float32), 1e-5)
    if weight_grad:
        close_to(dw, want_dw.astype(np.float32), 1e-5)
        close_to(db, want_db.astype(np.float32), 1e-5)


def test_one_pass_backward_refuses_a_relu_out_of_another_shape():
    import kernels

    with pytest.raises(ValueError, match=r"relu_out must have g's shape \(2, 3, 4, 4\), got \(2, 3, 4, 3\)"):
        kernels.conv2d.backward(G, X, W, kernels.ConvGeometry(), relu_out=G[..., :3])


def test_the_weight_chunks_are_added_in_chunk_order_and_transposed_back():
    """_sum_parts gives the bits of the chunks' partial sums added one after the other (as NumPy's
    ``total += part`` in a loop), dw transposed from (groups, kg, fg) to (groups * fg, kg) (the parts are
    its scratch)."""
    rng = np.random.default_rng(4)
    parts = (rng.standard_normal((16, 2, 27, 5)) * 10.0 ** rng.integers(-3, 4, (16, 2, 27, 5))).astype(np.float32)
    db_parts = rng.standard_normal((16, 10)).astype(np.float32)
    total, db_total = parts[0].copy(), db_parts[0].copy()
    for t in range(1, 16):
        total += parts[t]
        db_total += db_parts[t]
    dw, db = np.empty((10, 27), np.float32), np.empty(10, np.float32)
    cpu._sum_parts(parts.copy(), db_parts, dw, db)
    assert dw.tobytes() == np.ascontiguousarray(total.transpose(0, 2, 1)).reshape(10, 27).tobytes()
    assert db.tobytes() == db_total.tobytes()
    pairwise = (parts[:8].sum(axis=0) + parts[8:].sum(axis=0)).transpose(0, 2, 1).reshape(10, 27)
    assert not np.array_equal(dw, pairwise)          # the order matters for these values: it is the one kept


@pytest.mark.parametrize("g, kind, words", [("g", TypeError, "g must be a NumPy array or a CUDA device array, got str"),
                                            ([[1, "a"]], ValueError, "g must be numbers"),
                                            ([[1], [2, 3]], ValueError, "g must be numbers")])
def test_text_and_ragged_lists_are_refused_naming_the_argument(g, kind, words):
    x, w = np.ones((1, 1, 6, 6), np.float32), np.ones((2, 1, 3, 3), np.float32)
    with pytest.raises(kind, match=re.escape(words)) as caught:
        kernels.conv2d.backward(g, x, w, kernels.ConvGeometry())
    assert "\n" not in str(caught.value)
