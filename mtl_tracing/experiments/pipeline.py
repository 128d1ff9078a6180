"""Shared pipeline of the synthetic-MTL experiments (Sec. 6.5, App. A.7, A.8).

data (App. A.8) -> train R runs in one vmapped program (Algorithm 3) -> black-box embeddings ->
both attacks (Algorithms 1, 2) for both adversaries -> ROC metrics, in one call:
:func:`run_pipeline`.

Adversaries (every one sees only embeddings h_theta(x)):

- **strong**: the challenge set of an IN task is k of its N *training* samples; OUT tasks use k
  of their N pool samples (fresh: OUT tasks are never trained on);
- **weak**: the challenge set of an IN task is k of its ``holdout`` *fresh* samples; OUT tasks
  use k of their ``holdout`` samples.

So for each adversary IN and OUT pools have the same size, and the (optional) leave-one-task-out
whitening of A.7.1 is computed on that adversary's pool of all 2T tasks.

Notation (field -> paper symbol): ``data.tasks`` T, ``data.samples`` N, ``data.dim`` d,
``data.embed_dim`` m (App. A.8's k), ``attack.strong_k`` / ``attack.weak_k`` k (challenge size),
``attack.trials`` challenge draws per task, ``runs`` R training runs (same data, seeds
``fold_in(key, r)``).

The R runs share one data set (``train.train`` vmaps the seeds, not the data). Scores of the same
task in different runs are correlated, so pooled CIs resample *tasks* (a task's scores in every
run and trial form one group); per-run CIs resample the tasks of that run.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from scipy import stats

from mtl_tracing import attacks, results
from mtl_tracing._validate import check_finite_float, check_int, check_key
from mtl_tracing.data import synthetic
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.data.synthetic import SyntheticConfig
from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES
from mtl_tracing.victims import model
from mtl_tracing.victims import mtl as train
from mtl_tracing.victims.mtl import TrainConfig, TrainResult

__all__ = [
    "ADVERSARIES",
    "ATTACKS",
    "AttackConfig",
    "PipelineConfig",
    "PipelineResult",
    "run_pipeline",
    "attack_runs",
    "summarize",
    "pipeline_config_from_dict",
    "over_runs_interval",
    "DEFAULT_CONFIG",
    "QUICK_CONFIG",
    "load",
]


ATTACKS = attacks.ATTACKS  # ("variance", "inner_product")


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """Attack and evaluation settings (hashable).

    ``strong_k`` / ``weak_k``: challenge size k of each adversary (App. A.8: 8 samples per task);
    ``trials``: challenge draws per task (App. A.8: 64); ``whiten``: LOTO whitening (A.7.1) with
    relative ridge ``ridge``; ``cosine``: Algorithm 2 on unit-normalised embeddings;
    ``num_resamples`` / ``level``: task bootstrap of the CIs; ``fprs``: targets of the TPR at low
    FPR; ``percentiles``: thresholds of the App. A.7 tables.
    """

    strong_k: int = 8
    weak_k: int = 8
    trials: int = 64
    whiten: bool = True
    cosine: bool = False
    ridge: float = attacks.DEFAULT_RIDGE
    num_resamples: int = 200
    level: float = 0.95
    fprs: tuple[float, ...] = (0.01, 0.001)
    percentiles: tuple[float, ...] = (50.0, 75.0, 90.0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "strong_k", check_int("strong_k", self.strong_k, low=2))
        set_(self, "weak_k", check_int("weak_k", self.weak_k, low=2))
        set_(self, "trials", check_int("trials", self.trials, low=1))
        set_(self, "num_resamples", check_int("num_resamples", self.num_resamples, low=2))
        for name in ("whiten", "cosine"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        ridge = check_finite_float("ridge", self.ridge)
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge!r}")
        set_(self, "ridge", ridge)
        level = check_finite_float("level", self.level)
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        set_(self, "level", level)
        fprs = tuple(check_finite_float("fprs", f) for f in self.fprs)
        if not fprs or any(not 0.0 < f < 1.0 for f in fprs):
            raise ValueError(f"fprs must be a non-empty tuple of values in (0, 1), got {fprs!r}")
        set_(self, "fprs", fprs)
        pct = tuple(check_finite_float("percentiles", p) for p in self.percentiles)
        if not pct or any(not 0.0 <= p <= 100.0 for p in pct):
            raise ValueError(f"percentiles must be values in [0, 100], got {pct!r}")
        set_(self, "percentiles", pct)

    def replace(self, **changes) -> AttackConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """One synthetic-MTL experiment: data (App. A.8), training (A.3), attacks, R runs."""

    data: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    attack: AttackConfig = dataclasses.field(default_factory=AttackConfig)
    runs: int = 4

    def __post_init__(self) -> None:
        for name, cls in (
            ("data", SyntheticConfig),
            ("train", TrainConfig),
            ("attack", AttackConfig),
        ):
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"{name} must be a {cls.__name__}, got {getattr(self, name)!r}")
        object.__setattr__(self, "runs", check_int("runs", self.runs, low=1))
        d, a = self.data, self.attack
        if a.strong_k > d.samples:
            raise ValueError(f"attack.strong_k must be <= samples N={d.samples}, got {a.strong_k}")
        if a.weak_k > d.holdout:
            raise ValueError(f"attack.weak_k must be <= holdout={d.holdout}, got {a.weak_k}")
        if self.train.task_batch > d.tasks:
            raise ValueError(
                f"train.task_batch must be <= tasks T={d.tasks}, got {self.train.task_batch}"
            )

    def replace(self, **changes) -> PipelineConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {
            "data": self.data.to_dict(),
            "train": self.train.to_dict(),
            "attack": self.attack.to_dict(),
            "runs": self.runs,
        }


def pipeline_config_from_dict(payload: dict) -> PipelineConfig:
    """Inverse of ``PipelineConfig.to_dict`` (e.g. from a results file's metadata)."""
    att = dict(payload["attack"])
    for name in ("fprs", "percentiles"):
        att[name] = tuple(att[name])
    return PipelineConfig(
        data=SyntheticConfig(**payload["data"]),
        train=TrainConfig(**payload["train"]),
        attack=AttackConfig(**att),
        runs=payload["runs"],
    )


class PipelineResult(NamedTuple):
    """Everything one pipeline call produced (arrays stay on device; ``summary`` is JSON-ready)."""

    data: MultitaskData
    trained: TrainResult
    scores: dict  # adversary -> attacks.AttackScores, scores_in (R, T, trials), scores_out likewise
    summary: dict  # see ``summarize``


#: Default synthetic experiment: App. A.8 data at laptop scale (T=64, d=64, m=16, N=16) with 16
#: held-out samples per task (so the weak adversary's k=8 is a random half, not the whole
#: held-out set: with holdout = k every trial would draw the same set), App. A.3 training for
#: 300 epochs, k=8 for both adversaries (App. A.8), 64 trials, whitened embeddings (A.7.1), R=4.
DEFAULT_CONFIG = PipelineConfig(data=SyntheticConfig(holdout=16))

#: Tiny configuration shared by every job's ``--quick`` mode and the tests (one shape, so the
#: training program compiles once for all jobs).
QUICK_CONFIG = PipelineConfig(
    data=SyntheticConfig(tasks=16, dim=16, embed_dim=8, samples=8, holdout=8),
    train=TrainConfig(epochs=20, task_batch=8, hidden=64, warm_start_epochs=2),
    attack=AttackConfig(strong_k=4, weak_k=4, trials=16, num_resamples=50),
    runs=2,
)


def load(out_dir, json_name: str, npz_name: str | None = None):
    """``(json payload, npz arrays or None)`` of a finished job; raises ``FileNotFoundError``."""
    from pathlib import Path

    out = Path(out_dir)
    names = [json_name] + ([npz_name] if npz_name else [])
    for name in names:
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out / name} not found: run the job into {out} first")
    arrays = None
    if npz_name:
        with np.load(out / npz_name) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return results.read_json(out / json_name), arrays


