"""nn.data: splits, centring/standardisation, mini-batches and one-hot labels, checked against
direct NumPy computations (means, standard deviations, set arithmetic on indices, np.eye)."""
import numpy as np
import pytest

from nn.data import (Batches, ChannelCentre, MeanImage, Standardise, as_generator, batches, kfold,
                     one_hot, train_test_split, train_val_test_split)


def images(n=20, c=3, h=4, w=5, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(2.0, 3.0, (n, c, h, w)).astype(dtype)


def ids(n):
    """x whose rows are their own index, and y = 10 * index: tells which sample went where."""
    x = np.arange(n).reshape(n, 1)
    return x, 10 * np.arange(n)


# --- as_generator ------------------------------------------------------------------------------------

def test_as_generator_seeds_and_passes_generators_through():
    assert as_generator(5).random() == np.random.default_rng(5).random()
    g = np.random.default_rng(0)
    assert as_generator(g) is g
    with pytest.raises(TypeError, match="seed must be .* got float"):
        as_generator(1.5)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        as_generator(-1)


# --- train_test_split -----------------------------------------------------------------------------

def test_train_test_split_sizes_disjoint_and_aligned():
    x, y = ids(50)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, seed=3)
    assert (len(x_train), len(x_test)) == (40, 10)
    train, test = set(x_train.ravel()), set(x_test.ravel())
    assert not train & test and train | test == set(range(50))
    np.testing.assert_array_equal(y_train, 10 * x_train.ravel())      # x and y stay paired
    np.testing.assert_array_equal(y_test, 10 * x_test.ravel())


def test_train_test_split_rounds_the_test_fraction_up_and_takes_counts():
    x, y = ids(11)
    assert len(train_test_split(x, y, test_size=0.25)[1]) == 3           # ceil(2.75)
    assert len(train_test_split(x, y, test_size=4)[1]) == 4


def test_train_test_split_is_seeded():
    x, y = ids(30)
    first = train_test_split(x, y, seed=1)[1]
    np.testing.assert_array_equal(first, train_test_split(x, y, seed=1)[1])
    assert not np.array_equal(first, train_test_split(x, y, seed=2)[1])
    rng = np.random.default_rng(1)
    assert not np.array_equal(train_test_split(x, y, seed=rng)[1], train_test_split(x, y, seed=rng)[1])


@pytest.mark.parametrize("sizes, test_size, seed", [([50, 30, 15, 5], 0.25, 0), ([7, 7, 7], 0.3, 1),
                                                    ([101, 3, 1, 44, 9], 0.17, 2), ([13, 29], 11, 3)])
def test_stratified_split_keeps_each_class_within_one_sample_of_its_share(sizes, test_size, seed):
    y = np.repeat(np.arange(len(sizes)), sizes)
    np.random.default_rng(seed).shuffle(y)
    x = np.arange(len(y))
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, seed=seed, stratify=True)
    n_test = test_size if isinstance(test_size, int) else int(np.ceil(test_size * len(y)))
    assert len(y_test) == n_test
    share = np.array(sizes) * n_test / len(y)
    assert np.all(np.abs(np.bincount(y_test, minlength=len(sizes)) - share) < 1)
    counts = lambda labels: np.bincount(labels, minlength=len(sizes))
    np.testing.assert_array_equal(counts(y_train) + counts(y_test), sizes)
    np.testing.assert_array_equal(y[x_test], y_test)                   # labels travel with their samples


@pytest.mark.parametrize("test_size", [0, 0.0, 1.0, 1.5, -0.1, 10, True, "0.2"])
def test_train_test_split_rejects_bad_test_size(test_size):
    x, y = ids(10)
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(x, y, test_size=test_size)


def test_train_test_split_rejects_mismatched_lengths_and_2d_labels_for_stratify():
    with pytest.raises(ValueError, match=r"x and y must have the same number of samples.*\(5, 2\).*\(4,\)"):
        train_test_split(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"stratify=True needs 1-D class labels y, got y.shape=\(6, 2\)"):
        train_test_split(np.zeros((6, 1)), np.zeros((6, 2)), stratify=True)


# --- train_val_test_split -------------------------------------------------------------------------

