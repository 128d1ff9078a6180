"""Errata: where the paper's statements, proofs, algorithms and text disagree (data records).

Each :class:`Erratum` carries a ``check`` that returns ``(confirmed, evidence)``; a record whose
check does not confirm it fails the run (the erratum would then be wrong, not the paper).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import sympy as sp

from proofs_check.derivations import exact_moments, is_zero, paper_formulas
from proofs_check.moments import N, T, d, k, s, sbar
from proofs_check.records import Check

__all__ = ["Erratum", "ERRATA", "errata_checks", "variance_attack", "pairwise_attack"]


@dataclasses.dataclass(frozen=True)
class Erratum:
    """One discrepancy: id, location, statement, holds_instead, check, verdict."""

    id: str
    location: str
    statement: str
    holds_instead: str
    check: Callable[[], tuple[bool, str]]
    verdict: str  # "wrong", "loose", "inconsistent", "typo", "unjustified", "notation"


def variance_attack(emb: np.ndarray, *, divide_by_dim: bool) -> float:
    """Algorithm 1 on embeddings (k, m): tr(Q) (as printed) or tr(Q)/m (Sec. 5.1's text)."""
    tr = float(np.trace(np.cov(emb, rowvar=False)))
    return tr / emb.shape[1] if divide_by_dim else tr


def pairwise_attack(emb: np.ndarray, *, as_printed: bool, ordered: bool = False) -> float:
    """Algorithm 2 (no whitening): mean |<e_i, e_j>| over pairs i != j; ``as_printed`` uses
    line 10's <e_i, e_i>."""
    g = emb @ emb.T
    i, j = np.nonzero(~np.eye(len(emb), dtype=bool)) if ordered else np.triu_indices(len(emb), 1)
    vals = np.abs(g[i, i] if as_printed else g[i, j])
    return float(vals.mean())


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    diff = pos[:, None] - neg[None, :]
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


def _check_alg1() -> tuple[bool, str]:
    rng = np.random.default_rng(1)
    tasks = rng.standard_normal((64, 8, 5)) * rng.uniform(0.5, 2.0, (64, 1, 1))
    raw = np.array([variance_attack(e, divide_by_dim=False) for e in tasks])
    avg = np.array([variance_attack(e, divide_by_dim=True) for e in tasks])
    sums = np.array([np.var(e, axis=0, ddof=1).sum() for e in tasks])
    same_rank = _auc(raw[:32], raw[32:]) == _auc(avg[:32], avg[32:])
    ok = np.allclose(raw, sums) and np.allclose(avg * 5, raw) and same_rank
    return bool(ok), (
        "tr(Q) = sum of coordinate variances (as Sec. 5.1's second sentence says); "
        "tr(Q)/m = their average (as its first sentence and the comment say); the "
        "scale 1/m leaves ROC/AUC unchanged (checked)"
    )


def _check_alg2() -> tuple[bool, str]:
    rng = np.random.default_rng(2)
    e = rng.standard_normal((6, 4))
    printed = pairwise_attack(e, as_printed=True)
    meant = pairwise_attack(e, as_printed=False)
    norms = float(np.mean(np.sum(e**2, axis=1)[np.triu_indices(6, 1)[0]]))
    ordered = pairwise_attack(e, as_printed=False, ordered=True)
    ok = (
        abs(printed - norms) < 1e-12
        and abs(printed - meant) > 1e-3
        and abs(ordered - meant) < 1e-12
    )
    return ok, (
        f"printed <e_i,e_i> gives mean squared norms ({printed:.3f}), not pairwise "
        f"similarity ({meant:.3f}); ordered vs unordered pairs: same mean ({ordered:.3f})"
    )


def _check_var_in_approx() -> tuple[bool, str]:
    m = exact_moments()
    p = paper_formulas()
    errs = {a: sp.factor(m[a]["var"] - p["Var_z_out"]) for a in ("strong", "weak")}
    ok = all(is_zero(errs[a] - d * m[a]["c"] ** 2) for a in errs)
    fig7 = {T: 256, N: 8, k: 4, sbar: 1, s: 1}  # Fig. 7 parameters (sbar = s = 1)
    r7 = float((m["strong"]["c"] ** 2 / (m["strong"]["A"] * m["strong"]["B"])).subs(fig7))
    return ok, (
        f"Var z_IN - d A B = d c^2: strong {errs['strong']}, weak {errs['weak']}; at Fig. 7's "
        f"T=256, N=8, k=4 (sbar = s = 1) rho^2 = {r7:.4f}, so '~' is accurate there"
    )


def _check_bound_tight() -> tuple[bool, str]:
    m = exact_moments()
    r = sp.simplify((m["strong"]["var"] / m["out"]["var"]).subs({T: 1, N: k}))
    return (
        r == 2,
        f"Var_IN/Var_OUT = 1 + rho^2 <= 1 + 1/T <= 2 (symbolic, rows S9); = {r} at T=1, k=N",
    )


def _check_n_lt_t() -> tuple[bool, str]:
    m = exact_moments()
    p = paper_formulas()
    pts = [{T: 1, N: 5, k: 2}, {T: 2, N: 8, k: 8}]  # N >= T
    ok = all(
        is_zero((m[a]["mean"] - p[f"E_z_{a}"]).subs(pt))
        for a in ("strong", "weak", "out")
        for pt in pts
    ) and all(is_zero((m["out"]["var"] - p["Var_z_out"]).subs(pt)) for pt in pts)
    return ok, "the derivation uses no relation between N and T; Thms 4.1-4.3 hold with N >= T"


def _check_k_eq_n() -> tuple[bool, str]:
    m = exact_moments()
    p = paper_formulas()
    ok = all(is_zero((m[a]["mean"] - p[f"E_z_{a}"]).subs(k, N)) for a in ("strong", "weak"))
    return ok, "at k = N the block of unused target samples vanishes (sqrt(N-k) = 0); Thm 4.1 holds"


def _check_theta_dn() -> tuple[bool, str]:
    m = exact_moments()
    e = sp.simplify(m["strong"]["mean"].subs({T: 1, k: 1}))
    ok = is_zero(e - d * (sbar**2 + s**2 / N)) and is_zero(e.subs(sbar, 0) - d * s**2 / N)
    return ok, f"E z_IN(T=1,k=1) = {e}: Theta(d) for fixed sbar > 0, Theta(d/N) iff sbar = 0"


def _check_theta_dnt() -> tuple[bool, str]:
    m = exact_moments()
    gap = sp.simplify((m["strong"]["mean"] - m["weak"]["mean"]).subs(k, 1))
    return is_zero(gap - d * s**2 / (N * T)), f"member minus fresh same-task sample: {gap}"


def _check_out_factorisation() -> tuple[bool, str]:
    m = exact_moments()
    ok = m["out"]["c"] == 0 and not is_zero(m["strong"]["c"])
    return ok, "Cov(alpha, beta_OUT) = 0 (no shared block) makes it valid; for IN it fails (c != 0)"


def _check_out_product() -> tuple[bool, str]:
    m = exact_moments()
    A, B = m["out"]["A"], m["out"]["B"]
    ok = is_zero(m["out"]["E_a2b2"] - A * B) and not is_zero(m["strong"]["E_a2b2"] - A * B)
    return ok, "E[a^2 b^2] = A B for OUT (independent); for IN it is A B + 2 c^2"


ERRATA = (
    Erratum(
        "E1",
        "Sec. 4 Thm 4.3 (informal)",
        "Var z_IN ~ Var z_OUT = d/T[...]",
        "Var z_IN = d(AB + c^2) = Var z_OUT (1 + rho^2), rho^2 <= 1/T; error d c^2",
        _check_var_in_approx,
        "loose",
    ),
    Erratum(
        "E2",
        "App. B Thm B.3 / 4.3",
        "Var z_IN <= 3 Var z_OUT",
        "Var z_IN <= (1 + 1/T) Var z_OUT <= 2 Var z_OUT; 2 attained (strong, T = 1, k = N)",
        _check_bound_tight,
        "loose",
    ),
    Erratum(
        "E3",
        "Sec. 5.1 vs Alg. 1 line 6",
        "'trace divided by the dimension' / 'avg. "
        "coordinate-wise variance' vs return tr(Q) and 'sum of coordinate-wise variances'",
        "Alg. 1 returns the sum; the text says the average; equivalent for ROC (positive scale)",
        _check_alg1,
        "inconsistent",
    ),
    Erratum(
        "E4",
        "Alg. 2 line 10",
        "z <- |<e_i, e_i>|",
        "z <- |<e_i, e_j>| (pairwise, i != j); ordered or unordered pairs give the same mean",
        _check_alg2,
        "typo",
    ),
    Erratum(
        "E5",
        "Sec. 4 model vs App. B / B.1",
        "N < T (Sec. 4); 'N relatively small' (App. B); N << T (B.1)",
        "no condition on N vs T is needed by Thms 4.1-4.3",
        _check_n_lt_t,
        "inconsistent",
    ),
    Erratum(
        "E6",
        "Sec. 4 game step 1 vs App. B.1",
        "k < N (Sec. 4) vs k <= N (App. B, proofs)",
        "k <= N; k = N is covered (and is where the variance ratio is largest)",
        _check_k_eq_n,
        "inconsistent",
    ),
    Erratum(
        "E7",
        "Sec. 4 / B.1 after Thm 4.1",
        "T = 1, k = 1: expectation Theta(d/N)",
        "E z_IN = d(sbar^2 + s^2/N): Theta(d/N) only if sbar = 0 (or for the member-vs-fresh-"
        "sample gap d s^2/N)",
        _check_theta_dn,
        "wrong",
    ),
    Erratum(
        "E8",
        "Sec. 4 / B.1 after Thm 4.1",
        "tracing a single example: Theta(d/(NT))",
        "true for the gap member vs fresh same-task sample (d s^2/(NT)); the raw E z is "
        "d(sbar^2 + s^2/N)/T = Theta(d/T) for sbar > 0",
        _check_theta_dnt,
        "unjustified",
    ),
    Erratum(
        "E9",
        "B.2 Thm 4.1 proof, OUT",
        "E z_OUT = <E[mu_hat - mu_bar], E[mu_B - mu_bar]>",
        "valid because the OUT batch is independent of mu_hat (not stated)",
        _check_out_factorisation,
        "unjustified",
    ),
    Erratum(
        "E10",
        "B.2 Thm 4.3 proof, OUT",
        "E[a^2 b^2] = E[a^2] E[beta 2]",
        "valid for OUT by independence; 'beta 2' is a typo for beta^2",
        _check_out_product,
        "typo",
    ),
    Erratum(
        "E11",
        "A.7.1",
        "Sigma_reg = Q + lambda tr(Q)/d I_d",
        "d is defined there as the embedding dimension, not the data dimension d of Sec. 4: "
        "a symbol clash, not an error",
        lambda: (True, "text check: 'd is the embedding dimension'"),
        "notation",
    ),
)


def errata_checks() -> list[Check]:
    rows = []
    for e in ERRATA:
        ok, evidence = e.check()
        rows.append(
            Check(
                id=e.id,
                location=e.location,
                statement=e.statement,
                paper=e.statement,
                exact=e.holds_instead,
                verdict="erratum",
                passed=bool(ok),
                method="symbolic+numeric",
                note=f"[{e.verdict}] {evidence}",
            )
        )
    return rows
