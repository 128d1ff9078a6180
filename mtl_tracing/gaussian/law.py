r"""The exact law of z and the exact (marginal) ROC, AUC, TPR and percentile tables.

Host code: NumPy/SciPy in float64.

Exact law
---------
Standardise u = alpha/sqrt(A), v = beta/sqrt(B) (corr rho = c/sqrt(AB)). Polarisation:
u v = ((u+v)^2 - (u-v)^2)/4, where u+v ~ N(0, 2(1+rho)) and u-v ~ N(0, 2(1-rho)) are
independent (their covariance is Var u - Var v = 0). Hence per coordinate
alpha beta = sqrt(AB) u v = a X_i - b Y_i with X_i, Y_i i.i.d. chi2(1) and

    a = (sqrt(AB) + c)/2,   b = (sqrt(AB) - c)/2,

and summing the d coordinates, z = a X - b Y with X, Y i.i.d. chi2(d). Check:
E z = d(a - b) = d c and Var z = 2d(a^2 + b^2) = d(AB + c^2). When rho = 1 (T = 1, k = N,
strong) b = 0 and z = a X is a scaled chi-square.

The density of a X - b Y (a difference of two gammas of equal shape m = d/2, rates
l1 = 1/(2a), l2 = 1/(2b)) is the variance-gamma (bilateral gamma) density

    f(t) = (l1 l2)^m / (Gamma(m) sqrt(pi)) (|t|/(l1+l2))^(m-1/2) exp((l2-l1) t/2)
           K_{m-1/2}((l1+l2)|t|/2)

(Gradshteyn-Ryzhik 3.383.8), evaluated in log space.

Marginal versus per-game ROC
----------------------------
``exact_roc``/``exact_auc``/... are the *marginal* quantities: IN and OUT scores are
independent copies (independent releases mu_hat). That is what a ROC pooled over many games
estimates. The AUC of the 2T scores of a single game has a different expectation, because
they share mu_hat: see ``exact_per_game_auc``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import integrate, optimize, special

from mtl_tracing._validate import (
    as_float_array,
    check_choice,
    check_int,
    check_open_unit_array,
    check_positive_float,
    scalar_or_array,
)
from mtl_tracing.gaussian.batched import gaussian_auc
from mtl_tracing.gaussian.config import (
    ADVERSARIES,
    IN_ADVERSARIES,
    GaussianGameConfig,
    check_config,
)
from mtl_tracing.gaussian.moments import config_args, law_scales, moments, second_order

__all__ = [
    "ScoreLaw",
    "score_law",
    "exact_law",
    "exact_roc",
    "exact_auc",
    "exact_tpr_at_fpr",
    "exact_percentile_table",
    "percentile_table",
    "exact_per_game_auc",
    "normal_roc",
    "normal_auc",
    "normal_tpr_at_fpr",
]

# Quadrature tolerances: absolute 1e-13 (well below the 1e-10 target), relative 1e-11
# (so tail probabilities keep ~10 significant digits).
_EPSABS = 1e-13
_EPSREL = 1e-11
_LIMIT = 400
# Normal-score panels for the conditional integral over Y (phi(38) ~ 1e-314).
_PANELS = (-38.0, -12.0, -8.0, -5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0, 8.0, 12.0, 38.0)


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


def _log_kv(nu: float, x: np.ndarray) -> np.ndarray:
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


def _chi2_quantile_from_score(dof: float, score: float) -> float:
    """y with P(chi2_dof <= y) = Phi(score), accurate in both tails."""
    if score >= 0.0:
        return 2.0 * special.gammainccinv(0.5 * dof, special.ndtr(-score))
    return 2.0 * special.gammaincinv(0.5 * dof, special.ndtr(score))


def _sf_diff(t: float, a: float, b: float, dof: float) -> float:
    """P(a X - b Y > t) for X, Y i.i.d. chi2(dof), a > 0, b >= 0 (conditioning on Y).

    sf(t) = E_Y[chi2.sf((t + b Y)/a)], integrated over Y's normal score so both tails of Y
    are resolved; accurate to ~1e-13 absolute and ~1e-10 relative.
    """
    if b == 0.0:
        return float(special.chdtrc(dof, t / a)) if t > 0 else 1.0

    def integrand(score: float) -> float:
        y = _chi2_quantile_from_score(dof, score)
        return special.chdtrc(dof, max((t + b * y) / a, 0.0)) * math.exp(-0.5 * score * score)

    norm = 1.0 / math.sqrt(2.0 * math.pi)
    lo, head = _PANELS[0], 0.0
    if t < 0:
        # Y < -t/b gives a X - b Y > t surely: that part is P(Y < -t/b) in closed form.
        y_star = -t / b
        head = float(special.chdtr(dof, y_star))
        upper = float(special.chdtrc(dof, y_star))
        lo = -float(special.ndtri(upper)) if upper > 0 else _PANELS[-1]
        lo = max(lo, _PANELS[0])
    edges = [lo] + [p for p in _PANELS if p > lo]
    total = 0.0
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        val, _ = integrate.quad(
            integrand, left, right, epsabs=_EPSABS / norm, epsrel=_EPSREL, limit=_LIMIT
        )
        total += val
    return min(head + norm * total, 1.0)


def _imhof_sf(x: float, weights: Sequence[float], dofs: Sequence[float]) -> float:
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

    kw = {"epsabs": 1e-14, "epsrel": 1e-12, "limit": _LIMIT}
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


# ----------------------------------------------------------------------------------------
# The law of z.


@dataclasses.dataclass(frozen=True)
class ScoreLaw:
    """Law of z = a X - b Y with X, Y i.i.d. chi2(d) (see the module docstring).

    ``dim`` = d, ``scale_pos`` = a = (sqrt(AB) + c)/2 > 0, ``scale_neg`` = b =
    (sqrt(AB) - c)/2 >= 0. Methods take a scalar or an array ``t``/``p`` of any shape and
    return float64 of the same shape (a float for scalar input).
    """

    dim: int
    scale_pos: float
    scale_neg: float

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "dim", check_int("dim", self.dim, low=1))
        set_(self, "scale_pos", check_positive_float("scale_pos", self.scale_pos))
        neg = self.scale_neg
        if neg != 0.0:
            neg = check_positive_float("scale_neg", neg)
        set_(self, "scale_neg", float(neg))

    @property
    def mean(self) -> float:
        """E z = d (a - b) (= d c)."""
        return self.dim * (self.scale_pos - self.scale_neg)

    @property
    def var(self) -> float:
        """Var z = 2 d (a^2 + b^2) (= d (AB + c^2))."""
        return 2.0 * self.dim * (self.scale_pos**2 + self.scale_neg**2)

    def _map(self, name: str, values, fn):
        arr = as_float_array(name, values)
        out = np.array([fn(float(v)) for v in arr.ravel()], dtype=np.float64).reshape(arr.shape)
        return scalar_or_array(out)

    def logpdf(self, t):
        """log density at ``t`` (variance-gamma closed form, log-space Bessel K)."""
        arr = as_float_array("t", t)
        a, b, d = self.scale_pos, self.scale_neg, self.dim
        m = 0.5 * d
        if b == 0.0:
            with np.errstate(divide="ignore"):
                x = arr / a
                out = np.where(
                    x > 0,
                    (m - 1) * np.log(np.where(x > 0, x, 1.0))
                    - 0.5 * x
                    - m * math.log(2.0)
                    - special.gammaln(m)
                    - math.log(a),
                    -np.inf,
                )
                if d == 2:
                    out = np.where(x == 0, -math.log(2.0 * a), out)
                elif d == 1:
                    out = np.where(x == 0, np.inf, out)
            return scalar_or_array(out)
        l1, l2 = 0.5 / a, 0.5 / b
        p = l1 + l2
        nu = m - 0.5
        const = m * (math.log(l1) + math.log(l2)) - special.gammaln(m) - 0.5 * math.log(np.pi)
        out = np.empty(arr.shape, dtype=np.float64)
        zero = arr == 0
        absx = np.abs(arr[~zero])
        out[~zero] = (
            const
            + nu * (np.log(absx) - math.log(p))
            + 0.5 * (l2 - l1) * arr[~zero]
            + _log_kv(nu, 0.5 * p * absx)
        )
        if d == 1:
            out[zero] = np.inf
        else:
            out[zero] = (
                const + special.gammaln(nu) + (2 * nu - 1) * math.log(2.0) - 2 * nu * math.log(p)
            )
        return scalar_or_array(out)

    def pdf(self, t):
        """Density at ``t`` (+inf at t = 0 when d = 1, where it has a log singularity)."""
        return scalar_or_array(np.exp(np.asarray(self.logpdf(t))))

    def sf(self, t):
        """P(z > t), accurate to ~1e-12 absolute and ~1e-10 relative in the upper tail."""
        return self._map("t", t, lambda v: _sf_diff(v, self.scale_pos, self.scale_neg, self.dim))

    def cdf(self, t):
        """P(z <= t), computed directly (not 1 - sf) so the lower tail keeps relative accuracy."""

        def one(v: float) -> float:
            if self.scale_neg == 0.0:
                return float(special.chdtr(self.dim, v / self.scale_pos)) if v > 0 else 0.0
            return _sf_diff(-v, self.scale_neg, self.scale_pos, self.dim)

        return self._map("t", t, one)

    def _solve(self, prob: float, upper: bool) -> float:
        """t with P(z > t) = prob (upper) or P(z <= t) = prob (lower), by brentq.

        Solves in log space on the side whose tail is <= 1/2, so small tails stay
        relative-accurate.
        """
        tail = prob if prob <= 0.5 else 1.0 - prob
        use_sf = (prob <= 0.5) == upper
        tail_fn = self.sf if use_sf else self.cdf
        log_tail = math.log(tail)

        def f(t: float) -> float:  # increasing in t
            val = math.log(max(tail_fn(t), 1e-320)) - log_tail
            return -val if use_sf else val

        sd = math.sqrt(self.var)
        lo = hi = self.mean
        step = sd
        floor = 0.0 if self.scale_neg == 0.0 else -np.inf
        for _ in range(200):
            lo, hi = max(lo - step, floor), hi + step
            if f(lo) <= 0.0 <= f(hi):
                break
            step *= 2.0
        else:  # pragma: no cover - the tails are exponential, so 200 doublings always suffice
            raise ValueError(f"could not bracket the quantile for probability {prob!r}")
        return optimize.brentq(f, lo, hi, xtol=1e-13 * sd, rtol=4 * np.finfo(float).eps)

    def isf(self, p):
        """t with P(z > t) = p, for p in (0, 1) (bracketing + brentq)."""
        check_open_unit_array("p", p)
        return self._map("p", p, lambda v: self._solve(v, upper=True))

    def ppf(self, q):
        """t with P(z <= t) = q, for q in (0, 1)."""
        check_open_unit_array("q", q)
        return self._map("q", q, lambda v: self._solve(v, upper=False))


def score_law(
    tasks: int,
    samples: int,
    dim: int,
    challenge: int,
    task_std: float,
    sample_std: float,
    adversary: str,
) -> ScoreLaw:
    """The exact law of z from plain (scalar) parameters; see ``exact_law``."""
    check_choice("adversary", adversary, ADVERSARIES)
    for name, value in (("tasks", tasks), ("samples", samples), ("challenge", challenge)):
        check_int(name, value, low=1)
    a, b = law_scales(tasks, samples, challenge, task_std, sample_std, adversary)
    if np.ndim(a) != 0:
        raise ValueError(f"score_law takes scalar parameters, got shape {np.shape(a)}")
    return ScoreLaw(check_int("dim", dim, low=1), float(a), float(b))


def exact_law(config: GaussianGameConfig, adversary: str) -> ScoreLaw:
    """The exact law of one adversary's score z (``adversary`` in ``ADVERSARIES``)."""
    t, n, k, sb, s = config_args(config)
    return score_law(t, n, config.dim, k, sb, s, adversary)


