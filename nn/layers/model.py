"""``nn.Model``: Keras's ``Model``, the base of ``Sequential`` and of a user's own model with its own
``forward``. It carries Keras's methods (``compile``, ``fit``, ``evaluate``, ``predict``, ``summary``,
``save``, ``load_weights``) and PyTorch's ``to``, as thin wrappers over ``nn.fit``, ``nn.evaluate``,
``nn.predict`` and ``nn.save``.

A subclass assigns its layers in ``__init__`` (after ``super().__init__()``) and writes ``forward``,
as with ``keras.Model``'s ``call`` or a ``torch.nn.Module``. Its layers are built at the first call
(``fit`` calls it once on one sample first, so the optimiser sees every parameter), or at once with
``model.build(input_shape)``.

>>> import numpy as np, nn
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(80, 2)).astype(np.float32); y = (x[:, 0] > 0).astype(np.int64)
>>> nn.set_seed(0)
>>> model = nn.Sequential(nn.Dense(8, activation="relu", input_shape=(2,)), nn.Dense(2, activation="softmax"))
>>> model.compile(optimizer=nn.optim.Adam(model.parameters(), lr=0.05), loss="sparse_categorical_crossentropy",
...               metrics=["accuracy"])
>>> history = model.fit(x, y, epochs=15, batch_size=16, validation_split=0.25, verbose=0)
>>> sorted(history.history)
['accuracy', 'loss', 'lr', 'val_accuracy', 'val_loss']
>>> loss, accuracy = model.evaluate(x, y, verbose=0)
>>> accuracy > 0.9, model.predict(x[:3], verbose=0).shape
(True, (3, 2))

A model of one's own (a shortcut around a hidden layer):

>>> class Wide(nn.Model):
...     def __init__(self):
...         super().__init__()
...         self.hidden = nn.Dense(8, activation="relu")
...         self.out = nn.Dense(2)
...         self.skip = nn.Dense(2, use_bias=False)
...     def forward(self, x):
...         return self.out(self.hidden(x)) + self.skip(x)
>>> nn.set_seed(0)
>>> wide = Wide()
>>> wide.compile(optimizer="adam", loss="softmax_cross_entropy", metrics=["accuracy"])   # its output: logits
>>> wide.fit(x, y, epochs=20, batch_size=16, verbose=0).history["accuracy"][-1] > 0.9
True
>>> wide.count_params(), wide.output_shape
(46, (2,))
"""
from __future__ import annotations

import numpy as np

import kernels
from autodiff import Tensor, no_grad

from .. import optim as optimisers
from ..device import to_device
from ..io import load_weights, save
from ..module import Layer
from ..training import LOSSES, check_batch_size, evaluate, fit, predict, sample_weights
from .summary import summary

__all__ = ["Model"]

#: The metrics ``compile`` accepts (accuracy is logged whenever the labels are classes).
METRICS = ("accuracy", "acc")


def _shape(x):
    return tuple(np.shape(x.value if isinstance(x, Tensor) else x))[1:]


