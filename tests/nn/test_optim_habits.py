"""Issue 29, the optimiser rows: Keras's and PyTorch's habits with optimisers, written as their users
write them (learning_rate=, an optimiser made before the model's parameters, parameter groups, gradient
clipping), each checked against a NumPy computation of what torch or Keras does."""
import numpy as np
import pytest

import nn


def _param(values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def _blobs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


# --- 1. learning_rate= (Keras) beside lr= -------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(nn.optim.OPTIMIZERS))
def test_learning_rate_is_kerass_name_for_lr(name):
    cls = nn.optim.OPTIMIZERS[name]
    keras_way, torch_way = _param([1.0, -2.0]), _param([1.0, -2.0])
    opt = cls([keras_way], learning_rate=0.05)
    twin = cls([torch_way], lr=0.05)
    assert opt.lr == opt.learning_rate == 0.05 and opt.param_groups[0]["lr"] == 0.05
    for _ in range(2):
        keras_way.grad = torch_way.grad = np.array([0.3, -0.7])
        opt.step(), twin.step()
    np.testing.assert_array_equal(keras_way.value, torch_way.value)
    assert not np.array_equal(keras_way.value, [1.0, -2.0])


def test_lr_and_learning_rate_together_are_refused():
    with pytest.raises(TypeError, match=r"Adam: give lr or learning_rate .*not both; got lr=0.1 and "
                                        r"learning_rate=0.01"):
        nn.optim.Adam([_param([1.0])], lr=0.1, learning_rate=0.01)


def test_setting_learning_rate_sets_every_group():
    opt = nn.optim.SGD([{"params": [_param([1.0])], "lr": 0.1}, {"params": [_param([2.0])]}], lr=0.01)
    opt.learning_rate = 0.3
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.3] and opt.lr == 0.3
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.3]


# --- 2. an optimiser made before the parameters, given to compile -------------------------------------

def _keras_model():
    return nn.Sequential(nn.Dense(8, activation="relu"), nn.Dense(2, activation="softmax"))


def test_an_optimiser_made_first_gets_the_models_parameters_at_the_first_fit():
    x, y = _blobs()
    nn.set_seed(0)
    model = _keras_model()                          # not built: no input shape yet
    opt = nn.optim.Adam(learning_rate=1e-2)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert opt.param_groups == []
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0)
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in model.parameters()]
    nn.set_seed(0)
    torch_way = _keras_model()
    torch_way.build((2,))
    torch_way.compile(optimizer=nn.optim.Adam(torch_way.parameters(), lr=1e-2),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    expected = torch_way.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0)
    assert history.history["loss"] == expected.history["loss"]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_a_built_model_gives_its_parameters_at_compile():
    model = nn.Sequential(nn.Dense(3, input_shape=(4,)), nn.Dense(2, activation="softmax"))
    opt = nn.optim.SGD(learning_rate=0.1, momentum=0.9)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    assert len(opt.params) == 4 and all(a is b for a, b in zip(opt.params, model.parameters()))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")     # a name still works
    x, y = _blobs(16)
    model.fit(np.hstack([x, x]), y, epochs=1, verbose=0)
    assert isinstance(model._compiled["optimizer"], nn.optim.Adam)


def test_an_optimiser_without_parameters_says_so_and_compile_refuses_a_non_optimiser():
    opt = nn.optim.RMSprop(learning_rate=1e-3)
    with pytest.raises(RuntimeError, match=r"RMSprop.step: no parameters yet; pass them .* or give it to "
                                           r"model.compile"):
        opt.step()
    with pytest.raises(ValueError, match="compile: optimizer must be one of .* or an nn.optim optimiser, got 42"):
        _keras_model().compile(optimizer=42, loss="sparse_categorical_crossentropy")


# --- 3. parameter groups (torch.optim) ------------------------------------------------------------------

