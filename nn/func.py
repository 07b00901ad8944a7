"""``functional_call``: a model called with other parameters, as ``torch.func.functional_call``.

The model becomes a function of its parameters, so that autodiff's functional API can differentiate
it with respect to a dict of them: ``ad.grad(lambda p: loss(nn.functional_call(model, p, x), y))(p)``
gives the gradient as a dict with ``model.named_parameters()``'s names, the same numbers that
``loss.backward()`` leaves in each parameter's ``.grad``.
"""
from __future__ import annotations

from contextlib import contextmanager

__all__ = ["functional_call"]


def _merge(dicts):
    if isinstance(dicts, dict):
        return dict(dicts)
    if isinstance(dicts, (list, tuple)) and all(isinstance(d, dict) for d in dicts):
        merged = {}
        for d in dicts:
            twice = sorted(set(merged) & set(d))
            if twice:
                raise ValueError(f"functional_call: {twice} given in more than one of the dicts")
            merged.update(d)
        return merged
    raise TypeError(f"functional_call: parameter_and_buffer_dicts must be a dict of name -> array (or a tuple of "
                    f"dicts), got {type(dicts).__name__}")


def _owners(module):
    """{dotted name: (owning module, attribute, current value)} for every parameter and buffer path."""
    owners = {}
    for prefix, sub in module.named_modules():
        for attr, value in list(sub._parameters.items()) + list(sub._buffers.items()):
            owners[f"{prefix}.{attr}" if prefix else attr] = (sub, attr, value)
    return owners


@contextmanager
def _swapped(module, values, strict, tie_weights):
    owners = _owners(module)
    unknown = sorted(set(values) - set(owners))
    if unknown:
        hint = "" if owners else " (it has none yet: build it first, e.g. model.build(input_shape))"
        raise ValueError(f"functional_call: {unknown} are not parameters or buffers of {type(module).__name__}"
                         f"{hint}; its names: {sorted(owners)}")
    if strict and set(owners) - set(values):
        raise ValueError(f"functional_call: strict=True and no value given for {sorted(set(owners) - set(values))}")
    if tie_weights:   # a parameter shared by two layers: a value given under one name is used under both
        by_id = {}
        for name, value in values.items():
            original = id(owners[name][2])
            if original in by_id and by_id[original][1] is not value:
                raise ValueError(f"functional_call: {by_id[original][0]!r} and {name!r} are one tied parameter "
                                 f"given two different values")
            by_id[original] = (name, value)
        values = {name: by_id[id(v)][1] for name, (_, _, v) in owners.items() if id(v) in by_id}
    saved = []
    try:
        for name, value in values.items():
            sub, attr, original = owners[name]
            saved.append((sub, attr, original))
            object.__setattr__(sub, attr, value)   # not Module.__setattr__: the registries stay as they are
        yield
    finally:
        for sub, attr, original in reversed(saved):
            object.__setattr__(sub, attr, original)


def functional_call(module, parameter_and_buffer_dicts, args, kwargs=None, *, strict=False, tie_weights=True):
    """``module(*args, **kwargs)`` with the named parameters and buffers replaced by the given values.

    ``parameter_and_buffer_dicts``: {dotted name: array or Tensor}, names as in
    ``module.named_parameters()`` and ``state_dict()`` (or a tuple of such dicts). Names not given keep
    the module's own values (``strict=True``: every one must be given). A name that is not the module's
    is refused (torch would set it as a new attribute): a misspelt name would be silently ignored.
    ``args``: the forward's argument, or a tuple of them. The originals are put back afterwards, even
    when the forward raises. ``tie_weights``: a parameter shared by several layers takes a value given
    under any one of its names. In-place updates of buffers (batch norm's running statistics in
    training mode) go to the given values' objects only where the layer updates in place.

    >>> import numpy as np, autodiff as ad, nn
    >>> model = nn.Sequential([nn.Input((2,)), nn.Dense(1, name="fc")])
    >>> params = {"fc.weight": np.array([[1.0], [2.0]]), "fc.bias": np.array([0.5])}
    >>> x = np.array([[1.0, 1.0], [3.0, 0.0]])
    >>> functional_call(model, params, x)
    array([[3.5],
           [3.5]])
    >>> g = ad.grad(lambda p: ad.sum(functional_call(model, p, x)))(params)
    >>> g["fc.weight"].ravel(), g["fc.bias"]
    (array([4., 1.]), array([2.]))
    """
    values = _merge(parameter_and_buffer_dicts)
    args = args if isinstance(args, tuple) else (args,)
    with _swapped(module, values, strict, tie_weights):
        return module(*args, **(kwargs or {}))
