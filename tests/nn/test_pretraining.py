"""nn.transfer: frozen parameters get no gradient and no update, a new head keeps what the body learnt,
and greedy layer-wise pre-training trains each hidden layer as an auto-encoder (held to PCA's optimum)."""
import io
import re

import numpy as np
import pytest

import nn
from nn.transfer import (freeze, frozen_parameters, pretrain_layerwise, replace_head, trainable_parameters,
                         unfreeze)


def mlp(seed=0, hidden=(6, 5), inputs=4, classes=3, activation="tanh"):
    nn.set_seed(seed)
    return nn.Sequential([nn.Input((inputs,))] + [nn.Dense(h, activation=activation) for h in hidden] +
                         [nn.Dense(classes, activation="softmax")])


def data(n=40, inputs=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype(np.float32)
    return x, (np.abs(x[:, 0] * 2).astype(np.int64) % classes)


# --- freezing ------------------------------------------------------------------------------------------

def test_a_frozen_layer_gets_no_gradient_and_no_update_while_the_rest_learns():
    model, (x, y) = mlp(), data()
    freeze(model.layers[1])
    before = {name: value.copy() for name, value in model.state_dict().items()}
    opt = nn.optim.Adam(model.parameters(), lr=0.05)          # frozen parameters are accepted (as in torch)
    loss = nn.functional.softmax_cross_entropy(model.forward(x, logits=True), y)
    loss.backward()
    assert model.layers[1].weight.grad is None and model.layers[2].weight.grad is not None
    opt.step()
    after = model.state_dict()
    assert np.array_equal(after["dense.weight"], before["dense.weight"])
    assert np.array_equal(after["dense.bias"], before["dense.bias"])
    assert not np.array_equal(after["dense_1.weight"], before["dense_1.weight"])
    assert len(opt.state) == 6 and opt.state[0] is None        # no state was made for the frozen ones


def test_fit_with_a_named_optimiser_trains_around_a_frozen_body():
    model, (x, y) = mlp(), data()
    freeze(*model.layers[:-1])
    body = {k: v.copy() for k, v in model.state_dict().items() if not k.startswith("dense_2")}
    history = nn.fit(model, (x, y), optimizer="sgd", lr=0.5, epochs=5, verbose=0, seed=0)
    assert history["loss"][-1] < history["loss"][0]
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in body.items())


def test_trainable_and_frozen_parameters_and_unfreeze():
    model = mlp()
    freeze(model.layers[2].weight)                             # one Parameter alone
    assert [p.shape for p in frozen_parameters(model)] == [(6, 5)]
    assert len(trainable_parameters(model)) == 5
    assert sum(p.size for p in trainable_parameters(model)) + 30 == model.count_params()
    unfreeze(model)
    assert not frozen_parameters(model) and len(trainable_parameters(model)) == 6


def test_summary_counts_frozen_parameters_as_non_trainable_as_keras_does():
    """Keras's split: trainable = requires_grad; frozen parameters and buffers are non-trainable."""
    model = nn.Sequential([nn.Input((4,)), nn.Dense(3), nn.BatchNorm(), nn.Dense(2)])

    def totals():
        buffer = io.StringIO()
        model.summary(file=buffer)
        return dict(re.findall(r"^(Total|Trainable|Non-trainable) params: ([\d,]+)$", buffer.getvalue(), flags=re.M))

    # dense: 4*3 + 3 = 15; batch_norm: gamma, beta 3 + 3 and running mean, variance 3 + 3; dense_1: 3*2 + 2 = 8
    assert totals() == {"Total": "35", "Trainable": "29", "Non-trainable": "6"}
    freeze(model.layers[1], model.layers[2])
    assert totals() == {"Total": "35", "Trainable": "8", "Non-trainable": "27"}
    unfreeze(model)
    assert totals()["Trainable"] == "29"


def test_freeze_drops_a_stale_gradient_and_refuses_what_is_not_a_module():
    model, (x, y) = mlp(), data()
    nn.functional.softmax_cross_entropy(model.forward(x, logits=True), y).backward()
    freeze(model)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(TypeError, match=r"freeze: argument 1 must be a Module, a layer or a Parameter, got ndarray"):
        freeze(model.layers[1], np.zeros(3))


def test_optimisers_still_refuse_what_is_not_a_tensor():
    with pytest.raises(TypeError, match=r"SGD: parameter 0 is not a Tensor with requires_grad=True .* got ndarray"):
        nn.optim.SGD([np.zeros(3)], lr=0.1)


# --- a new head ----------------------------------------------------------------------------------------

