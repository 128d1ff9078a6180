"""Run every check and render the table (text, Markdown) and the JSON payload."""

from __future__ import annotations

import dataclasses

from proofs_check.derivations import proof_step_checks, symbolic_checks
from proofs_check.errata import errata_checks
from proofs_check.library import auc_order_checks, library_checks, simulator_checks
from proofs_check.montecarlo import monte_carlo_checks
from proofs_check.optimal import lrt_checks, lrt_simulation_checks
from proofs_check.records import Check

__all__ = ["run_all", "render_text", "render_markdown", "payload", "all_passed"]

_COLS = ("id", "location", "statement", "paper", "exact", "mc", "verdict", "passed", "note")


def run_all(*, seed: int = 0, heavy: bool = False) -> list[Check]:
    """Symbolic derivations, proof steps, Monte Carlo (fast or heavy), library, the optimal
    test (issue 24) and errata."""
    return (
        symbolic_checks()
        + proof_step_checks()
        + lrt_checks()
        + lrt_simulation_checks(seed=seed, heavy=heavy)
        + monte_carlo_checks(seed=seed, heavy=heavy)
        + library_checks(heavy=heavy)
        + simulator_checks(seed=seed, heavy=heavy)
        + auc_order_checks(heavy=heavy)
        + errata_checks()
    )


def all_passed(checks: list[Check]) -> bool:
    return all(c.passed for c in checks)


def _cell(v: object, width: int | None = None, *, markdown: bool = False) -> str:
    text = ("PASS" if v else "FAIL") if isinstance(v, bool) else str(v)
    text = text.replace("|", "\\|" if markdown else "|").replace("\n", " ")
    return text if width is None or len(text) <= width else text[: width - 1] + "~"


def render_text(checks: list[Check]) -> str:
    """Fixed-width table for the terminal (long cells truncated; see verify.md for full text)."""
    widths = (6, 9, 44, 14, 26, 18, 11, 4)
    head = ("id", "method", "statement", "paper", "exact", "MC est +- se", "verdict", "ok")
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    for c in checks:
        cells = (c.id, c.method, c.statement, c.paper, c.exact, c.mc, c.verdict, c.passed)
        lines.append("  ".join(_cell(v, w).ljust(w) for v, w in zip(cells, widths, strict=True)))
    n_fail = sum(not c.passed for c in checks)
    lines.append(f"{len(checks)} checks, {n_fail} failed")
    return "\n".join(lines)


def render_markdown(checks: list[Check]) -> str:
    out = [
        "# Machine check of Sec. 4 and App. B (verify)",
        "",
        "Verdicts: exact (identity/equality holds), approximate (size of the error in the row), "
        "bound (correct inequality; tightness in the row), erratum (paper disagrees with itself "
        "or the truth; see note), skipped (not checked, reason in note). Monte Carlo rows: "
        "estimate +- SE, accepted at 4.5 SE; 'rejects' lists wrong formulas rejected on the same "
        "data.",
        "",
        "| " + " | ".join(_COLS) + " |",
        "|" + "---|" * len(_COLS),
    ]
    for c in checks:
        out.append("| " + " | ".join(_cell(getattr(c, f), markdown=True) for f in _COLS) + " |")
    n_fail = sum(not c.passed for c in checks)
    out += ["", f"{len(checks)} checks, {n_fail} failed."]
    return "\n".join(out) + "\n"


def payload(checks: list[Check], metadata: dict) -> dict:
    return {
        "metadata": metadata,
        "passed": all_passed(checks),
        "checks": [dataclasses.asdict(c) for c in checks],
    }