def _sgd_momentum(p, grads, lrs, momentum=0.9):
    """torch.optim.SGD's momentum in NumPy: buf <- momentum buf + g (g on the first step); p <- p - lr buf."""
    p, buf = np.array(p, dtype=np.float64), None
    for g, lr in zip(grads, lrs):
        buf = np.array(g, dtype=np.float64) if buf is None else momentum * buf + g
        p = p - lr * buf
    return p


def test_parameter_groups_with_their_own_options_as_torch():
    a, b = _param([1.0, 2.0]), _param([-1.0])
    opt = nn.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b]}], lr=0.01, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    assert opt.param_groups[0]["params"] == [a] and set(opt.param_groups[1]) >= {"params", "dampening", "nesterov"}
    ga, gb = [np.array([0.5, -1.0]), np.array([0.2, 0.1])], [np.array([2.0]), np.array([-1.0])]
    for step in range(2):
        a.grad, b.grad = ga[step], gb[step]
        opt.step()
    np.testing.assert_allclose(a.value, _sgd_momentum([1.0, 2.0], ga, [0.1, 0.1]), rtol=1e-12)
    np.testing.assert_allclose(b.value, _sgd_momentum([-1.0], gb, [0.01, 0.01]), rtol=1e-12)


def test_editing_a_groups_lr_changes_the_next_step_and_rebuilds_only_that():
    a = _param([1.0, 2.0])
    opt = nn.optim.SGD([a], lr=0.1, momentum=0.9)
    built = []
    options = opt._options
    opt._options = lambda hyper: built.append(hyper["lr"]) or options(hyper)   # counts the kernels' objects made
    grads = [np.array([0.5, -1.0]), np.array([0.2, 0.1]), np.array([1.0, 1.0])]
    for step, g in enumerate(grads):
        if step == 2:
            for group in opt.param_groups:            # what a torch LR scheduler does
                group["lr"] *= 0.5
        a.grad = g
        opt.step()
    assert built == [0.05]                            # one object for the new lr, none for the other steps
    np.testing.assert_allclose(a.value, _sgd_momentum([1.0, 2.0], grads, [0.1, 0.1, 0.05]), rtol=1e-12)


def test_a_bad_edited_option_is_refused_at_the_step_before_any_update():
    a, b = _param([1.0]), _param([2.0])
    opt = nn.optim.Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    opt.param_groups[1]["lr"] = -0.5
    a.grad = b.grad = np.array([1.0])
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    assert a.value[0] == 1.0 and b.value[0] == 2.0 and opt.steps == [0, 0]


def test_momentum_switched_on_in_a_group_later_gets_its_buffer():
    a = _param([1.0])
    opt = nn.optim.SGD([a], lr=0.1)
    a.grad = np.array([1.0])
    opt.step()
    opt.param_groups[0]["momentum"] = 0.9
    a.grad = np.array([1.0])
    opt.step(), opt.step()
    np.testing.assert_allclose(a.value, [1.0 - 0.1 - 0.1 * 1.0 - 0.1 * 1.9], rtol=1e-12)


