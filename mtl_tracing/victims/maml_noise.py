"""The MAML noise defences (Sec. IV-E): Gaussian noise at four places of a task learner.

``support`` is added to the support images D^s, ``adaptation`` to every inner-loop gradient,
``query`` to the query images D^q and ``validation`` to the shared gradient g_i itself. The
sigmas are a pytree (:class:`Noise`), traced, so every sigma shares one compiled program.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import check_choice, check_nonnegative

__all__ = ["NOISE_PLACES", "Noise", "noise_at", "tree_normal"]

NOISE_PLACES = ("support", "adaptation", "query", "validation")


class Noise(NamedTuple):
    """Standard deviations of the four defences (Sec. IV-E); a pytree, traced (no recompile).

    Fields: ``support`` (added to D^s), ``adaptation`` (to every inner-loop gradient),
    ``query`` (to D^q), ``validation`` (to g_i). Build with :func:`noise_at` or
    ``Noise(0., 0., 0., 0.)``.
    """

    support: Any = 0.0
    adaptation: Any = 0.0
    query: Any = 0.0
    validation: Any = 0.0

    def check(self) -> Noise:
        """Validated copy (every sigma finite and >= 0); not traceable."""
        pairs = zip(NOISE_PLACES, self, strict=True)
        return Noise(*(check_nonnegative(f"sigma ({p})", _host(v)) for p, v in pairs))


def _host(v):
    return v if isinstance(v, int | float) else np.asarray(v)


def noise_at(place: str, sigma: float) -> Noise:
    """Noise of standard deviation ``sigma`` at one of :data:`NOISE_PLACES` (``"none"`` too)."""
    check_choice("noise place", place, ("none",) + NOISE_PLACES)
    sigma = check_nonnegative("sigma", sigma)
    if place == "none":
        return Noise()
    return Noise(**{place: sigma})


def tree_normal(key: Array, tree, sigma):
    """N(0, sigma^2) noise shaped like ``tree`` (one key per leaf, drawn flat)."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    noise = [
        sigma * flat_random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, noise)