# ------------------------------------------------------------------------------------- attacks


@functools.partial(jax.jit, static_argnames=("tasks_in", "k", "trials", "whiten", "cosine"))
def _attack_runs(key, pool, ridge, *, tasks_in, k, trials, whiten, cosine):
    runs, tasks, n = pool.shape[:3]
    sizes = jnp.full((tasks,), n, dtype=jnp.int32)
    # attacks.run_attacks validates on the host (not vmappable); its kernel is pure.
    kernel = functools.partial(
        attacks.attack_kernel,
        tasks_in=tasks_in,
        k=k,
        trials=trials,
        whiten=whiten,
        cosine=cosine,
        per_dimension=False,
    )
    keys = jax.random.split(key, runs)
    return jax.vmap(lambda kk, p: kernel(kk, p, sizes, ridge))(keys, pool)


def attack_runs(
    key: Array,
    pool: Array,
    *,
    tasks_in: int,
    k: int,
    trials: int,
    whiten: bool,
    cosine: bool = False,
    ridge: float = attacks.DEFAULT_RIDGE,
) -> attacks.AttackScores:
    """Both attacks on R runs' embeddings at once (vmapped over runs, one compiled call).

    Args:
      key: typed key; run r draws its challenge sets from ``split(key, R)[r]``.
      pool: (R, tasks, n, m) one adversary's pool per run, IN tasks first (``tasks_in`` of them).
      tasks_in: number of IN tasks (rows ``tasks_in:`` are OUT).
      k: challenge size, 2 <= k <= n. trials: draws per task.
      whiten, cosine, ridge: as in ``attacks.run_attacks``.

    Returns:
      ``AttackScores`` with ``scores_in (R, tasks_in, trials)``, ``scores_out (R, tasks -
      tasks_in, trials)``.
    """
    check_key("key", key)
    pool = jnp.asarray(pool)
    if pool.ndim != 4:
        raise ValueError(f"pool must have shape (R, tasks, n, m), got {pool.shape}")
    tasks, n = pool.shape[1:3]
    tasks_in = check_int("tasks_in", tasks_in, low=1, high=tasks - 1)
    k = check_int("challenge k", k, low=2, high=n)
    trials = check_int("trials", trials, low=1)
    ridge = check_finite_float("ridge", ridge)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    if not bool(jnp.all(jnp.isfinite(pool))):
        raise ValueError("pool must be finite, got non-finite embeddings")
    return _attack_runs(
        key,
        pool,
        jnp.asarray(ridge, pool.dtype),
        tasks_in=tasks_in,
        k=k,
        trials=trials,
        whiten=bool(whiten),
        cosine=bool(cosine),
    )


