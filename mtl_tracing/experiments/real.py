"""The paper's real-data experiments (Tables 1-2, Figures 1-5) on CelebA, FEMNIST, Stack Overflow.

One call of :func:`run` = one (dataset, setting) cell of the paper:

data (a loader of :mod:`mtl_tracing.data`) -> R runs of Algorithm 3 with a trained encoder or
the user's features (:class:`~mtl_tracing.victims.encoder_mtl.EncoderMTLTrainer`, tasks
sharded over the devices) -> black-box embeddings -> both attacks x both adversaries
(:func:`mtl_tracing.experiments.pipeline.attack_runs`, LOTO whitening) -> ROC metrics
(:func:`mtl_tracing.experiments.pipeline.summarize`, task bootstrap).

Every figure comes from the same training run: training stops at ``checkpoints`` evenly spaced
epochs (the last is the final model) and continues from there (one compiled program per
distinct segment length, and the final state is the one ``fit`` would return). At each
checkpoint we record both attacks' AUCs, the generalization gaps of Sec. 6.5 (Fig. 3) and the
training history (train / held-out loss and accuracy of the IN tasks; only at the checkpoints:
evaluating every epoch cost ~40% of the training FLOPs); the final model gives the table
(Tables 1-2), the ROC curves (Figs. 1-2), the raw coordinate-wise variance statistics
(Fig. 4) and the head similarities (Fig. 5).

Training choices by backend (``conv``, ``compute_dtype``; DEVELOPERS.md, "Real data"): the
ResNet's convolution is ``"auto"`` (:func:`mtl_tracing.victims.encoders.resolve_conv`:
``loop_safe_conv`` on CPU, XLA's own on GPU/TPU), the compute dtype float32 (on NVIDIA GPUs
XLA's default runs it as TF32) unless ``compute_dtype="bfloat16"``.

Paper set-ups (App. A.5, A.6) are the defaults in :data:`PAPER`; every field can be overridden
(``--tasks``, ``--samples``, ``--epochs``, ...). What differs from the paper: the encoders are
trained here from scratch (small ResNet, hashed-n-gram MLP) unless features from a pretrained
model are given (``--features``); no image augmentation. The heads are the paper's
(:mod:`mtl_tracing.victims.heads`, chosen by the loader): FEMNIST 62-way softmax per writer,
Stack Overflow personalisation 256 multi-label topic detectors per user, binary otherwise
(CelebA: one attribute per person or one head per attribute; Stack Overflow problems: one
head per tag).

Files in ``out_dir``: ``real.json`` (summary, table rows, checkpoints, data description, the
training choices used, metadata), ``real.npz`` (scores, ROC curves, per-checkpoint AUCs, gaps
and histories ``history_*`` (R, checkpoints), variance statistics, head similarities), then
from :func:`plot`: ``table.md``, ``figure1_roc.{png,pdf}`` (``figure2_roc`` for the problems
setting), ``figure3.{png,pdf}``, ``figure4.{png,pdf}``, ``figure5.{png,pdf}``.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting, results
from mtl_tracing.experiments.registry import Option
from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

__all__ = [
    "DATASETS",
    "SETTINGS",
    "PAPER",
    "OPTIONS",
    "QUICK",
    "HELP",
    "JSON_NAME",
    "NPZ_NAME",
    "run",
    "plot",
    "load",
    "headline",
    "check",
    "render_markdown",
    "reproduce_real",
    "train_checkpoints",
    "training_setup",
]

HELP = "Tables 1-2 and Figures 1-5 on CelebA, FEMNIST or Stack Overflow (needs --data-dir)."
DATASETS = ("celeba", "femnist", "stackoverflow")
SETTINGS = ("personalization", "problems")
JSON_NAME = "real.json"
NPZ_NAME = "real.npz"
ATTACKS = ("variance", "inner_product")

_COMMON = {
    "embed_dim": 32,
    "runs": 1,
    "epochs": 200,
    "checkpoints": 5,
    "task_batch": 16,
    "image_size": 64,
    "hash_dim": 1024,
    "scan_posts": None,
    "hidden": 512,
    "widths": "16,32,64",
    "sample_batch": 0,
    "warm_start_epochs": 40,
    "seed_split": None,
    "conv": "auto",
    "compute_dtype": None,
}

#: App. A.5 / A.6 set-ups: T (= T_out), N, H, k strong / weak, trials, warm start epochs.
PAPER: dict = {
    ("celeba", "personalization"): dict(
        tasks=256, samples=22, heldout=8, strong_k=8, weak_k=4, trials=128, warm_start_epochs=40
    ),
    ("celeba", "problems"): dict(
        tasks=20, samples=1024, heldout=64, strong_k=16, weak_k=8, trials=128,
        warm_start_epochs=40, runs=8, sample_batch=64, task_batch=4,
    ),
    ("femnist", "personalization"): dict(
        tasks=128, samples=128, heldout=16, strong_k=16, weak_k=8, trials=128,
        warm_start_epochs=40, image_size=28, sample_batch=64,
    ),
    ("stackoverflow", "personalization"): dict(
        tasks=128, samples=32, heldout=16, strong_k=8, weak_k=4, trials=128, warm_start_epochs=20
    ),
    ("stackoverflow", "problems"): dict(
        tasks=70, samples=1024, heldout=64, strong_k=32, weak_k=16, trials=128,
        warm_start_epochs=20, sample_batch=64,
    ),
}  # fmt: skip

OPTIONS = (
    Option("--dataset", str, "celeba, femnist or stackoverflow", choices=DATASETS),
    Option("--setting", str, "personalization or problems", choices=SETTINGS),
    Option("--data-dir", str, "the dataset's folder (see README: Running on the paper's data)"),
    Option("--features", str, "folder of user-provided .npy features (one per image / post)"),
    Option("--cache-dir", str, "cache of decoded arrays (default ~/.cache/mtl-tracing/data)"),
    Option("--tasks", int, "T IN tasks (= T OUT tasks); default: the paper's"),
    Option("--samples", int, "N training samples per task; default: the paper's"),
    Option("--heldout", int, "held-out samples per task (weak adversary); default: the paper's"),
    Option("--epochs", int, "training epochs (default 200)"),
    Option("--runs", int, "R independent training runs"),
    Option("--trials", int, "challenge draws per task"),
    Option("--embed-dim", int, "m, the projection's dimension (16 or 32 in the paper)"),
    Option("--image-size", int, "side of the resized CelebA images (default 64)"),
    Option("--checkpoints", int, "evaluation points along training for Figure 3 (default 5)"),
    Option("--scan-posts", int, "Stack Overflow problems: scan only the first posts (default all)"),
    Option("--conv", str, "ResNet convolution: auto (loop_safe on CPU, xla elsewhere), loop_safe "
           "or xla", choices=("auto", "loop_safe", "xla")),  # = encoders.CONVS (tested)
    Option("--compute-dtype", str, "encoder compute dtype (default float32; bfloat16: mixed "
           "precision, float32 weights and loss)", choices=("float32", "bfloat16")),
)  # fmt: skip

#: ``--quick``: a few tasks, tiny images, few epochs (minutes on a CPU on the real data).
QUICK = dict(
    tasks=8, samples=8, heldout=8, epochs=6, checkpoints=2, trials=16, image_size=16, runs=1,
    embed_dim=8, warm_start_epochs=1, task_batch=4, widths="8", hidden=64, hash_dim=256,
    strong_k=4, weak_k=4, sample_batch=0, num_resamples=50,
)  # fmt: skip


def config_for(dataset: str, setting: str, **overrides) -> dict:
    """The paper's set-up for (dataset, setting) with ``overrides`` (None values ignored)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if (dataset, setting) not in PAPER:
        raise ValueError(f"setting must be 'personalization' for {dataset}, got {setting!r}")
    cfg = {**_COMMON, **PAPER[(dataset, setting)]}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


