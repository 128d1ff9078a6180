"""Privacy accounting of task-level DP-SGD with ``dp_accounting`` (RDP or PLD).

One DP-SGD step with Poisson task sampling at rate q and noise multiplier z is the event
``PoissonSampledDpEvent(q, GaussianDpEvent(z))``; ``steps`` of them compose. The accountants
bound (epsilon, delta) for add-or-remove-one-task adjacency (the standard DP-SGD unit, here a
whole task). Replace-one adjacency follows by group privacy over two add/remove steps.

``dp_accounting`` is imported lazily (only when asked for a number). Host-side, not traced.
"""

from __future__ import annotations

import functools
import math

from mtl_tracing._validate import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive_float,
    check_probability,
)

__all__ = ["ACCOUNTANTS", "dpsgd_epsilon", "calibrate_noise", "clt_mu"]

ACCOUNTANTS = ("rdp", "pld")


def _event(q: float, z: float, steps: int):
    from dp_accounting import dp_event

    return dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(z)), steps
    )


def _accountant(kind: str):
    from dp_accounting import pld, rdp

    return rdp.RdpAccountant() if kind == "rdp" else pld.PLDAccountant()


@functools.lru_cache(maxsize=256)
def _epsilon(q, z, steps, delta, kind):
    acc = _accountant(kind)
    acc.compose(_event(q, z, steps))
    return float(acc.get_epsilon(delta))


def dpsgd_epsilon(
    sampling_rate: float,
    noise_multiplier: float,
    steps: int,
    delta: float,
    *,
    accountant: str = "rdp",
) -> float:
    """epsilon at ``delta`` after ``steps`` Poisson-sampled Gaussian steps (inf if z = 0).

    Args:
      sampling_rate: q in (0, 1].
      noise_multiplier: z >= 0 (noise std z C on the clipped sum).
      steps: number of noisy steps (0 gives epsilon = 0).
      delta: in (0, 1).
      accountant: ``"rdp"`` (default, fast) or ``"pld"`` (tighter, slower).
    """
    q = check_probability("sampling_rate", sampling_rate, open_high=False)
    z = check_nonnegative("noise_multiplier", noise_multiplier)
    steps = check_int("steps", steps, low=0)
    delta = check_probability("delta", delta)
    check_choice("accountant", accountant, ACCOUNTANTS)
    if steps == 0:
        return 0.0
    if z == 0.0:
        return math.inf
    return _epsilon(q, z, steps, delta, accountant)


def calibrate_noise(
    target_epsilon: float,
    sampling_rate: float,
    steps: int,
    delta: float,
    *,
    accountant: str = "rdp",
) -> float:
    """The smallest noise multiplier z whose accountant epsilon is <= ``target_epsilon``.

    ``target_epsilon = inf`` gives z = 0 (no noise). Uses ``dp_accounting``'s
    ``calibrate_dp_mechanism`` (bisection on the accountant).
    """
    if target_epsilon == math.inf:
        return 0.0
    eps = check_positive_float("target_epsilon", target_epsilon)
    q = check_probability("sampling_rate", sampling_rate, open_high=False)
    steps = check_int("steps", steps, low=1)
    delta = check_probability("delta", delta)
    check_choice("accountant", accountant, ACCOUNTANTS)
    return _calibrate(eps, q, steps, delta, accountant)


@functools.lru_cache(maxsize=256)
def _calibrate(eps, q, steps, delta, kind):
    import dp_accounting

    z = dp_accounting.calibrate_dp_mechanism(
        lambda: _accountant(kind),
        lambda z: _event(q, z, steps),
        eps,
        delta,
        bracket_interval=dp_accounting.LowerEndpointAndGuess(1e-2, 1.0),
        tol=1e-4,
    )
    return float(z)


def clt_mu(sampling_rate: float, noise_multiplier: float, steps: int) -> float:
    """CLT approximation of DP-SGD's GDP mu (Bu, Dong, Long and Su 2020):
    mu ~ q sqrt(steps (e^{1/z^2} - 1)). An approximation, not a guarantee (inf if z = 0)."""
    q = check_probability("sampling_rate", sampling_rate, open_high=False)
    z = check_nonnegative("noise_multiplier", noise_multiplier)
    steps = check_int("steps", steps, low=0)
    if z == 0.0:
        return math.inf
    return q * math.sqrt(steps * math.expm1(1.0 / z**2))