# ----------------------------------------------------------------------------------------
# ROC quantities (marginal: IN and OUT scores are independent copies).


def _laws(config, adversary):
    config = check_config(config)
    check_choice("adversary", adversary, IN_ADVERSARIES)
    return exact_law(config, adversary), exact_law(config, "out")


def exact_roc(config: GaussianGameConfig, adversary: str, fpr):
    """Marginal ROC: TPR = P(z_IN > t) at t = OUT.isf(fpr); ``fpr`` in (0, 1), any shape."""
    law_in, law_out = _laws(config, adversary)
    fpr_arr = check_open_unit_array("fpr", fpr)
    thresholds = np.asarray(law_out.isf(fpr_arr))
    return law_in.sf(thresholds)


def exact_tpr_at_fpr(config: GaussianGameConfig, adversary: str, fpr) -> float:
    """Marginal TPR at one FPR level (``fpr`` a scalar in (0, 1))."""
    fpr_arr = check_open_unit_array("fpr", fpr)
    if fpr_arr.ndim != 0:
        raise ValueError(f"fpr must be a scalar, got shape {fpr_arr.shape}")
    return float(exact_roc(config, adversary, float(fpr_arr)))


def exact_auc(config: GaussianGameConfig, adversary: str) -> float:
    """Marginal AUC P(z_IN > z_OUT), independent copies, by Imhof's formula.

    z_IN - z_OUT = a1 X1 - b1 Y1 - a0 X0 + b0 Y0, a 4-term weighted chi2(d) sum.
    """
    law_in, law_out = _laws(config, adversary)
    d = law_in.dim
    weights = [law_in.scale_pos, -law_in.scale_neg, -law_out.scale_pos, law_out.scale_neg]
    keep = [(w, d) for w in weights if w != 0.0]
    return float(min(max(_imhof_sf(0.0, *zip(*keep, strict=True)), 0.0), 1.0))


