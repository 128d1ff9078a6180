r"""Second-order theory of the tracing statistic z (Sec. 4, App. B): Thms 4.1-4.3, exactly.

Host code: NumPy in float64 (statistics, not Monte Carlo). Notation (argument -> symbol):
``tasks`` T, ``samples`` N, ``dim`` d, ``challenge`` k, ``task_std`` sbar, ``sample_std`` s.
``mean`` (mu_bar) does not enter: z is centred at mu_bar, which the adversary knows.

Per coordinate, alpha = mu_hat - mu_bar and beta = mean(B) - mu_bar are jointly normal and
i.i.d. over the d coordinates, with

* A = Var alpha = (sbar^2 + s^2/N) / T (+ sigma^2 when the release carries noise of std sigma),
* B = Var beta = sbar^2 + s^2/k (all three adversaries),
* c = Cov(alpha, beta): strong (sbar^2 + s^2/N)/T, weak sbar^2/T, out 0.

By Isserlis, E z = d c and Var z = d (A B + c^2). The paper's Thm 4.3 expression
d/T [sbar^4 + s^4/(kN) + (k+N)/(kN) sbar^2 s^2] equals d A B = Var z_OUT exactly; for IN it
is short by d c^2. The ratio is Var z_IN / Var z_OUT = 1 + rho^2 with rho^2 = c^2/(A B) <= 1/T
(because k <= N), so the tight bound is Var z_IN <= 2 Var z_OUT (attained at T = 1, k = N,
strong), not the paper's 3.

sbar = 0 (one shared task mean) is the classic membership-inference limit: then c_weak = 0, so
the weak adversary's score has the OUT law (AUC exactly 1/2), and E z_strong = d s^2/(N T).
s = 0 is also allowed; sbar = s = 0 makes z identically 0 and is refused.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mtl_tracing._validate import (
    check_choice,
    check_int_array,
    check_nonnegative_array,
    scalar_or_array,
)
from mtl_tracing.gaussian.config import ADVERSARIES, GaussianGameConfig, check_config

__all__ = [
    "ScoreMoments",
    "check_game_params",
    "config_args",
    "second_order",
    "score_moments",
    "law_scale_parts",
    "law_scales",
    "variance_ratio",
    "moments",
    "with_release_noise",
    "noisy_second_order",
]


def check_game_params(tasks, samples, challenge, task_std, sample_std):
    """Validated float64 arrays (T, N, k, sbar, s); broadcastable; k <= N; sbar, s >= 0, not
    both 0 (z would be identically 0)."""
    t = check_int_array("tasks", tasks)
    n = check_int_array("samples", samples)
    k = check_int_array("challenge", challenge)
    if np.any(k > n):
        raise ValueError(
            "challenge must be <= samples (k <= N), "
            f"got challenge={challenge!r}, samples={samples!r}"
        )
    sb = check_nonnegative_array("task_std", task_std)
    s = check_nonnegative_array("sample_std", sample_std)
    if np.any((sb == 0) & (s == 0)):
        raise ValueError(
            "task_std and sample_std must not both be 0 (z is then identically 0), "
            f"got task_std={task_std!r}, sample_std={sample_std!r}"
        )
    return t, n, k, sb, s


def config_args(config: GaussianGameConfig):
    """(T, N, k, sbar, s) of a validated config, the order the functions here take."""
    config = check_config(config)
    return (config.tasks, config.samples, config.challenge, config.task_std, config.sample_std)


# Moments.


class ScoreMoments(NamedTuple):
    """Second-order theory of z for one adversary (floats, or arrays when broadcast).

    ``A``, ``B``, ``c``: Var alpha, Var beta, Cov(alpha, beta) per coordinate.
    ``mean`` = d c and ``var`` = d (A B + c^2) are exact; ``paper_mean`` (Thm 4.1/4.2) and
    ``paper_var`` (Thm 4.3, the same expression for IN and OUT) are the paper's formulas.
    """

    A: float | np.ndarray
    B: float | np.ndarray
    c: float | np.ndarray
    mean: float | np.ndarray  # E z = d c
    var: float | np.ndarray  # Var z = d (A B + c^2)
    paper_mean: float | np.ndarray
    paper_var: float | np.ndarray

    @property
    def paper_var_bound(self):
        """The paper's bound 3 Var z_OUT (Thm B.3)."""
        return 3.0 * self.paper_var

    @property
    def rho2(self):
        """Squared per-coordinate correlation rho^2 = c^2/(A B) (<= 1/T)."""
        return self.c**2 / (self.A * self.B)

    @property
    def var_ratio(self):
        """Var z / Var z_OUT = 1 + rho^2 (<= 1 + 1/T <= 2)."""
        return 1.0 + self.rho2


