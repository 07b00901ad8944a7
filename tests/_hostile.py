"""The hostile values and the rule of the public API's fuzzing (tests/test_public_api_fuzz*.py, issue 27).

``outcome(label, call, names, oracle)``: a success must pass the oracle, a failure must be one of the
expected types with a first line that names the argument; anything else fails, printing the call.
"""
import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

import autodiff as ad
import kernels
from nn.schema import ModelFileError

MAX = int(os.environ.get("PUBLIC_API_FUZZ_EXAMPLES", 100))
SETTINGS = settings(max_examples=MAX, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])

#: What a careless call may raise: Python's two argument errors and the project's own classes.
EXPECTED = (TypeError, ValueError, ad.CompileError, ad.GradcheckError, ModelFileError, kernels.BackendUnavailable)

# --- the hostile values ---------------------------------------------------------------------------

_OBJECT = object()
wrong_types = st.sampled_from(["", "abc", "2", "0.5", "reverse ", None, [], {}, {"a": 1}, ["a", "b"], _OBJECT,
                               b"2", 1j, print, ...])
numbers = st.one_of(st.integers(-3, 8), st.sampled_from([2 ** 31, 2 ** 63, 10 ** 30, -10 ** 30]),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, 0.5, 1.5, 2.0, 2.7, math.nan, math.inf, -math.inf, 1e308,
                                     5e-324, -1e-3]))
booleans = st.sampled_from([True, False, np.True_, np.False_])
numpy_scalars = st.sampled_from([np.int64(2), np.float32(0.5), np.float64(math.nan), np.int8(-1), np.uint8(3),
                                 np.complex128(1 + 1j)])
arrays = st.sampled_from([np.array(1.0), np.zeros(0), np.zeros((2, 0)), np.ones((2, 3), int), np.ones(3, bool),
                          np.ones(3) * (1 + 1j), np.array([1, "a"], object), np.array(["a", "b"]),
                          np.full(3, np.nan), np.full(3, np.inf), np.ones((3, 2)), np.ones((1, 1, 1, 1)),
                          np.array([2]), np.array([[1.0, 2.0, 3.0]])])
sequences = st.sampled_from([(), (1,), (1, 2), (2, 2), (1, 2, 3), (1.5, 2), (2.0, 2.0), (-1, 1), (0, 0), ("a", 1),
                             (None,), (None, 0), [1, 2], [[1, 2], [3]], [[1.0, 2.0], [3.0, 4.0]], (True, 1),
                             (math.inf, 1), (math.nan, 1), "22", range(2)])
hostile = st.one_of(wrong_types, numbers, booleans, numpy_scalars, arrays, sequences)


def also(*valid):
    """The hostile values and some valid ones, so that the oracle of a success is exercised too."""
    return st.one_of(hostile, st.sampled_from(valid))


# --- the rule -------------------------------------------------------------------------------------

class Silent(AssertionError):
    """A call accepted a value it should have refused, or gave a result that disagrees with its oracle."""


def refused_in_one_line(call, error, message):
    """``call()`` raises ``error`` matching ``message``, in one line (the rule for careless input); the error."""
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value), str(info.value)
    return info.value


def outcome(label, call, names, oracle=None, expected=EXPECTED):
    """Run ``call()``: a success must pass ``oracle(result)``; a failure must be one of ``expected`` whose
    first line contains one of ``names``. Anything else fails the test, printing ``label`` (the call)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = call()
    except expected as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        assert any(name in first for name in names), (
            f"unclear error from {label}: {type(exc).__name__}: {first!r} names none of {names}")
        event(f"refused: {type(exc).__name__}")
        return None
    except Exception as exc:     # noqa: BLE001 (the point: any other type is a failure of the audit)
        pytest.fail(f"{label} raised a bare {type(exc).__name__}: {str(exc)[:300]!r}", pytrace=False)
    event("accepted")
    if oracle is not None:
        try:
            oracle(result)
        except Silent as exc:
            pytest.fail(f"{label} silently accepted a bad value: {exc}", pytrace=False)
        except AssertionError as exc:
            pytest.fail(f"{label} gave a wrong result: {exc}", pytrace=False)
    return result


def clean_int(v, low=None):
    """v as the int it stands for (an int, a NumPy int, a bool, an integral float), else Silent: a call
    that accepted v took something that is no int. ``low``: the least value a success may have had."""
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        out = int(v)
    elif isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
        out = int(v)
    else:
        raise Silent(f"{v!r} is no int")
    if low is not None and out < low:
        raise Silent(f"{v!r} is below {low}")
    return out


def clean_pair(v, low):
    """An int or a pair of ints, each >= low (a stride, a padding), as the (int, int) it stands for."""
    if isinstance(v, (tuple, list, range)):
        if len(v) != 2:
            raise Silent(f"{v!r} is not a pair")
        return clean_int(v[0], low), clean_int(v[1], low)
    return (clean_int(v, low),) * 2


def clean_real(v, low=-math.inf, high=math.inf):
    """v as the finite real number it stands for, within [low, high], else Silent."""
    if isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)) and math.isfinite(float(v)):
        if low <= float(v) <= high:
            return float(v)
    raise Silent(f"{v!r} is no finite real number in [{low}, {high}]")


def clean_axis(v, ndim):
    """An axis (None, an int, a tuple of ints) in range, normalised as NumPy does."""
    if v is None:
        return None
    if isinstance(v, tuple):
        return tuple(clean_int(a) % ndim if -ndim <= clean_int(a) < ndim else _raise(f"axis {a} out of range")
                     for a in v)
    a = clean_int(v)
    if not -ndim <= a < ndim:
        raise Silent(f"axis {a} out of range for {ndim} dimensions")
    return a


def _raise(message):
    raise Silent(message)


def close(a, b, **kw):
    a = a.value if isinstance(a, ad.Tensor) else a
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), **kw)


def real_array(v):
    """v as a real float array, or Silent (for an input that must be a real number or array)."""
    try:
        arr = np.asarray(v)
    except ValueError:
        raise Silent(f"{v!r} is no array") from None
    if arr.dtype.kind not in "biuf":
        raise Silent(f"{v!r} is not real numbers")
    return arr.astype(float)


X23 = np.arange(6.0).reshape(2, 3) / 4 - 0.5


def _tensorable(v):
    try:
        return np.asarray(v).dtype.kind in "biufc"
    except ValueError:
        return False
