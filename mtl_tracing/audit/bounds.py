"""Privacy lower bounds from attack scores: epsilon_lb(delta) and mu_lb (GDP).

**Trials.** An audit needs independent trials. A trial is one independent run of the mechanism
in the IN world (the target is in the data) and one in the OUT world (the target is replaced),
each giving one score: ``scores_in[i]`` and ``scores_out[i]``. So the API takes two 1-D arrays
of the same length n, one IN and one OUT score per trial, and refuses anything else. Scores of
many targets of the *same* release (e.g. all T tasks of one Gaussian game, or all tasks of one
trained model) are correlated and must not be passed as separate trials: for the Gaussian
game take one task's IN score and one OUT score per game (:func:`game_trials`). The IN and OUT
scores of a trial may be dependent (e.g. from the same release): only the IN scores among
themselves and the OUT scores among themselves must be i.i.d., because the two error rates are
bounded separately and joined by a union bound.

**Bounds.** The test "IN when score > t" has false-positive rate FPR(t) and false-negative rate
FNR(t). One-sided Clopper-Pearson upper bounds FPR_hi, FNR_hi at confidence 1 - alpha/2 each
hold jointly with probability >= 1 - alpha = ``level``. If the mechanism is
(epsilon, delta)-DP then 1 - FNR <= e^epsilon FPR + delta and 1 - FPR <= e^epsilon FNR + delta
(both ways round: D and D' swap), so with probability >= level

    epsilon >= max(log((1 - delta - FNR_hi) / FPR_hi), log((1 - delta - FPR_hi) / FNR_hi)).

If it is mu-GDP then FNR >= Phi(Phi^-1(1 - FPR) - mu), so
mu >= Phi^-1(1 - FPR_hi) - Phi^-1(FNR_hi) (decreasing in both rates, so the upper bounds give
a lower bound). Both lower bounds are floored at 0.

**Threshold.** Choosing t by looking at the data that is then used for the bound breaks the
confidence statement, so two valid ways are offered:

- ``threshold="split"`` (default): the first floor(n/2) trials choose t (and nothing else): the
  t maximising the bound computed on them (Bonferroni-penalised over the candidates, which
  steers the choice away from noisy tails) over a grid of score quantiles; the remaining
  trials, independent of that choice, give the bound at t. Trials are exchangeable, so a fixed
  split is as good as a random one.
- ``threshold="union"``: all n trials, every candidate threshold, Bonferroni over thresholds.
  The union over *all* real thresholds costs only a factor n + 1 per rate: FPR(t) and its
  count are monotone in t, so the event "some t has FPR(t) > CP_hi(count(t))" is covered by
  n + 1 fixed-threshold events, one per count (the largest t whose FPR exceeds CP_hi(k)).
  Each rate then gets confidence 1 - alpha / (2 (n + 1)).

Host-side NumPy/SciPy: sorting and beta quantiles, no compilation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import special

from mtl_tracing._validate import check_choice, check_int, check_probability
from mtl_tracing.audit.gdp import gdp_epsilon

__all__ = [
    "METHODS",
    "AuditResult",
    "clopper_pearson_upper",
    "check_trials",
    "audit",
    "epsilon_lb",
    "mu_lb",
    "game_trials",
]

METHODS = ("split", "union")


class AuditResult(NamedTuple):
    """Lower bounds from one audit (floats; ``to_dict`` is JSON-ready)."""

    epsilon_lb: float  # lower bound on epsilon at ``delta``
    mu_lb: float  # lower bound on the GDP mu
    epsilon_from_mu_lb: float  # the epsilon at ``delta`` that mu_lb implies (mu-GDP -> DP)
    epsilon_threshold: float  # the t of the epsilon bound (rule: IN when score > t)
    mu_threshold: float  # the t of the mu bound
    fpr_hi: float  # CP upper bound on FPR at mu_threshold
    fnr_hi: float  # CP upper bound on FNR at mu_threshold
    delta: float
    level: float  # joint confidence of each bound
    trials: int  # n independent (IN, OUT) pairs
    evaluated: int  # trials behind the bound (n - floor(n/2) for "split", n for "union")
    method: str

    def to_dict(self) -> dict:
        return {
            k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
            for k, v in self._asdict().items()
        }


def clopper_pearson_upper(count, n, alpha) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound on a binomial rate, broadcast; float64.

    P(rate <= bound) >= 1 - alpha: the bound is the 1 - alpha quantile of Beta(count + 1,
    n - count), and 1 when count = n.
    """
    k = np.asarray(count, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        hi = special.betaincinv(k + 1.0, np.maximum(n - k, 1e-300), 1.0 - alpha)
    return np.where(k >= n, 1.0, hi)


def check_trials(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray]:
    """Validate one IN and one OUT score per independent trial: two finite 1-D float arrays of
    equal length n >= 2. Returns them as float64."""
    shapes = (np.shape(scores_in), np.shape(scores_out))
    if len(shapes[0]) != 1 or shapes[0] != shapes[1]:
        raise ValueError(
            "scores_in and scores_out must be 1-D arrays of equal length (one IN and one OUT "
            f"score per independent trial), got shapes {shapes[0]} and {shapes[1]}"
        )
    out = []
    for name, s in (("scores_in", scores_in), ("scores_out", scores_out)):
        arr = np.asarray(s)
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"{name} must be finite, got {int((~np.isfinite(arr)).sum())} non-finite value(s)"
            )
        out.append(arr)
    if out[0].size < 2:
        raise ValueError(f"need at least 2 trials, got {out[0].size}")
    return out[0], out[1]


