"""Gaussian multitask mean estimation (Sec. 4, App. B): the tracing game and its exact theory.

- :mod:`~mtl_tracing.gaussian.config`: ``GaussianGameConfig`` (T, N, d, k, sbar, s, mu_bar) and
  its release ``DPRelease`` (C, z, sigma).
- :mod:`~mtl_tracing.gaussian.game`: the samplers (faithful and sufficient statistics), JAX;
  :mod:`~mtl_tracing.gaussian.streamed` (one faithful game over blocks of tasks),
  :mod:`~mtl_tracing.gaussian.draws` (their kernels), :mod:`~mtl_tracing.gaussian.memory`.
- :mod:`~mtl_tracing.gaussian.exact_moments`: Thms 4.1-4.3 exactly (host, float64).
- :mod:`~mtl_tracing.gaussian.law`: the exact law of z (``ScoreLaw``) and the exact ROC, over
  :mod:`~mtl_tracing.gaussian.tails` (weighted chi-square tails).
- :mod:`~mtl_tracing.gaussian.batched`: ``roc_theory``, many cells at once (sweeps).
- :mod:`~mtl_tracing.gaussian.release`: the DP release's samplers;
  :mod:`~mtl_tracing.gaussian.release_theory`: its exact theory (``game_theory``: plain,
  released or clipped).
- :mod:`~mtl_tracing.gaussian.optimal`: the optimal (likelihood-ratio) statistic Lambda, its
  exact law and ROC.

Everything public is exported here: ``from mtl_tracing import gaussian`` then
``gaussian.simulate(...)``, ``gaussian.exact_auc(...)``.

Lazy (:mod:`mtl_tracing._lazy`): ``import mtl_tracing`` reads the config, and ``mtl-tracing
--help`` must not import JAX or SciPy, so the names below load on first use. The submodule
``moments`` was renamed ``exact_moments`` (its name clashed with the function ``moments``);
``mtl_tracing.gaussian.moments`` still imports it, for one release.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mtl_tracing._lazy import attach
from mtl_tracing.gaussian import exact_moments as _exact_moments

if TYPE_CHECKING:
    from mtl_tracing.gaussian.batched import gaussian_auc, roc_curve_theory, roc_theory
    from mtl_tracing.gaussian.config import (
        ADVERSARIES,
        IN_ADVERSARIES,
        SAMPLERS,
        DPRelease,
        GameShape,
        GaussianGameConfig,
        check_config,
        check_release,
        check_shape,
    )
    from mtl_tracing.gaussian.draws import sufficient_draws
    from mtl_tracing.gaussian.exact_moments import (
        ScoreMoments,
        check_game_params,
        config_args,
        law_scale_parts,
        law_scales,
        moments,
        noisy_second_order,
        score_moments,
        second_order,
        variance_ratio,
        with_release_noise,
    )
    from mtl_tracing.gaussian.game import GameNorms, GameScores, game_kernel, simulate
    from mtl_tracing.gaussian.law import (
        ScoreLaw,
        exact_auc,
        exact_law,
        exact_per_game_auc,
        exact_percentile_table,
        exact_roc,
        exact_tpr_at_fpr,
        normal_auc,
        normal_roc,
        normal_tpr_at_fpr,
        percentile_table,
        score_law,
    )
    from mtl_tracing.gaussian.memory import bytes_per_game, device_memory_bytes, lanes
    from mtl_tracing.gaussian.optimal import (
        LrtLaw,
        lrt_auc,
        lrt_law,
        lrt_moments,
        lrt_mu_profile,
        lrt_percentile_table,
        lrt_roc,
        lrt_scales,
        lrt_second_order,
        lrt_statistic,
        lrt_tpr_at_fpr,
        lrt_weights,
    )
    from mtl_tracing.gaussian.release import release_kernel, simulate_release
    from mtl_tracing.gaussian.release_theory import (
        ScoreTheory,
        game_theory,
        release_auc,
        release_law,
        release_moments,
        release_roc,
        release_tpr_at_fpr,
    )

__all__ = [
    "ADVERSARIES",
    "IN_ADVERSARIES",
    "SAMPLERS",
    "DPRelease",
    "GameNorms",
    "GameScores",
    "GameShape",
    "GaussianGameConfig",
    "LrtLaw",
    "ScoreLaw",
    "ScoreMoments",
    "ScoreTheory",
    "bytes_per_game",
    "check_config",
    "check_game_params",
    "check_release",
    "check_shape",
    "config_args",
    "device_memory_bytes",
    "exact_auc",
    "exact_law",
    "exact_per_game_auc",
    "exact_percentile_table",
    "exact_roc",
    "exact_tpr_at_fpr",
    "game_kernel",
    "game_theory",
    "gaussian_auc",
    "lanes",
    "law_scale_parts",
    "law_scales",
    "lrt_auc",
    "lrt_law",
    "lrt_moments",
    "lrt_mu_profile",
    "lrt_percentile_table",
    "lrt_roc",
    "lrt_scales",
    "lrt_second_order",
    "lrt_statistic",
    "lrt_tpr_at_fpr",
    "lrt_weights",
    "moments",
    "noisy_second_order",
    "normal_auc",
    "normal_roc",
    "normal_tpr_at_fpr",
    "percentile_table",
    "release_auc",
    "release_kernel",
    "release_law",
    "release_moments",
    "release_roc",
    "release_tpr_at_fpr",
    "roc_curve_theory",
    "roc_theory",
    "score_law",
    "score_moments",
    "second_order",
    "simulate",
    "simulate_release",
    "sufficient_draws",
    "variance_ratio",
    "with_release_noise",
]

__getattr__, __dir__ = attach(__name__, __file__)

# The old submodule name, for one release (a module alias: ``gaussian.moments`` stays the
# function, which the import system would otherwise shadow with the submodule).
sys.modules.setdefault(__name__ + ".moments", _exact_moments)
