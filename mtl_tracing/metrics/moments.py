"""``group_moments``: the mean and variance of grouped scores with standard errors over groups.

Used by the game command, Figure 7 and the sweeps, so they all report the same numbers.
Host code (NumPy, float64): the numbers do not depend on how XLA fuses a program.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["GroupMoments", "group_moments", "group_moments_from_sums"]


class GroupMoments(NamedTuple):
    """Pooled mean and variance of z with their standard errors over groups (floats or arrays)."""

    mean: float | np.ndarray
    mean_se: float | np.ndarray
    var: float | np.ndarray
    var_se: float | np.ndarray


def group_moments_from_sums(m_g, q_g, per_group) -> GroupMoments:
    """:func:`group_moments` from each group's mean of z (``m_g``) and of z^2 (``q_g``), (..., G).

    ``per_group`` (n_g, broadcast against the leading axes) is the number of scores per group.
    """
    m_g = np.asarray(m_g, np.float64)
    q_g = np.asarray(q_g, np.float64)
    groups = m_g.shape[-1]
    if groups < 2:
        raise ValueError(f"groups must be >= 2 for a standard error, got {groups}")
    m = m_g.mean(axis=-1)
    q = q_g.mean(axis=-1)
    n = groups * np.asarray(per_group, np.float64)
    var = (q - m * m) * (n / (n - 1))
    m_se = m_g.std(axis=-1, ddof=1) / math.sqrt(groups)
    infl = q_g - 2.0 * m[..., None] * m_g  # influence of group g on q - m^2
    v_se = infl.std(axis=-1, ddof=1) / math.sqrt(groups)
    out = (m, m_se, var, v_se)
    if np.ndim(m) == 0:
        out = tuple(float(x) for x in out)
    return GroupMoments(*out)


def group_moments(z) -> GroupMoments:
    """Mean and variance of all scores of ``z`` (G, n) with standard errors over the G groups.

    Definition (one for the whole package). With m_g and q_g the mean of z and of z^2 in group
    g, m = mean_g m_g and q = mean_g q_g:

    - ``mean`` = m, the pooled mean; ``mean_se`` = sd_g(m_g) / sqrt(G) (ddof 1);
    - ``var`` = (q - m^2) n/(n - 1) with n = G n_g, the pooled unbiased variance;
    - ``var_se``: the delta method on q - m^2, sd_g(q_g - 2 m m_g) / sqrt(G) (ddof 1).

    Groups are the independent units (games of the Gaussian game, whose scores share mu_hat;
    tasks of an attack), so the standard errors are valid for correlated scores within a group.
    Needs G >= 2.
    """
    z = np.asarray(z, np.float64)
    if z.ndim != 2:
        raise ValueError(f"z must have shape (groups, per_group), got {z.shape}")
    return group_moments_from_sums(z.mean(axis=1), (z * z).mean(axis=1), z.shape[1])
