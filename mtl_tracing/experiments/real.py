"""The paper's real-data experiments (Tables 1-2, Figures 1-5) on CelebA, FEMNIST, Stack Overflow.

One call of :func:`run` = one (dataset, setting) cell of the paper:

data (a data set of the registry :mod:`mtl_tracing.data.registry`) -> R runs of Algorithm 3
with a trained encoder or the user's features (:mod:`.real_setup`:
:class:`~mtl_tracing.victims.encoder_mtl.EncoderMTLTrainer`, tasks sharded over the devices)
-> black-box embeddings -> every registered attack x both adversaries
(:func:`mtl_tracing.experiments.pipeline.attack_runs`, LOTO whitening) -> ROC metrics
(:func:`mtl_tracing.experiments.summary.summarize`, task bootstrap).

Every figure comes from the same training run: training stops at ``checkpoints`` evenly spaced
epochs (the last is the final model) and continues from there
(:func:`mtl_tracing.victims.trainer.fit_checkpoints`: ``fit``'s keys, one compiled program per
distinct segment length, the final state the one ``fit`` would return). At each
checkpoint we record both attacks' AUCs, the generalization gaps of Sec. 6.5 (Fig. 3) and the
training history (train / held-out loss and accuracy of the IN tasks; only at the checkpoints:
evaluating every epoch cost ~40% of the training FLOPs); the final model gives the table
(Tables 1-2), the ROC curves (Figs. 1-2), the raw coordinate-wise variance statistics
(Fig. 4) and the head similarities (Fig. 5).

Paper set-ups (App. A.5, A.6) are the defaults (the data set registry's ``paper``, over
:data:`~.real_setup.COMMON`; training choices by backend in :mod:`.real_setup`); every field
can be overridden
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
from :func:`plot` (:mod:`.real_figures`): ``table.md``, ``figure1_roc.{png,pdf}``
(``figure2_roc`` for the problems setting), ``figure3.{png,pdf}``, ``figure4.{png,pdf}``,
``figure5.{png,pdf}``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing import results
from mtl_tracing.data import registry as datasets
from mtl_tracing.experiments import real_figures
from mtl_tracing.experiments.real_figures import render_markdown
from mtl_tracing.experiments.real_setup import (
    checkpoint_epochs,
    config_for,
    describe,
    training_choices,
    training_setup,
)
from mtl_tracing.options import Option
from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

__all__ = [
    "SETTINGS",
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
    "config_for",
    "render_markdown",
    "reproduce_real",
]

HELP = "Tables 1-2 and Figures 1-5 on CelebA, FEMNIST or Stack Overflow (needs --data-dir)."
SETTINGS = datasets.SETTINGS
JSON_NAME = "real.json"
NPZ_NAME = "real.npz"

OPTIONS = (
    Option("--dataset", str, ", ".join(datasets.names()), choices=datasets.names()),
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
      overrides: any key of the paper's set-up / ``real_setup.COMMON`` (``tasks``, ...), plus
        ``num_resamples``.
    """
    import time

    import jax

    from mtl_tracing._validate import check_int
    from mtl_tracing.data import cache
    from mtl_tracing.experiments import pipeline as mc
    from mtl_tracing.experiments.figure45 import head_similarities
    from mtl_tracing.victims.encoder_mtl import generalization_gaps
    from mtl_tracing.victims.trainer import fit_checkpoints

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

    data = datasets.load(
        dataset, data_dir, cfg, setting=setting, seed=seed, features_dir=features,
        cache_dir=cache_dir, progress=progress,
    )  # fmt: skip
    lap("load")
    cp = checkpoint_epochs(cfg["epochs"], cfg["checkpoints"])
    trainer, data, sharded = training_setup(dataset, cfg, data, features=features, dtype=np_dtype)
    train_cfg, n_dev, info = trainer.config, trainer.devices, data.info
    in_part = sharded._replace(x_out=None, y_out=None, x_out_heldout=None, y_out_heldout=None)
    attack_cfg = mc.AttackConfig(
        strong_k=cfg["strong_k"], weak_k=cfg["weak_k"], trials=cfg["trials"],
        **({"num_resamples": num_resamples} if num_resamples else {}),
    )  # fmt: skip
    key = jax.random.key(seed)
    k_train, k_attack, k_eval = jax.random.split(key, 3)
    per_cp, gap_rows, cp_rows = {}, {}, []
    states = hist = None
    for e, states, hist in fit_checkpoints(  # noqa: B007 (the last ones are used below)
        trainer, k_train, in_part, runs=cfg["runs"], checkpoints=cp, progress=progress
    ):
        lap("train", states)
        scores = _attack(jax.random.fold_in(k_attack, e), trainer, states, sharded, cfg, True)
        summ = mc.summarize(jax.random.fold_in(k_eval, e), scores, attack_cfg)
        gaps = generalization_gaps(trainer, states, sharded, np_dtype(1.0))
        for f, v in gaps.items():
            gap_rows.setdefault(f, []).append(np.asarray(v, np.float64))
        for n in summ:
            for a in ADVERSARIES:
                per_cp.setdefault(f"{n}_{a}_auc", []).append(summ[n][a]["auc_per_run"])
        cp_rows.append(
            {
                "epochs": e,
                "auc": {n: {a: summ[n][a]["auc"] for a in ADVERSARIES} for n in summ},
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
        for n, g in scores[adv].items():
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
        "data": {**describe(data._replace(info=info)), "data_dir": os.path.abspath(data_dir)},
        "encoder": type(trainer.spec).__name__,
        "training": training_choices(trainer, np_dtype),
        "metadata": results.run_metadata(
            config={**cfg, "attack": attack_cfg.to_dict(), "train": train_cfg.to_dict()},
            seed=seed,
            features=os.path.abspath(features) if features else None,
            devices_used=n_dev,
            dtype=np.dtype(np_dtype).name,
        ),
    }
    results.save_outputs(out, JSON_NAME, payload, NPZ_NAME, arrays)
    lap("final")
    return out


# ------------------------------------------------------------------------------------ outputs


#: ``load(out_dir) -> (json payload, npz arrays or None)`` of a finished run.
load = results.outputs_loader(JSON_NAME, NPZ_NAME)


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw table.md and Figures 1/2 (ROC), 3, 4, 5 from the data in ``out_dir``."""
    return real_figures.draw(out_dir, *load(out_dir))


def headline(payload: dict) -> str:
    """One line per attack x adversary: AUC with CI and TPR at the first target FPR."""
    lines = [f"{real_figures.title_of(payload)} {payload['setting']}:"]
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
    (dataset, setting) of the data set registry whose folder ``data_dir/<dataset>`` exists runs
    into ``out_root/real_<dataset>_<setting>``; a missing folder is reported on one line.
    """
    if data_dir is None:
        return ["real-data jobs skipped: they need the datasets on disk (--data-dir DIR)"]
    lines = []
    for dataset, setting in ((d.name, s) for d in datasets.DATASETS for s in d.settings):
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
