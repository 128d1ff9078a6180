r"""The optimal (Neyman-Pearson) tracing test of the Gaussian game: the statistic Lambda, its
exact law, ROC, AUC, TPR at FPR and percentile tables.

Host code: NumPy/SciPy in float64. Notation of :mod:`~mtl_tracing.gaussian.moments`.

The likelihood-ratio statistic
------------------------------
Per coordinate j the adversary's pair x_j = (alpha_j, beta_j) (alpha = mu_hat - mu_bar,
beta = mean(B) - mu_bar) is i.i.d. over the d coordinates, Gaussian with mean 0 and

    Sigma_1 = [[A, c], [c, B]] (IN),        Sigma_0 = [[A, 0], [0, B]] (OUT),

with A, B, c per adversary (c = A strong, sbar^2/T weak; a release noise of std sigma on
mu_hat adds sigma^2 to A). With D = det Sigma_1 = A B - c^2 > 0,

    Sigma_0^{-1} - Sigma_1^{-1} = (c/D) [[-c/A, 1], [1, -c/B]] = (2c/D) M,
    M = [[-c/(2A), 1/2], [1/2, -c/(2B)]],

so the log-likelihood ratio of the d coordinates is (1/2) sum_j x_j^T (Sigma_0^{-1} -
Sigma_1^{-1}) x_j + (d/2) log(AB/D) = (c/D) Lambda + const, with

    Lambda = <alpha, beta> - (c/2A) ||alpha||^2 - (c/2B) ||beta||^2.

This is the form claimed in issue 24; it is right (checked here and symbolically in
``proofs_check.optimal``). For c > 0 the scale c/D is positive, so "Lambda > t" is the most
powerful test at its level (Neyman-Pearson) and the ROC of Lambda is the exact trade-off curve
between the game's two laws of (alpha, beta). Nothing else the adversary sees helps: the
spread of the batch around its mean has the same law under both hypotheses, independent of
(alpha, beta), and mu_bar is known. Strong (c = A): Lambda = <alpha, beta> - ||alpha||^2 / 2
- (A / 2B) ||beta||^2.

Exact law
---------
Lambda_j = x^T M x, x = Sigma_h^{1/2} u with u ~ N(0, I_2): a weighted sum of two chi2_1
with weights the eigenvalues of Sigma_h^{1/2} M Sigma_h^{1/2}. In the standardised pair (u,
v) = (alpha_j / sqrt(A), beta_j / sqrt(B)), rho = c / sqrt(AB), Lambda_j = sqrt(AB) [u v -
(rho/2)(u^2 + v^2)], whose matrix has eigenvectors (1, +-1)/sqrt(2) and eigenvalues (1 -
rho)/2, -(1 + rho)/2; P = (u + v)^2/2 and Q = (u - v)^2/2 are independent, with variances
1 +- rho under IN and 1 under OUT. Summed over d, with X, Y i.i.d. chi2_d:

    IN:  Lambda = (AB - c^2) / (2 sqrt(AB)) (X - Y),
    OUT: Lambda = (sqrt(AB) - c)/2 X - (sqrt(AB) + c)/2 Y.

With z = <alpha, beta> (:mod:`~mtl_tracing.gaussian.law`: z_OUT = sqrt(AB)/2 (X - Y), z_IN =
(sqrt(AB) + c)/2 X - (sqrt(AB) - c)/2 Y) this reads, in law,

    Lambda_IN = (1 - rho^2) z_OUT,        Lambda_OUT = -z_IN,

so AUC(Lambda) = P(z_IN + (1 - rho^2) z'_OUT > 0) against AUC(z) = P(z_IN + z'_OUT > 0)
(independent copies, z_OUT symmetric): the optimal test shrinks the OUT-side noise by
1 - rho^2. The threshold at FPR p is -q_p, q_p the lower p-quantile of z_IN, and TPR(p) =
P((1 - rho^2) z_OUT > -q_p). Moments: E Lambda_IN = 0, Var Lambda_IN = d (AB - c^2)^2 / (AB);
E Lambda_OUT = -d c, Var Lambda_OUT = d (AB + c^2). Since rho^2 <= 1/T, Lambda and z agree
as T grows: AUC(Lambda) - AUC(z) <= rho^2 / 4 <= 1/(4T) on every configuration tested
(largest seen: 0.12 rho^2; 5.5e-5 at T = 1024, d = 256, N = 8, k = 4).

Degenerate and limiting cases
-----------------------------
* c = 0 (the weak adversary at sbar = 0): Lambda = z and both hypotheses have one law;
  every test has AUC 1/2 (the LLR scale c/D is 0).
* rho = 1, D = 0 (strong at T = 1, k = N; strong or weak at T = 1, s = 0): Sigma_1 is
  singular, IN puts beta = sqrt(B/A) alpha exactly. Lambda is then -||(B/A)^{1/4} alpha -
  (A/B)^{1/4} beta||^2 / 2: 0 under IN (a point mass, both weights 0) and -sqrt(AB) chi2_d
  < 0 under OUT, a perfect test (the likelihood ratio is infinite on IN's support): AUC 1 and
  TPR 1 at every FPR > 0. :class:`LrtLaw` represents these laws (zero weights allowed).
* The DP release without clipping: A -> A + sigma_tot^2, so rho < 1; the ROC of Lambda is
  then the exact trade-off curve of one random task's membership from (alpha, beta).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mtl_tracing._validate import (
    as_float_array,
    check_choice,
    check_int,
    check_nonnegative,
    check_open_unit_array,
    scalar_or_array,
)
from mtl_tracing.gaussian.config import IN_ADVERSARIES, GaussianGameConfig, check_config
from mtl_tracing.gaussian.law import ScoreLaw, percentile_table
from mtl_tracing.gaussian.moments import config_args, law_scale_parts, second_order

__all__ = [
    "LrtLaw",
    "lrt_weights",
    "lrt_scales",
    "lrt_statistic",
    "lrt_second_order",
    "lrt_law",
    "lrt_roc",
    "lrt_mu_profile",
    "lrt_auc",
    "lrt_tpr_at_fpr",
    "lrt_percentile_table",
    "lrt_moments",
]

HYPOTHESES = ("in", "out")


@dataclasses.dataclass(frozen=True)
class LrtLaw:
    """Law of Lambda = a X - b Y, X, Y i.i.d. chi2(d), a, b >= 0 (both 0: the point mass at 0).

    Like :class:`~mtl_tracing.gaussian.law.ScoreLaw` (which it uses when a > 0), with zero
    weights allowed for the degenerate game (rho = 1). Methods take scalars or arrays.
    """

    dim: int
    scale_pos: float
    scale_neg: float

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "dim", check_int("dim", self.dim, low=1))
        set_(self, "scale_pos", check_nonnegative("scale_pos", self.scale_pos))
        set_(self, "scale_neg", check_nonnegative("scale_neg", self.scale_neg))

    @property
    def mean(self) -> float:
        """E Lambda = d (a - b)."""
        return self.dim * (self.scale_pos - self.scale_neg)

    @property
    def var(self) -> float:
        """Var Lambda = 2 d (a^2 + b^2)."""
        return 2.0 * self.dim * (self.scale_pos**2 + self.scale_neg**2)

    @property
    def is_point_mass(self) -> bool:
        return self.scale_pos == 0.0 and self.scale_neg == 0.0

    def _parts(self):
        """(law, sign): Lambda = sign * law, law a ScoreLaw; None for the point mass."""
        if self.scale_pos > 0.0:
            return ScoreLaw(self.dim, self.scale_pos, self.scale_neg), 1.0
        if self.scale_neg > 0.0:  # Lambda = -b Y
            return ScoreLaw(self.dim, self.scale_neg, 0.0), -1.0
        return None, 0.0

    def sf(self, t):
        """P(Lambda > t)."""
        law, sign = self._parts()
        t = as_float_array("t", t)
        if law is None:
            return scalar_or_array((t < 0).astype(np.float64))
        return law.sf(t) if sign > 0 else law.cdf(-t)

    def cdf(self, t):
        """P(Lambda <= t)."""
        law, sign = self._parts()
        t = as_float_array("t", t)
        if law is None:
            return scalar_or_array((t >= 0).astype(np.float64))
        return law.cdf(t) if sign > 0 else law.sf(-t)

    def isf(self, p):
        """t with P(Lambda > t) = p (0 for the point mass)."""
        law, sign = self._parts()
        p = check_open_unit_array("p", p)
        if law is None:
            return scalar_or_array(np.zeros_like(p))
        return law.isf(p) if sign > 0 else scalar_or_array(-np.asarray(law.ppf(p)))

    def ppf(self, q):
        """t with P(Lambda <= t) = q (0 for the point mass)."""
        law, sign = self._parts()
        q = check_open_unit_array("q", q)
        if law is None:
            return scalar_or_array(np.zeros_like(q))
        return law.ppf(q) if sign > 0 else scalar_or_array(-np.asarray(law.isf(q)))

    def pdf(self, t):
        """Density at ``t``; ``ValueError`` for the point mass (no density)."""
        law, sign = self._parts()
        if law is None:
            raise ValueError("the point mass at 0 (rho = 1, IN) has no density")
        t = as_float_array("t", t)
        return law.pdf(t) if sign > 0 else law.pdf(-t)


def lrt_weights(a_var, b_var, cov):
    """(c / 2A, c / 2B): Lambda = z - (c/2A) ||alpha||^2 - (c/2B) ||beta||^2; broadcast."""
    a_var, b_var, cov = (np.asarray(x, dtype=np.float64) for x in (a_var, b_var, cov))
    return scalar_or_array(cov / (2.0 * a_var)), scalar_or_array(cov / (2.0 * b_var))


def lrt_statistic(z, alpha_sq, beta_sq, a_var, b_var, cov):
    """Lambda = z - (c/2A) ||alpha||^2 - (c/2B) ||beta||^2 from the sampler's outputs
    (``simulate(..., norms=True)``): z and ||beta||^2 per score, ||alpha||^2 per game
    (broadcast it, e.g. (G, 1) against (G, T)). Works on NumPy or JAX arrays (no checks)."""
    return z - (cov / (2.0 * a_var)) * alpha_sq - (cov / (2.0 * b_var)) * beta_sq


def lrt_scales(a_var, b_var, cov):
    """Weights of Lambda = a X - b Y under IN and OUT: ((a1, b1), (a0, b0)); broadcast.

    IN: a1 = b1 = (AB - c^2) / (2 sqrt(AB)); OUT: a0, b0 = (sqrt(AB) -+ c)/2 (z_IN's scales
    swapped), computed without cancellation near rho = 1 (``law_scale_parts``).
    """
    root, pos, neg = law_scale_parts(a_var, b_var, cov)
    w = 2.0 * pos * neg / root
    return (scalar_or_array(w), scalar_or_array(w)), (scalar_or_array(neg), scalar_or_array(pos))


def lrt_second_order(config: GaussianGameConfig, adversary: str, release=None):
    """(A, B, c) of ``adversary`` for Lambda: the game's, or with a DP ``release`` A +
    sigma_tot^2 (``release.noise_std(T)``; clipping, which has no closed form, is ignored:
    the exact functions refuse it)."""
    check_choice("adversary", adversary, IN_ADVERSARIES)
    args = config_args(config)
    if release is None:
        return second_order(*args, adversary)
    from mtl_tracing.gaussian.release import noisy_second_order

    return noisy_second_order(*args, adversary, release.noise_std(config.tasks))


def _exact(config, adversary, release):
    config = check_config(config)
    check_choice("adversary", adversary, IN_ADVERSARIES)
    if release is not None and release.clip is not None:
        raise ValueError(
            f"the exact theory covers unclipped releases only, got clip={release.clip!r}"
        )
    return config


def lrt_law(config: GaussianGameConfig, adversary: str, hypothesis: str, release=None) -> LrtLaw:
    """The exact law of Lambda for ``adversary`` under ``hypothesis`` ("in" or "out")."""
    config = _exact(config, adversary, release)
    check_choice("hypothesis", hypothesis, HYPOTHESES)
    (a1, b1), (a0, b0) = lrt_scales(*lrt_second_order(config, adversary, release))
    pos, neg = (a1, b1) if hypothesis == "in" else (a0, b0)
    return LrtLaw(config.dim, float(pos), float(neg))


def lrt_roc(config: GaussianGameConfig, adversary: str, fpr, release=None):
    """Exact ROC of Lambda at every ``fpr`` (any shape, in (0, 1)): TPR = P(Lambda_IN > t) at
    t = OUT.isf(fpr), i.e. P((1 - rho^2) z_OUT > -q_fpr). Vectorised on fixed nodes
    (``batched.roc_curve_theory``; ~1e-14 from ``law_in.sf(law_out.isf(fpr))`` of
    :func:`lrt_law`, which is adaptive and ~100x slower)."""
    from mtl_tracing.gaussian.batched import roc_curve_theory

    config = _exact(config, adversary, release)
    abc = lrt_second_order(config, adversary, release)
    return scalar_or_array(roc_curve_theory(config.dim, *abc, fpr, statistic="lrt"))


def lrt_mu_profile(config: GaussianGameConfig, adversary: str, fpr, release=None):
    """mu_eff(fpr) = Phi^-1(TPR) - Phi^-1(FPR) of Lambda's exact ROC: the mu of the Gaussian
    (mu-GDP) trade-off curve through each point. The ROC lies under the mu-GDP curve
    TPR = Phi(Phi^-1(FPR) + mu) exactly where mu_eff <= mu."""
    from scipy import special

    fpr = check_open_unit_array("fpr", fpr)
    tpr = np.asarray(lrt_roc(config, adversary, fpr, release), dtype=np.float64)
    return scalar_or_array(special.ndtri(tpr) - special.ndtri(fpr))


def lrt_tpr_at_fpr(config: GaussianGameConfig, adversary: str, fpr, release=None) -> float:
    """Exact TPR of Lambda at one FPR level."""
    fpr_arr = check_open_unit_array("fpr", fpr)
    if fpr_arr.ndim != 0:
        raise ValueError(f"fpr must be a scalar, got shape {fpr_arr.shape}")
    return float(lrt_roc(config, adversary, float(fpr_arr), release))


def lrt_auc(config: GaussianGameConfig, adversary: str, release=None) -> float:
    """Exact AUC of Lambda, P(Lambda_IN > Lambda_OUT) for independent copies, by Imhof's
    formula on fixed nodes (``roc_theory(..., statistic="lrt")``, ~1e-13)."""
    from mtl_tracing.gaussian.batched import roc_theory

    config = _exact(config, adversary, release)
    t, n, k, sb, s = config_args(config)
    sig = 0.0 if release is None else release.noise_std(t)
    res = roc_theory(
        t, n, config.dim, k, sb, s, adversary, 0.5, release_noise_std=sig, statistic="lrt"
    )
    return float(res["exact_auc"])


def lrt_moments(config: GaussianGameConfig, adversary: str, release=None) -> dict:
    """``{"in": (mean, var), "out": (mean, var)}`` of Lambda (exact)."""
    out = {}
    for h in HYPOTHESES:
        law = lrt_law(config, adversary, h, release)
        out[h] = (law.mean, law.var)
    return out


def lrt_percentile_table(
    config: GaussianGameConfig, adversary: str, percentiles=(50.0, 75.0, 90.0), release=None
) -> dict:
    """Blind thresholds of Lambda at percentiles of the pooled 50/50 IN/OUT mixture
    (:func:`~mtl_tracing.gaussian.law.percentile_table`).

    rho = 1: IN is the point mass at 0 above every OUT score. For q >= 50 the threshold is 0
    and the top 1 - q/100 of the mixture is a share of the atom: TPR = 2 (1 - q/100), FPR = 0
    (the limit rho -> 1, a randomised tie-break); below q = 50, TPR = 1 and FPR = 1 - 2 q/100.
    """
    law_in = lrt_law(config, adversary, "in", release)
    law_out = lrt_law(config, adversary, "out", release)
    if not law_in.is_point_mass:
        return percentile_table(law_in, law_out, percentiles)
    q = np.atleast_1d(as_float_array("percentiles", percentiles)).astype(np.float64)
    if q.ndim != 1 or np.any(q <= 0) or np.any(q >= 100):
        raise ValueError(f"percentiles must be in (0, 100), got {percentiles!r}")
    top = 1.0 - q / 100.0
    fpr = np.maximum(2.0 * top - 1.0, 0.0)
    tpr = np.minimum(2.0 * top, 1.0)
    below = fpr > 0
    thr = np.zeros_like(q)
    if np.any(below):
        thr[below] = np.asarray(law_out.isf(fpr[below]), dtype=np.float64)
    return {
        "percentile": q,
        "threshold": thr,
        "tpr": tpr,
        "fpr": fpr,
        "balanced_accuracy": 0.5 * (tpr + 1.0 - fpr),
    }