def test_a_parameter_in_two_groups_and_unknown_group_keys_are_refused():
    a, b = _param([1.0]), _param([2.0])
    with pytest.raises(ValueError, match=r"SGD: parameters 0 and 2 are the same Parameter \(already in "
                                         r"param_groups\[0\]\); a parameter may be in one group only"):
        nn.optim.SGD([{"params": [a]}, {"params": [b, a]}], lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: param_groups\[1\] has unexpected keys \['betas'\]"):
        nn.optim.SGD([{"params": [a]}, {"params": [b], "betas": (0.9, 0.99)}], lr=0.1)


def test_add_param_group_as_when_fine_tuning_a_new_head():
    body, head = _param([1.0]), _param([2.0])
    opt = nn.optim.SGD([body], lr=0.01)
    opt.add_param_group({"params": [head], "lr": 0.1})
    body.grad = head.grad = np.array([1.0])
    opt.step()
    np.testing.assert_allclose([body.value[0], head.value[0]], [0.99, 1.9], rtol=1e-12)
    with pytest.raises(ValueError, match="same Parameter"):
        opt.add_param_group({"params": [head]})
    assert len(opt.param_groups) == 2


def test_state_dict_round_trips_with_groups():
    def make():
        a, b = _param([1.0, 2.0]), _param([-1.0])
        return (a, b), nn.optim.Adam([{"params": [a], "lr": 0.1}, {"params": [b], "betas": (0.5, 0.9)}], lr=0.01)
    (a, b), opt = make()
    for g in ([0.5, -1.0], [1.0, 1.0]):
        a.grad, b.grad = np.array(g), np.array([g[0]])
        opt.step()
    opt.param_groups[1]["lr"] = 0.02
    saved = opt.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    (twin_a, twin_b), twin = make()
    twin_a.value[...], twin_b.value[...] = a.value, b.value
    twin.load_state_dict(saved)
    assert [g["lr"] for g in twin.param_groups] == [0.1, 0.02] and twin.param_groups[1]["betas"] == (0.5, 0.9)
    for p in (a, twin_a):
        p.grad = np.array([0.3, 0.3])
    for p in (b, twin_b):
        p.grad = np.array([-0.2])
    opt.step(), twin.step()
    np.testing.assert_array_equal(twin_a.value, a.value)
    np.testing.assert_array_equal(twin_b.value, b.value)
    one_group = nn.optim.Adam([_param([1.0, 2.0]), _param([-1.0])])
    with pytest.raises(ValueError, match=r"load_state_dict: groups of \[1, 1\] parameters, this optimiser's have "
                                         r"\[2\]"):
        one_group.load_state_dict(saved)


def test_nn_schedules_work_through_param_groups():
    opt = nn.optim.SGD([{"params": [_param([1.0])], "lr": 0.1}, {"params": [_param([2.0])]}], lr=0.01)
    schedule = nn.optim.StepLR(opt, step_size=1, gamma=0.5)
    schedule.step()
    np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [0.05, 0.005])
    plateau = nn.optim.ReduceLROnPlateau(opt, patience=0)
    plateau.step(1.0), plateau.step(1.0)
    np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [0.005, 0.0005])


def test_a_schedule_made_before_compile_follows_the_groups_given_at_compile():
    opt = nn.optim.SGD(learning_rate=0.2)
    schedule = nn.optim.StepLR(opt, step_size=1, gamma=0.5)
    model = nn.Sequential(nn.Dense(2, input_shape=(2,)))
    model.compile(optimizer=opt, loss="softmax_cross_entropy")
    schedule.step(), schedule.step()
    assert opt.lr == pytest.approx(0.05)


# --- 4. gradient clipping: torch.nn.utils and Keras's optimiser options -------------------------------

def _with_grads(seed=0):
    rng = np.random.default_rng(seed)
    params = [_param(rng.normal(size=3)), _param(rng.normal(size=(2, 2)))]
    for p in params:
        p.grad = rng.normal(size=p.value.shape) * 3
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torchs_formula(norm_type):
    params = _with_grads()
    grads = [p.grad.copy() for p in params]
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.max(np.abs(flat)) if norm_type == float("inf") else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    returned = nn.utils.clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert returned == pytest.approx(total, rel=1e-12)
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, g * (1.0 / (total + 1e-6)), rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_and_checks_its_arguments():
    params = _with_grads()
    grads = [p.grad.copy() for p in params]
    nn.utils.clip_grad_norm_(params, max_norm=100.0)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad, g)
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be a finite number >= 0, got -1"):
        nn.utils.clip_grad_norm_(params, max_norm=-1)
    params[0].grad = np.array([np.nan, 0.0, 0.0])
    with pytest.raises(RuntimeError, match="total norm"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_np_clip():
    params = _with_grads()
    grads = [p.grad.copy() for p in params]
    nn.utils.clip_grad_value_(params, clip_value=0.5)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad, np.clip(g, -0.5, 0.5))
    assert any(np.abs(g).max() > 0.5 for g in grads)


