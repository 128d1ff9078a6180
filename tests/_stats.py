"""Shared assertions (DEVELOPERS.md, "Tests", and the precision and equality policy).

Statistical checks (:func:`assert_within_se`, :func:`assert_rejects`) compare an estimate
with its target in units of the estimate's standard error, and carry a power check: the same
data must reject a neighbouring wrong formula. Deterministic quantities computed two ways
agree to a tolerance derived from the dtype and the operation (:func:`assert_close`), never
bitwise across backends, device counts or JAX versions. Under the normal approximation,
|z| <= 4.5 fails with probability ~6.8e-6 per (independent) comparison; state the number
of comparisons when a test makes many.
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


def float_tolerance(dtype, *, terms: int = 1, ulps: float = 4.0) -> float:
    """Relative tolerance between two computations of the same quantity in ``dtype`` that
    may round differently (another backend, device count, JAX version, reduction order or a
    division computed through a reciprocal): ``ulps`` units in the last place, times the
    length ``terms`` of the longest reduction (the worst-case growth of a sum's rounding
    error, relative to the sum of the magnitudes of its terms).

    float32 matrix products must run at full float32 precision for this to hold: code whose
    accuracy matters passes ``precision=HIGHEST``, and tests of such code run under
    ``jax.default_matmul_precision("highest")`` (XLA uses TF32, 10 mantissa bits, for float32
    products on recent GPUs by default).
    """
    return float(ulps * max(int(terms), 1) * np.finfo(np.dtype(dtype)).eps)


def assert_close(
    actual, desired, *, dtype=None, terms: int = 1, ulps: float = 4.0, scale=None, what=""
):
    """Deterministic agreement to :func:`float_tolerance`: elementwise
    ``|actual - desired| <= tol * max(|desired|, scale)``, where ``scale`` (default: the largest
    ``|desired|``) stands for the magnitude of the terms that cancelled into small entries.
    ``dtype`` defaults to the coarser of the two arrays' float dtypes."""
    a, d = np.asarray(actual), np.asarray(desired)
    if a.shape != d.shape:
        raise AssertionError(f"{what}: shapes differ, {a.shape} vs {d.shape}")
    if dtype is None:
        kinds = [x.dtype for x in (a, d) if np.issubdtype(x.dtype, np.floating)]
        dtype = min(kinds, key=lambda t: np.finfo(t).bits) if kinds else np.float64
    tol = float_tolerance(dtype, terms=terms, ulps=ulps)
    a64, d64 = a.astype(np.float64), d.astype(np.float64)
    ref = float(np.max(np.abs(d64))) if scale is None and d64.size else float(scale or 0.0)
    bound = tol * np.maximum(np.abs(d64), ref)
    err = np.abs(a64 - d64)
    bad = ~(err <= bound)
    if np.any(bad):
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape)
        raise AssertionError(
            f"{what or 'values'}: {int(bad.sum())} of {err.size} differ by more than "
            f"{tol:.3g} relative ({np.dtype(dtype).name}, terms={terms}, ulps={ulps}); worst at "
            f"{tuple(int(j) for j in i)}: {a64[i]!r} vs {d64[i]!r}"
        )


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
