r"""Tail probabilities of weighted chi-square sums, the numerical core of the exact law.

Host code: NumPy/SciPy in float64. Published for :mod:`~mtl_tracing.gaussian.law` and the
tests as documented *kernels* (unchecked: callers validate):

- :func:`log_kv`: log K_nu(x) without overflow (the variance-gamma density);
- :func:`chi2_quantile_from_score`: chi2 quantiles at Phi(score), both tails accurate;
- :func:`diff_sf`: P(a X - b Y > t), X, Y i.i.d. chi2(dof), by conditioning on Y;
- :func:`imhof_sf`: P(sum_j w_j chi2_{h_j} > x) by Imhof's (1961) inversion formula;
- :data:`PANELS` and :data:`QUAD_LIMIT`: the normal-score panels and SciPy's subdivision limit
  of the adaptive integrals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import integrate, special

__all__ = [
    "PANELS",
    "QUAD_LIMIT",
    "log_kv",
    "chi2_quantile_from_score",
    "diff_sf",
    "imhof_sf",
]

# Quadrature tolerances: absolute 1e-13 (well below the 1e-10 target), relative 1e-11
# (so tail probabilities keep ~10 significant digits).
_EPSABS = 1e-13
_EPSREL = 1e-11
#: Subdivision limit of SciPy's adaptive quadrature.
QUAD_LIMIT = 400
#: Normal-score panels for the conditional integral over Y (phi(38) ~ 1e-314).
PANELS = (-38.0, -12.0, -8.0, -5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0, 8.0, 12.0, 38.0)


# ----------------------------------------------------------------------------------------
# Bessel K in log space.

# Debye polynomials u_1..u_4 of p (Abramowitz-Stegun 9.3.9, 9.3.10).
_DEBYE = (
    np.array([0, 3, 0, -5]) / 24.0,
    np.array([0, 0, 81, 0, -462, 0, 385]) / 1152.0,
    np.array([0, 0, 0, 30375, 0, -369603, 0, 765765, 0, -425425]) / 414720.0,
    np.array([0, 0, 0, 0, 4465125, 0, -94121676, 0, 349922430, 0, -446185740, 0, 185910725])
    / 39813120.0,
)


def log_kv(nu: float, x: np.ndarray) -> np.ndarray:
    """log K_nu(x) for x > 0 without overflow (kve where representable, else asymptotics)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        kve = special.kve(nu, x)
        out = np.log(kve) - x
    bad = ~np.isfinite(out) | (kve > 1e300)
    if np.any(bad):
        xb = x[bad]
        if nu >= 20.0:
            # Uniform (Debye) expansion K_nu(nu z), relative error O(nu^-5) < 1e-9.
            z = xb / nu
            sq = np.sqrt(1.0 + z * z)
            p = 1.0 / sq
            series = np.ones_like(z)
            for j, coef in enumerate(_DEBYE, start=1):
                series += (-1.0) ** j * np.polynomial.polynomial.polyval(p, coef) / nu**j
            eta = sq + np.log(z) - np.log1p(sq)
            out[bad] = (
                0.5 * np.log(np.pi / (2.0 * nu)) - nu * eta - 0.5 * np.log(sq) + np.log(series)
            )
        elif nu > 0.0:
            # Small x (only way to overflow for moderate nu): K ~ Gamma(nu)/2 (2/x)^nu.
            out[bad] = special.gammaln(nu) - math.log(2.0) + nu * (math.log(2.0) - np.log(xb))
        else:
            out[bad] = np.log(-np.log(xb / 2.0) - np.euler_gamma)
    return out


# ----------------------------------------------------------------------------------------
# Tail probabilities of weighted chi-square differences.


def chi2_quantile_from_score(dof: float, score: float) -> float:
    """y with P(chi2_dof <= y) = Phi(score), accurate in both tails."""
    if score >= 0.0:
        return 2.0 * special.gammainccinv(0.5 * dof, special.ndtr(-score))
    return 2.0 * special.gammaincinv(0.5 * dof, special.ndtr(score))