def test_train_val_test_split_sizes_disjoint_cover():
    x, y = ids(100)
    x_train, x_val, x_test, y_train, y_val, y_test = train_val_test_split(x, y, val_size=0.1, test_size=0.2, seed=4)
    assert (len(x_train), len(x_val), len(x_test)) == (70, 10, 20)
    parts = [set(p.ravel()) for p in (x_train, x_val, x_test)]
    assert sum(len(p) for p in parts) == 100 and set.union(*parts) == set(range(100))
    for xs, ys in ((x_train, y_train), (x_val, y_val), (x_test, y_test)):
        np.testing.assert_array_equal(ys, 10 * xs.ravel())


def test_train_val_test_split_stratified():
    sizes = [40, 25, 20, 10, 5]
    y = np.random.default_rng(0).permutation(np.repeat(np.arange(5), sizes))
    _, _, _, y_train, y_val, y_test = train_val_test_split(np.zeros((100, 1)), y, val_size=0.15,
                                                           test_size=0.2, seed=0, stratify=True)
    test_counts, val_counts = np.bincount(y_test, minlength=5), np.bincount(y_val, minlength=5)
    assert np.all(np.abs(test_counts - np.array(sizes) * 20 / 100) < 1)
    rest = np.array(sizes) - test_counts                   # val is taken from what test left
    assert np.all(np.abs(val_counts - rest * 15 / 80) < 1)
    assert np.all(np.abs(val_counts - np.array(sizes) * 15 / 100) < 2)
    np.testing.assert_array_equal(np.bincount(y_train, minlength=5) + val_counts + test_counts, sizes)


def test_train_val_test_split_needs_training_samples():
    x, y = ids(10)
    with pytest.raises(ValueError, match=r"leave no training samples: 5 \+ 5 of 10"):
        train_val_test_split(x, y, val_size=0.5, test_size=0.5)
    with pytest.raises(ValueError, match="val_size"):
        train_val_test_split(x, y, val_size=0)
    with pytest.raises(ValueError, match="test_size=0.95 of 10 samples is 10 samples, which leaves none"):
        train_test_split(x, y, test_size=0.95)


# --- kfold ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, k, shuffle", [(10, 5, True), (11, 3, True), (7, 7, False), (23, 4, False)])
def test_kfold_every_index_is_validation_exactly_once(n, k, shuffle):
    folds = list(kfold(n, k=k, seed=1, shuffle=shuffle))
    assert len(folds) == k
    seen = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        assert not set(train) & set(val)
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


def test_kfold_shuffles_reproducibly_or_not_at_all():
    assert [v.tolist() for _, v in kfold(6, k=2, shuffle=False)] == [[0, 1, 2], [3, 4, 5]]
    a = [v.tolist() for _, v in kfold(20, k=4, seed=7)]
    assert a == [v.tolist() for _, v in kfold(20, k=4, seed=7)]
    assert a != [v.tolist() for _, v in kfold(20, k=4, seed=8)]
    assert a != [v.tolist() for _, v in kfold(20, k=4, shuffle=False)]


def test_kfold_rejects_bad_k_before_iterating():
    with pytest.raises(ValueError, match=r"k must be in \[2, n=3\].*k=5"):
        kfold(3, k=5)
    with pytest.raises(ValueError, match="k must be in"):
        kfold(3, k=1)
    with pytest.raises(ValueError, match="n must be a positive int"):
        kfold(0)


# --- centring and standardisation -----------------------------------------------------------------

def test_mean_image_centres_train_and_applies_the_same_mean_to_test():
    x_train, x_test = images(30, seed=1), images(7, seed=2)
    centre = MeanImage().fit(x_train)
    out_train = centre.transform(x_train)
    np.testing.assert_allclose(out_train.mean(axis=0), 0, atol=1e-5)
    mean = x_train.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(centre.transform(x_test), x_test - mean, rtol=1e-6, atol=1e-5)
    assert out_train.dtype == np.float32 and centre.state_dict()["mean"].shape == (3, 4, 5)
    # the test set's own mean is NOT removed: its transformed mean is its mean minus train's
    np.testing.assert_allclose(centre.transform(x_test).mean(axis=0), x_test.mean(axis=0) - mean, atol=1e-5)


