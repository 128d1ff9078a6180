"""The attack registry: every black-box statistic on challenge-set embeddings, declared once.

An attack is a statistic z of one challenge set, ``statistic(embeddings (..., k, m), **options)
-> (...)`` (larger z means "IN"), with optionally its *Gram form*: the evaluation
(:func:`~mtl_tracing.attacks.evaluation.run_attacks`) then builds one per-task matrix M
(tasks, n, n) per attack and scores every challenge set from two sums over its selected rows,
total = s^T M s and diag = sum_i s_i M_ii (s the 0/1 selection mask of the k rows), instead of
gathering the (trials, tasks, k, m) sets. Attacks without a Gram form are scored on the gathered
sets. Both paths give the same scores to float rounding (tested for every registered attack).

From :data:`STATISTICS` come :data:`ATTACKS` (the names, in order), the scores of
``run_attacks`` (an :class:`~mtl_tracing.attacks.evaluation.AttackScores` per attack name), the
evaluation, every job's attack results and the tests. Adding an attack: its statistic (and,
for speed, its Gram form) in a module plus one :class:`Attack` line below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from mtl_tracing._validate import check_choice
from mtl_tracing.attacks import statistics

__all__ = ["GramForm", "Attack", "STATISTICS", "ATTACKS", "get"]


class GramForm(NamedTuple):
    """A statistic from per-task Gram sums (the evaluation's fast path).

    - ``matrix(pool (tasks, n, m), sizes (tasks,), **options) -> (tasks, n, n)``: M per task
      (rows beyond ``sizes[t]`` are padding and never selected);
    - ``score(total, diag, k, m, **options) -> z``: the statistic of a set of k selected rows
      from total = s^T M s and diag = sum_i s_i M_ii (any shape, elementwise).
    """

    matrix: Callable
    score: Callable


@dataclasses.dataclass(frozen=True)
class Attack:
    """A registered attack: ``name``, its ``statistic`` (the definition on (..., k, m)), a
    ``label`` for figures, its optional :class:`GramForm` and the keyword ``options`` the
    statistic (and its Gram form) take (``run_attacks``' ``cosine`` and ``per_dimension``)."""

    name: str
    statistic: Callable
    label: str
    gram: GramForm | None = None
    options: tuple[str, ...] = ()


#: The registry, in order (Algorithm 1, Algorithm 2).
STATISTICS: tuple[Attack, ...] = (
    Attack(
        "variance",
        statistics.variance_statistic,
        "coordinate-wise variance",
        GramForm(statistics.centred_gram, statistics.variance_from_gram),
        ("per_dimension",),
    ),
    Attack(
        "inner_product",
        statistics.inner_product_statistic,
        "inner product",
        GramForm(statistics.abs_gram, statistics.inner_product_from_gram),
        ("cosine",),
    ),
)

#: The registered attacks' names, in order.
ATTACKS: tuple[str, ...] = tuple(a.name for a in STATISTICS)


def get(name: str) -> Attack:
    """The attack called ``name``; ``ValueError`` listing the names otherwise."""
    return STATISTICS[ATTACKS.index(check_choice("attack", name, ATTACKS))]
