"""The classic architectures of nn.models reproduce their papers' parameter counts, layer by layer, and
``shapes_only()`` builds them without allocating their values."""
import tracemalloc

import numpy as np
import pytest

import nn


def conv(filters, channels, kernel, groups=1):
    """A convolution's parameters by hand: each filter spans channels / groups channels, plus a bias."""
    return filters * (channels // groups) * kernel * kernel + filters


def dense(inputs, units):
    return inputs * units + units


CLASSIFIER = lambda features: [dense(features, 4096), dense(4096, 4096), dense(4096, 1000)]  # noqa: E731
VGG_IN = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512]
VGG_OUT = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
HAND = {
    "alexnet": [conv(96, 3, 11), conv(256, 96, 5, 2), conv(384, 256, 3), conv(384, 384, 3, 2),
                conv(256, 384, 3, 2)] + CLASSIFIER(256 * 6 * 6),
    "zfnet": [conv(96, 3, 7), conv(256, 96, 5), conv(384, 256, 3), conv(384, 384, 3),
              conv(256, 384, 3)] + CLASSIFIER(256 * 6 * 6),
    "vgg16": [conv(o, i, 3) for i, o in zip(VGG_IN, VGG_OUT)] + CLASSIFIER(512 * 7 * 7),
}
PUBLISHED = {"alexnet": 60_965_224, "zfnet": 62_357_608, "vgg16": 138_357_544}


@pytest.mark.parametrize("name", sorted(nn.models.CLASSIC))
def test_classic_architectures_have_the_published_counts_layer_by_layer(name):
    with nn.models.shapes_only():
        model = nn.models.CLASSIC[name]()
    counts = [layer.count_params() for layer in model.layers if layer.count_params()]
    assert counts == HAND[name]
    assert model.count_params() == sum(HAND[name]) == PUBLISHED[name]
    assert model.layers[-1].output_shape == (1000,) and model.ends_in_softmax()


def test_the_feature_maps_are_the_papers():
    with nn.models.shapes_only():
        pools = {name: [layer.output_shape for layer in build().layers if isinstance(layer, nn.MaxPool2D)]
                 for name, build in nn.models.CLASSIC.items()}
    assert pools["alexnet"] == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert pools["zfnet"] == [(96, 55, 55), (256, 13, 13), (256, 6, 6)]
    assert pools["vgg16"] == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]


def test_classes_and_input_shape_are_arguments():
    with nn.models.shapes_only():
        model = nn.models.vgg16(input_shape=(3, 32, 32), classes=10)
    assert model.layers[-1].output_shape == (10,)
    assert model.count_params() == sum(HAND["vgg16"][:13]) + sum(
        [dense(512, 4096), dense(4096, 4096), dense(4096, 10)])


def test_shapes_only_allocates_nothing_and_refuses_training():
    tracemalloc.start()
    with nn.models.shapes_only():
        model = nn.models.vgg16()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5e6                                 # bytes; the values would take 553 MB
    weight = model.parameters()[0]
    assert weight.value.shape == (64, 3, 3, 3) and not np.any(weight.value)
    with pytest.raises(ValueError, match="read-only"):
        weight.value[...] = 1.0
    ordinary = nn.models.digits_cnn()                 # outside the block, parameters have values again
    assert np.any(ordinary.parameters()[0].value) and ordinary.parameters()[0].value.flags.writeable


def test_the_classic_models_build_and_run_with_values():
    """Built for real (small images, few classes, to keep it light), a classic model computes."""
    model = nn.models.alexnet(input_shape=(3, 67, 67), classes=5)
    x = np.random.default_rng(0).random((2, 3, 67, 67), dtype=np.float32)
    out = nn.predict(model, x)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