def _keras_clip(option, limit, grads):
    """Keras's clipping in NumPy: clip_by_norm per weight, clip_by_global_norm, or clip_by_value."""
    if option == "clipvalue":
        return [np.clip(g, -limit, limit) for g in grads]
    if option == "clipnorm":
        return [g * limit / max(np.linalg.norm(g), limit) for g in grads]
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    return [g * limit / max(total, limit) for g in grads]


@pytest.mark.parametrize("option", ["clipnorm", "clipvalue", "global_clipnorm"])
@pytest.mark.parametrize("name", sorted(nn.optim.OPTIMIZERS))
def test_every_optimiser_clips_as_keras_before_its_update(name, option):
    cls = nn.optim.OPTIMIZERS[name]
    params, twins, unclipped = _with_grads(), _with_grads(), _with_grads()
    opt = cls(params, learning_rate=0.1, **{option: 1.0})
    twin, plain = cls(twins, lr=0.1), cls(unclipped, lr=0.1)
    for scale in (1.0, 0.1):                              # a clipped step, then a step under the limit
        grads = [p.grad * scale for p in _with_grads(1)]
        for p, t, u, g, clipped in zip(params, twins, unclipped, grads, _keras_clip(option, 1.0, grads)):
            p.grad, t.grad, u.grad = g.copy(), clipped, g.copy()
        opt.step(), twin.step(), plain.step()
        for p, t, g in zip(params, twins, grads):
            np.testing.assert_allclose(p.value, t.value, rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(p.grad, g)      # the gradients themselves are left as they were
    assert not np.allclose(unclipped[0].value, params[0].value, rtol=1e-6, atol=0)


def test_only_one_clipping_option_and_it_must_be_a_limit():
    with pytest.raises(ValueError, match="Adam: give at most one of clipnorm, clipvalue, global_clipnorm .*got "
                                         "clipnorm=1.0, clipvalue=0.5"):
        nn.optim.Adam([_param([1.0])], clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match=r"SGD: global_clipnorm must be a finite number >= 0, got 'big' \(str\)"):
        nn.optim.SGD([_param([1.0])], global_clipnorm="big")


def test_nn_fit_gives_an_optimiser_made_first_the_models_parameters():
    x, y = _blobs()
    nn.set_seed(0)
    model = _keras_model()
    model.build((2,))
    opt = nn.optim.Adam(learning_rate=1e-2)
    history = nn.fit(model, (x, y), loss="sparse_categorical_crossentropy", optimizer=opt, epochs=3, batch_size=16,
                     verbose=0, seed=0)
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in model.parameters()]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_an_optimiser_given_to_a_second_model_is_refused_before_anything_changes():
    x, y = _blobs()
    first, second = _keras_model(), _keras_model()
    first.build((2,))
    second.build((2,))
    opt = nn.optim.Adam(learning_rate=1e-2)
    first.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="compile: optimizer holds .* none of them this model's"):
        second.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    assert getattr(second, "_compiled", None) is None
    before = [p.value.copy() for p in second.parameters()]
    with pytest.raises(ValueError, match="fit: optimizer holds .* none of them this model's"):
        nn.fit(second, (x, y), loss="sparse_categorical_crossentropy", optimizer=opt, verbose=0)
    assert all(np.array_equal(b, p.value) for b, p in zip(before, second.parameters()))
    head_only = nn.optim.SGD(second.parameters()[-1:], lr=0.1)      # fine-tuning a part is fine
    nn.fit(second, (x, y), loss="sparse_categorical_crossentropy", optimizer=head_only, verbose=0)


def test_clip_grad_norm_of_a_nan_gradient_gives_nan_as_torch():
    p = nn.Parameter(np.ones(3))
    p.grad = np.array([np.nan, 1.0, 2.0])
    total = nn.utils.clip_grad_norm_([p], 1.0)
    assert np.isnan(total) and np.isnan(p.grad).all()
