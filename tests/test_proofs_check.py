"""Tests for proofs_check: moment engine, derivations, Monte Carlo power, errata, verify CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import proofs_check
from proofs_check import montecarlo as mc
from proofs_check.derivations import exact_moments, paper_formulas
from proofs_check.errata import pairwise_attack, variance_attack
from proofs_check.moments import LinearForm, N, T, d, expect, k, s, sbar
from proofs_check.records import Check

# --- moment engine ---------------------------------------------------------------------------


def test_isserlis_basic_moments():
    z1 = LinearForm({"a": sp.Integer(1)})
    z2 = LinearForm({"b": sp.Integer(1)})
    assert expect([z1, z1, z1, z1]) == 3
    assert expect([z1, z1, z2, z2]) == 1
    assert expect([z1, z1, z1]) == 0
    assert expect([z1 + 2, z1 + 2]) == 5  # E[(Z + 2)^2] = 1 + 4
    m = sp.Symbol("m")
    assert sp.expand(expect([z1 * 3 + m, z2 - z1 + m]) - (m**2 - 3)) == 0


@given(st.integers(-5, 5), st.integers(-5, 5), st.integers(-3, 3))
def test_isserlis_fourth_moment_of_a_linear_form(a, b, c0):
    # X = c0 + a Z1 + b Z2 ~ N(c0, v): E X^4 = c0^4 + 6 c0^2 v + 3 v^2.
    x = LinearForm({"a": sp.Integer(a), "b": sp.Integer(b)}, sp.Integer(c0))
    v = a * a + b * b
    assert expect([x] * 4) == c0**4 + 6 * c0**2 * v + 3 * v**2


def test_engine_rejects_bad_input():
    with pytest.raises(ValueError, match="coef"):
        LinearForm([1, 2])
    with pytest.raises(ValueError, match="forms"):
        expect([LinearForm({"a": 1}), 3])
    with pytest.raises(ValueError, match="not linear"):
        LinearForm({"a": 1}) * LinearForm({"a": 1})


# --- symbolic derivations --------------------------------------------------------------------


def test_derived_moments_match_paper_and_exact_theory():
    m, p = exact_moments(), paper_formulas()
    assert sp.simplify(m["strong"]["mean"] - p["E_z_strong"]) == 0
    assert sp.simplify(m["weak"]["mean"] - p["E_z_weak"]) == 0
    assert m["out"]["mean"] == 0
    assert sp.simplify(m["out"]["var"] - p["Var_z_out"]) == 0
    for adv in ("strong", "weak"):
        A, B, c = (m[adv][f] for f in "ABc")
        assert sp.simplify(m[adv]["var"] - d * (A * B + c**2)) == 0
        # power: the paper's Var_IN ~ Var_OUT and a 3 c^2 coefficient are not identities
        assert sp.simplify(m[adv]["var"] - p["Var_z_out"]) != 0
        assert sp.simplify(m[adv]["var"] - d * (A * B + 3 * c**2)) != 0
    # power: a missing s^2/N term is detected
    assert sp.simplify(m["strong"]["mean"] - d * sbar**2 / T) != 0
    # tight constant 2 at T = 1, k = N
    assert sp.simplify((m["strong"]["var"] / m["out"]["var"]).subs({T: 1, N: k})) == 2
    assert (
        sp.simplify(((m["strong"]["mean"] - m["weak"]["mean"]).subs(k, 1)) - d * s**2 / (N * T))
        == 0
    )


@pytest.fixture(scope="module")
def symbolic_rows():
    return proofs_check.symbolic_checks() + proofs_check.proof_step_checks()


def test_symbolic_and_proof_step_rows_pass(symbolic_rows):
    failed = [r.id for r in symbolic_rows if not r.passed]
    assert not failed
    ids = {r.id for r in symbolic_rows}
    assert {"S5", "S6", "S7", "S8s", "S10", "P2", "P5", "P8", "P11s", "R1", "R2"} <= ids


# --- Monte Carlo: accuracy and power at the same sample size ---------------------------------


@pytest.fixture(scope="module")
def power_draws():
    p = mc.FAST_POINTS[0]  # T = 1, k = N
    return p, mc.simulate_scores(np.random.default_rng(123), p, 40_000)


def test_monte_carlo_accepts_exact_and_rejects_neighbours(power_draws):
    # |est - theory| <= 4.5 se: per-assertion false failure ~ 6.8e-6 (CLT); seeded anyway.
    p, z = power_draws
    ex = mc.exact_values(p)
    A, B, c = ex["A"], ex["B"], ex["c_strong"]
    v, se = mc.var_and_se(z["strong"])
    assert abs(v - p.d * (A * B + c**2)) <= mc.Z_ACCEPT * se
    assert abs(v - p.d * A * B) > mc.Z_ACCEPT * se  # Var_IN = Var_OUT rejected
    assert abs(v - p.d * (A * B + 3 * c**2)) > mc.Z_ACCEPT * se  # 3 c^2 rejected
    m, se = mc.mean_and_se(z["strong"])
    assert abs(m - p.d * A) <= mc.Z_ACCEPT * se
    assert abs(m - p.d * p.sbar**2 / p.T) > mc.Z_ACCEPT * se  # missing s^2/N rejected
    r, se = mc.ratio_and_se(z["strong"], z["out"])
    assert abs(r - (1 + c**2 / (A * B))) <= mc.Z_ACCEPT * se
    assert abs(r - 1.0) > mc.Z_ACCEPT * se and abs(r - 3.0) > mc.Z_ACCEPT * se


def test_monte_carlo_rows_fail_when_the_theory_is_perturbed(monkeypatch):
    rows = mc.monte_carlo_checks(seed=0)
    assert all(r.passed for r in rows) and len(rows) == 11 * len(mc.FAST_POINTS)
    true_values = mc.exact_values

    def wrong(p):  # c_strong with a missing s^2/N term
        out = dict(true_values(p))
        out["c_strong"] = p.sbar**2 / p.T
        return out

    monkeypatch.setattr(mc, "exact_values", wrong)
    bad = [r.id for r in mc.monte_carlo_checks(seed=0) if not r.passed]
    assert any(i.endswith(".Estrong") for i in bad)


def test_point_and_simulator_validation():
    with pytest.raises(ValueError, match="k must be <= N"):
        mc.Point(T=2, N=2, d=1, k=3, sbar=1.0, s=1.0)
    with pytest.raises(ValueError, match="T must be"):
        mc.Point(T=0, N=2, d=1, k=1, sbar=1.0, s=1.0)
    with pytest.raises(ValueError, match="s must be"):
        mc.Point(T=1, N=2, d=1, k=1, sbar=1.0, s=-1.0)
    with pytest.raises(ValueError, match="sbar must be"):
        mc.Point(T=1, N=2, d=1, k=1, sbar=math.nan, s=1.0)
    with pytest.raises(ValueError, match="games"):
        mc.simulate_scores(np.random.default_rng(0), mc.FAST_POINTS[0], 1)
    with pytest.raises(ValueError, match="verdict"):
        Check("x", "", "", "", "", verdict="maybe", passed=True)


def test_simulator_is_seeded_and_float64():
    p = mc.FAST_POINTS[1]
    a = mc.simulate_scores(np.random.default_rng(5), p, 10)
    b = mc.simulate_scores(np.random.default_rng(5), p, 10)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert a["strong"].shape == (10,) and a["alpha"].shape == (10, p.d)
    assert a["strong"].dtype == np.float64


# --- errata and algorithms -------------------------------------------------------------------


def test_errata_are_confirmed():
    rows = proofs_check.errata_checks()
    assert [r.id for r in rows] == [e.id for e in proofs_check.ERRATA]
    assert all(r.passed for r in rows), [r.id for r in rows if not r.passed]


def test_algorithm_statistics():
    e = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    assert variance_attack(e, divide_by_dim=False) == pytest.approx(np.var(e, axis=0, ddof=1).sum())
    assert variance_attack(e, divide_by_dim=True) == pytest.approx(np.var(e, axis=0, ddof=1).mean())
    # pairs (0,1): 0, (0,2): 1, (1,2): 2 -> mean 1; printed <e_i, e_i> uses norms of i in (0, 0, 1)
    assert pairwise_attack(e, as_printed=False) == pytest.approx(1.0)
    assert pairwise_attack(e, as_printed=False, ordered=True) == pytest.approx(1.0)
    assert pairwise_attack(e, as_printed=True) == pytest.approx((1 + 1 + 4) / 3)


# --- verify command (fast profile, in-process) -----------------------------------------------


def test_verify_command_writes_report(tmp_path, capsys):
    from mtl_tracing.cli import main

    rc = main(["verify", "--out", str(tmp_path / "v"), "--seed", "0"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "0 failed" in text
    payload = json.loads((tmp_path / "v" / "verify.json").read_text())
    assert payload["passed"] is True and payload["metadata"]["seed"] == 0
    assert {"versions", "created"} <= set(payload["metadata"])
    assert len(payload["checks"]) > 50
    md = (tmp_path / "v" / "verify.md").read_text()
    assert "| id | location |" in md and "E4" in md


def test_verify_command_fails_on_a_failed_check(tmp_path, monkeypatch):
    import proofs_check.report as report
    from mtl_tracing.cli import main

    bad = Check("X", "here", "a false claim", "1", "2", verdict="exact", passed=False)
    monkeypatch.setattr(proofs_check, "run_all", lambda **kw: [bad])
    monkeypatch.setattr(report, "run_all", lambda **kw: [bad])
    assert main(["verify", "--out", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "verify.json").read_text())["passed"] is False
    assert main(["verify", "--out", str(tmp_path), "--seed", "-1"]) == 2


def test_library_check_is_skipped_not_failed_when_module_missing(monkeypatch):
    import importlib

    import proofs_check.library as lib

    def missing(name, *a, **kw):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", missing)
    (row,) = lib.library_checks()
    assert row.verdict == "skipped" and row.passed and "mtl_tracing.gaussian" in row.note