# ------------------------------------------------------------------------------------ loading


def load_data(dataset, setting, data_dir, cfg, *, features, cache_dir, seed, progress):
    """The loader call for (dataset, setting) with the filters of ``cfg``."""
    from mtl_tracing.data._tasks import TaskSpec

    spec = TaskSpec(cfg["tasks"], cfg["tasks"], cfg["samples"], cfg["heldout"], seed)
    kw = dict(spec=spec, setting=setting, features_dir=features, cache_dir=cache_dir)
    kw["progress"] = progress
    if dataset == "celeba":
        from mtl_tracing.data import celeba

        return celeba.load(data_dir, image_size=cfg["image_size"], **kw)
    if dataset == "femnist":
        from mtl_tracing.data import femnist

        return femnist.load(data_dir, **kw)
    from mtl_tracing.data import stackoverflow

    scan = cfg["scan_posts"] if setting == "problems" else None
    return stackoverflow.load(data_dir, hash_dim=cfg["hash_dim"], scan_posts=scan, **kw)


def _spec(dataset: str, cfg: dict, features):
    from mtl_tracing.victims.encoders import LinearSpec, MLPSpec, ResNetSpec

    if features is not None:
        return LinearSpec()
    if dataset == "stackoverflow":
        return MLPSpec((int(cfg["hidden"]),))
    widths = tuple(int(w) for w in str(cfg["widths"]).split(","))
    return ResNetSpec(widths, 1, groups=math.gcd(4, *widths), conv=cfg["conv"])


