"""Gaussian multitask mean estimation (Sec. 4, App. B): the tracing game and its exact theory.

- :mod:`~mtl_tracing.gaussian.config`: ``GaussianGameConfig`` (T, N, d, k, sbar, s, mu_bar).
- :mod:`~mtl_tracing.gaussian.game`: the samplers (faithful and sufficient statistics), JAX.
- :mod:`~mtl_tracing.gaussian.moments`: Thms 4.1-4.3 exactly (host, float64).
- :mod:`~mtl_tracing.gaussian.law`: the exact law of z (``ScoreLaw``) and the exact ROC.
- :mod:`~mtl_tracing.gaussian.batched`: ``roc_theory``, many cells at once (sweeps).
- :mod:`~mtl_tracing.gaussian.release`: the DP release (clip, noise) and its exact theory.
- :mod:`~mtl_tracing.gaussian.optimal`: the optimal (likelihood-ratio) statistic Lambda, its
  exact law and ROC.
- :mod:`~mtl_tracing.gaussian.streamed`: one faithful game streamed over blocks of tasks.

Everything public is re-exported here: ``from mtl_tracing import gaussian`` then
``gaussian.simulate(...)``, ``gaussian.exact_auc(...)``.

Submodules load on first use (PEP 562), so importing the package (or its config) costs no JAX
or SciPy import: ``mtl-tracing --help`` stays fast.
"""

from __future__ import annotations

import importlib

# The submodule ``moments`` shares its name with the function ``moments``: import the (cheap,
# NumPy-only) submodule now and bind the name to the function, so a later import of the
# submodule cannot shadow it (the import system sets the package attribute on first load only).
from mtl_tracing.gaussian import moments as _moments_module  # noqa: F401
from mtl_tracing.gaussian.moments import moments  # noqa: F401 (re-exported)

_EXPORTS = {
    "ADVERSARIES": "config",
    "IN_ADVERSARIES": "config",
    "GameShape": "config",
    "GaussianGameConfig": "config",
    "check_config": "config",
    "SAMPLERS": "game",
    "GameScores": "game",
    "simulate": "game",
    "game_kernel": "game",
    "bytes_per_game": "game",
    "device_memory_bytes": "game",
    "lanes": "game",
    "sufficient_draws": "game",
    "ScoreMoments": "moments",
    "check_game_params": "moments",
    "config_args": "moments",
    "second_order": "moments",
    "score_moments": "moments",
    "law_scale_parts": "moments",
    "law_scales": "moments",
    "variance_ratio": "moments",
    "ScoreLaw": "law",
    "score_law": "law",
    "exact_law": "law",
    "exact_roc": "law",
    "exact_auc": "law",
    "exact_tpr_at_fpr": "law",
    "exact_percentile_table": "law",
    "exact_per_game_auc": "law",
    "gaussian_auc": "batched",
    "normal_roc": "law",
    "normal_auc": "law",
    "normal_tpr_at_fpr": "law",
    "roc_theory": "batched",
    "DPRelease": "release",
    "with_release_noise": "release",
    "noisy_second_order": "release",
    "release_law": "release",
    "release_roc": "release",
    "release_auc": "release",
    "release_tpr_at_fpr": "release",
    "release_moments": "release",
    "simulate_release": "release",
    "release_kernel": "release",
    "GameNorms": "game",
    "percentile_table": "law",
    "LrtLaw": "optimal",
    "lrt_weights": "optimal",
    "lrt_scales": "optimal",
    "lrt_statistic": "optimal",
    "lrt_second_order": "optimal",
    "lrt_law": "optimal",
    "lrt_roc": "optimal",
    "lrt_mu_profile": "optimal",
    "roc_curve_theory": "batched",
    "lrt_auc": "optimal",
    "lrt_tpr_at_fpr": "optimal",
    "lrt_percentile_table": "optimal",
    "lrt_moments": "optimal",
}

__all__ = sorted([*_EXPORTS, "moments"])


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