def exact_percentile_table(
    config: GaussianGameConfig, adversary: str, percentiles=(50.0, 75.0, 90.0)
) -> dict:
    """Blind thresholds at percentiles of the pooled 50/50 IN/OUT mixture of z; see
    :func:`percentile_table`."""
    return percentile_table(*_laws(config, adversary), percentiles)


def percentile_table(law_in, law_out, percentiles=(50.0, 75.0, 90.0)) -> dict:
    """Blind thresholds at percentiles of the pooled 50/50 mixture of two continuous laws
    (objects with ``sf``, ``mean``, ``var``, e.g. :class:`ScoreLaw`).

    t_q solves 0.5 (sf_IN(t) + sf_OUT(t)) = 1 - q/100. Returns a dict of float64 arrays of
    shape (P,): ``percentile``, ``threshold``, ``tpr``, ``fpr``, ``balanced_accuracy``
    (= (tpr + 1 - fpr)/2).
    """
    q = np.atleast_1d(as_float_array("percentiles", percentiles)).astype(np.float64)
    if q.ndim != 1 or np.any(q <= 0) or np.any(q >= 100):
        raise ValueError(f"percentiles must be in (0, 100), got {percentiles!r}")
    sd = math.sqrt(max(law_in.var, law_out.var))
    thresholds, tprs, fprs = [], [], []
    for qi in q:
        target = 1.0 - qi / 100.0

        def f(t, target=target):
            return 0.5 * (law_in.sf(t) + law_out.sf(t)) - target

        lo, hi = law_out.mean - sd, law_in.mean + sd
        while f(lo) < 0:
            lo -= sd
        while f(hi) > 0:
            hi += sd
        t = optimize.brentq(f, lo, hi, xtol=1e-13 * sd, maxiter=200)
        thresholds.append(t)
        tprs.append(law_in.sf(t))
        fprs.append(law_out.sf(t))
    tpr, fpr = np.array(tprs), np.array(fprs)
    return {
        "percentile": q,
        "threshold": np.array(thresholds),
        "tpr": tpr,
        "fpr": fpr,
        "balanced_accuracy": 0.5 * (tpr + 1.0 - fpr),
    }


