r"""The exact theory of the game under its release: plain, noisy (unclipped) or clipped.

Host code: NumPy/SciPy in float64, no JAX. The release (:class:`~.config.DPRelease`; C, z,
sigma) and the samplers are in :mod:`~mtl_tracing.gaussian.release`.

Unclipped, the release is the plain mu_hat plus independent Gaussian noise of total std
sigma_tot = sqrt((zC/T)^2 + sigma^2) per coordinate, so A -> A + sigma_tot^2 while B and c are
unchanged, and the whole exact theory (moments, the law z = a X - b Y, ROC, AUC, TPR) follows
with this A (:func:`release_moments`, :func:`release_law`, :func:`release_roc`, ...;
``roc_theory`` takes the noise as one more broadcast column). A clipped release couples the
d coordinates through ||xbar_i - mu_bar||: it has no closed form, and the functions here
refuse it, except :func:`game_theory`, which reports its unknown quantities as ``None``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mtl_tracing._validate import check_choice, check_open_unit_array
from mtl_tracing.gaussian.batched import roc_theory
from mtl_tracing.gaussian.config import (
    ADVERSARIES,
    IN_ADVERSARIES,
    DPRelease,
    GaussianGameConfig,
    check_config,
    check_release,
)
from mtl_tracing.gaussian.exact_moments import (
    ScoreMoments,
    law_scale_parts,
    moments,
    noisy_second_order,
    with_release_noise,
)
from mtl_tracing.gaussian.law import ScoreLaw

__all__ = [
    "ScoreTheory",
    "game_theory",
    "release_law",
    "release_roc",
    "release_auc",
    "release_tpr_at_fpr",
    "release_moments",
]


def _exact_release(config: GaussianGameConfig, release: DPRelease) -> float:
    """sigma_tot for the exact theory; refuses a clipped release (no closed form)."""
    if release.clip is not None:
        raise ValueError(
            f"the exact theory covers unclipped releases only, got clip={release.clip!r}; "
            "simulate a clipped release with sampler='faithful'"
        )
    return release.noise_std(config.tasks)


def release_moments(config: GaussianGameConfig, release: DPRelease) -> dict[str, ScoreMoments]:
    """``{adversary: ScoreMoments}`` of the unclipped noisy release."""
    sig = _exact_release(check_config(config), check_release(release))
    return {adv: with_release_noise(m, sig, config.dim) for adv, m in moments(config).items()}


def release_law(config: GaussianGameConfig, release: DPRelease, adversary: str) -> ScoreLaw:
    """The exact law of z (``ScoreLaw``: z = a X - b Y) under the unclipped noisy release."""
    config, release = check_config(config), check_release(release)
    sig = _exact_release(config, release)
    c = config
    a_var, b_var, cov = noisy_second_order(
        c.tasks, c.samples, c.challenge, c.task_std, c.sample_std, adversary, sig
    )
    _, pos, neg = law_scale_parts(a_var, b_var, cov)
    return ScoreLaw(config.dim, float(pos), float(neg))


def release_roc(config: GaussianGameConfig, release: DPRelease, adversary: str, fpr):
    """Exact marginal ROC TPR(fpr) of the unclipped noisy release; ``fpr`` in (0, 1)."""
    check_choice("adversary", adversary, IN_ADVERSARIES)
    law_in = release_law(config, release, adversary)
    law_out = release_law(config, release, "out")
    return law_in.sf(np.asarray(law_out.isf(check_open_unit_array("fpr", fpr))))


def _theory(config, release, adversary, fpr):
    """``roc_theory``'s columns for one game and its unclipped release (None: plain)."""
    config = check_config(config)
    sig = 0.0 if release is None else _exact_release(config, check_release(release))
    c = config
    cell = (c.tasks, c.samples, c.dim, c.challenge, c.task_std, c.sample_std)
    return roc_theory(*cell, adversary, fpr, release_noise_std=sig)


def release_auc(config: GaussianGameConfig, release: DPRelease, adversary: str) -> float:
    """Exact marginal AUC of the unclipped noisy release (``roc_theory``'s quadrature)."""
    return float(_theory(config, release, adversary, 0.5)["exact_auc"])


def release_tpr_at_fpr(config, release: DPRelease, adversary: str, fpr: float) -> float:
    """Exact marginal TPR at ``fpr`` of the unclipped noisy release."""
    return float(_theory(config, release, adversary, fpr)["exact_tpr"])


class ScoreTheory(NamedTuple):
    """The exact theory of one adversary's score z under a release; ``None`` where there is
    no closed form (a clipped release)."""

    mean: float | None  # E z = d c
    var: float | None  # Var z = d ((A + sigma_tot^2) B + c^2)
    paper_mean: float  # the paper's noiseless formulas (Thms 4.1-4.3), for reference
    paper_var: float
    auc: float | None  # exact marginal AUC against OUT (None for OUT itself)


def game_theory(
    config: GaussianGameConfig, release: DPRelease | None = None
) -> dict[str, ScoreTheory]:
    """``{adversary: ScoreTheory}`` for ``strong``, ``weak`` and ``out`` under ``release``.

    ``None`` (or ``DPRelease()``) is the plain game: :func:`~.exact_moments.moments` and the
    exact AUC. An unclipped release has the same theory with A + sigma_tot^2. A clipped
    release has no closed form: ``mean``, ``var`` and ``auc`` are ``None`` (the paper's
    noiseless formulas stay). The AUCs come from ``roc_theory``'s fixed nodes (~1e-13 from
    :func:`~.law.exact_auc`, without SciPy's adaptive quadrature).
    """
    config = check_config(config)
    if release is not None and check_release(release).is_plain:
        release = None
    clipped = release is not None and release.clip is not None
    if release is None or clipped:
        mom = moments(config)
    else:
        mom = release_moments(config, release)
    out = {}
    for adv in ADVERSARIES:
        m = mom[adv]
        auc = None
        if adv in IN_ADVERSARIES and not clipped:
            auc = float(_theory(config, release, adv, 0.5)["exact_auc"])
        exact = (None, None) if clipped else (float(m.mean), float(m.var))
        out[adv] = ScoreTheory(*exact, float(m.paper_mean), float(m.paper_var), auc)
    return out
