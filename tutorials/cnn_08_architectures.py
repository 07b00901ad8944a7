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
# # Lesson 8: classic architectures and their parameter budgets
#
# *Follows the lecture "Classification and Optimization in CNNs", part "Classic CNN architectures"
# (AlexNet, ZFNet, VGG16), with the papers they cite: Krizhevsky, Sutskever and Hinton (2012),
# Zeiler and Fergus (2013), Simonyan and Zisserman (2014).*
#
# The classic ImageNet networks, ready in `nn.models` (`alexnet()`, `zfnet()`, `vgg16()`, layer for
# layer as their papers give them), and what their counts teach. Building a model makes its
# parameters, so `summary()` and `count_params()` work at once, before any training; inside
# `nn.models.shapes_only()` the parameters get shapes but no values (like PyTorch's "meta"
# device), so even VGG16's 553 MB cost nothing here:
#
# 1. AlexNet as published, on two GPUs: its convolutions 2, 4 and 5 see only the half of the
#    previous layer's channels that lives on the same GPU (`groups=2`): **60,965,224** parameters;
# 2. ZFNet: AlexNet with a 7x7 stride-2 first layer and no split: 62,357,608 by the paper's table;
# 3. VGG16: thirteen 3x3 convolutions and three dense layers: **138,357,544** parameters;
# 4. where the parameters are: almost all in the dense layers, while the convolutions do the work;
# 5. why 3x3: a stack of three 3x3 convolutions sees a 7x7 window (measured with the engine's
#    gradient) with 27 C^2 weights instead of 49 C^2.
#
# Pictures go to `tutorials/_output/cnn_08_architectures/` (or `$TUTORIAL_OUTPUT`).

# %%
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
ROOT = HERE.parent if HERE.name == "tutorials" else HERE
sys.path.insert(0, str(ROOT))  # the repository: `autodiff`, `nn` and `chainrule` import without installing

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files, never open a window
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import autodiff as ad
import nn
from nn import Conv2D, Input, MaxPool2D, Sequential

from chainrule.lessons import show_figure

OUT = Path(os.environ.get("TUTORIAL_OUTPUT", ROOT / "tutorials" / "_output")) / "cnn_08_architectures"
OUT.mkdir(parents=True, exist_ok=True)


def weight_layers(model):
    """(name, parameters) of each layer that has weights, in order."""
    return [(layer.name, layer.count_params()) for layer in model.layers if layer.count_params()]


