"""Ready models, built at once (they start with ``nn.Input``), so ``summary()`` works before training.

- ``keras_mnist_mlp``: the source material's Keras MLP for MNIST (Flatten, Dense 128 relu, Dense 10
  softmax): 101,770 parameters.
- ``keras_mnist_cnn``: the source material's Keras CNN (Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3
  relu, MaxPool 2, Flatten, Dropout 0.5, Dense 10 softmax): 34,826 parameters.
- ``lenet5``: LeCun et al.'s LeNet-5 for 28x28 input (padding 2 in the first layer): 61,706.
- ``resnet_small``: three residual stages (16, 32, 64 channels) with batch normalisation, for 28x28.
- ``digits_cnn``: a small CNN sized for the 8x8 digits (two 3x3 conv layers, 'same' padding): 21,386.
- ``sequence_cnn``: a small 1-D classifier of (C, L) sequences (two Conv1D, max-pooling, Dense). Not
  in ``MODELS``: the ``train`` command's data sets are images.

The classic ImageNet networks of the lecture (``CLASSIC``), layer for layer as their papers give them,
for 1,000 classes (tutorials/cnn_08_architectures.py counts every layer by hand):

- ``alexnet``: Krizhevsky, Sutskever and Hinton (2012) as published, on 227x227x3, its two-GPU split
  as ``groups=2`` in convolutions 2, 4 and 5: 60,965,224 parameters (torchvision's single-GPU
  variant, with 64 and 192 kernels in the first two layers, has 61,100,840);
- ``zfnet``: Zeiler and Fergus (2013, Fig. 3) on 224x224x3, 7x7 stride-2 first layer: 62,357,608;
- ``vgg16``: Simonyan and Zisserman (2014), configuration D, on 224x224x3: 138,357,544.

They are not in ``MODELS`` (the ``train`` command's choices): none fits its 8x8 or 28x28 images. Built
inside ``nn.module.shapes_only()`` they allocate nothing, for a summary or a count:

>>> keras_mnist_mlp().count_params(), keras_mnist_cnn().count_params(), lenet5().count_params()
(101770, 34826, 61706)
>>> with shapes_only():
...     [build().count_params() for build in CLASSIC.values()]
[60965224, 62357608, 138357544]
"""
from __future__ import annotations

from .layers import (AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, Input, MaxPool2D, ReLU, Residual,
                     Sequential)
from .layers import Conv1D, MaxPool1D
from .module import shapes_only

__all__ = ["keras_mnist_mlp", "keras_mnist_cnn", "lenet5", "resnet_small", "digits_cnn", "MODELS",
           "alexnet", "zfnet", "vgg16", "VGG16_BLOCKS", "CLASSIC", "shapes_only", "sequence_cnn"]


def keras_mnist_mlp(input_shape=(1, 28, 28), classes=10):
    return Sequential([Input(input_shape), Flatten(), Dense(128, activation="relu"),
                       Dense(classes, activation="softmax")], name="keras_mnist_mlp")


def keras_mnist_cnn(input_shape=(1, 28, 28), classes=10):
    return Sequential([Input(input_shape),
                       Conv2D(32, 3, activation="relu"), MaxPool2D(2),
                       Conv2D(64, 3, activation="relu"), MaxPool2D(2),
                       Flatten(), Dropout(0.5), Dense(classes, activation="softmax")], name="keras_mnist_cnn")


def lenet5(input_shape=(1, 28, 28), classes=10):
    return Sequential([Input(input_shape),
                       Conv2D(6, 5, padding=2, activation="tanh"), AvgPool2D(2),
                       Conv2D(16, 5, activation="tanh"), AvgPool2D(2),
                       Flatten(), Dense(120, activation="tanh"), Dense(84, activation="tanh"),
                       Dense(classes, activation="softmax")], name="lenet5")


def _block(filters, stride):
    body = [Conv2D(filters, 3, stride=stride, padding=1, use_bias=False, kernel_initializer="he_normal"),
            BatchNorm(), ReLU(),
            Conv2D(filters, 3, padding=1, use_bias=False, kernel_initializer="he_normal"), BatchNorm()]
    shortcut = None if stride == 1 else [Conv2D(filters, 1, stride=stride, use_bias=False), BatchNorm()]
    return Residual(body, shortcut)


def resnet_small(input_shape=(1, 28, 28), classes=10):
    """28x28 -> 16 channels -> residual stages of 16 (28x28), 32 (14x14), 64 (7x7) -> global average."""
    side = (input_shape[1] + 3) // 4
    return Sequential([Input(input_shape),
                       Conv2D(16, 3, padding=1, use_bias=False, kernel_initializer="he_normal"), BatchNorm(), ReLU(),
                       _block(16, 1), _block(32, 2), _block(64, 2),
                       AvgPool2D(side), Flatten(), Dense(classes, activation="softmax")], name="resnet_small")


