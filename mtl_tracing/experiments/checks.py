"""Output checks shared by the jobs' ``check(out_dir)`` (see :mod:`.registry`).

A check reads a finished run's files only and returns a list of problems (empty when fine);
it never raises for a bad result, so ``reproduce`` and the job commands can report
every problem of every job. Cheap to import (NumPy only).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["Z", "missing_files", "check_attack_output", "auc_near_exact"]

#: Standard errors allowed between a simulated AUC and the exact one: a false failure has
#: probability ~7e-6 per comparison under a normal estimate.
Z = 4.5


def missing_files(out_dir: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """``["missing DIR/NAME", ...]`` for each of ``names`` that is not a file in ``out_dir``."""
    out = Path(out_dir)
    return [f"missing {out / n}" for n in names if not (out / n).is_file()]


def auc_near_exact(label: str, empirical: float, exact: float, se: float) -> list[str]:
    """``[]`` if ``|empirical - exact| <= Z se`` (finite numbers), else one problem naming both."""
    ok = all(math.isfinite(x) for x in (empirical, exact, se)) and (
        abs(empirical - exact) <= Z * se
    )
    if ok:
        return []
    return [f"{label}: AUC {empirical:.4f} is not within {Z} SE ({se:.2g}) of exact {exact:.4f}"]


def check_attack_output(
    out_dir: str | os.PathLike,
    files: Iterable[str],
    cells: Callable[[Path], list[tuple[str, dict]]],
) -> list[str]:
    """Problems in a finished synthetic-MTL job (empty if none).

    ``files`` are the names the job must have written into ``out_dir``; ``cells`` is a callable
    returning ``[(label, {attack: {adversary: summary}})]`` from the written data. Every summary's
    AUC must be finite and inside its own CI within [0, 1].
    """
    out = Path(out_dir)
    problems = missing_files(out, files)
    if problems:
        return problems
    for label, summaries in cells(out):
        for name, by_adv in summaries.items():
            for adv, s in by_adv.items():
                auc, (lo, hi) = s["auc"], s["auc_ci"]
                if not (math.isfinite(auc) and 0.0 <= lo <= auc <= hi <= 1.0):
                    problems.append(f"{label} {name} {adv}: AUC {auc} outside [{lo}, {hi}]")
    return problems
