"""Input checks shared by every public entry point.

Each check raises ``ValueError`` naming the argument and the value received, so that
bad input never reaches a compiled kernel (where it would silently produce NaN).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "check_int",
    "check_positive_float",
    "check_finite_float",
    "check_probability",
    "check_choice",
    "check_finite_array",
    "check_nonnegative",
    "check_key",
    "check_dtype",
    "as_float_array",
    "check_int_array",
    "check_positive_array",
    "check_nonnegative_array",
    "check_open_unit_array",
    "check_open_unit",
    "scalar_or_array",
    "check_fields",
    "check_int_fields",
]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer in ``[low, high]``."""
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)  # type: ignore[arg-type]
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return value


def check_finite_float(name: str, value: object) -> float:
    """Return ``value`` as ``float`` if it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.ndarray):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, np.ndarray):
        if value.shape != ():
            raise ValueError(f"{name} must be a scalar, got an array of shape {value.shape}")
        value = value.item()
    value = float(value)  # type: ignore[arg-type]
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_positive_float(name: str, value: object) -> float:
    """Return ``value`` as ``float`` if it is finite and > 0."""
    value = check_finite_float(name, value)
    if value <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_probability(
    name: str, value: object, *, open_low: bool = True, open_high: bool = True
) -> float:
    """Return ``value`` as ``float`` if it lies in (0, 1) (ends open or closed as asked)."""
    value = check_finite_float(name, value)
    lo_ok = value > 0.0 if open_low else value >= 0.0
    hi_ok = value < 1.0 if open_high else value <= 1.0
    if not (lo_ok and hi_ok):
        lo = "(" if open_low else "["
        hi = ")" if open_high else "]"
        raise ValueError(f"{name} must be in {lo}0, 1{hi}, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


def check_finite_array(
    name: str, value: object, *, ndim: int | None = None, shape: tuple | None = None
) -> np.ndarray:
    """Return ``value`` as a NumPy array if it is finite and of the stated rank/shape.

    ``shape`` may contain ``None`` for an axis of any length.
    """
    try:
        arr = np.asarray(value)
    except Exception as err:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name} must be array-like, got {value!r}") from err
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if shape is not None:
        ok = arr.ndim == len(shape) and all(
            want is None or want == got for want, got in zip(shape, arr.shape, strict=True)
        )
        if not ok:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} non-finite value(s)")
    return arr


def check_nonnegative(name: str, value: object) -> float:
    """A finite float >= 0 (0 allowed: e.g. sbar = 0 is the membership-inference limit)."""
    number = check_finite_float(name, value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return number


def check_key(name: str, key: object):
    """Accept only a typed scalar PRNG key (``jax.random.key``), possibly a tracer under vmap."""
    import jax
    import jax.numpy as jnp

    if not isinstance(key, jax.Array) or not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        raise ValueError(f"{name} must be a typed key from jax.random.key(seed), got {key!r}")
    if key.shape != ():
        raise ValueError(f"{name} must be a single key of shape (), got shape {key.shape}")
    return key


def check_dtype(dtype, name: str = "dtype"):
    """float32 when None; float64 only when asked and ``jax_enable_x64`` is on (``--x64``)."""
    import jax
    import jax.numpy as jnp

    try:
        dt = jnp.dtype(jnp.float32 if dtype is None else dtype)
    except TypeError as err:
        raise ValueError(f"{name} must be float32 or float64, got {dtype!r}") from err
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"{name} must be float32 or float64, got {dtype!r}")
    if dt == jnp.dtype(jnp.float64) and not jax.config.jax_enable_x64:
        raise ValueError(
            f"{name}=float64 requires jax_enable_x64 (use the --x64 flag or "
            f"jax.config.update('jax_enable_x64', True)), got {name}=float64 with x64 off"
        )
    return dt


# Plain-number (NumPy-broadcastable) parameters of the host-side theory.


def as_float_array(name: str, value: object) -> np.ndarray:
    """``value`` as a finite float64 array (any shape)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric, got {value!r}") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr


def check_int_array(name: str, value: object) -> np.ndarray:
    """Integer-valued entries >= 1, as float64 (booleans refused)."""
    raw = np.asarray(value)
    if raw.dtype == np.bool_ or not (
        np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
    ):
        raise ValueError(f"{name} must be integer-valued, got {value!r}")
    arr = as_float_array(name, raw)
    if np.any(arr != np.round(arr)) or np.any(arr < 1):
        raise ValueError(f"{name} must be integers >= 1, got {value!r}")
    return arr


def check_positive_array(name: str, value: object) -> np.ndarray:
    """Finite entries > 0."""
    arr = as_float_array(name, value)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return arr


def check_nonnegative_array(name: str, value: object) -> np.ndarray:
    """Finite entries >= 0."""
    arr = as_float_array(name, value)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return arr


def check_open_unit_array(name: str, value: object) -> np.ndarray:
    """Finite entries in the open interval (0, 1) (probabilities, FPR levels)."""
    arr = as_float_array(name, value)
    if np.any(arr <= 0) or np.any(arr >= 1):
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return arr


def check_open_unit(name: str, value: object) -> float:
    """One probability in the open interval (0, 1), as a float (a scalar FPR level)."""
    arr = check_open_unit_array(name, value)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    return float(arr)


def scalar_or_array(x: np.ndarray):
    """A Python float for a 0-d array, else the array."""
    return float(x) if np.ndim(x) == 0 else x


def check_fields(obj: object, check: Callable[[str, object], object], *names: str) -> None:
    """In a frozen dataclass's ``__post_init__``: replace each field ``name`` of ``obj`` by
    ``check(name, obj.name)`` (e.g. ``check_positive_float``); the error names the field."""
    for name in names:
        object.__setattr__(obj, name, check(name, getattr(obj, name)))


def check_int_fields(obj: object, **lows: int) -> None:
    """:func:`check_fields` for integer fields: ``tasks=1`` -> ``check_int("tasks", obj.tasks,
    low=1)``, stored back as ``int``."""
    for name, low in lows.items():
        object.__setattr__(obj, name, check_int(name, getattr(obj, name), low=low))