def digits_cnn(input_shape=(1, 8, 8), classes=10):
    """8x8 -> Conv 32 (same) -> pool -> Conv 64 (same) -> pool -> Dropout 0.25 -> Dense 10 softmax.

    He-normal weights (eq. 5.2, for the ReLU layers): with Keras's Glorot default the same network
    learns more slowly (about 97.5% instead of 98.5% after 10 epochs of Adam, three seeds).
    """
    return Sequential([Input(input_shape),
                       Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_normal"), MaxPool2D(2),
                       Conv2D(64, 3, padding="same", activation="relu", kernel_initializer="he_normal"), MaxPool2D(2),
                       Flatten(), Dropout(0.25), Dense(classes, activation="softmax")], name="digits_cnn")


MODELS = {"keras-mnist-mlp": keras_mnist_mlp, "keras-mnist-cnn": keras_mnist_cnn, "lenet5": lenet5,
          "resnet-small": resnet_small, "digits-cnn": digits_cnn}


# --- the classic ImageNet networks ---------------------------------------------------------------------

def _classifier(classes):
    """The three dense layers AlexNet, ZFNet and VGG16 end with: 4,096, 4,096 (dropout 0.5 after each), classes."""
    return [Flatten(), Dense(4096, activation="relu"), Dropout(0.5), Dense(4096, activation="relu"), Dropout(0.5),
            Dense(classes, activation="softmax")]


def alexnet(input_shape=(3, 227, 227), classes=1000):
    """AlexNet (Krizhevsky et al. 2012) as published: the kernels of convolutions 2, 4 and 5 "are connected
    only to those kernel maps in the previous layer which reside on the same GPU" (``groups=2``)."""
    return Sequential([Input(input_shape),
                       Conv2D(96, 11, stride=4, activation="relu"), MaxPool2D(3, stride=2),
                       Conv2D(256, 5, padding=2, groups=2, activation="relu"), MaxPool2D(3, stride=2),
                       Conv2D(384, 3, padding=1, activation="relu"),
                       Conv2D(384, 3, padding=1, groups=2, activation="relu"),
                       Conv2D(256, 3, padding=1, groups=2, activation="relu"), MaxPool2D(3, stride=2),
                       *_classifier(classes)], name="alexnet")


def zfnet(input_shape=(3, 224, 224), classes=1000):
    """ZFNet (Zeiler and Fergus 2013, Fig. 3): 7x7 stride-2 kernels first, the second layer at stride 2,
    one GPU (no groups); feature maps of 55, 13 and 6 pixels after its three poolings."""
    return Sequential([Input(input_shape),
                       Conv2D(96, 7, stride=2, padding=1, activation="relu"), MaxPool2D(3, stride=2, padding=1),
                       Conv2D(256, 5, stride=2, activation="relu"), MaxPool2D(3, stride=2, padding=1),
                       Conv2D(384, 3, padding=1, activation="relu"), Conv2D(384, 3, padding=1, activation="relu"),
                       Conv2D(256, 3, padding=1, activation="relu"), MaxPool2D(3, stride=2),
                       *_classifier(classes)], name="zfnet")


#: VGG16's five blocks: (channels, 3x3 convolutions), each block closed by a 2x2 max-pooling.
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg16(input_shape=(3, 224, 224), classes=1000):
    """VGG16 (Simonyan and Zisserman 2014, configuration D): 13 convolutions, all 3x3 with padding 1, in
    the five ``VGG16_BLOCKS``, then the three dense layers: 16 weight layers."""
    layers = [Input(input_shape)]
    for channels, convolutions in VGG16_BLOCKS:
        layers += [Conv2D(channels, 3, padding=1, activation="relu") for _ in range(convolutions)]
        layers.append(MaxPool2D(2))
    return Sequential(layers + _classifier(classes), name="vgg16")


CLASSIC = {"alexnet": alexnet, "zfnet": zfnet, "vgg16": vgg16}


# --- a 1-D sequence classifier -------------------------------------------------------------------------

def sequence_cnn(input_shape=(1, 64), classes=2, filters=(16, 32), kernel_size=5):
    """(C, L) -> Conv1D (same, relu) -> MaxPool1D 2 -> Conv1D (same, relu) -> MaxPool1D 2 -> Dense softmax.

    >>> model = sequence_cnn()
    >>> model.output_shape, model.count_params()       # 96 + 2,592 + (32 * 16 + 1) * 2
    ((2,), 3714)
    """
    first, second = filters
    return Sequential([Input(input_shape),
                       Conv1D(first, kernel_size, padding="same", activation="relu", kernel_initializer="he_normal"),
                       MaxPool1D(2),
                       Conv1D(second, kernel_size, padding="same", activation="relu", kernel_initializer="he_normal"),
                       MaxPool1D(2), Flatten(), Dense(classes, activation="softmax")], name="sequence_cnn")