# ----------------------------------------------------------------------------------- training


@functools.cache
def _jitted():
    """The compiled kernels (segment, gaps, init), built on first use (importing this module
    never imports JAX)."""
    import jax

    return (
        jax.jit(_segment, static_argnames=("trainer",)),
        jax.jit(_gaps, static_argnames=("trainer",)),
        jax.jit(_init, static_argnames=("trainer",)),
    )


def _pinned(trainer, states):
    """``states`` constrained to one fixed sharding (replicated on the trainer's task mesh).

    Without it the first segment's output states came back with a sharding propagated from
    the data (the run axis on ``"tasks"``), unlike ``_init``'s, so the second segment
    compiled the whole training program again (jit keys on input shardings): ~15 s on the
    H200 and 5-15 s on 2 CPU cores, which bench_real had counted as an epoch.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    from mtl_tracing.victims.encoder_mtl import task_mesh

    sharding = NamedSharding(task_mesh(trainer.devices), PartitionSpec())
    return jax.lax.with_sharding_constraint(states, sharding)


def _init(trainer, k_init, data):
    import jax

    return _pinned(trainer, jax.vmap(trainer.init, in_axes=(0, None))(k_init, data))


def _segment(trainer, states, k_sched, epochs, data):
    """Run epochs ``epochs`` (an int array) for R stacked runs (the body of ``fit``), then
    evaluate once: ``(states, {name: (R,)})``."""
    import jax

    from mtl_tracing.victims.trainer import epoch_fn

    run_epoch = epoch_fn(trainer, data, evaluate=False)

    def one(state, ks):
        def body(s, e):
            return run_epoch(s, ks, e)[0], None

        state = jax.lax.scan(body, state, epochs)[0]
        return state, trainer.evaluate(state, data)

    states, metrics = jax.vmap(one)(states, k_sched)
    return _pinned(trainer, states), metrics


def train_checkpoints(trainer, key, data, *, runs: int, checkpoints: tuple[int, ...], progress):
    """Train R runs, yielding ``(epoch, states, history so far)`` at each checkpoint.

    The keys are those of :func:`mtl_tracing.victims.trainer.fit`, so the last state equals
    ``fit(trainer, key, data, runs=runs).state`` (to float tolerance). The history is
    ``trainer.evaluate`` at the checkpoints so far, {name: (R, checkpoints so far)} (``fit``
    evaluates every epoch). Segments of equal length share one compiled program.
    """
    import jax

    from mtl_tracing.victims.trainer import run_keys

    keys = run_keys(key, runs)
    k_init, k_sched = jax.vmap(jax.random.split, out_axes=1)(keys)
    segment, _, init = _jitted()
    states = init(trainer, k_init, data)
    start, hist = 0, []
    for e in checkpoints:
        if progress:
            print(f"[real] training epochs {start + 1}..{e}", flush=True)
        states, h = segment(trainer, states, k_sched, np.arange(start, e, dtype=np.int32), data)
        hist.append(h)
        start = e
        # on the host: an eager jnp.stack would compile a program per checkpoint count
        yield e, states, {k: np.stack([np.asarray(x[k]) for x in hist], axis=1) for k in hist[0]}


def _gaps(trainer, states, data, ridge):
    import jax
    import jax.numpy as jnp

    from mtl_tracing.victims import heads

    T = data.x.shape[0]
    x_all = jnp.concatenate([data.x, data.x_out])
    y_all = jnp.concatenate([data.y, data.y_out])
    xh_all = jnp.concatenate([data.x_heldout, data.x_out_heldout])
    yh_all = jnp.concatenate([data.y_heldout, data.y_out_heldout])
    loss = trainer.loss

    def one(s):
        tr = loss(trainer.logits(s, data.x), data.y)
        ho = loss(trainer.logits(s, data.x_heldout), data.y_heldout)
        e_fit, e_eval = trainer.embed(s, x_all), trainer.embed(s, xh_all)
        probe = functools.partial(
            heads.probe_loss, trainer.head_loss, classes=trainer.head_outputs, ridge=ridge
        )
        per = jax.vmap(probe)(e_fit, y_all, e_eval, yh_all)
        p_in, p_out = per[:T].mean(), per[T:].mean()
        return {
            "train_loss": tr,
            "heldout_loss": ho,
            "probe_in_loss": p_in,
            "probe_out_loss": p_out,
            "strong_gap": p_out - tr,
            "weak_gap": p_out - ho,
        }

    return jax.vmap(one)(states)


# ------------------------------------------------------------------------------------ running


def _attack(key, trainer, states, data, cfg, whiten):
    import jax
    import jax.numpy as jnp

    from mtl_tracing.experiments import pipeline as mc
    from mtl_tracing.victims.encoder_mtl import embed_states

    T = data.tasks
    pools = {
        "strong": embed_states(trainer, states, jnp.concatenate([data.x, data.x_out])),
        "weak": embed_states(
            trainer, states, jnp.concatenate([data.x_heldout, data.x_out_heldout])
        ),
    }
    ks = {"strong": cfg["strong_k"], "weak": cfg["weak_k"]}
    return {
        adv: mc.attack_runs(
            jax.random.fold_in(key, i), pools[adv], tasks_in=T, k=ks[adv],
            trials=cfg["trials"], whiten=whiten,
        )
        for i, adv in enumerate(ADVERSARIES)
    }  # fmt: skip


def _rows(summary: dict) -> list[dict]:
    from mtl_tracing.experiments.table import attack_rows

    return attack_rows(summary, tpr_at_fpr=True)


def _describe(data) -> dict:
    y = np.concatenate([np.ravel(data.y), np.ravel(data.y_out)])
    kind = str(data.info.get("head_loss", "binary"))
    return {
        "head_loss": kind,
        "head_outputs": int(data.info.get("head_outputs", 1)),
        "tasks_in": data.tasks,
        "tasks_out": data.out_tasks,
        "samples": data.samples,
        "heldout": data.heldout,
        "feature_shape": list(data.feature_shape),
        # binary: positive rate; multilabel: mean topic density; softmax: classes present
        "label_rate": float(y.mean()) if kind != "softmax" else None,
        "classes_present": int(np.unique(y).size) if kind == "softmax" else None,
        "task_names_in": [str(s) for s in np.asarray(data.info["task_names"])[: data.tasks]],
        "label_tag": str(data.info.get("label_tag", "")),
    }


def run(
    out_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    setting: str | None = None,
    data_dir: str | os.PathLike | None = None,
    features: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = "default",
    seed: int = 0,
    progress: bool = True,
    dtype=None,
    timings: dict | None = None,
    **overrides,
) -> Path:
    """Run one (dataset, setting) experiment into ``out_dir`` (module docstring).

    Args:
      out_dir: output folder (created).
      dataset, setting: the paper's cell; ``data_dir`` its folder; ``features`` optional.
      cache_dir: decoded-array cache (``"default"``: ``~/.cache/mtl-tracing/data``; None: off).
      seed: the split seed and the training/attack key.
      timings: if a dict, filled with wall seconds per stage (``benchmarks/bench_real.py``):
        ``load``, ``train`` (per segment, the first includes compilation), ``evaluate`` (per
        checkpoint: attacks, metrics, gaps), ``final`` (Figs. 4-5 statistics, files).
      overrides: any key of :data:`PAPER` / ``_COMMON`` (``tasks``, ``epochs``, ...), plus
        ``num_resamples``.
    """
    import time

    import jax

    from mtl_tracing._validate import check_int
    from mtl_tracing.data import cache
    from mtl_tracing.experiments import pipeline as mc
    from mtl_tracing.experiments.figure45 import head_similarities

    if data_dir is None:
        raise ValueError("data_dir must be the dataset's folder, got None")
    seed = check_int("seed", seed, low=0)
    setting = "personalization" if setting is None else setting
    num_resamples = overrides.pop("num_resamples", None)
    cfg = config_for(dataset, setting, **overrides)
    for name in ("tasks", "samples", "heldout", "epochs", "runs", "trials", "checkpoints"):
        cfg[name] = check_int(name, cfg[name], low=1)
    if cache_dir == "default":
        cache_dir = cache.default_cache_dir()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np_dtype = np.float64 if dtype in ("float64", np.float64) else np.float32
    clock = {"t": time.perf_counter()}
    timings = {} if timings is None else timings
    timings.update(train=[], evaluate=[])

    def lap(stage, value=None):
        jax.block_until_ready(value)
        now = time.perf_counter()
        t, clock["t"] = now - clock["t"], now
        if isinstance(timings.get(stage), list):
            timings[stage].append(t)
        else:
            timings[stage] = t

    data = load_data(
        dataset, setting, data_dir, cfg, features=features, cache_dir=cache_dir, seed=seed,
        progress=progress,
    )  # fmt: skip
    lap("load")
    cp = sorted({max(1, round(cfg["epochs"] * (i + 1) / cfg["checkpoints"])) for i in range(
        cfg["checkpoints"])})  # fmt: skip
    trainer, data, sharded = training_setup(dataset, cfg, data, features=features, dtype=np_dtype)
    train_cfg, n_dev, info = trainer.config, trainer.devices, data.info
    in_part = sharded._replace(x_out=None, y_out=None, x_out_heldout=None, y_out_heldout=None)
    attack_cfg = mc.AttackConfig(
        strong_k=cfg["strong_k"], weak_k=cfg["weak_k"], trials=cfg["trials"],
        **({"num_resamples": num_resamples} if num_resamples else {}),
    )  # fmt: skip
    key = jax.random.key(seed)
    k_train, k_attack, k_eval = jax.random.split(key, 3)
    per_cp = {f"{n}_{a}_auc": [] for n in ATTACKS for a in ADVERSARIES}
    gap_rows, cp_rows = {}, []
    states = hist = None
    for e, states, hist in train_checkpoints(  # noqa: B007 (the last ones are used below)
        trainer, k_train, in_part, runs=cfg["runs"], checkpoints=tuple(cp), progress=progress
    ):
        lap("train", states)
        scores = _attack(jax.random.fold_in(k_attack, e), trainer, states, sharded, cfg, True)
        summ = mc.summarize(jax.random.fold_in(k_eval, e), scores, attack_cfg)
        gaps = _jitted()[1](trainer, states, sharded, np_dtype(1.0))
        for f, v in gaps.items():
            gap_rows.setdefault(f, []).append(np.asarray(v, np.float64))
        for n in ATTACKS:
            for a in ADVERSARIES:
                per_cp[f"{n}_{a}_auc"].append(summ[n][a]["auc_per_run"])
        cp_rows.append(
            {
                "epochs": e,
                "auc": {n: {a: summ[n][a]["auc"] for a in ADVERSARIES} for n in ATTACKS},
                "gaps": {f: float(np.mean(v)) for f, v in gaps.items()},
            }
        )
        lap("evaluate")
    # final model: table and ROC (whitened, above), Fig. 4 (raw), Fig. 5 (heads)
    from mtl_tracing import metrics

    raw = _attack(jax.random.fold_in(k_attack, 2**30), trainer, states, sharded, cfg, False)
    arrays = {"checkpoints": np.asarray(cp)}
    arrays.update({k: np.asarray(v, np.float64) for k, v in per_cp.items()})
    arrays.update({f"gap_{f}": np.stack(v) for f, v in gap_rows.items()})
    arrays.update({f"history_{k}": np.asarray(v, np.float64) for k, v in hist.items()})
    for adv in ADVERSARIES:
        for n in ATTACKS:
            g = getattr(scores[adv], n)
            s_in, s_out = np.asarray(g.scores_in, np.float64), np.asarray(g.scores_out, np.float64)
            arrays[f"{n}_{adv}_in"], arrays[f"{n}_{adv}_out"] = s_in, s_out
            roc = metrics.roc_curve(s_in.ravel(), s_out.ravel())
            arrays[f"roc_{n}_{adv}_fpr"] = np.asarray(roc.fpr, np.float64)
            arrays[f"roc_{n}_{adv}_tpr"] = np.asarray(roc.tpr, np.float64)
        arrays[f"raw_variance_{adv}_in"] = np.asarray(raw[adv].variance.scores_in, np.float64)
        arrays[f"raw_variance_{adv}_out"] = np.asarray(raw[adv].variance.scores_out, np.float64)
    w = states.params["head_kernel"]  # (R, T, m) or (R, T, C, m): one flat vector per head
    ip, cos = head_similarities(w.reshape(w.shape[:2] + (-1,)))
    arrays["heads_inner"] = np.asarray(ip, np.float64)
    arrays["heads_cosine"] = np.asarray(cos, np.float64)
    held = np.asarray(hist["heldout_accuracy"][:, -1], np.float64)
    tr = np.asarray(hist["train_accuracy"][:, -1], np.float64)
    payload = {
        "dataset": dataset,
        "setting": setting,
        "rows": _rows(summ),
        "attacks": summ,
        "k": {"strong": cfg["strong_k"], "weak": cfg["weak_k"]},
        "checkpoints": cp_rows,
        "heldout_accuracy": {"per_run": held.tolist(), "mean": float(held.mean())},
        "train_accuracy": {"per_run": tr.tolist(), "mean": float(tr.mean())},
        "data": {**_describe(data._replace(info=info)), "data_dir": os.path.abspath(data_dir)},
        "encoder": type(trainer.spec).__name__,
        "training": _training_choices(trainer, np_dtype),
        "metadata": results.run_metadata(
            config={**cfg, "attack": attack_cfg.to_dict(), "train": train_cfg.to_dict()},
            seed=seed,
            features=os.path.abspath(features) if features else None,
            devices_used=n_dev,
            dtype=np.dtype(np_dtype).name,
        ),
    }
    np.savez_compressed(out / NPZ_NAME, **arrays)
    results.write_json(out / JSON_NAME, payload)
    lap("final")
    return out


def _training_choices(trainer, np_dtype) -> dict:
    """The backend-dependent training choices this run used (``real.json``)."""
    import jax

    from mtl_tracing.victims.encoders import ResNetSpec, resolve_conv

    spec = trainer.spec
    return {
        "backend": jax.default_backend(),
        "conv": resolve_conv(spec.conv) if isinstance(spec, ResNetSpec) else None,
        "compute_dtype": trainer.compute_dtype or np.dtype(np_dtype).name,
    }


def training_setup(dataset: str, cfg: dict, data, *, features=None, dtype=np.float32):
    """``(trainer, data, sharded)`` for a run of ``cfg`` (:func:`config_for`) on ``data`` (a
    loader's ``MultitaskData``): the :class:`~mtl_tracing.victims.encoder_mtl.EncoderMTLTrainer`
    over all devices, ``data`` cast to ``dtype`` and its copy sharded over the task mesh."""
    from mtl_tracing.victims.encoder_mtl import EncoderMTLTrainer, shard_tasks, task_mesh
    from mtl_tracing.victims.mtl import TrainConfig

    train_cfg = TrainConfig(
        epochs=cfg["epochs"],
        task_batch=min(cfg["task_batch"], data.tasks),
        warm_start_epochs=min(cfg["warm_start_epochs"], cfg["epochs"]),
    )
    mesh = task_mesh()
    sample_batch = cfg["sample_batch"] or None
    if sample_batch is not None and sample_batch >= data.samples:
        sample_batch = None
    trainer = EncoderMTLTrainer(
        train_cfg, _spec(dataset, cfg, features), cfg["embed_dim"], sample_batch=sample_batch,
        devices=mesh.devices.size, head_loss=str(data.info.get("head_loss", "binary")),
        head_outputs=int(data.info.get("head_outputs", 1)),
        eval_chunk=max(1, min(16, 2048 // max(data.samples, data.heldout))),  # bounds memory
        compute_dtype=cfg["compute_dtype"],
    )  # fmt: skip
    data = data._replace(**{f: _cast(getattr(data, f), dtype) for f in data._fields[:-1]})
    return trainer, data, shard_tasks(data, mesh)


def _cast(a, dtype):
    """Floats to the run's dtype; integer (class) labels stay integers."""
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.integer) else a.astype(dtype)