def second_order(tasks, samples, challenge, task_std, sample_std, adversary: str):
    """(A, B, c) per coordinate; NumPy-broadcast over the numeric arguments.

    A = (sbar^2 + s^2/N)/T, B = sbar^2 + s^2/k, c = A (strong), sbar^2/T (weak), 0 (out).
    """
    check_choice("adversary", adversary, ADVERSARIES)
    t, n, k, sb, s = check_game_params(tasks, samples, challenge, task_std, sample_std)
    a_var = (sb**2 + s**2 / n) / t
    b_var = sb**2 + s**2 / k
    if adversary == "strong":
        cov = a_var
    elif adversary == "weak":
        cov = sb**2 / t
    else:
        cov = np.zeros_like(a_var)
    a_var, b_var, cov = np.broadcast_arrays(a_var, b_var, cov)
    return tuple(scalar_or_array(np.array(x)) for x in (a_var, b_var, cov))


def score_moments(
    tasks, samples, dim, challenge, task_std, sample_std, adversary: str
) -> ScoreMoments:
    """Exact and paper moments of z for one adversary; broadcast over numeric arguments."""
    d = check_int_array("dim", dim)
    a_var, b_var, cov = second_order(tasks, samples, challenge, task_std, sample_std, adversary)
    t, n, k = (np.asarray(x, dtype=np.float64) for x in (tasks, samples, challenge))
    sb, s = np.asarray(task_std, dtype=np.float64), np.asarray(sample_std, dtype=np.float64)
    # The paper's formulas, written as printed (Thms 4.1-4.3).
    paper_mean = {
        "strong": d / t * (sb**2 + s**2 / n),
        "weak": d / t * sb**2,
        "out": 0.0 * d / t,
    }[adversary]
    paper_var = d / t * (sb**4 + s**4 / (k * n) + (k + n) / (k * n) * sb**2 * s**2)
    fields = np.broadcast_arrays(
        a_var, b_var, cov, d * cov, d * (a_var * b_var + cov**2), paper_mean, paper_var
    )
    return ScoreMoments(*(scalar_or_array(np.array(x)) for x in fields))


def law_scale_parts(a_var, b_var, cov):
    """(sqrt(AB), a, b) from (A, B, c) arrays; a, b = (sqrt(AB) +- c)/2."""
    a_var, b_var, cov = (np.asarray(x, dtype=np.float64) for x in (a_var, b_var, cov))
    root = np.sqrt(a_var * b_var)
    pos = 0.5 * (root + cov)
    # sqrt(AB) - c loses digits when rho ~ 1; use (AB - c^2)/(sqrt(AB) + c) instead.
    neg = 0.5 * np.maximum(a_var * b_var - cov**2, 0.0) / (root + cov)
    return root, pos, neg


def law_scales(tasks, samples, challenge, task_std, sample_std, adversary: str):
    """(a, b) of z = a X - b Y: a, b = (sqrt(AB) +- c)/2; broadcast over numeric arguments."""
    a_var, b_var, cov = second_order(tasks, samples, challenge, task_std, sample_std, adversary)
    _, pos, neg = law_scale_parts(a_var, b_var, cov)
    return scalar_or_array(pos), scalar_or_array(neg)


def variance_ratio(tasks, samples, challenge, task_std, sample_std, adversary: str):
    """Var z / Var z_OUT = 1 + c^2/(A B) (<= 1 + 1/T <= 2); broadcast over numeric arguments."""
    a_var, b_var, cov = second_order(tasks, samples, challenge, task_std, sample_std, adversary)
    return scalar_or_array(1.0 + np.asarray(cov) ** 2 / (np.asarray(a_var) * b_var))


def moments(config: GaussianGameConfig) -> dict[str, ScoreMoments]:
    """``{adversary: ScoreMoments}`` for ``strong``, ``weak`` and ``out``."""
    t, n, k, sb, s = config_args(config)
    return {adv: score_moments(t, n, config.dim, k, sb, s, adv) for adv in ADVERSARIES}


# Release noise (:mod:`~mtl_tracing.gaussian.release`): Gaussian noise of std sigma per
# coordinate on mu_hat, independent of every batch, adds sigma^2 to A and nothing else.


def with_release_noise(m: ScoreMoments, noise_std, dim) -> ScoreMoments:
    """Moments with release noise of std ``noise_std`` on mu_hat: A + sigma^2, same B and c;
    mean d c, var d((A + sigma^2) B + c^2). The paper's fields are kept (noiseless)."""
    sig2 = np.asarray(noise_std, dtype=np.float64) ** 2
    d = np.asarray(dim, dtype=np.float64)
    a_var = np.asarray(m.A, dtype=np.float64) + sig2
    var = d * (a_var * np.asarray(m.B) + np.asarray(m.c) ** 2)
    fields = np.broadcast_arrays(a_var, m.B, m.c, m.mean, var, m.paper_mean, m.paper_var)
    return ScoreMoments(*(scalar_or_array(np.array(x, dtype=np.float64)) for x in fields))


def noisy_second_order(
    tasks, samples, challenge, task_std, sample_std, adversary: str, noise_std=0.0
):
    """(A + sigma^2, B, c) per coordinate; broadcast over the numeric arguments."""
    sig = check_nonnegative_array("release_noise_std", noise_std)
    a_var, b_var, cov = second_order(tasks, samples, challenge, task_std, sample_std, adversary)
    a_var, b_var, cov = np.broadcast_arrays(np.asarray(a_var) + sig**2, b_var, cov)
    return tuple(scalar_or_array(np.array(x)) for x in (a_var, b_var, cov))
