"""Result records shared by the symbolic, Monte Carlo and errata checks."""

from __future__ import annotations

import dataclasses

__all__ = ["Check", "VERDICTS"]

VERDICTS = ("exact", "approximate", "bound", "erratum", "skipped")


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the verification report.

    ``passed`` says whether the checker's assertion held (an erratum row passes when the
    discrepancy it documents is confirmed); ``verdict`` classifies the paper's statement.
    """

    id: str
    location: str  # where in the paper
    statement: str  # what the paper says
    paper: str  # the paper's formula
    exact: str  # what holds, as derived here
    verdict: str  # one of VERDICTS
    passed: bool
    method: str = "symbolic"  # "symbolic", "monte carlo", "numeric", "library"
    mc: str = ""  # Monte Carlo estimate +- SE, when there is one
    note: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
