"""Shared statistical assertions: "within z standard errors" and "the neighbour is rejected".

Each Monte Carlo test compares an estimate with the exact value within ``z`` standard errors
computed from the samples, and shows power: at the same sample size, the neighbouring wrong
formula lies more than ``z`` standard errors away. With z = 4.5 a normal estimate fails the
first check with probability ~7e-6.
"""

from __future__ import annotations

import math

Z = 4.5


def assert_within_se(estimate, target, se, *, z: float = Z, what: str = "") -> None:
    """|estimate - target| <= z se (se > 0, finite)."""
    estimate, target, se = float(estimate), float(target), float(se)
    assert math.isfinite(se) and se > 0, f"{what}: bad standard error {se!r}"
    dev = abs(estimate - target) / se
    assert dev <= z, f"{what}: estimate {estimate:.6g} vs {target:.6g} is {dev:.2f} se away (> {z})"


def assert_rejects(estimate, wrong_target, se, *, z: float = Z, what: str = "") -> None:
    """Power: the neighbouring wrong value lies more than z se from the estimate."""
    estimate, wrong_target, se = float(estimate), float(wrong_target), float(se)
    dev = abs(estimate - wrong_target) / se
    assert dev > z, f"{what}: wrong value {wrong_target:.6g} not rejected ({dev:.2f} se <= {z})"