def exact_per_game_auc(config: GaussianGameConfig, adversary: str) -> float:
    """Expected AUC of one game's scores, which share mu_hat (not the marginal AUC).

    Given alpha, z_IN - z_OUT ~ N((c/A)|alpha|^2, |alpha|^2 (v_in + v_out)) with residual
    variances v_in = B - c^2/A (of beta_IN given alpha) and v_out = B; so
    AUC = E[Phi(c |alpha| / (A sqrt(v_in + v_out)))], |alpha|^2 ~ A chi2(d).
    """
    config = check_config(config)
    check_choice("adversary", adversary, IN_ADVERSARIES)
    a_var, b_var, cov = second_order(*config_args(config), adversary)
    kappa = cov / math.sqrt(a_var * (2.0 * b_var - cov**2 / a_var))  # Phi(kappa sqrt(X))
    d = config.dim

    def integrand(score: float) -> float:
        x = _chi2_quantile_from_score(d, score)
        return special.ndtr(kappa * math.sqrt(x)) * math.exp(-0.5 * score * score)

    total = sum(
        integrate.quad(integrand, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=_LIMIT)[0]
        for lo, hi in zip(_PANELS[:-1], _PANELS[1:], strict=True)
    )
    return float(total / math.sqrt(2.0 * math.pi))


# ----------------------------------------------------------------------------------------
# Normal approximations with the exact mean and variance.


def normal_roc(config: GaussianGameConfig, adversary: str, fpr):
    """Normal approximation of the marginal ROC with the exact moments; ``fpr`` in (0, 1)."""
    config = check_config(config)
    check_choice("adversary", adversary, IN_ADVERSARIES)
    fpr_arr = check_open_unit_array("fpr", fpr)
    mom = moments(config)
    m1, m0 = mom[adversary], mom["out"]
    t = m0.mean - math.sqrt(m0.var) * special.ndtri(fpr_arr)
    return scalar_or_array(special.ndtr((m1.mean - t) / math.sqrt(m1.var)))


def normal_tpr_at_fpr(config: GaussianGameConfig, adversary: str, fpr) -> float:
    """Normal-approximation TPR at one FPR level."""
    fpr_arr = check_open_unit_array("fpr", fpr)
    if fpr_arr.ndim != 0:
        raise ValueError(f"fpr must be a scalar, got shape {fpr_arr.shape}")
    return float(normal_roc(config, adversary, float(fpr_arr)))


def normal_auc(config: GaussianGameConfig, adversary: str) -> float:
    """Normal-approximation AUC Phi((mu1 - mu0)/sqrt(v1 + v0)) with the exact moments."""
    config = check_config(config)
    check_choice("adversary", adversary, IN_ADVERSARIES)
    mom = moments(config)
    m1, m0 = mom[adversary], mom["out"]
    return float(gaussian_auc(m1.mean, m1.var, m0.mean, m0.var))
