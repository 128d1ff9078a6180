"""Machine-checked companion to Sec. 4 and App. B of the paper (see README.md).

Symbolic derivations with a sympy Gaussian moment engine, Monte Carlo checks from the raw model,
a comparison with ``mtl_tracing.gaussian`` and errata records. Entry point: ``run_all``; CLI:
``mtl-tracing verify``.
"""

from proofs_check.derivations import (
    exact_moments,
    paper_formulas,
    proof_step_checks,
    symbolic_checks,
)
from proofs_check.errata import ERRATA, Erratum, errata_checks
from proofs_check.library import library_checks
from proofs_check.moments import LinearForm, expect, game_forms
from proofs_check.montecarlo import monte_carlo_checks, simulate_scores
from proofs_check.optimal import ISSUE_TABLE, lrt_checks, lrt_simulation_checks
from proofs_check.records import Check
from proofs_check.report import all_passed, payload, render_markdown, render_text, run_all

__all__ = [
    "Check",
    "ERRATA",
    "ISSUE_TABLE",
    "Erratum",
    "LinearForm",
    "all_passed",
    "errata_checks",
    "exact_moments",
    "expect",
    "game_forms",
    "library_checks",
    "lrt_checks",
    "lrt_simulation_checks",
    "monte_carlo_checks",
    "paper_formulas",
    "payload",
    "proof_step_checks",
    "render_markdown",
    "render_text",
    "run_all",
    "simulate_scores",
    "symbolic_checks",
]
