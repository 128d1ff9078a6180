"""Shared statistical assertions for Monte Carlo tests (DEVELOPERS.md, "Tests").

Every statistical check compares an estimate with its target in units of the estimate's
standard error, and carries a power check: the same data must reject a neighbouring wrong
formula. Under the normal approximation, |z| <= 4.5 fails with probability ~6.8e-6 per
(independent) comparison; state the number of comparisons when a test makes many.
"""

from __future__ import annotations

import numpy as np

Z = 4.5  # default: two-sided false-failure probability ~6.8e-6 per comparison


def z_scores(estimate, target, se) -> np.ndarray:
    """(estimate - target) / se, elementwise, in float64."""
    est, tgt, se = (np.asarray(x, np.float64) for x in (estimate, target, se))
    return (est - tgt) / se


def assert_within_se(estimate, target, se, *, z: float = Z, what: str = "estimate") -> None:
    """Assert |estimate - target| <= z * se everywhere (arrays broadcast)."""
    r = z_scores(estimate, target, se)
    bad = ~(np.abs(r) <= z)
    if np.any(bad):
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {r.size} beyond {z} standard errors; "
            f"worst z = {r.flat[np.nanargmax(np.abs(r))]:.3g}"
        )


def assert_rejects(estimate, wrong_target, se, *, z: float = Z, what: str = "wrong formula"):
    """Power check: the data reject ``wrong_target``, i.e. |estimate - wrong| > z * se.

    Arrays are combined into one test first: Z = sum_i r_i / sqrt(n) is N(0, 1) under the
    wrong target's null if the n comparisons are independent, so many weak deviations in the
    same direction are rejected together (pass independent rows only). Returns that Z.
    """
    r = np.ravel(z_scores(estimate, wrong_target, se))
    agg = float(np.sum(r) / np.sqrt(r.size))
    if not abs(agg) > z:
        raise AssertionError(f"{what} not rejected: aggregate z = {agg:.3g} <= {z}")
    return agg


def assert_sweep_matches_theory(t, *, z: float = Z) -> None:
    """A Gaussian sweep table: IN/OUT means and variances within ``z`` se of their theory
    columns, and the AUC within ``z`` se of the exact AUC (se from the 95% bootstrap CI)."""
    for est, se, th in (
        ("mean_in", "mean_in_se", "theory_mean_in"),
        ("var_in", "var_in_se", "theory_var_in"),
        ("mean_out", "mean_out_se", "theory_mean_out"),
        ("var_out", "var_out_se", "theory_var_out"),
    ):
        assert_within_se(t[est], t[th], t[se], z=z, what=est)
    auc_se = (t["auc_hi"] - t["auc_lo"]) / (2 * 1.96)
    assert_within_se(t["auc"], t["exact_auc"], auc_se, z=z, what="auc")