def test_replace_head_keeps_the_body_its_values_and_flags_and_makes_a_fresh_head():
    model = mlp()
    freeze(model.layers[1])
    learnt = model.state_dict()
    new = replace_head(model, [nn.Dense(7, activation="relu"), nn.Dense(2, activation="softmax")], name="new")
    assert [layer.name for layer in new.layers] == ["input", "dense", "dense_1", "dense_2", "dense_3"]
    assert new.layers[1] is model.layers[1] and new.output_shape == (2,)
    for name in ("dense.weight", "dense.bias", "dense_1.weight", "dense_1.bias"):
        np.testing.assert_array_equal(new.state_dict()[name], learnt[name])
    assert [p.requires_grad for p in new.parameters()] == [False, False, True, True, True, True, True, True]
    assert new.layers[3].weight.shape == (5, 7)


def test_replace_head_refuses_bad_arguments():
    model = mlp()
    with pytest.raises(ValueError, match=r"replace_head: drop must be less than the model's 4 layers, got 4"):
        replace_head(model, nn.Dense(2), drop=4)
    with pytest.raises(TypeError, match=r"replace_head: model must be a built Sequential, got Dense"):
        replace_head(nn.Dense(3), nn.Dense(2))


# --- greedy layer-wise pre-training -------------------------------------------------------------------

def test_a_linear_stage_approaches_but_never_beats_pca():
    """A linear encoder of k units with a linear decoder reconstructs at best as well as the first k
    principal components (Eckart-Young): PCA's residual is a lower bound the training must approach."""
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(300, 3)) @ rng.normal(size=(3, 8)) + 0.1 * rng.normal(size=(300, 8))).astype(np.float32)
    x -= x.mean(axis=0)
    singular = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    pca_residual = float((singular[2:] ** 2).sum() / x.size)    # mean squared error with 2 components
    model = mlp(hidden=(2,), inputs=8, activation=None)
    report = pretrain_layerwise(model, x, epochs=60, batch_size=30, lr=0.02, seed=0)
    assert [stage["layer"] for stage in report] == ["dense"] and len(report[0]["loss"]) == 60
    assert min(report[0]["loss"]) >= pca_residual * 0.999
    assert report[0]["loss"][-1] < 1.05 * pca_residual < 0.2 * report[0]["loss"][0]


def test_each_hidden_layer_is_trained_in_turn_and_the_classifier_is_left_alone():
    model, (x, _) = mlp(hidden=(6, 5, 4)), data()
    model.train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    report = pretrain_layerwise(model, x, epochs=3, seed=0)
    assert [stage["layer"] for stage in report] == ["dense", "dense_1", "dense_2"]
    after = model.state_dict()
    assert all(not np.array_equal(after[f"{name}.weight"], before[f"{name}.weight"]) for name in
               ("dense", "dense_1", "dense_2"))
    assert np.array_equal(after["dense_3.weight"], before["dense_3.weight"])     # the classifier
    assert model.training and all(layer.training for layer in model.layers)        # modes restored


def test_frozen_layers_are_not_pretrained_and_conv_layers_are():
    nn.set_seed(0)
    model = nn.Sequential([nn.Input((1, 6, 6)), nn.Conv2D(3, 3, activation="relu"), nn.Flatten(), nn.Dense(8),
                           nn.BatchNorm(), nn.Dense(2)])             # a BatchNorm learns no code: not a stage
    freeze(model.layers[3])
    x = np.random.default_rng(0).normal(size=(30, 1, 6, 6)).astype(np.float32)
    frozen = model.layers[3].weight.value.copy()
    report = pretrain_layerwise(model, x, epochs=4, lr=1e-2, seed=0)
    assert [stage["layer"] for stage in report] == ["conv2d"]          # the frozen Dense is skipped
    assert report[0]["loss"][-1] < report[0]["loss"][0]
    assert np.array_equal(model.layers[3].weight.value, frozen)


def test_pretraining_is_seeded_and_noise_changes_it():
    x, _ = data()
    runs = []
    for noise in (0.0, 0.0, 0.5):
        model = mlp()
        runs.append((pretrain_layerwise(model, x, epochs=2, noise=noise, seed=3), model.state_dict()["dense.weight"]))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(x=np.zeros((5, 3), np.float32)), r"x must be float samples of shape \(N, 4\), got shape \(5, 3\)"),
    (dict(x=np.zeros((5, 4), np.int64)), r"got shape \(5, 4\) and dtype int64"),
    (dict(epochs=0), r"epochs and batch_size must be >= 1, lr > 0 and noise >= 0, got epochs=0"),
    (dict(noise=-1.0), r"noise=-1.0"),
])
def test_pretraining_refuses_bad_input_before_any_change(kwargs, message):
    model = mlp()
    before = model.state_dict()
    args = {"x": data()[0], **kwargs}
    with pytest.raises(ValueError, match=message):
        pretrain_layerwise(model, args.pop("x"), **args)
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())