def _candidates(a: np.ndarray, b: np.ndarray, num: int) -> np.ndarray:
    """Thresholds at pooled-score quantiles: a uniform grid plus both tails on a log grid."""
    pooled = np.sort(np.concatenate([a, b]))
    n = pooled.size
    tail = np.geomspace(1.0 / n, 0.5, num // 4)
    levels = np.unique(np.concatenate([np.linspace(0, 1, num // 2 + 1), tail, 1.0 - tail]))
    idx = np.clip(np.round(levels * (n - 1)).astype(np.int64), 0, n - 1)
    return np.unique(pooled[idx])


def _rates(a_sorted, b_sorted, t):
    """Counts of false positives (OUT > t) and false negatives (IN <= t), each (len(t),)."""
    fp = b_sorted.size - np.searchsorted(b_sorted, t, side="right")
    fn = np.searchsorted(a_sorted, t, side="right")
    return fp, fn


def _bounds_at(a_sorted, b_sorted, t, alpha_each, delta):
    """(epsilon bound, mu bound, fpr_hi, fnr_hi) at thresholds t with per-rate level."""
    fp, fn = _rates(a_sorted, b_sorted, t)
    fpr_hi = clopper_pearson_upper(fp, b_sorted.size, alpha_each)
    fnr_hi = clopper_pearson_upper(fn, a_sorted.size, alpha_each)
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.log(np.maximum(1.0 - delta - fnr_hi, 0.0)) - np.log(fpr_hi)
        e2 = np.log(np.maximum(1.0 - delta - fpr_hi, 0.0)) - np.log(fnr_hi)
        mu = special.ndtri(1.0 - fpr_hi) - special.ndtri(fnr_hi)
    eps = np.nan_to_num(np.maximum(e1, e2), nan=-np.inf)
    mu = np.nan_to_num(mu, nan=-np.inf)
    return eps, mu, fpr_hi, fnr_hi


def audit(
    scores_in,
    scores_out,
    *,
    delta: float,
    level: float = 0.95,
    threshold: str = "split",
    num_candidates: int = 256,
) -> AuditResult:
    """Lower bounds on epsilon (at ``delta``) and on the GDP mu from independent trials.

    Args:
      scores_in: (n,) one IN score per independent trial (higher = more likely IN).
      scores_out: (n,) one OUT score per independent trial.
      delta: the delta of the epsilon bound, in (0, 1).
      level: confidence of each bound, in (0, 1).
      threshold: ``"split"`` (default) or ``"union"`` (see the module docstring).
      num_candidates: size of the quantile grid of candidate thresholds (``"split"`` selects
        on it; ``"union"`` maximises over it, its level covering every threshold).

    Returns:
      :class:`AuditResult`.
    """
    a, b = check_trials(scores_in, scores_out)
    delta = check_probability("delta", delta)
    level = check_probability("level", level)
    check_choice("threshold", threshold, METHODS)
    num = check_int("num_candidates", num_candidates, low=4)
    alpha = 1.0 - level
    n = a.size
    if threshold == "split":
        h = n // 2
        sel_a, sel_b = np.sort(a[:h]), np.sort(b[:h])
        ev_a, ev_b = np.sort(a[h:]), np.sort(b[h:])
        cands = _candidates(sel_a, sel_b, num)
        # Selection is scored at the union-bound level: a stricter penalty for thresholds with
        # few errors (noisy tails), so the choice overfits the selection half less. Any choice
        # keeps the bound valid; this one only makes it tighter on average.
        e_sel, m_sel, _, _ = _bounds_at(sel_a, sel_b, cands, alpha / (2 * cands.size), delta)
        t_eps = cands[[int(np.argmax(e_sel))]]
        t_mu = cands[[int(np.argmax(m_sel))]]
        eps, _, _, _ = _bounds_at(ev_a, ev_b, t_eps, alpha / 2, delta)
        _, mu, fpr_hi, fnr_hi = _bounds_at(ev_a, ev_b, t_mu, alpha / 2, delta)
        i_eps = i_mu = 0
        evaluated = n - h
    else:
        sa, sb = np.sort(a), np.sort(b)
        cands = _candidates(sa, sb, num)
        t_eps = t_mu = cands
        eps, mu, fpr_hi, fnr_hi = _bounds_at(sa, sb, cands, alpha / (2 * (n + 1)), delta)
        i_eps, i_mu = int(np.argmax(eps)), int(np.argmax(mu))
        evaluated = n
    eps_lb = max(0.0, float(eps[i_eps]))
    mu_lb = max(0.0, float(mu[i_mu]))
    return AuditResult(
        epsilon_lb=eps_lb,
        mu_lb=mu_lb,
        epsilon_from_mu_lb=float(gdp_epsilon(mu_lb, delta)),
        epsilon_threshold=float(t_eps[i_eps]),
        mu_threshold=float(t_mu[i_mu]),
        fpr_hi=float(fpr_hi[i_mu]),
        fnr_hi=float(fnr_hi[i_mu]),
        delta=delta,
        level=level,
        trials=n,
        evaluated=evaluated,
        method=threshold,
    )


def epsilon_lb(scores_in, scores_out, *, delta: float, level: float = 0.95, **kw) -> float:
    """``audit(...).epsilon_lb``."""
    return audit(scores_in, scores_out, delta=delta, level=level, **kw).epsilon_lb


def mu_lb(scores_in, scores_out, *, level: float = 0.95, **kw) -> float:
    """``audit(...).mu_lb`` (delta only matters for the epsilon bound; 1e-5 is passed)."""
    return audit(scores_in, scores_out, delta=1e-5, level=level, **kw).mu_lb


def game_trials(strong_or_weak_in, out, *, task: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One (IN, OUT) score pair per Gaussian game: task ``task``'s column of (games, T) scores.

    The T scores of a game share one release and are correlated; only one IN and one OUT score
    per game are independent trials.
    """
    s_in, s_out = np.asarray(strong_or_weak_in), np.asarray(out)
    if s_in.ndim != 2 or s_in.shape != s_out.shape:
        raise ValueError(
            f"game scores must be two (games, T) arrays of one shape, got {s_in.shape} and "
            f"{s_out.shape}"
        )
    task = check_int("task", task, low=0, high=s_in.shape[1] - 1)
    return s_in[:, task], s_out[:, task]