def conv_count(filters, channels, kernel, groups=1):
    """A convolution's parameters, by hand: each filter spans channels / groups channels, plus a bias."""
    return filters * (channels // groups) * kernel * kernel + filters


def dense_count(inputs, units):
    return inputs * units + units


# %% [markdown]
# ## 1. AlexNet, as published
#
# Five convolutions and three dense layers on 227x227 colour images: 96 kernels of 11x11 at stride
# 4, overlapping 3x3 max-pooling at stride 2, then 256 kernels of 5x5, 384, 384 and 256 of 3x3;
# two dense layers of 4,096 units with dropout, and 1,000 soft-max outputs. The network was split
# across two GPUs: "the kernels of the second, fourth, and fifth convolutional layers are
# connected only to those kernel maps in the previous layer which reside on the same GPU", which
# is a grouped convolution with two groups.

# %%
with nn.models.shapes_only():          # shapes, no values: a summary without allocating 61 million floats
    model = nn.models.alexnet()
model.summary()
ALEXNET = [conv_count(96, 3, 11), conv_count(256, 96, 5, 2), conv_count(384, 256, 3), conv_count(384, 384, 3, 2),
           conv_count(256, 384, 3, 2), dense_count(256 * 6 * 6, 4096), dense_count(4096, 4096),
           dense_count(4096, 1000)]
assert [count for _, count in weight_layers(model)] == ALEXNET        # layer by layer, as counted by hand
assert model.count_params() == sum(ALEXNET) == 60_965_224             # the published AlexNet
alexnet_layers = weight_layers(model)
del model

# %% [markdown]
# Without the split (every convolution sees all channels; torchvision's single-GPU variant also
# has 64 first-layer kernels and 192 in the second, and counts 61,100,840) the network is larger:
# a grouped convolution divides its weights by the number of groups.

# %%
ungrouped = [conv_count(96, 3, 11), conv_count(256, 96, 5), conv_count(384, 256, 3), conv_count(384, 384, 3),
             conv_count(256, 384, 3)] + ALEXNET[5:]
print(f"AlexNet as published: {sum(ALEXNET):,} parameters; without the two-GPU split: {sum(ungrouped):,}")
assert sum(ungrouped) - sum(ALEXNET) == (256 * 48 * 25 + 384 * 192 * 9 + 256 * 192 * 9)   # the halves not connected
torchvision = [conv_count(64, 3, 11), conv_count(192, 64, 5), conv_count(384, 192, 3), conv_count(256, 384, 3),
               conv_count(256, 256, 3)] + ALEXNET[5:]
assert sum(torchvision) == 61_100_840                                 # torchvision's alexnet(), as it reports

# %% [markdown]
# ## 2. ZFNet
#
# Zeiler and Fergus visualised AlexNet's first layers and changed them: 7x7 kernels at stride 2
# instead of 11x11 at stride 4 (the first layer had "a mix of extremely high and low frequency
# information"), and the second layer at stride 2; one GPU, so no groups. The paper gives the layer
# table (its Fig. 3), not a total; counted from that table, on 224x224 images:

# %%
with nn.models.shapes_only():
    model = nn.models.zfnet()
ZFNET = [conv_count(96, 3, 7), conv_count(256, 96, 5), conv_count(384, 256, 3), conv_count(384, 384, 3),
         conv_count(256, 384, 3), dense_count(256 * 6 * 6, 4096), dense_count(4096, 4096), dense_count(4096, 1000)]
assert [count for _, count in weight_layers(model)] == ZFNET
assert model.count_params() == sum(ZFNET) == 62_357_608
print(f"ZFNet: {model.count_params():,} parameters; feature maps after each pooling: "
      f"{[layer.output_shape[-3:] for layer in model.layers if isinstance(layer, MaxPool2D)]}")
assert [layer.output_shape[-3:] for layer in model.layers if isinstance(layer, MaxPool2D)] == \
    [(96, 55, 55), (256, 13, 13), (256, 6, 6)]                        # the paper's 55, 13 and 6
zfnet_layers = weight_layers(model)
del model

# %% [markdown]
# ## 3. VGG16
#
# "Very deep": 13 convolutions, all 3x3 with padding 1, in five blocks (64, 128, 256, 512, 512
# channels) each closed by a 2x2 max-pooling, then the same three dense layers: 16 weight layers.

# %%
VGG16_BLOCKS = nn.models.VGG16_BLOCKS          # (channels, convolutions) per block
print(f"VGG16's blocks (channels, 3x3 convolutions): {VGG16_BLOCKS}")
with nn.models.shapes_only():
    model = nn.models.vgg16()
channels_in = [3] + [c for c, n in VGG16_BLOCKS for _ in range(n)][:-1]
channels_out = [c for c, n in VGG16_BLOCKS for _ in range(n)]
VGG16 = [conv_count(o, i, 3) for i, o in zip(channels_in, channels_out)] + \
    [dense_count(512 * 7 * 7, 4096), dense_count(4096, 4096), dense_count(4096, 1000)]
vgg16_layers = weight_layers(model)
assert [count for _, count in vgg16_layers] == VGG16 and len(VGG16) == 16
assert model.count_params() == sum(VGG16) == 138_357_544              # the published VGG16
megabytes = model.count_params() * 4 / 1e6
print(f"VGG16: {model.count_params():,} parameters in {len(VGG16)} weight layers, {megabytes:.0f} MB in float32")
assert round(megabytes) == 553
del model

# %% [markdown]
# ## 4. Where the parameters are
#
# Most of each network's parameters sit in its first dense layer, which connects every position
# of the last feature map to 4,096 units; the convolutions, which do the seeing, hold a few percent
# (AlexNet) to a tenth (VGG16). This is why later networks (GoogLeNet, ResNet) replaced the dense
# layers with a global average pooling.

# %%
nets = {"AlexNet": alexnet_layers, "ZFNet": zfnet_layers, "VGG16": vgg16_layers}
dense_share = {}
for net, layers in nets.items():
    total = sum(count for _, count in layers)
    dense = sum(count for name, count in layers if name.startswith("dense"))
    dense_share[net] = dense / total
    print(f"{net:8s} {total:>12,} parameters: {dense / total:6.1%} in the dense layers, "
          f"{layers[-3][1] / total:6.1%} in the first dense layer alone")
assert dense_share["AlexNet"] > 0.96 and dense_share["ZFNet"] > 0.93 and 0.89 < dense_share["VGG16"] < 0.90

fig, ax = plt.subplots(figsize=(8, 3.6))
for k, (net, layers) in enumerate(nets.items()):
    ax.bar(np.arange(len(layers)) + 0.28 * (k - 1), [count for _, count in layers], 0.28, label=net)
ax.set_yscale("log")
ax.set_xlabel("weight layer (convolutions, then the three dense layers)")
ax.set_ylabel("parameters")
ax.set_title("Parameters per weight layer")
ax.legend()
fig.tight_layout()
show_figure(fig, OUT / "parameters_per_layer.svg")

# %% [markdown]
# ## 5. Why 3x3: the receptive field of a stack
#
# VGG's argument: "a stack of three 3x3 conv. layers (without spatial pooling in between) has an
# effective receptive field of 7x7", with $3 (3^2 C^2) = 27 C^2$ weights instead of $7^2 C^2 = 49
# C^2$ for one 7x7 layer, "i.e. 81% more", and three non-linearities instead of one. We measure
# the receptive field with the engine: the gradient of one output pixel of the stack with respect
# to the input image is non-zero exactly on the pixels that output sees (linear layers here, so
# that no ReLU switched off hides part of the window).

# %%
nn.set_seed(0)
image = np.random.default_rng(0).normal(size=(1, 2, 15, 15)).astype(np.float32)   # nn computes in float32
for depth in (1, 2, 3):
    stack = Sequential([Input((2, 15, 15))] + [Conv2D(2, 3, padding=1) for _ in range(depth)])  # linear: no unit off
    pixel = lambda v: ad.sum(stack(v)[0, :, 7, 7])                      # noqa: E731  the centre output pixel
    seen = np.abs(ad.grad(pixel)(image).value).sum(axis=(0, 1)) > 0
    rows, cols = np.nonzero(seen)
    field = (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    print(f"{depth} stacked 3x3 convolution(s): the centre output sees a {field[0]}x{field[1]} window of the input")
    assert field == (2 * depth + 1, 2 * depth + 1)
C = 512
assert (3 * 3 * 3 * C * C, 7 * 7 * C * C) == (27 * C * C, 49 * C * C) and round(49 / 27 - 1, 2) == 0.81

# %% [markdown]
# ## Exercises
#
# Checked (`chainrule.exercises.cnn`; answer in `chainrule/exercises/solutions/cnn.py`):
#
# 1. **A convolution's parameters.** Write `conv_params(filters, channels, kernel, groups)`
#    returning `(weights, biases)` for a Conv2D layer with `groups` groups, then use it to explain
#    the difference between AlexNet as published and without its split (section 1).
#    `check_conv_params` compares your numbers with the layer `nn.Conv2D` builds.
#
# Without a checker:
#
# 2. How many multiply-adds does VGG16's first convolution make on one 224x224 image? (Each output
#    value is one 3x3x3 dot product.) And the first dense layer? Which dominates the time, which the
#    memory?
# 3. Replace VGG16's three dense layers by a global average pooling and one `Dense(1000)`. How many
#    parameters are left?
# 4. Count the parameters of one 5x5 convolution of C channels and of two stacked 3x3 ones. From
#    which C on does the stack save more than a million parameters?

# %%
from chainrule.exercises import attempt
from chainrule.exercises.cnn import check_conv_params


def conv_params(filters, channels, kernel, groups):
    raise NotImplementedError  # your code here


print(attempt(check_conv_params, conv_params))

# %% The answer passes the same check (chainrule/exercises/solutions/cnn.py: read it after trying).
from chainrule.exercises.solutions.cnn import SOLUTIONS

assert check_conv_params(SOLUTIONS["conv_params"]).passed