def test_channel_centre_subtracts_per_channel_means_and_accepts_other_image_sizes():
    x = images(10, c=3)
    x[:, 1] += 100
    centre = ChannelCentre().fit(x)
    np.testing.assert_allclose(centre.state_dict()["mean"], x.astype(np.float64).mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(centre.transform(x).mean(axis=(0, 2, 3)), 0, atol=1e-4)
    bigger = images(2, c=3, h=9, w=9, seed=5)
    np.testing.assert_allclose(centre.transform(bigger),
                               bigger - x.mean(axis=(0, 2, 3)).reshape(1, 3, 1, 1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("per_channel", [True, False])
def test_standardise_gives_zero_mean_unit_std_on_train(per_channel):
    x = images(40, c=2, dtype=np.float64)
    x[:, 0] = 5 * x[:, 0] + 7
    out = Standardise(per_channel=per_channel).fit_transform(x)
    axes = (0, 2, 3) if per_channel else None
    np.testing.assert_allclose(out.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=axes), 1, atol=1e-12)
    x_test = images(3, c=2, seed=9, dtype=np.float64)
    m, s = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
    np.testing.assert_allclose(Standardise(per_channel=per_channel).fit(x).transform(x_test), (x_test - m) / s)


def test_standardise_only_centres_a_constant_channel():
    x = images(5, c=2)
    x[:, 1] = 3.0
    s = Standardise().fit(x)
    out = s.transform(x + np.float32(1))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 1], 1.0)                      # (4 - 3) / 1, not / 0


@pytest.mark.parametrize("make", [MeanImage, ChannelCentre, Standardise, lambda: Standardise(per_channel=False)])
def test_preprocessors_state_dict_round_trip_and_inverse(make):
    x = images(12)
    fitted = make().fit(x)
    state = fitted.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    fresh = make().load_state_dict(state)
    x_new = images(4, seed=3)
    np.testing.assert_array_equal(fresh.transform(x_new), fitted.transform(x_new))
    np.testing.assert_allclose(fresh.inverse_transform(fresh.transform(x_new)), x_new, rtol=1e-5, atol=1e-5)
    state[next(iter(state))] += 1                                         # a copy, not the inside
    np.testing.assert_array_equal(fresh.transform(x_new), fitted.transform(x_new))
    before = x_new.copy()
    fresh.transform(x_new)
    np.testing.assert_array_equal(x_new, before)                          # input untouched


@pytest.mark.parametrize("make", [MeanImage, ChannelCentre, Standardise])
def test_preprocessors_refuse_transform_before_fit(make):
    with pytest.raises(RuntimeError, match=f"{make.__name__} is not fitted: call fit"):
        make().transform(images(2))
    with pytest.raises(RuntimeError, match="not fitted"):
        make().state_dict()


