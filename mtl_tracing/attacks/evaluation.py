"""The attack sweep over tasks and trials, and its evaluation (ROC metrics, bootstrap CIs).

Any set of the registered attacks (:mod:`mtl_tracing.attacks.registry`, default all) is scored
on the same challenge sets in one compiled call; each attack's results are keyed by its name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from mtl_tracing._validate import check_finite_float, check_int
from mtl_tracing.attacks.challenge import check_pool, selection_masks
from mtl_tracing.attacks.registry import ATTACKS, Attack, get
from mtl_tracing.attacks.whitening import DEFAULT_RIDGE, whiten_for_gram

__all__ = [
    "GroupedScores",
    "AttackScores",
    "attack_kernel",
    "run_attacks",
    "evaluate",
    "embed_tasks",
]


class GroupedScores(NamedTuple):
    """Scores grouped by task (the metrics' grouped bootstrap resamples tasks, ``paired=False``)."""

    scores_in: Array  # (T_in, trials)
    scores_out: Array  # (T_out, trials)


@jax.tree_util.register_pytree_node_class
class AttackScores(Mapping):
    """Scores of several attacks on the same challenge sets: ``{attack name: GroupedScores}``,
    in the order they were run (registry order by default). A pytree; ``scores.variance`` is
    ``scores["variance"]``."""

    __slots__ = ("_scores",)

    def __init__(self, scores: Mapping[str, GroupedScores]):
        object.__setattr__(self, "_scores", dict(scores))

    def __getitem__(self, name: str) -> GroupedScores:
        return self._scores[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._scores)

    def __len__(self) -> int:
        return len(self._scores)

    def __getattr__(self, name: str) -> GroupedScores:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._scores[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"AttackScores({self._scores!r})"

    def tree_flatten(self):
        return tuple(self._scores.values()), tuple(self._scores)

    @classmethod
    def tree_unflatten(cls, names, children):
        return cls(dict(zip(names, children, strict=True)))


def _options(attack: Attack, options: dict) -> dict:
    return {name: options[name] for name in attack.options}


def _gathered(pool: Array, select: Array, k: int) -> Array:
    """The selected rows: pool (tasks, n, m), select (trials, tasks, n) with k ones per set ->
    (trials, tasks, k, m), rows in pool order."""
    idx = jnp.argsort(~select, axis=-1, stable=True)[..., :k]
    return jax.vmap(lambda i: jnp.take_along_axis(pool, i[..., None], axis=1))(idx)


def _set_scores(pool, sizes, select, *, k: int, attacks: tuple[Attack, ...], options, gram: bool):
    """Every attack's statistic for every challenge set: ``{name: (trials, tasks)}``.

    pool (tasks, n, m), sizes (tasks,), select (trials, tasks, n) 0/1 masks of the k chosen
    rows. Attacks with a Gram form (when ``gram``) share one pass: their per-task matrices are
    stacked (tasks, n, n, c) and each set costs two quadratic forms s^T M s, not k m
    coordinates. The others are computed on the gathered (trials, tasks, k, m) sets.
    """
    hi = jax.lax.Precision.HIGHEST  # attack scores: full float32 products on every backend
    fast = [a for a in attacks if gram and a.gram is not None]
    out = {}
    if fast:
        grams = jnp.stack([a.gram.matrix(pool, sizes, **_options(a, options)) for a in fast], -1)
        s = select.astype(pool.dtype)
        sg = jnp.einsum("rti,tijc->rtjc", s, grams, precision=hi)
        total = jnp.einsum("rtjc,rtj->rtc", sg, s, precision=hi)  # (trials, tasks, c)
        diag = jnp.einsum("rti,tiic->rtc", s, grams, precision=hi)
        m = pool.shape[-1]
        for c, a in enumerate(fast):
            out[a.name] = a.gram.score(total[..., c], diag[..., c], k, m, **_options(a, options))
    slow = [a for a in attacks if a.name not in out]
    if slow:
        sets = _gathered(pool, select, k)
        for a in slow:
            out[a.name] = a.statistic(sets, **_options(a, options))
    return {a.name: out[a.name] for a in attacks}


@functools.partial(
    jax.jit,
    static_argnames=(
        "tasks_in", "k", "trials", "whiten", "cosine", "per_dimension", "attacks", "gram"
    ),
)  # fmt: skip
def attack_kernel(
    key, pool, sizes, ridge, *, tasks_in, k, trials, whiten, cosine, per_dimension,
    attacks: tuple[str, ...] = ATTACKS, gram: bool = True,
):  # fmt: skip
    """Unchecked, traceable kernel of :func:`run_attacks` (jitted; static: tasks_in, k, trials,
    whiten, cosine, per_dimension, attacks, gram): the scores of the registered ``attacks``
    (names) for every trial, as an :class:`AttackScores`. Inputs as :func:`run_attacks` after
    its checks; vmappable over keys and pools (the pipeline vmaps it over the R runs).
    ``gram=False`` scores every attack on the gathered sets (the definitions; for tests)."""
    if whiten:
        mask = jnp.arange(pool.shape[1]) < sizes[:, None]
        pool = whiten_for_gram(pool, mask, ridge)
    select = selection_masks(key, sizes, pool.shape[1], k, trials)
    options = {"cosine": cosine, "per_dimension": per_dimension}
    entries = tuple(get(name) for name in attacks)
    scores = _set_scores(pool, sizes, select, k=k, attacks=entries, options=options, gram=gram)
    out = {}
    for name, z in scores.items():
        z = z.T  # (tasks, trials)
        out[name] = GroupedScores(z[:tasks_in], z[tasks_in:])
    return AttackScores(out)


def _pad_to(pool: Array, n: int) -> Array:
    return jnp.pad(pool, ((0, 0), (0, n - pool.shape[1]), (0, 0)))


def run_attacks(
    key: Array,
    pool_in: Array,
    pool_out: Array,
    *,
    k: int,
    trials: int,
    whiten: bool,
    cosine: bool = False,
    per_dimension: bool = False,
    ridge: float = DEFAULT_RIDGE,
    sizes_in: Array | None = None,
    sizes_out: Array | None = None,
    attacks: Sequence[str] | None = None,
) -> AttackScores:
    """Run the attacks for ``trials`` challenge draws on every task (one compiled call).

    Args:
      key: typed PRNG key (challenge sampling).
      pool_in: (T_in, n_in, m) the adversary's pool for IN tasks (strong: training samples;
        weak: held-out samples), padded per task.
      pool_out: (T_out, n_out, m) fresh samples of OUT tasks, padded per task.
      k: challenge size (strong 8 / weak 4 in App. A.5.1); 2 <= k <= every pool size.
      trials: challenge draws per task (paper: 128).
      whiten: apply leave-one-task-out whitening (A.7.1), computed once per task over the
        pooled IN + OUT pools given here.
      cosine: Algorithm 2 on cosine-normalised embeddings.
      per_dimension: Algorithm 1 divided by m.
      ridge: lambda of the whitening.
      sizes_in, sizes_out: (T_in,), (T_out,) real rows per task (ragged pools).
      attacks: names of registered attacks (default all, :data:`registry.ATTACKS`).

    Returns:
      ``AttackScores``: per attack name, ``scores_in (T_in, trials)`` and ``scores_out (T_out,
      trials)``. Larger scores mean "IN" (the paper's thresholding z > gamma).
    """
    names = ATTACKS if attacks is None else tuple(get(str(a)).name for a in attacks)
    if not names:
        raise ValueError("attacks must name at least one registered attack, got []")
    k = check_int("challenge k", k, low=2)
    trials = check_int("trials", trials, low=1)
    ridge = check_finite_float("ridge", ridge)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    pool_in, s_in = check_pool(pool_in, sizes_in, k)
    pool_out, s_out = check_pool(pool_out, sizes_out, k)
    if pool_in.shape[-1] != pool_out.shape[-1]:
        raise ValueError(
            f"pool_in and pool_out must have the same embedding dimension m, got "
            f"{pool_in.shape[-1]} and {pool_out.shape[-1]}"
        )
    dtype = jnp.result_type(pool_in.dtype, pool_out.dtype)
    n = max(pool_in.shape[1], pool_out.shape[1])
    pool = jnp.concatenate([_pad_to(pool_in, n), _pad_to(pool_out, n)]).astype(dtype)
    sizes = jnp.concatenate([s_in, s_out])
    if whiten and int(jnp.sum(sizes) - jnp.max(sizes)) < 2:
        raise ValueError("whitening needs >= 2 pooled rows outside every task")
    return attack_kernel(
        key,
        pool,
        sizes,
        jnp.asarray(ridge, dtype=dtype),
        tasks_in=pool_in.shape[0],
        k=k,
        trials=trials,
        whiten=bool(whiten),
        cosine=bool(cosine),
        per_dimension=bool(per_dimension),
        attacks=names,
    )


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def evaluate(
    key: Array,
    scores: AttackScores,
    *,
    fprs: Sequence[float] = (0.01, 0.001),
    percentiles: Sequence[float] = (50.0, 75.0, 90.0),
    num_resamples: int = 200,
    level: float = 0.95,
    tpr_ci: bool = False,
) -> dict:
    """ROC summary of every attack in ``scores``, CIs by resampling *tasks* (not pooled trials).

    Args:
      key: typed PRNG key for the bootstrap (``fold_in(key, i)`` for the i-th attack of
        ``scores``).
      scores: from ``run_attacks`` (any mapping ``{name: (scores_in, scores_out)}``).
      fprs: target FPRs for the TPR (paper: 1% and 0.1%).
      percentiles: thresholds at these percentiles of the pooled scores (App. A.7 tables).
      num_resamples, level: bootstrap (``metrics.grouped_bootstrap(..., paired=False)``).
      tpr_ci: also bootstrap the TPR at each target FPR, on the AUC's replicates (at a target
        FPR below 1 / (OUT scores) the TPR and its CI are degenerate).

    Returns:
      ``{attack: {"auc", "auc_ci", "tpr_at_fpr": [{"target_fpr", ...TprAtFpr fields[, "ci"]}],
      "percentile_table"}}`` (CIs are ``metrics.Interval``) with JAX arrays
      and the metrics' NamedTuples (``results.to_jsonable`` turns it into JSON).
    """
    from mtl_tracing import metrics

    num_resamples = check_int("num_resamples", num_resamples, low=1)
    targets = tuple(float(f) for f in fprs)
    # One bootstrap per attack for the AUC and (if asked) every TPR: one sort, shared replicates.
    stats = (metrics.auc,)
    if tpr_ci:
        stats += tuple(metrics.TprAtFprStatistic(f) for f in targets)
    out = {}
    for i, name in enumerate(scores):  # a few attacks, not trials or tasks
        s_in, s_out = scores[name]
        k_attack = jax.random.fold_in(key, i)
        auc_ci, *tpr_cis = metrics.grouped_bootstrap(
            jax.random.fold_in(k_attack, 0),
            stats,
            s_in,
            s_out,
            num_resamples=num_resamples,
            level=level,
            paired=False,
        )
        points = metrics.tpr_at_fpr(s_in, s_out, targets)
        tprs = []
        for j, f in enumerate(targets):  # a few target FPRs
            entry = _with_target(jax.tree.map(lambda x, j=j: x[j], points), f)
            if tpr_ci:
                entry["ci"] = tpr_cis[j]
            tprs.append(entry)
        out[name] = {
            "auc": auc_ci.estimate,
            "auc_ci": auc_ci,
            "tpr_at_fpr": tprs,
            "percentile_table": metrics.percentile_table(
                s_in, s_out, percentiles=tuple(float(p) for p in percentiles)
            ),
        }
    return out


def _with_target(result, target: float) -> dict:
    fields = result._asdict() if hasattr(result, "_asdict") else {"result": result}
    return {"target_fpr": float(target), **fields}


# --------------------------------------------------------------------------------------------
# encoder adapter
# --------------------------------------------------------------------------------------------


def embed_tasks(embed_fn: Callable[[Array], Array], x_by_task: Array) -> Array:
    """Query the shared representation on per-task data (the only access the attack needs).

    Args:
      embed_fn: batched black box x (b, d) -> h_theta(x) (b, m), e.g. ``model.embed`` of
        ``mtl_tracing.victims.model`` or ``lambda x: model.embed(x)``.
      x_by_task: (tasks, n, d) samples grouped by task (padding rows are embedded too and
        ignored later through ``pool_sizes``).

    Returns:
      (tasks, n, m) embeddings, the pool layout used by ``run_attacks``.
    """
    x = jnp.asarray(x_by_task)
    if x.ndim < 3:
        raise ValueError(f"x_by_task must have shape (tasks, n, ...), got {x.shape}")
    flat = embed_fn(x.reshape((-1, *x.shape[2:])))
    return flat.reshape(x.shape[0], x.shape[1], -1)
