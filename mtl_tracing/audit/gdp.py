"""Gaussian differential privacy (Dong, Roth and Su 2022): tradeoff curve and conversions.

A mechanism is mu-GDP when, for every pair of neighbouring datasets, no test of "IN" (D) against
"OUT" (D') does better than the test of N(mu, 1) against N(0, 1): at false-positive rate
alpha the true-positive rate is at most

    TPR <= G_mu(alpha) = Phi(Phi^-1(alpha) + mu),

equivalently FNR >= Phi(Phi^-1(1 - alpha) - mu). mu-GDP implies (epsilon, delta(epsilon))-DP
for every epsilon >= 0 with the closed form (Dong et al., Cor. 2.13)

    delta(epsilon) = Phi(-epsilon/mu + mu/2) - e^epsilon Phi(-epsilon/mu - mu/2).

``epsilon(delta)`` inverts it; delta(epsilon) is strictly decreasing in epsilon, so the inverse is
a one-dimensional root (Brent's method on the closed form, to 1e-12).

Host-side NumPy/SciPy (statistics, not compiled kernels).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from mtl_tracing._validate import check_nonnegative, check_probability

__all__ = ["gdp_tradeoff", "gdp_delta", "gdp_epsilon", "gaussian_mechanism_mu"]


def gdp_tradeoff(fpr, mu) -> np.ndarray:
    """The mu-GDP ROC bound TPR <= Phi(Phi^-1(fpr) + mu), broadcast over ``fpr`` and ``mu``.

    Args:
      fpr: false-positive rates in [0, 1], any shape.
      mu: GDP parameters >= 0 (inf allowed: the bound is then 1 for fpr > 0).

    Returns:
      float64 array of the broadcast shape.
    """
    fpr = np.asarray(fpr, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if np.any((fpr < 0) | (fpr > 1)) or np.any(np.isnan(fpr)):
        raise ValueError(f"fpr must lie in [0, 1], got values in [{fpr.min()}, {fpr.max()}]")
    if np.any(np.isnan(mu)) or np.any(mu < 0):
        raise ValueError(f"mu must be >= 0, got {mu!r}")
    with np.errstate(invalid="ignore"):
        out = special.ndtr(special.ndtri(fpr) + mu)
    # Phi^-1(0) + inf is nan: the curve starts at (0, 0) for any finite mu, jumps to 1 for inf.
    return np.where(fpr == 0, 0.0, np.where(np.isinf(mu), 1.0, out))


def gdp_delta(epsilon, mu) -> np.ndarray:
    """delta(epsilon) of a mu-GDP mechanism (closed form above), broadcast; float64."""
    eps = np.asarray(epsilon, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if np.any(eps < 0) or np.any(mu < 0):
        raise ValueError(f"epsilon and mu must be >= 0, got epsilon={epsilon!r}, mu={mu!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        # e^eps Phi(-eps/mu - mu/2) computed in logs to stay finite at large eps.
        a = special.ndtr(-eps / mu + mu / 2)
        b = np.exp(eps + special.log_ndtr(-eps / mu - mu / 2))
        out = a - b
    return np.where(mu == 0, 0.0, np.clip(out, 0.0, 1.0))


def _eps_scalar(mu: float, delta: float) -> float:
    if mu == 0.0:
        return 0.0
    if math.isinf(mu):
        return math.inf
    if float(gdp_delta(0.0, mu)) <= delta:
        return 0.0
    hi = max(1.0, mu * mu)
    while float(gdp_delta(hi, mu)) > delta:
        hi *= 2.0
    return float(optimize.brentq(lambda e: float(gdp_delta(e, mu)) - delta, 0.0, hi, xtol=1e-12))


def gdp_epsilon(mu, delta: float) -> np.ndarray | float:
    """The smallest epsilon with mu-GDP => (epsilon, delta)-DP; broadcast over ``mu``.

    Args:
      mu: GDP parameter(s) >= 0 (inf gives inf).
      delta: in (0, 1).

    Returns:
      float for scalar ``mu``, else a float64 array of ``mu``'s shape.
    """
    delta = check_probability("delta", delta)
    arr = np.asarray(mu, dtype=np.float64)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"mu must be >= 0, got {mu!r}")
    out = np.vectorize(lambda m: _eps_scalar(float(m), delta), otypes=[np.float64])(arr)
    return float(out) if out.ndim == 0 else out


def gaussian_mechanism_mu(sensitivity: float, noise_std: float) -> float:
    """mu = sensitivity / noise_std of the Gaussian mechanism (inf when noise_std = 0)."""
    sensitivity = check_nonnegative("sensitivity", sensitivity)
    noise_std = check_nonnegative("noise_std", noise_std)
    if noise_std == 0.0:
        return math.inf if sensitivity > 0 else 0.0
    return sensitivity / noise_std
