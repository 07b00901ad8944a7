"""nn.augment against independent oracles: np.rot90, np.roll, slicing, np.pad windows, a scalar-loop
bilinear sampler, linear images (which bilinear interpolation reproduces exactly), np.cov."""
import math

import numpy as np
import pytest

from nn.augment import (Compose, ContrastJitter, PCAColourJitter, RandomAffine, RandomCrop, RandomFlip,
                        RandomRotation, RandomScale, RandomShear, RandomShift, affine_matrix, affine_warp,
                        contrast_jitter,
                        fit_colour_pca, pca_colour_jitter, random_affine, random_crop, random_flip,
                        random_rotation, random_scale, random_shear, random_shift)


def batch(n=4, c=2, h=6, w=6, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(dtype)


def ramp(n, h, w, a=0.7, b=-1.3, c=0.2):
    """Images of the linear function a * row + b * col + c (one channel)."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.broadcast_to(a * rows + b * cols + c, (n, 1, h, w)).astype(np.float64)


def loop_bilinear(image, matrix, fill, out_shape):
    """One (H, W) image sampled pixel by pixel: out[r, c] = bilinear(image, matrix @ (r, c, 1))."""
    h, w = image.shape
    out = np.empty(out_shape)
    for r in range(out_shape[0]):
        for c in range(out_shape[1]):
            sr, sc = matrix @ np.array([r, c, 1.0])
            r0, c0 = math.floor(sr), math.floor(sc)
            total = 0.0
            for rr, wr in ((r0, 1 - (sr - r0)), (r0 + 1, sr - r0)):
                for cc, wc in ((c0, 1 - (sc - c0)), (c0 + 1, sc - c0)):
                    value = image[rr, cc] if 0 <= rr < h and 0 <= cc < w else fill
                    total += wr * wc * value
            out[r, c] = total
    return out


# --- the affine warp ------------------------------------------------------------------------------

@pytest.mark.parametrize("fill, out_shape", [(0.0, None), (0.5, (4, 7))])
def test_affine_warp_matches_a_scalar_loop(fill, out_shape):
    x = batch(3, 2, 5, 6, dtype=np.float64)
    rng = np.random.default_rng(1)
    matrices = np.concatenate([rng.normal(0, 0.6, (3, 2, 2)) + np.eye(2), rng.normal(1, 2, (3, 2, 1))], axis=2)
    out = affine_warp(x, matrices, fill=fill, out_shape=out_shape)
    shape = x.shape[2:] if out_shape is None else out_shape
    assert out.shape == (3, 2) + tuple(shape)
    for n in range(3):
        for c in range(2):
            np.testing.assert_allclose(out[n, c], loop_bilinear(x[n, c], matrices[n], fill, shape), atol=1e-12)


def test_affine_warp_identity_and_half_pixel():
    x = batch(2, 3, 4, 5)
    identity = [[1, 0, 0], [0, 1, 0]]
    np.testing.assert_array_equal(affine_warp(x, identity), x)
    half = affine_warp(x, [[1, 0, 0], [0, 1, 0.5]])
    np.testing.assert_allclose(half[..., :-1], (x[..., :-1] + x[..., 1:]) / 2, rtol=1e-6)
    np.testing.assert_allclose(half[..., -1], x[..., -1] / 2, rtol=1e-6)      # half of it is zero fill
    gone = affine_warp(x, [[1, 0, 100], [0, 1, 0]], fill=-2.0)
    np.testing.assert_array_equal(gone, -2.0)


def test_affine_warp_rejects_bad_matrices():
    with pytest.raises(ValueError, match=r"matrix must have shape \(2, 3\) or \(N, 2, 3\) = \(2, 2, 3\), "
                                         r"got \(3, 2, 3\)"):
        affine_warp(batch(2), np.zeros((3, 2, 3)))


# --- rotations, shifts, scalings, shears ----------------------------------------------------------

@pytest.mark.parametrize("size", [5, 6])
@pytest.mark.parametrize("angle, k", [(90, 1), (-90, -1), (180, 2), (270, 3)])
def test_quarter_turns_equal_rot90(size, angle, k):
    x = batch(3, 2, size, size)
    out = random_rotation(x, 0, degrees=(angle, angle))
    np.testing.assert_allclose(out, np.rot90(x, k=k, axes=(2, 3)), atol=1e-6)
    assert out.dtype == np.float32


def test_rotation_of_a_linear_image_by_30_degrees():
    h = w = 9
    x = ramp(1, h, w)
    out = random_rotation(x, 0, degrees=(30, 30))[0, 0]
    centre, t = (h - 1) / 2, np.deg2rad(30)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    # inverse of the counter-clockwise rotation: rotate the output position back by -30 degrees
    src_r = centre + np.cos(t) * (rows - centre) + np.sin(t) * (cols - centre)
    src_c = centre - np.sin(t) * (rows - centre) + np.cos(t) * (cols - centre)
    inside = (src_r >= 0) & (src_r <= h - 1) & (src_c >= 0) & (src_c <= w - 1)
    expected = 0.7 * src_r - 1.3 * src_c + 0.2
    assert inside.sum() > 40
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-9)


def test_rotation_angles_are_per_image_and_seeded():
    x = np.repeat(batch(1, 1, 7, 7), 6, axis=0)
    out = random_rotation(x, 3, degrees=30)
    assert len({out[i].tobytes() for i in range(6)}) == 6                # six different angles
    np.testing.assert_array_equal(out, random_rotation(x, 3, degrees=30))
    assert not np.array_equal(out, random_rotation(x, 4, degrees=30))
    rng = np.random.default_rng(0)
    assert not np.array_equal(random_rotation(x, rng, 30), random_rotation(x, rng, 30))


def shifted(image, dy, dx):
    """np.roll with the wrapped rows/columns set to zero."""
    out = np.roll(image, (dy, dx), axis=(-2, -1))
    if dy > 0:
        out[..., :dy, :] = 0
    elif dy < 0:
        out[..., dy:, :] = 0
    if dx > 0:
        out[..., :, :dx] = 0
    elif dx < 0:
        out[..., :, dx:] = 0
    return out


def test_a_shift_by_one_row_is_roll_with_a_zero_row():
    x = batch(2, 3, 5, 6)
    expected = np.roll(x, 1, axis=2)
    expected[:, :, 0] = 0
    np.testing.assert_array_equal(affine_warp(x, affine_matrix((5, 6), shift=(1, 0))), expected)
    np.testing.assert_array_equal(shifted(x, 1, 0), expected)                # the helper below agrees
    np.testing.assert_array_equal(affine_warp(x, affine_matrix((5, 6), shift=(-2, 3))), shifted(x, -2, 3))


def test_affine_matrix_rotation_and_per_image_matrices():
    x = batch(2, 1, 5, 5)
    np.testing.assert_allclose(affine_warp(x, affine_matrix((5, 5), degrees=90)), np.rot90(x, axes=(2, 3)), atol=1e-6)
    angles, shifts, scales, shears = [10.0, -20.0, 0.0], [[1, 0], [0.5, -2], [0, 0]], [1.0, 0.9, 1.2], [0.0, 5.0, -3.0]
    many = affine_matrix((5, 7), angles, shifts, scales, shears)
    assert many.shape == (3, 2, 3)
    for i in range(3):
        np.testing.assert_allclose(many[i], affine_matrix((5, 7), angles[i], shifts[i], scales[i], shears[i]))
    np.testing.assert_allclose(affine_matrix((4, 4)), [[1, 0, 0], [0, 1, 0]], atol=1e-15)


def test_random_shift_moves_each_image_by_whole_pixels_within_the_range():
    x = batch(40, 1, 6, 6)
    out = random_shift(x, 0, max_shift=(1, 2))
    seen = set()
    for i in range(40):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in range(-2, 3)
                   if np.array_equal(out[i], shifted(x[i], dy, dx))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 8 and {dy for dy, _ in seen} == {-1, 0, 1}


def test_random_shift_by_fractions_on_a_linear_image():
    x = ramp(20, 8, 8, a=0.0, b=1.0, c=0.0)                  # value = column
    out = random_shift(x, 1, max_shift=(0, 1.5))             # floats: continuous shifts
    inner = out[:, 0, :, 2:-2] - x[:, 0, :, 2:-2]            # = -dx everywhere inside
    per_image = inner.reshape(20, -1)
    np.testing.assert_allclose(per_image, per_image[:, :1] * np.ones_like(per_image), atol=1e-9)
    dx = -per_image[:, 0]
    assert np.all(np.abs(dx) <= 1.5) and np.any(dx != np.round(dx))


def test_random_scale_on_a_linear_image():
    h = w = 9
    x = ramp(1, h, w)
    out = random_scale(x, 0, scale=(1.5, 1.5))[0, 0]
    centre = (h - 1) / 2
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    src_r, src_c = centre + (rows - centre) / 1.5, centre + (cols - centre) / 1.5   # zoom in: all inside
    np.testing.assert_allclose(out, 0.7 * src_r - 1.3 * src_c + 0.2, atol=1e-9)
    np.testing.assert_array_equal(random_scale(x, 0, scale=(1, 1)), x)


def test_random_shear_on_a_linear_image():
    h, w = 7, 11
    x = ramp(1, h, w)
    out = random_shear(x, 0, degrees=(20, 20))[0, 0]
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    src_c = cols - np.tan(np.deg2rad(20)) * (rows - (h - 1) / 2)
    inside = (src_c >= 0) & (src_c <= w - 1)
    np.testing.assert_allclose(out[inside], (0.7 * rows - 1.3 * src_c + 0.2)[inside], atol=1e-9)
    assert inside.sum() > 50


def test_random_affine_defaults_are_the_identity_and_it_composes_in_one_warp():
    x = batch(3)
    np.testing.assert_allclose(random_affine(x, 0), x, atol=1e-6)
    both = random_affine(x, 0, degrees=(90, 90), max_shift=0, scale=(1, 1))
    np.testing.assert_allclose(both, np.rot90(x, axes=(2, 3)), atol=1e-6)


# --- flips and crops ------------------------------------------------------------------------------

def test_flips_equal_reversed_slices():
    x = batch(5, 2, 4, 6)
    np.testing.assert_array_equal(random_flip(x, 0, p=1.0), x[..., ::-1])
    np.testing.assert_array_equal(random_flip(x, 0, horizontal=False, vertical=True, p=1.0), x[..., ::-1, :])
    np.testing.assert_array_equal(random_flip(x, 0, vertical=True, p=1.0), x[..., ::-1, ::-1])
    np.testing.assert_array_equal(random_flip(x, 0, p=0.0), x)


def test_random_flip_flips_each_image_or_leaves_it():
    x = batch(40, 1, 3, 3)
    out = random_flip(x, 2, p=0.5)
    flipped = [np.array_equal(out[i], x[i, :, :, ::-1]) for i in range(40)]
    kept = [np.array_equal(out[i], x[i]) for i in range(40)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 10 <= sum(flipped) <= 30


def test_crop_of_full_size_without_padding_is_the_identity():
    x = batch(3, 2, 5, 7)
    for seed in range(3):
        np.testing.assert_array_equal(random_crop(x, seed, size=(5, 7), padding=0), x)


@pytest.mark.parametrize("size, padding", [(6, 2), ((3, 5), 0), ((4, 4), (1, 0))])
def test_each_crop_is_a_window_of_the_padded_image(size, padding):
    x = batch(60, 2, 6, 6)
    out = random_crop(x, 1, size=size, padding=padding)
    h, w = (size, size) if isinstance(size, int) else size
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    positions = [(r, c) for r in range(6 + 2 * ph - h + 1) for c in range(6 + 2 * pw - w + 1)]
    seen = set()
    for i in range(60):
        windows = [(r, c) for r, c in positions if np.array_equal(out[i], padded[i, :, r:r + h, c:c + w])]
        assert windows, f"image {i} is no window of its padded image"
        seen.update(windows)
    rows, cols = {r for r, _ in positions}, {c for _, c in positions}
    assert {r for r, _ in seen} == rows and {c for _, c in seen} == cols     # every offset is drawn
    assert out.shape == (60, 2, h, w)


# --- colour ---------------------------------------------------------------------------------------

def test_contrast_jitter_keeps_the_mean_and_scales_deviations():
    x = batch(8, 3, 4, 4, dtype=np.float64)
    out = contrast_jitter(x, 0, factor=(0.5, 1.5))
    m = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3), keepdims=True), m)
    ratio = ((out - m) / (x - m)).reshape(8, -1)
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio))   # one factor per image
    assert np.all((0.5 <= ratio) & (ratio <= 1.5)) and len(np.unique(ratio[:, 0].round(9))) == 8
    np.testing.assert_allclose(contrast_jitter(x, 0, factor=0.0), x)


def colour_data(n=50, seed=0):
    """RGB images whose colours vary along (1, 2, -2) only, about a grey of 0.5."""
    t = np.random.default_rng(seed).normal(0, 0.1, (n, 1, 4, 4))
    return 0.5 + t * np.array([1.0, 2.0, -2.0]).reshape(1, 3, 1, 1)


def test_fit_colour_pca_diagonalises_the_channel_covariance():
    x = batch(20, 3, 5, 5, dtype=np.float64)
    x[:, 1] += 0.5 * x[:, 0]
    values, vectors = fit_colour_pca(x)
    cov = np.cov(x.transpose(1, 0, 2, 3).reshape(3, -1))
    np.testing.assert_allclose(cov @ vectors, vectors * values, atol=1e-12)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-12)
    assert values[0] >= values[1] >= values[2] >= 0


def test_pca_jitter_with_std_zero_is_the_identity():
    x = colour_data().astype(np.float32)
    np.testing.assert_array_equal(PCAColourJitter(std=0.0).fit(x)(x, 0), x)


def test_pca_jitter_shift_is_constant_per_image_and_along_the_principal_direction():
    x = colour_data()
    out = PCAColourJitter(std=0.5).fit(x)(x, 1)
    shift = out - x
    np.testing.assert_allclose(shift, shift[:, :, :1, :1] * np.ones_like(shift), atol=1e-12)
    per_image = shift[:, :, 0, 0]
    direction = np.array([1.0, 2.0, -2.0]) / 3
    np.testing.assert_allclose(np.cross(per_image, direction), 0, atol=1e-12)   # in the span of it
    assert np.abs(per_image).max() > 1e-3


def test_pca_jitter_offsets_have_covariance_std2_times_the_colour_covariance():
    rng = np.random.default_rng(0)
    data = rng.multivariate_normal([0.4, 0.5, 0.6], [[0.04, 0.01, 0.0], [0.01, 0.03, 0.01], [0.0, 0.01, 0.02]],
                                   size=2000).T.reshape(3, 2000, 1, 1).transpose(1, 0, 2, 3)
    values, vectors = fit_colour_pca(data)
    zeros = np.zeros((20000, 3, 1, 1))
    offsets = pca_colour_jitter(zeros, 1, values, vectors, std=0.1)[:, :, 0, 0]
    expected = 0.01 * np.cov(data[:, :, 0, 0].T)
    np.testing.assert_allclose(np.cov(offsets.T), expected, atol=0.05 * expected.max())


def test_pca_jitter_needs_three_channels_and_a_fit():
    with pytest.raises(ValueError, match=r"needs RGB images with 3 channels, but x has 1 \(shape \(2, 1, 4, 4\)\)"):
        PCAColourJitter().fit(batch(2, 1, 4, 4))
    jitter = PCAColourJitter()
    with pytest.raises(RuntimeError, match=r"not fitted: call fit\(x_train\)"):
        jitter(batch(2, 3), 0)
    fitted = PCAColourJitter(std=0.2).fit(colour_data())
    with pytest.raises(ValueError, match="3 channels, but x has 2"):
        fitted(batch(2, 2), 0)
    restored = PCAColourJitter(std=0.2).load_state_dict(fitted.state_dict())
    x = colour_data(3, seed=5)
    np.testing.assert_array_equal(restored(x, 7), fitted(x, 7))
    with pytest.raises(ValueError, match=r"eigenvalues must have shape \(3,\) and eigenvectors \(3, 3\)"):
        PCAColourJitter(eigenvalues=[1.0, 2.0], eigenvectors=np.eye(3))


# --- common behaviour -----------------------------------------------------------------------------

TRANSFORMS = [RandomFlip(vertical=True), RandomCrop(5, padding=2), RandomRotation(15), RandomShift(2),
              RandomShift(1.5), RandomScale((0.8, 1.2)), RandomShear(10), ContrastJitter(0.3),
              RandomAffine(degrees=10, max_shift=1, scale=0.1, shear=5),
              PCAColourJitter(std=0.1, eigenvalues=[0.1, 0.05, 0.01], eigenvectors=np.eye(3)),
              Compose([RandomFlip(), RandomCrop(6, padding=1), RandomRotation(5)])]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: type(t).__name__)
def test_transforms_keep_dtype_leave_the_input_alone_and_are_seeded(transform, dtype):
    x = batch(5, 3, 6, 6, dtype=dtype)
    before = x.copy()
    out = transform(x, 11)
    assert out.dtype == dtype and out.ndim == 4 and len(out) == 5
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(transform(x, 11), out)
    rng = np.random.default_rng(11)
    np.testing.assert_array_equal(transform(x, rng), out)        # an int seed is a fresh Generator
    assert not np.array_equal(transform(x, rng), out)             # the Generator moved on


def test_compose_applies_in_order():
    x = batch(3, 1, 4, 4)
    composed = Compose([RandomFlip(p=1.0), RandomCrop((2, 4))])
    out = composed(x, 0)
    flipped = x[..., ::-1]
    for i in range(3):
        assert any(np.array_equal(out[i], flipped[i, :, r:r + 2]) for r in range(3))
    empty = Compose([])(x, 0)
    np.testing.assert_array_equal(empty, x)
    assert empty is not x
    assert "RandomFlip" in repr(composed)


@pytest.mark.parametrize("make, message", [
    (lambda: RandomFlip(p=1.5), r"p must be a probability in \[0, 1\], got 1.5"),
    (lambda: RandomCrop(0), "size must be between 1 and the padded image size 6 x 6"),
    (lambda: RandomCrop(7, padding=0), r"size must be between 1 and the padded image size 6 x 6 .*got 7"),
    (lambda: RandomCrop(2.5), "size must be an int or a pair"),
    (lambda: RandomCrop(3, padding=-1), "padding must be >= 0"),
    (lambda: RandomRotation(-5), r"degrees must be >= 0"),
    (lambda: RandomRotation((10, -10)), r"degrees must be a number or a \(low, high\) pair with low <= high"),
    (lambda: RandomShift(-1), "max_shift must be a number >= 0"),
    (lambda: RandomScale(1.5), r"scale as a number z means the range \(1 - z, 1 \+ z\) and must be in \[0, 1\)"),
    (lambda: RandomScale((0, 2)), "scale must be a range of positive factors"),
    (lambda: RandomShear(90), r"degrees must lie within \(-90, 90\), got 90"),
    (lambda: (lambda x, rng: random_shear(x, rng, degrees=(-95, 0))), r"degrees must lie within \(-90, 90\)"),
    (lambda: ContrastJitter((1.2, 0.8)), "factor must be a number or a"),
    (lambda: PCAColourJitter(std=-1), "std must be a number >= 0, got -1"),
    (lambda: Compose([RandomFlip(), 3]), r"transforms\[1\] must be callable"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        transform = make()
        transform(batch(2, 3, 6, 6), 0)


@pytest.mark.parametrize("function", [random_flip, lambda x, rng: random_crop(x, rng, 2),
                                      lambda x, rng: random_rotation(x, rng, 5), contrast_jitter])
def test_functions_want_a_float_nchw_batch(function):
    with pytest.raises(ValueError, match=r"x must be a 4-D NCHW batch \(N, C, H, W\), got shape \(6, 6\)"):
        function(np.zeros((6, 6), np.float32), 0)
    with pytest.raises(TypeError, match="x must be a floating-point array, got dtype uint8"):
        function(np.zeros((1, 1, 6, 6), np.uint8), 0)
    with pytest.raises(TypeError, match="seed must be an int, None or a np.random.Generator"):
        function(np.zeros((1, 1, 6, 6), np.float32), "seed")


# --- the one generic transform --------------------------------------------------------------------

from nn.augment import Transform  # noqa: E402


@pytest.mark.parametrize("transform, function, params", [
    (RandomFlip(vertical=True), random_flip, {"horizontal": True, "vertical": True, "p": 0.5}),
    (RandomCrop(5, padding=2), random_crop, {"size": 5, "padding": 2, "fill": 0.0}),
    (RandomRotation(15), random_rotation, {"degrees": 15, "fill": 0.0}),
    (RandomShift(2), random_shift, {"max_shift": 2, "fill": 0.0}),
    (RandomScale((0.8, 1.2)), random_scale, {"scale": (0.8, 1.2), "fill": 0.0}),
    (RandomShear(10), random_shear, {"degrees": 10, "fill": 0.0}),
    (ContrastJitter(0.3), contrast_jitter, {"factor": 0.3}),
    (RandomAffine(degrees=10, max_shift=1), random_affine,
     {"degrees": 10, "max_shift": 1, "scale": (1, 1), "shear": 0, "fill": 0.0}),
], ids=lambda v: type(v).__name__ if isinstance(v, Transform) else "")
def test_each_named_transform_is_its_function_with_the_parameters_fixed(transform, function, params):
    assert isinstance(transform, Transform) and transform.params == params
    assert repr(transform) == f"{type(transform).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
    x = batch(3, 3, 6, 6)
    np.testing.assert_array_equal(transform(x, 4), function(x, 4, **params))


def test_a_transform_of_ones_own_binds_the_functions_signature_and_runs_its_checks():
    def jitter(x, rng, amount, clip=True):
        out = x + np.asarray(rng.uniform(-amount, amount, size=x.shape), x.dtype)
        return np.clip(out, 0, 1) if clip else out

    def non_negative(value):
        if value < 0:
            raise ValueError(f"amount must be >= 0, got {value}")
        return float(value)

    class Jitter(Transform):
        function = staticmethod(jitter)
        checks = {"amount": non_negative}

    t = Jitter(1)                                          # positional, the default filled in, checked
    assert t.params == {"amount": 1.0, "clip": True} and t.amount == 1.0 and repr(t) == "Jitter(amount=1.0, clip=True)"
    x = batch(2, 1, 3, 3)
    np.testing.assert_array_equal(t(x, 9), jitter(x, np.random.default_rng(9), 1.0))
    np.testing.assert_array_equal(Compose([t])(x, 9), t(x, 9))
    with pytest.raises(ValueError, match="amount must be >= 0, got -1"):
        Jitter(-1)                                         # at construction, not at the first batch
    with pytest.raises(TypeError, match="Jitter: missing a required argument: 'amount'"):
        Jitter()
    with pytest.raises(TypeError, match="Jitter: got an unexpected keyword argument 'sigma'"):
        Jitter(1, sigma=2)
    with pytest.raises(TypeError, match="Transform names no function"):
        Transform()


def test_named_transforms_check_their_arguments_when_made():
    for make, message in [(lambda: RandomShear(90), r"degrees must lie within \(-90, 90\), got 90"),
                          (lambda: RandomAffine(shear=95), r"shear must lie within \(-90, 90\)"),
                          (lambda: RandomCrop(3, padding=-1), "padding must be >= 0"),
                          (lambda: RandomFlip(p=2), r"p must be a probability in \[0, 1\], got 2")]:
        with pytest.raises(ValueError, match=message):
            make()
    assert RandomFlip(horizontal=0, p=1).params == {"horizontal": False, "vertical": False, "p": 1.0}
