"""Auditing with one training run (Steinke, Nasr and Jagielski, NeurIPS 2023, arXiv 2305.08846).

m canaries are each included in the training data with probability 1/2, independently
(S_i ~ Bernoulli(1/2)), and the model is trained once. The auditor scores every canary, guesses
IN for the ``guesses_in`` highest scores and OUT for the ``guesses_out`` lowest, abstains on the
rest, and counts the correct guesses v among the r = guesses_in + guesses_out guesses. The
numbers of guesses must be fixed before looking at the scores (they are arguments here).

Their Theorem 3 (pure DP, delta = 0): if the training algorithm is epsilon-DP with respect to
each canary, the number of correct guesses is stochastically dominated by
Binomial(r, e^epsilon / (1 + e^epsilon)). So

    p(epsilon) = P[Binomial(r, q(epsilon)) >= v],   q(epsilon) = e^epsilon / (1 + e^epsilon),

is a valid p-value for "the algorithm is epsilon-DP", and epsilon_lb = sup {epsilon :
p(epsilon) <= 1 - level}. With delta > 0 (their Theorem 5 / Algorithm 2) the p-value gains
2 m delta max_{1 <= i <= v} (P[Binomial(r, q) >= v - i] - P[Binomial(r, q) >= v]) / i.

p(epsilon) is decreasing in epsilon (q increases), so epsilon_lb is a one-dimensional root.
Host-side SciPy.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import optimize, special, stats

from mtl_tracing._validate import check_int, check_nonnegative, check_probability

__all__ = [
    "OneRunResult",
    "one_run_p_value",
    "one_run_epsilon_lb",
    "one_run_audit",
    "task_audit",
    "attacks_audit",
    "max_epsilon_lb",
]

#: How :func:`attacks_audit` names its method in a results file.
ONE_RUN_METHOD = "one_run (Steinke, Nasr, Jagielski 2023)"


class OneRunResult(NamedTuple):
    epsilon_lb: float
    guesses: int  # r
    correct: int  # v
    canaries: int  # m
    delta: float
    level: float


def one_run_p_value(epsilon: float, *, canaries: int, guesses: int, correct: int, delta=0.0):
    """The p-value of "epsilon-DP" (delta-corrected when ``delta`` > 0); see the module docs."""
    q = float(special.expit(epsilon))
    v, r = correct, guesses
    beta = float(stats.binom.sf(v - 1, r, q))  # P[Binom(r, q) >= v]
    if delta == 0.0 or v == 0:
        return beta
    i = np.arange(1, v + 1)
    excess = stats.binom.sf(v - i - 1, r, q) - beta  # P[>= v - i] - P[>= v]
    return min(1.0, beta + 2.0 * canaries * delta * float(np.max(excess / i)))


def one_run_epsilon_lb(
    *, canaries: int, guesses: int, correct: int, delta: float = 0.0, level: float = 0.95
) -> float:
    """epsilon_lb = sup {epsilon >= 0 : p(epsilon) <= 1 - level} (0 when p(0) > 1 - level)."""
    m = check_int("canaries", canaries, low=1)
    r = check_int("guesses", guesses, low=0, high=m)
    v = check_int("correct", correct, low=0, high=r)
    delta = check_nonnegative("delta", delta)
    if delta >= 1:
        raise ValueError(f"delta must be < 1, got {delta!r}")
    alpha = 1.0 - check_probability("level", level)

    def f(eps):
        return alpha - one_run_p_value(eps, canaries=m, guesses=r, correct=v, delta=delta)

    if r == 0 or f(0.0) < 0:
        return 0.0
    if v == r and delta == 0.0:  # p(eps) = q^r -> 0 only as eps -> inf; solve q^r = alpha
        return float(special.logit(alpha ** (1.0 / r))) if alpha ** (1.0 / r) > 0.5 else 0.0
    hi = 1.0
    while f(hi) >= 0:
        hi *= 2.0
        if hi > 1e3:
            return math.inf
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-9))


def one_run_audit(
    scores,
    included,
    *,
    guesses_in: int,
    guesses_out: int = 0,
    delta: float = 0.0,
    level: float = 0.95,
) -> OneRunResult:
    """The one-run audit from canary scores and the coin flips that included them.

    Args:
      scores: (m,) one score per canary (higher = more likely included).
      included: (m,) bool, the independent fair coins S_i that put canary i in the training run.
      guesses_in: guess IN for this many highest scores (fixed in advance).
      guesses_out: guess OUT for this many lowest scores (fixed in advance).
      delta, level: as in :func:`one_run_epsilon_lb`.

    Returns:
      :class:`OneRunResult`.
    """
    s = np.asarray(scores, dtype=np.float64)
    inc = np.asarray(included)
    if s.ndim != 1 or inc.shape != s.shape:
        raise ValueError(
            f"scores and included must be 1-D of one length, got {s.shape} and {inc.shape}"
        )
    if inc.dtype != bool:
        raise ValueError(f"included must be a bool array, got dtype {inc.dtype}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    m = s.size
    k_in = check_int("guesses_in", guesses_in, low=0, high=m)
    k_out = check_int("guesses_out", guesses_out, low=0, high=m - k_in)
    order = np.argsort(s, kind="stable")
    correct = int(inc[order[m - k_in :]].sum()) if k_in else 0
    correct += int((~inc[order[:k_out]]).sum())
    r = k_in + k_out
    eps = one_run_epsilon_lb(canaries=m, guesses=r, correct=correct, delta=delta, level=level)
    return OneRunResult(eps, r, correct, m, float(delta), float(level))


def task_audit(scores_in, scores_out, *, delta: float = 0.0, level: float = 0.95) -> OneRunResult:
    """The one-run audit of one trained model from its tasks' scores (``mtl-tracing attack
    --audit``, the ``dp_defence`` job): the canaries are the tasks, each scored by the mean of
    its scores; guess IN for the top quarter and OUT for the bottom quarter of the tasks
    (k = max(1, min(T_in, T_out) // 4) each, fixed before looking at the scores).

    Args:
      scores_in: (T_in, ...) the IN (trained) tasks' scores; trailing axes are averaged.
      scores_out: (T_out, ...) the OUT tasks' scores.
      delta, level: as in :func:`one_run_epsilon_lb`.

    Caveat: the IN tasks of a model are fixed, not independent fair coins as the theorem
    assumes (e.g. T IN and T OUT i.i.d. tasks: IN is a uniformly random half), so the bound
    illustrates rather than certifies; and with r = 2k guesses it cannot exceed
    :func:`max_epsilon_lb` (r, level).
    """
    s_in = np.asarray(scores_in, np.float64)
    s_out = np.asarray(scores_out, np.float64)
    if s_in.ndim < 1 or s_out.ndim < 1 or not s_in.shape[0] or not s_out.shape[0]:
        raise ValueError(
            f"scores_in and scores_out must have a leading tasks axis, got shapes {s_in.shape} "
            f"and {s_out.shape}"
        )
    t_in, t_out = s_in.shape[0], s_out.shape[0]
    s = np.r_[s_in.reshape(t_in, -1).mean(1), s_out.reshape(t_out, -1).mean(1)]
    inc = np.r_[np.ones(t_in, bool), np.zeros(t_out, bool)]
    k = max(1, min(t_in, t_out) // 4)
    return one_run_audit(s, inc, guesses_in=k, guesses_out=k, delta=delta, level=level)


def attacks_audit(scores, *, delta: float = 1e-5, level: float = 0.95) -> dict[str, dict]:
    """:func:`task_audit` of one trained model for every attack of ``scores`` (``mtl-tracing
    attack --audit``).

    Args:
      scores: ``{attack name: grouped scores}`` with ``scores_in`` (T_in, ...) and
        ``scores_out`` (T_out, ...) per attack (an ``attacks.AttackScores``: every registered
        attack that ran, none named here).
      delta, level: as in :func:`one_run_epsilon_lb`.

    Returns:
      ``{name: OneRunResult's fields + "method"}``, JSON-ready.
    """
    return {
        name: {
            **task_audit(g.scores_in, g.scores_out, delta=delta, level=level)._asdict(),
            "method": ONE_RUN_METHOD,
        }
        for name, g in scores.items()
    }


def max_epsilon_lb(guesses: int, *, level: float = 0.95) -> float:
    """The largest epsilon_lb that r = ``guesses`` guesses can give (all correct, delta = 0):
    logit(q) with q^r = 1 - level, and 0 when q <= 1/2 (too few guesses for any bound at
    this level: r < log2(1 / (1 - level)), e.g. r <= 4 at level 0.95)."""
    r = check_int("guesses", guesses, low=1)
    return one_run_epsilon_lb(canaries=r, guesses=r, correct=r, level=level)