# ------------------------------------------------------------------------------------ outputs


def load(out_dir: str | os.PathLike):
    """``(json payload, npz arrays)`` of a finished run."""
    from mtl_tracing.experiments import pipeline as mc

    return mc.load(out_dir, JSON_NAME, NPZ_NAME)


_NAMES = {"celeba": "CelebA", "femnist": "FEMNIST", "stackoverflow": "Stack Overflow"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _heads(d: dict) -> str:
    kind, c = d.get("head_loss", "binary"), d.get("head_outputs", 1)
    return {"binary": "binary", "softmax": f"{c}-way softmax (top-1 accuracy)"}.get(
        kind, f"{c}-label multi-label (per-label accuracy)"
    )


def render_markdown(payload: dict) -> str:
    """Tables 1-2 layout: per attack, rows Dataset x Access, (TPR, FPR) and Acc. per percentile."""
    fig = "Fig 1" if payload["setting"] == "personalization" else "Fig 2"
    table = "Table 1" if payload["setting"] == "personalization" else "Table 2"
    d, cfg = payload["data"], payload["metadata"]["config"]
    lines = [
        f"{table} layout: (TPR, FPR) and balanced accuracy at black-box percentile thresholds "
        f"({payload['setting']}; {_NAMES[payload['dataset']]}: T = {d['tasks_in']} IN + "
        f"{d['tasks_out']} OUT tasks, N = {d['samples']}, H = {d['heldout']}; k = "
        f"{payload['k']['strong']} strong / {payload['k']['weak']} weak, {cfg['trials']} "
        f"trials, {cfg['runs']} run(s), {payload['encoder']}, {_heads(d)} heads; held-out IN "
        f"accuracy {payload['heldout_accuracy']['mean']:.3f})",
        "",
    ]
    rows = payload["rows"]
    pcts = [p["percentile"] for p in rows[0]["percentiles"]]
    for name in ATTACKS:
        lines += [
            f"**{name.replace('_', ' ')} attack**",
            "",
            "| Dataset | Access | AUC (95% CI) | "
            + " | ".join(f"{p:g}th (TPR, FPR) | {p:g}th Acc." for p in pcts)
            + " |",
            "|" + "---|" * (3 + 2 * len(pcts)),
        ]
        for r in (r for r in rows if r["attack"] == name):
            cells = [
                f"{_NAMES[payload['dataset']]} ({fig})",
                r["access"].capitalize(),
                f"{r['auc']:.3f} [{r['auc_ci'][0]:.3f}, {r['auc_ci'][1]:.3f}]",
            ]
            for p in r["percentiles"]:
                cells += [f"({_pct(p['tpr'])}, {_pct(p['fpr'])})", _pct(p["balanced_accuracy"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw table.md and Figures 1/2 (ROC), 3, 4, 5 from the data in ``out_dir``."""
    payload, arr = load(out_dir)
    out = Path(out_dir)
    paths = [out / "table.md"]
    paths[0].write_text(render_markdown(payload))
    c = plotting.ADVERSARY_COLORS
    title = f"{_NAMES[payload['dataset']]}, {payload['setting']}"
    stem = "figure1_roc" if payload["setting"] == "personalization" else "figure2_roc"
    with plotting.style():
        fig, axes = plotting.new_figure(2, 1, width=3.2, height=3.0)
        for ax, name in zip(axes[0], ATTACKS, strict=True):
            for adv in ADVERSARIES:
                a = payload["attacks"][name][adv]["auc"]
                fpr, tpr = arr[f"roc_{name}_{adv}_fpr"], arr[f"roc_{name}_{adv}_tpr"]
                ax.plot(fpr, tpr, color=c[adv], label=f"{adv} (AUC {a:.3f})")
            n_out = arr[f"{name}_strong_out"].size
            plotting.chance_line(ax, log=True, lo=1.0 / max(n_out, 10))
            ax.set(xscale="log", yscale="log", xlabel="FPR", ylabel="TPR")
            ax.set(title=name.replace("_", " "))
            ax.legend(loc="lower right")
        fig.suptitle(f"ROC of the task-inference attacks ({title})")
        paths += plotting.save_figure(fig, out, stem)

        fig, axes = plotting.new_figure(2, 1, width=3.2, height=2.8)
        for ax, adv in zip(axes[0], ADVERSARIES, strict=True):
            g = arr[f"gap_{adv}_gap"]  # (C, R)
            for name, ls in (("inner_product", "-"), ("variance", "--")):
                auc = arr[f"{name}_{adv}_auc"]
                ax.plot(g.mean(1), auc.mean(1), ls, marker="o", markersize=3, color=c[adv],
                        label=name.replace("_", " "))  # fmt: skip
            ax.axhline(0.5, color="0.5", linestyle=":", linewidth=1.0)
            ax.set(xlabel=f"{adv} generalization gap (OUT probe loss - "
                   f"{'train' if adv == 'strong' else 'IN fresh'} loss)", ylabel="AUC",
                   title=f"{adv} adversary")  # fmt: skip
            ax.legend(loc="best")
        fig.suptitle(f"AUC vs generalization gap along training ({title}; cf. Fig. 3)")
        paths += plotting.save_figure(fig, out, "figure3")

        fig, axes = plotting.new_figure(2, 1, width=3.2, height=2.8)
        for ax, adv in zip(axes[0], ADVERSARIES, strict=True):
            vin, vout = (
                arr[f"raw_variance_{adv}_in"].ravel(),
                arr[f"raw_variance_{adv}_out"].ravel(),
            )
            edges = np.histogram_bin_edges(np.concatenate([vin, vout]), bins=40)
            ax.hist(vout, edges, density=True, color=c["out"], alpha=0.4, label="OUT")
            ax.hist(vin, edges, density=True, histtype="step", color=c[adv], label=f"{adv} IN")
            ax.set(xlabel="coordinate-wise variance statistic (raw)", ylabel="density", title=adv)
            ax.legend(loc="best")
        fig.suptitle(f"Variance statistic, IN vs OUT ({title}; cf. Fig. 4)")
        paths += plotting.save_figure(fig, out, "figure4")

        fig, axes = plotting.new_figure(2, 1, width=3.2, height=2.8)
        for ax, kind in zip(axes[0], ("inner", "cosine"), strict=True):
            v = arr[f"heads_{kind}"].ravel()
            ax.hist(v, bins=40, density=True, color=c["strong"], alpha=0.6)
            ax.axvline(0.0, color="0.3", linestyle=":", linewidth=1.0)
            ax.set(xlabel=f"{kind} of task heads, pairs i < j", ylabel="density",
                   title=f"mean {v.mean():.3g}, std {v.std():.3g}")  # fmt: skip
        fig.suptitle(f"Task-specific layer similarity ({title}; cf. Fig. 5)")
        paths += plotting.save_figure(fig, out, "figure5")
    return paths


def headline(payload: dict) -> str:
    """One line per attack x adversary: AUC with CI and TPR at the first target FPR."""
    lines = [f"{_NAMES[payload['dataset']]} {payload['setting']}:"]
    for r in payload["rows"]:
        fpr, tpr = r["tpr_at_fpr"][0]
        lines.append(
            f"  {r['attack']:>13} {r['access']:>6}: AUC {r['auc']:.3f} "
            f"[{r['auc_ci'][0]:.3f}, {r['auc_ci'][1]:.3f}], TPR@{fpr:g} {tpr:.3f}"
        )
    return "\n".join(lines)


def check(out_dir: str | os.PathLike) -> list[str]:
    """Problems in a finished run: missing files, AUC outside its CI or [0, 1]."""
    out = Path(out_dir)
    stems = ("figure3", "figure4", "figure5")
    need = [JSON_NAME, NPZ_NAME, "table.md"] + [f"{s}.png" for s in stems]
    problems = [f"missing {out / n}" for n in need if not (out / n).is_file()]
    if problems:
        return problems
    payload, _ = load(out)
    for r in payload["rows"]:
        lo, hi = r["auc_ci"]
        if not (0.0 <= lo <= r["auc"] <= hi <= 1.0):
            problems.append(f"{r['attack']} {r['access']}: AUC {r['auc']} outside [{lo}, {hi}]")
    return problems


def reproduce_real(out_root, data_dir, *, seed=0, progress=True, quick=False) -> list[str]:
    """What ``reproduce`` should do for the real-data jobs; returns the lines to print.

    Without ``data_dir``: one line saying they were skipped and why. With it: every
    (dataset, setting) of :data:`PAPER` whose folder ``data_dir/<dataset>`` exists runs into
    ``out_root/real_<dataset>_<setting>``; a missing folder is reported on one line.
    """
    if data_dir is None:
        return ["real-data jobs skipped: they need the datasets on disk (--data-dir DIR)"]
    lines = []
    for dataset, setting in PAPER:
        folder = Path(data_dir) / dataset
        if not folder.is_dir():
            lines.append(f"real_{dataset}_{setting} skipped: {folder} not found")
            continue
        out = Path(out_root) / f"real_{dataset}_{setting}"
        kw = dict(QUICK) if quick else {}
        run(out, dataset=dataset, setting=setting, data_dir=folder, seed=seed, progress=progress,
            **kw)  # fmt: skip
        plot(out)
        lines.append(headline(load(out)[0]))
    return lines