def test_preprocessors_name_shape_and_channel_mismatches():
    with pytest.raises(ValueError, match=r"images of shape \(3, 4, 6\).*fitted on images of shape \(3, 4, 5\)"):
        MeanImage().fit(images(4)).transform(images(2, w=6))
    with pytest.raises(ValueError, match=r"x has 1 channels .* fitted on 3 channels"):
        ChannelCentre().fit(images(4)).transform(images(2, c=1))
    with pytest.raises(ValueError, match=r"x has 2 channels .* fitted on 3 channels"):
        Standardise().fit(images(4)).transform(images(2, c=2))
    with pytest.raises(TypeError, match="x must be a floating-point array, got dtype uint8"):
        MeanImage().fit(np.zeros((2, 1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"x must be \(N, C, ...\).*got shape \(5,\)"):
        ChannelCentre().fit(np.zeros(5))


def test_a_failed_fit_or_load_leaves_the_fitted_state_alone():
    x = images(6)
    centre = ChannelCentre().fit(x)
    before = centre.state_dict()
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        centre.fit(bad)
    with pytest.raises(KeyError, match=r"missing \['mean'\], unexpected \['means'\]"):
        centre.load_state_dict({"means": np.zeros(3)})
    with pytest.raises(ValueError, match=r"state\['mean'\] must be a \(C,\) vector, got shape \(3, 1\)"):
        centre.load_state_dict({"mean": np.zeros((3, 1))})
    np.testing.assert_array_equal(centre.state_dict()["mean"], before["mean"])
    with pytest.raises(ValueError, match=r"per_channel=False.*must be a scalar"):
        Standardise(per_channel=False).load_state_dict({"mean": np.zeros(3), "std": np.ones(3)})


# --- batches and Batches --------------------------------------------------------------------------

def order_of(iterator):
    return np.concatenate([b[0] if isinstance(b, tuple) else b for b in iterator]).ravel()


def test_batches_cover_every_sample_once_with_the_right_sizes():
    x, y = ids(10)
    got = list(batches(x, y, batch_size=4, seed=0))
    assert [len(xb) for xb, _ in got] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(order_of(got)), np.arange(10))
    for xb, yb in got:
        np.testing.assert_array_equal(yb, 10 * xb.ravel())
    assert [len(b) for b in batches(x, batch_size=4, drop_last=True)] == [4, 4]
    np.testing.assert_array_equal(order_of(batches(x, batch_size=3, shuffle=False)), np.arange(10))


def test_batches_order_is_fixed_by_seed_and_epoch():
    x = np.arange(50)
    a = order_of(batches(x, batch_size=8, seed=1, epoch=0))
    np.testing.assert_array_equal(a, order_of(batches(x, batch_size=8, seed=1, epoch=0)))
    assert not np.array_equal(a, order_of(batches(x, batch_size=8, seed=1, epoch=1)))
    assert not np.array_equal(a, order_of(batches(x, batch_size=8, seed=2, epoch=0)))
    rng = np.random.default_rng(0)
    assert not np.array_equal(order_of(batches(x, seed=rng)), order_of(batches(x, seed=rng)))


def test_batches_are_copies():
    x = np.arange(6.0)
    for b in batches(x, batch_size=3, shuffle=False):
        b[:] = -1
    np.testing.assert_array_equal(x, np.arange(6.0))


def test_batches_errors():
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        batches(np.arange(4), batch_size=0)
    with pytest.raises(ValueError, match=r"drop_last=True with batch_size=8 > 4 samples"):
        batches(np.arange(4), batch_size=8, drop_last=True)
    with pytest.raises(ValueError, match="epoch must be an int >= 0, got -1"):
        batches(np.arange(4), epoch=-1)
    with pytest.raises(ValueError, match="x and y must have the same number of samples"):
        batches(np.arange(4), np.arange(5))


def test_batches_loader_is_reiterable_with_a_new_reproducible_order_each_epoch():
    x, y = ids(23)
    loader = Batches(x, y, batch_size=5, seed=3)
    assert len(loader) == 5 and len(Batches(x, batch_size=5, drop_last=True)) == 4
    epochs = [order_of(loader) for _ in range(3)]
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), np.arange(23))
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    again = Batches(x, y, batch_size=5, seed=3)
    np.testing.assert_array_equal(order_of(again), epochs[0])
    again.epoch = 2                                                      # resume at epoch 2
    np.testing.assert_array_equal(order_of(again), epochs[2])
    np.testing.assert_array_equal(epochs[1], order_of(batches(x, y, batch_size=5, seed=3, epoch=1)))
    assert len(list(loader)) == len(loader)


def test_batches_loader_applies_augment_to_x_only():
    x, y = ids(6)
    calls = []

    def augment(xb, rng):
        calls.append(isinstance(rng, np.random.Generator))
        return -xb
    for xb, yb in Batches(x, y, batch_size=4, augment=augment):
        np.testing.assert_array_equal(yb, -10 * xb.ravel())
    assert calls == [True, True]
    with pytest.raises(TypeError, match="augment must be callable"):
        Batches(x, augment=3)


# --- one_hot --------------------------------------------------------------------------------------

def test_one_hot_matches_rows_of_the_identity():
    labels = np.array([[3, 0], [1, 3]])
    out = one_hot(labels, 4)
    assert out.shape == (2, 2, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.eye(4)[labels])


def test_one_hot_errors_name_the_offending_label():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\] for num_classes=3, got 3 at index 1"):
        one_hot([0, 3, 1], 3)
    with pytest.raises(TypeError, match="labels must be integers, got dtype float64"):
        one_hot([0.0, 1.0], 2)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        one_hot([0], 0)