# ------------------------------------------------------------------------------------- metrics


def over_runs_interval(values: Sequence[float], level: float = 0.95) -> list[float]:
    """Student-t interval for the mean of per-run values ([v, v] for a single run)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return [float(v.mean()), float(v.mean())]
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return [float(v.mean() - half), float(v.mean() + half)]


def _per_run(key, s_in, s_out, cfg: AttackConfig) -> dict:
    """AUC with task-bootstrap CI and TPR at the target FPRs for every run (vmapped)."""
    from mtl_tracing import metrics

    aucs = jax.vmap(metrics.auc)(s_in, s_out)

    def boot(kk, a, b):
        iv = metrics.grouped_bootstrap(
            kk,
            metrics.auc,
            a,
            b,
            num_resamples=cfg.num_resamples,
            level=cfg.level,
            paired=False,
        )
        return jnp.stack([iv.low, iv.high])

    cis = jax.vmap(boot)(jax.random.split(key, s_in.shape[0]), s_in, s_out)
    tprs = [
        jax.vmap(lambda a, b, f=f: metrics.tpr_at_fpr(a, b, f).tpr)(s_in, s_out) for f in cfg.fprs
    ]
    return {"auc": aucs, "auc_ci": cis, "tpr": tprs}


def _pooled(s: Array) -> Array:
    """(R, T, trials) -> (T, R * trials): one bootstrap group per task, all runs and trials."""
    return jnp.moveaxis(s, 0, 1).reshape(s.shape[1], -1)


def summarize(key: Array, scores: dict, cfg: AttackConfig) -> dict:
    """JSON-ready ROC summary of ``{adversary: AttackScores}`` with (R, T, trials) scores.

    Returns ``{attack: {adversary: {...}}}`` with, per cell: ``auc`` (pooled over runs),
    ``auc_ci`` (pooled, tasks resampled), ``auc_per_run`` (R,), ``auc_ci_per_run`` (R, 2),
    ``auc_mean`` / ``auc_ci_over_runs`` (mean of the R per-run AUCs and its t interval),
    ``tpr_at_fpr`` (pooled; target, tpr, realised fpr, threshold; plus ``tpr_per_run``) and
    ``percentile_table`` (pooled: percentile, threshold, tpr, fpr, balanced_accuracy).
    """
    out: dict = {name: {} for name in ATTACKS}
    for i, adv in enumerate(ADVERSARIES):
        sc = scores[adv]
        pooled = attacks.AttackScores(
            *(attacks.GroupedScores(_pooled(g.scores_in), _pooled(g.scores_out)) for g in sc)
        )
        k_pool, k_run = jax.random.split(jax.random.fold_in(key, i))
        ev = attacks.evaluate(
            k_pool,
            pooled,
            fprs=cfg.fprs,
            percentiles=cfg.percentiles,
            num_resamples=cfg.num_resamples,
            level=cfg.level,
        )
        for j, name in enumerate(ATTACKS):
            g = getattr(sc, name)
            per = _per_run(jax.random.fold_in(k_run, j), g.scores_in, g.scores_out, cfg)
            e = ev[name]
            auc_runs = np.asarray(per["auc"], dtype=np.float64)
            tpr_rows = []
            for t, tpr_run in zip(e["tpr_at_fpr"], per["tpr"], strict=True):
                row = results.to_jsonable(t)
                row["tpr_per_run"] = results.to_jsonable(tpr_run)
                tpr_rows.append(row)
            out[name][adv] = {
                "auc": float(e["auc"]),
                "auc_ci": [float(e["auc_ci"].low), float(e["auc_ci"].high)],
                "auc_per_run": auc_runs.tolist(),
                "auc_ci_per_run": np.asarray(per["auc_ci"], dtype=np.float64).tolist(),
                "auc_mean": float(auc_runs.mean()),
                "auc_ci_over_runs": over_runs_interval(auc_runs, cfg.level),
                "tpr_at_fpr": tpr_rows,
                "percentile_table": results.to_jsonable(e["percentile_table"]),
            }
    return out


# ------------------------------------------------------------------------------------- pipeline


def run_pipeline(
    key: Array,
    config: PipelineConfig,
    *,
    dtype=None,
    progress: bool = False,
    trainer=None,
) -> PipelineResult:
    """Data -> R trained runs -> embeddings -> both attacks x both adversaries -> metrics.

    Args:
      key: typed key, split into data, training, attack and bootstrap keys.
      config: ``PipelineConfig`` (data T, d, m, N; training; attack k, trials, whitening; R).
      dtype: float32 (default) or float64 (needs x64): data, training and scores.
      progress: tqdm bar over training epochs.
      trainer: ``None`` (Algorithm 3 with ``config.train``, as before) or any
        :class:`~mtl_tracing.victims.trainer.Trainer` (e.g. GMRF, robust), run by ``fit`` on
        the IN tasks with the same keys; ``trained`` is then the ``Fit`` and the summary
        also holds ``history``: every ``evaluate`` scalar after the last epoch, per run.

    Returns:
      ``PipelineResult``; ``summary`` holds ``attacks`` (see :func:`summarize`), ``k`` per
      adversary, per-run and mean ``heldout_accuracy`` / ``train_accuracy`` of the IN tasks'
      heads after the last epoch, and ``dtype``.
    """
    check_key("key", key)
    if not isinstance(config, PipelineConfig):
        raise ValueError(f"config must be a PipelineConfig, got {type(config).__name__}")
    k_data, k_train, k_attack, k_eval = jax.random.split(key, 4)
    data = synthetic.generate(k_data, config.data, dtype=dtype)
    if trainer is None:
        trained = train.train(k_train, data, config.train, runs=config.runs, progress=progress)
        hist = trained.history._asdict()

        def embed(x):
            return model.embed_runs(trained.graphdef, trained.params, x)
    else:
        from mtl_tracing.victims.trainer import fit

        in_part = MultitaskData(data.x, data.y, None, None, data.x_heldout, data.y_heldout)
        trained = fit(trainer, k_train, in_part, runs=config.runs, progress=progress)
        hist = trained.history
        embed_all = jax.jit(jax.vmap(trainer.embed, in_axes=(0, None)))

        def embed(x):
            return embed_all(trained.state, x)

    T, a = config.data.tasks, config.attack
    pools = {
        # IN tasks' training samples, then OUT tasks' samples: (R, 2T, N, m)
        "strong": embed(data.stacked()[0]),
        # IN and OUT tasks' fresh samples: (R, 2T, H, m)
        "weak": embed(data.stacked(True)[0]),
    }
    ks = {"strong": a.strong_k, "weak": a.weak_k}
    scores = {
        adv: attack_runs(
            jax.random.fold_in(k_attack, i),
            pools[adv],
            tasks_in=T,
            k=ks[adv],
            trials=a.trials,
            whiten=a.whiten,
            cosine=a.cosine,
            ridge=a.ridge,
        )
        for i, adv in enumerate(ADVERSARIES)
    }
    for adv, sc in scores.items():
        for name in ATTACKS:
            g = getattr(sc, name)
            if not (
                bool(jnp.all(jnp.isfinite(g.scores_in)))
                and bool(jnp.all(jnp.isfinite(g.scores_out)))
            ):
                raise ValueError(f"{name} scores of the {adv} adversary are not finite (diverged?)")
    held = np.asarray(hist["heldout_accuracy"][:, -1], dtype=np.float64)
    tr = np.asarray(hist["train_accuracy"][:, -1], dtype=np.float64)
    summary = {
        "attacks": summarize(k_eval, scores, a),
        "k": ks,
        "runs": config.runs,
        "heldout_accuracy": {"per_run": held.tolist(), "mean": float(held.mean())},
        "train_accuracy": {"per_run": tr.tolist(), "mean": float(tr.mean())},
        "dtype": str(data.x.dtype),
    }
    if trainer is not None:
        summary["history"] = {
            name: np.asarray(v[:, -1], dtype=np.float64).tolist() for name, v in hist.items()
        }
    return PipelineResult(data, trained, scores, summary)