def diff_sf(t: float, a: float, b: float, dof: float) -> float:
    """P(a X - b Y > t) for X, Y i.i.d. chi2(dof), a > 0, b >= 0 (conditioning on Y).

    sf(t) = E_Y[chi2.sf((t + b Y)/a)], integrated over Y's normal score so both tails of Y
    are resolved; accurate to ~1e-13 absolute and ~1e-10 relative.
    """
    if b == 0.0:
        return float(special.chdtrc(dof, t / a)) if t > 0 else 1.0

    def integrand(score: float) -> float:
        y = chi2_quantile_from_score(dof, score)
        return special.chdtrc(dof, max((t + b * y) / a, 0.0)) * math.exp(-0.5 * score * score)

    norm = 1.0 / math.sqrt(2.0 * math.pi)
    lo, head = PANELS[0], 0.0
    if t < 0:
        # Y < -t/b gives a X - b Y > t surely: that part is P(Y < -t/b) in closed form.
        y_star = -t / b
        head = float(special.chdtr(dof, y_star))
        upper = float(special.chdtrc(dof, y_star))
        lo = -float(special.ndtri(upper)) if upper > 0 else PANELS[-1]
        lo = max(lo, PANELS[0])
    edges = [lo] + [p for p in PANELS if p > lo]
    total = 0.0
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        val, _ = integrate.quad(
            integrand, left, right, epsabs=_EPSABS / norm, epsrel=_EPSREL, limit=QUAD_LIMIT
        )
        total += val
    return min(head + norm * total, 1.0)


def imhof_sf(x: float, weights: Sequence[float], dofs: Sequence[float]) -> float:
    """P(sum_j w_j chi2_{h_j} > x) by Imhof's (1961) inversion formula.

    P = 1/2 + (1/pi) int_0^inf sin(theta(u)) / (u rho(u)) du with
    theta(u) = sum_j h_j atan(w_j u)/2 - x u/2, rho(u) = prod_j (1 + w_j^2 u^2)^(h_j/4).
    """
    w = np.asarray(weights, dtype=np.float64)
    h = np.asarray(dofs, dtype=np.float64)
    scale = float(np.max(np.abs(w)))
    w, xs = w / scale, x / scale

    def phase_amp(u: float) -> tuple[float, float]:
        phase = 0.5 * float(np.dot(h, np.arctan(w * u)))
        amp = math.exp(-0.25 * float(np.dot(h, np.log1p((w * u) ** 2)))) / u
        return phase, amp

    def integrand(u: float) -> float:
        if u == 0.0:
            return 0.5 * (float(np.dot(h, w)) - xs)
        phase, amp = phase_amp(u)
        return math.sin(phase - 0.5 * xs * u) * amp

    kw = {"epsabs": 1e-14, "epsrel": 1e-12, "limit": QUAD_LIMIT}
    pieces = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    total = sum(
        integrate.quad(integrand, lo, hi, **kw)[0]
        for lo, hi in zip(pieces[:-1], pieces[1:], strict=True)
    )
    if xs == 0.0:
        total += integrate.quad(integrand, pieces[-1], np.inf, **kw)[0]
    else:
        # sin(phase - omega u) = sin(phase) cos(omega u) - cos(phase) sin(omega u): QAWF tail.
        omega = 0.5 * xs

        def even(u: float) -> float:
            phase, amp = phase_amp(u)
            return math.sin(phase) * amp

        def odd(u: float) -> float:
            phase, amp = phase_amp(u)
            return math.cos(phase) * amp

        tail_kw = {"epsabs": 1e-14, "limlst": 200}
        total += integrate.quad(even, pieces[-1], np.inf, weight="cos", wvar=omega, **tail_kw)[0]
        total -= integrate.quad(odd, pieces[-1], np.inf, weight="sin", wvar=omega, **tail_kw)[0]
    return 0.5 + total / np.pi
