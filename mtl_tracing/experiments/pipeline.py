"""Shared pipeline of the synthetic-MTL experiments (Sec. 6.5, App. A.7, A.8).

data (App. A.8) -> train R runs in one vmapped program (Algorithm 3) -> black-box embeddings ->
every registered attack (Algorithms 1, 2, :mod:`mtl_tracing.attacks.registry`) for both
adversaries -> ROC metrics (:mod:`mtl_tracing.experiments.summary`), in one call:
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
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing import attacks, results
from mtl_tracing._validate import check_finite_float, check_int, check_key
from mtl_tracing.attacks.registry import ATTACKS  # re-exported: the registered attacks
from mtl_tracing.data import synthetic
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.data.synthetic import SyntheticConfig
from mtl_tracing.experiments.summary import over_runs_interval, summarize
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
    "start_job",
]


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


load = results.load_outputs  # ``(json payload, npz arrays or None)`` of a finished job


def start_job(out_dir: str | os.PathLike, config, default, seed: int):
    """The prologue of a synthetic-MTL job's ``run``: ``(config, seed, out)`` with ``config``
    (``default`` when None) a checked ``PipelineConfig``, ``seed`` a checked int >= 0 and
    ``out`` the output folder, created (``registry.check_out_dir`` first)."""
    from mtl_tracing.experiments.registry import check_out_dir

    config = default if config is None else config
    if not isinstance(config, PipelineConfig):
        raise ValueError(f"config must be a PipelineConfig, got {config!r}")
    seed = check_int("seed", seed, low=0)
    out = check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return config, seed, Path(out)


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
        for name, g in sc.items():
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
