"""``MultitaskData``: the one data type that trainers, loaders and the attack pipeline share.

Notation: T IN tasks (trained on), T_out OUT tasks (never trained on), N samples per task,
H held-out samples per task, ``F`` the per-sample feature shape (``(d,)`` for vectors,
``(height, width, channels)`` for images).

Every loader (synthetic App. A.8, CelebA, FEMNIST, Stack Overflow, few-shot images) returns
this type; every ``Trainer`` (:mod:`mtl_tracing.victims.trainer`) trains on ``x``/``y`` and
reports utility on ``x_heldout``/``y_heldout``; the black-box attacks embed ``x`` (strong
adversary's pool), ``x_heldout`` (weak adversary's pool) and ``x_out`` (OUT tasks).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["MultitaskData", "check_multitask_data"]


class MultitaskData(NamedTuple):
    """T IN tasks with N training samples each, optional held-out samples, and OUT tasks.

    A pytree (NamedTuple of arrays, ``None`` for absent parts), so it passes through ``jax.jit``
    and ``jax.vmap`` unchanged. Labels are in x's float dtype; binary tasks use {0, 1}. Real data
    may instead carry class indices (int, (T, N): softmax heads) or C labels per sample ((T, N,
    C) in {0, 1}: multi-label heads); every y field then has that form
    (:mod:`mtl_tracing.victims.heads`).

    Fields:
      x: (T, N, *F) training inputs of the IN tasks.
      y: (T, N) their labels (or (T, N, C), see above).
      x_out: (T_out, N, *F) samples of the OUT tasks (the OUT challenge pool).
      y_out: (T_out, N) their labels.
      x_heldout: (T, H, *F) fresh samples of the IN tasks (weak adversary, utility), or None.
      y_heldout: (T, H) or None.
      x_out_heldout: (T_out, H, *F) fresh samples of the OUT tasks (probes), or None.
      y_out_heldout: (T_out, H) or None.
      info: generator truth or loader metadata (arrays only, e.g. ``projection`` H (m, d),
        ``heads`` g (T + T_out, m), ``task_means`` mu (T + T_out, d) for synthetic data);
        never read by trainers or attacks.
    """

    x: Any
    y: Any
    x_out: Any
    y_out: Any
    x_heldout: Any = None
    y_heldout: Any = None
    x_out_heldout: Any = None
    y_out_heldout: Any = None
    info: dict | None = None

    @property
    def tasks(self) -> int:
        """T, the number of IN tasks."""
        return int(self.x.shape[0])

    @property
    def out_tasks(self) -> int:
        """T_out, the number of OUT tasks."""
        return int(self.x_out.shape[0])

    @property
    def samples(self) -> int:
        """N, training samples per task."""
        return int(self.x.shape[1])

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """F, the shape of one input."""
        return tuple(int(s) for s in self.x.shape[2:])

    def stacked(self, heldout: bool = False):
        """(x, y) of all T + T_out tasks, IN rows first: the pools (or held-out samples)."""
        import jax.numpy as jnp

        if heldout:
            parts = (self.x_heldout, self.x_out_heldout, self.y_heldout, self.y_out_heldout)
        else:
            parts = (self.x, self.x_out, self.y, self.y_out)
        if any(p is None for p in parts):
            raise ValueError("stacked(heldout=True) needs x_heldout and x_out_heldout, got None")
        return jnp.concatenate(parts[:2]), jnp.concatenate(parts[2:])

    @property
    def heldout(self) -> int:
        """H, held-out samples per task (0 when absent)."""
        return 0 if self.x_heldout is None else int(self.x_heldout.shape[1])


def check_multitask_data(data: object, *, name: str = "data", heldout: bool = False) -> None:
    """Raise ``ValueError`` naming the field if ``data`` is not a consistent MultitaskData.

    Checks the type, the shapes (T, N, *F) / (T, N) (or (T, N, C), the same C in every y) of
    every present pair, that IN and OUT share F, that inputs are finite, and (``heldout=True``)
    that the held-out IN part exists.
    Works on NumPy and JAX arrays; not traceable (call it before ``jit``).
    """
    if not isinstance(data, MultitaskData):
        raise ValueError(f"{name} must be a MultitaskData, got {type(data).__name__}")
    if np.ndim(data.x) < 3:
        raise ValueError(f"{name}.x must have shape (T, N, *F), got {tuple(np.shape(data.x))}")
    feat = tuple(np.shape(data.x)[2:])
    label_tail = tuple(np.shape(data.y)[2:])[:1] if data.y is not None else ()
    pairs = (
        ("x", "y", True),
        ("x_out", "y_out", True),
        ("x_heldout", "y_heldout", False),
        ("x_out_heldout", "y_out_heldout", False),
    )
    for xn, yn, required in pairs:
        xv, yv = getattr(data, xn), getattr(data, yn)
        if xv is None or yv is None:
            if required or (xv is None) != (yv is None):
                raise ValueError(f"{name}.{xn} and {name}.{yn} must both be arrays, got None")
            continue
        xs, ys = tuple(np.shape(xv)), tuple(np.shape(yv))
        if len(xs) < 3 or xs[2:] != feat:
            raise ValueError(f"{name}.{xn} must have shape (tasks, n, *{feat}), got {xs}")
        if ys != xs[:2] + label_tail:
            raise ValueError(f"{name}.{yn} must have shape {xs[:2] + label_tail}, got {ys}")
        if not bool(np.all(np.isfinite(np.asarray(xv)))):
            raise ValueError(f"{name}.{xn} must be finite, got non-finite values")
    if data.x_heldout is not None and np.shape(data.x_heldout)[0] != np.shape(data.x)[0]:
        raise ValueError(
            f"{name}.x_heldout must have T={np.shape(data.x)[0]} tasks, "
            f"got {np.shape(data.x_heldout)[0]}"
        )
    if (
        data.x_out_heldout is not None
        and np.shape(data.x_out_heldout)[0] != np.shape(data.x_out)[0]
    ):
        raise ValueError(
            f"{name}.x_out_heldout must have T_out={np.shape(data.x_out)[0]} tasks, "
            f"got {np.shape(data.x_out_heldout)[0]}"
        )
    if heldout and data.x_heldout is None:
        raise ValueError(f"{name}.x_heldout must be an array (held-out IN samples), got None")