class Model(Layer):
    """Keras's ``Model``: a Layer with ``compile``/``fit``/``evaluate``/``predict``/``summary``/``save``/
    ``load_weights`` and torch's ``to``. Subclass it with your own ``forward`` (``Sequential`` is one)."""

    def __call__(self, x):
        out = self.forward(x)
        if not self.built:                    # a subclass's first call: its shapes, as Keras records them
            self.input_shape, self.output_shape = _shape(x), _shape(out)
        return out

    def _build(self, input_shape):
        """A subclass is built by one call on a zero sample, in evaluation mode (no statistics updated)."""
        modes = [(module, module.training) for _, module in self.named_modules()]
        self.eval()
        try:
            with no_grad():
                out = self.forward(np.zeros((1, *input_shape), dtype=np.float32))
        finally:
            for module, mode in modes:
                module.training = mode
        return _shape(out)

    @classmethod
    def from_config(cls, config, name=None):
        """A subclass's ``__init__`` need not take ``name``: it is set after (``nn.load``'s rebuild)."""
        model = cls(**config)
        if name is not None:
            model.name = name
        return model

    def compile(self, optimizer="rmsprop", loss="softmax_cross_entropy", metrics=None):
        """Choose the optimiser (an ``nn.optim`` one or its name; Keras's default "rmsprop"), the loss
        (a name of ``nn.training.LOSSES`` or ``f(output, y)``) and ``metrics`` (None or ["accuracy"]). An
        optimiser made without parameters (Keras's ``Adam(learning_rate=...)``) gets the model's here, or at
        the first fit when the model is not built yet."""
        if not (callable(loss) or loss in LOSSES):
            raise ValueError(f"compile: loss must be one of {LOSSES} or a function(output, y), got {loss!r}")
        if not (isinstance(optimizer, optimisers.Optimizer) or (isinstance(optimizer, str)
                                                                and optimizer in optimisers.OPTIMIZERS)):
            raise ValueError(f"compile: optimizer must be one of {list(optimisers.OPTIMIZERS)} or an nn.optim "
                             f"optimiser, got {optimizer!r:.80}")
        metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])   # Keras takes "accuracy" too
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"compile: metrics may only hold 'accuracy', got {unknown}")
        self._bind_optimizer(optimizer, "compile")          # refuses another model's before anything is kept
        object.__setattr__(self, "_compiled", {"optimizer": optimizer, "loss": loss, "metrics": metrics})

    def _bind_optimizer(self, optimizer, where):
        """Give an optimiser that has no parameters yet the model's, once the model is built (nn.optim.adopt)."""
        if isinstance(optimizer, optimisers.Optimizer) and self.built:
            optimisers.adopt(optimizer, self.parameters(), where)

    def _compile_state(self, method):
        compiled = getattr(self, "_compiled", None)
        if compiled is None:
            raise RuntimeError(f"{method}: call model.compile(optimizer=..., loss=...) first (as in Keras)")
        if isinstance(compiled["optimizer"], str):   # made once, so a second fit keeps its state
            compiled["optimizer"] = optimisers.get(compiled["optimizer"], self.parameters())
        self._bind_optimizer(compiled["optimizer"], method)
        return compiled

    def fit(self, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, **options):
        """``nn.fit`` with Keras's arguments and defaults (batch_size None: 32); returns the History.
        ``validation_split``: the last fraction of (x, y) (and of sample_weight), taken before shuffling
        (Keras's rule); ``validation_data`` (x, y) wins over it. ``class_weight``/``sample_weight``: the
        weighted loss (``nn.fit``). Other ``nn.fit`` options (seed, backend, regularizer, augment, file)
        pass through."""
        batch_size = check_batch_size(batch_size)
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split!r}")
        if len(x) != len(y):
            raise ValueError(f"fit: x has {len(x)} samples but y has {len(y)}")
        weights = sample_weights(y, class_weight, sample_weight)
        if getattr(self, "_compiled", None) is not None and not self.built:
            self.build(np.shape(x)[1:])       # every parameter made before the optimiser is
        compiled = self._compile_state("fit")
        if validation_data is None and validation_split:
            cut = len(x) - int(round(len(x) * float(validation_split)))
            if cut in (0, len(x)):
                raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples leaves "
                                 f"{'no training' if cut == 0 else 'no validation'} samples")
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
            weights = None if weights is None else weights[:cut]
        return fit(self, (x, y), loss=compiled["loss"], optimizer=compiled["optimizer"], epochs=epochs,
                   batch_size=batch_size, validation=validation_data, callbacks=callbacks or (), shuffle=shuffle,
                   verbose=verbose, sample_weight=weights, **options)

    def evaluate(self, x, y, batch_size=256, verbose="auto", return_dict=False, backend=None, file=None):
        """The compiled loss on (x, y) in evaluation mode: a float, or [loss, accuracy] when compiled with
        metrics=["accuracy"] (Keras's convention); ``return_dict=True`` gives {"loss", "accuracy"}.
        ``verbose``: Keras's one line ("auto" is 1; 0 silent); ``batch_size=None``: Keras's 32."""
        compiled = self._compile_state("evaluate")
        result = evaluate(self, (x, y), loss=compiled["loss"], batch_size=batch_size, backend=backend,
                          verbose=verbose, file=file)
        if return_dict:
            return result
        if compiled["metrics"] and "accuracy" in result:
            return [result["loss"], result["accuracy"]]
        return result["loss"]

    def predict(self, x, batch_size=256, verbose="auto", backend=None, file=None):
        """The outputs for ``x`` in evaluation mode, as an array (``nn.predict``); ``verbose`` as ``evaluate``."""
        return predict(self, x, batch_size=batch_size, backend=backend, verbose=verbose, file=file)

    def summary(self, file=None):
        """Print a Keras-style table: layer (type), output shape, parameter count, and the totals."""
        summary(self, file)

    def save(self, path, metadata=None):
        """``nn.save``: one .safetensors file (weights and architecture), written atomically; its path.
        A subclass is saved when registered (``@nn.module.register``, Keras's
        ``register_keras_serializable``), so that ``nn.load`` may rebuild it by its name."""
        return save(self, path, metadata=metadata)

    def load_weights(self, path):
        """``nn.load_weights``: the arrays saved at ``path`` into this model, all checked first."""
        load_weights(self, path)
        return self

    def to(self, device):
        """PyTorch's ``to``: every parameter and buffer moved to ``device`` ("cuda" or "cpu"), in place; returns
        the model. Training then stays there (``nn.device.to_device``; ``BackendUnavailable`` without a GPU)."""
        return to_device(self, device)
