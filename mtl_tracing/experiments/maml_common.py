"""What the ``maml*`` jobs share: the default victim and attack, one "setting" runner, files.

A setting is (source, w, s, training epochs, defences): meta-train the victim
(:func:`~mtl_tracing.victims.maml.train_checkpoints`), record its meta-test accuracy (utility),
then play the validation and test games of the query and/or support attack against the
meta-parameters at the observed epoch. Compiled programs depend only on static shapes
(w, s, trials, iterations), so sigmas and epochs never recompile; jobs reuse the shapes of the
Tables I-II grid so that one process (``reproduce``) compiles each shape once.

Keys: setting number c uses ``fold_in(key(seed), c)``; inside it, training, the games of each
attack kind and the pools use disjoint ``fold_in`` streams.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from mtl_tracing import results
from mtl_tracing._validate import check_choice, check_int

__all__ = [
    "VictimSettings",
    "DEFAULT_VICTIM",
    "QUICK_VICTIM",
    "load_pools",
    "run_setting",
    "write",
    "load",
    "source_option",
]


@dataclasses.dataclass(frozen=True)
class VictimSettings:
    """Victim, training and attack sizes shared by a job's settings (see the module docstring).

    ``epochs`` x ``steps_per_epoch`` meta-steps of ``meta_batch`` tasks; ``trials`` per game
    split (validation and test each: n member + n non-member targets); ``iterations``, ``lr``,
    ``alpha`` of the attack; ``test_tasks`` meta-test tasks for the utility.
    """

    channels: int = 16
    inner_lr: float = 0.4
    inner_steps: int = 1
    meta_batch: int = 8
    meta_lr: float = 3e-3
    epochs: int = 2
    steps_per_epoch: int = 20
    test_tasks: int = 100
    trials: int = 32
    iterations: int = 100
    lr: float = 0.01
    alpha: float = 1e-3
    bootstrap: int = 200

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.type == "int":
                check_int(f.name, getattr(self, f.name), low=0 if f.name == "epochs" else 1)


DEFAULT_VICTIM = VictimSettings()
QUICK_VICTIM = VictimSettings(epochs=1, steps_per_epoch=10, trials=16, iterations=30, bootstrap=50)


def source_option():
    from mtl_tracing.experiments.registry import Option

    return (
        Option(
            "--source",
            str,
            "digits (bundled, default), mnist or fashion-mnist",
            None,
            ("digits", "mnist", "fashion-mnist"),
        ),
        Option("--data-dir", str, "folder with the IDX files (mnist / fashion-mnist)"),
    )


def load_pools(source: str, data_dir, seed: int, dtype=None):
    import jax

    from mtl_tracing.data import fewshot

    src = fewshot.load_source(source, data_dir)
    # MNIST has ~6000 images per class; 400 is plenty for few-shot tasks and keeps pools small.
    return fewshot.split_pools(
        jax.random.fold_in(jax.random.key(seed), 2**30), src, max_per_class=400, dtype=dtype
    )


def run_setting(
    key,
    pools,
    *,
    ways: int,
    shots: int,
    victim: VictimSettings,
    kinds=("query", "support"),
    noise=None,
    epochs_observed=None,
    dtype=None,
) -> dict:
    """Train the victim for one (w, s, noise) and attack it at each observed epoch.

    Returns ``{"meta_test_accuracy": float (final), "history": [...], "attacks": {epoch: {kind:
    summary}}, "scores": {f"{kind}_e{epoch}_{in|out}": (n,) arrays}, "seconds": float}``.
    """
    import jax

    from mtl_tracing.attacks import gradient_inversion as gi
    from mtl_tracing.data import fewshot
    from mtl_tracing.victims import maml

    for k in kinds:
        check_choice("kind", k, gi.KINDS)
    t0 = time.perf_counter()
    model = maml.ModelConfig(
        image_shape=pools.train.image_shape,
        ways=ways,
        channels=victim.channels,
        inner_steps=victim.inner_steps,
        inner_lr=victim.inner_lr,
    )
    trainer = maml.MAMLTrainer(
        model=model,
        shots=shots,
        meta_batch=victim.meta_batch,
        meta_lr=victim.meta_lr,
        epochs=victim.epochs,
        steps_per_epoch=victim.steps_per_epoch,
        dtype=str(np.dtype(dtype or "float32")),
    )
    noise = maml.Noise() if noise is None else noise
    k_train, k_test, k_game = (jax.random.fold_in(key, i) for i in range(3))
    test_tasks = fewshot.sample_tasks(
        k_test, pools.test, ways=ways, shots=shots, num_tasks=victim.test_tasks
    )
    data = maml.MAMLData(pools.train, test_tasks, noise)
    observed = (victim.epochs,) if epochs_observed is None else tuple(epochs_observed)
    kept, hist = maml.train_checkpoints(trainer, k_train, data, checkpoints=observed)
    attack = gi.AttackConfig(iterations=victim.iterations, lr=victim.lr, alpha=victim.alpha)
    out = {
        "meta_test_accuracy": float(hist["meta_test_accuracy"][-1]),
        "history": np.asarray(hist["meta_test_accuracy"]).tolist(),
        "attacks": {},
        "scores": {},
    }
    for e in observed:
        out["attacks"][str(e)] = {}
        for i, kind in enumerate(kinds):
            game = gi.GameConfig(kind=kind, shots=shots, trials=victim.trials, attack=attack)
            summary, _, test = gi.membership_inference(
                jax.random.fold_in(k_game, 2 * i),
                model,
                kept[e],
                pools,
                game,
                noise,
                bootstrap=victim.bootstrap,
            )
            out["attacks"][str(e)][kind] = summary
            out["scores"][f"{kind}_e{e}_in"] = np.asarray(test.scores_in)
            out["scores"][f"{kind}_e{e}_out"] = np.asarray(test.scores_out)
    out["seconds"] = time.perf_counter() - t0
    return out


def write(out_dir, stem: str, payload: dict, arrays: dict, *, config, seed: int) -> Path:
    """``stem.json`` (payload + metadata) and ``stem.npz`` (arrays) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"{stem}.npz", **arrays)
    payload = {**payload, "metadata": results.run_metadata(config=config, seed=seed)}
    return results.write_json(out / f"{stem}.json", payload)


def load(out_dir: str | os.PathLike, stem: str):
    """(payload, arrays) written by :func:`write`."""
    out = Path(out_dir)
    payload = results.read_json(out / f"{stem}.json")
    with np.load(out / f"{stem}.npz") as f:
        arrays = {k: f[k] for k in f.files}
    return payload, arrays


def check_files(out_dir, stem: str, figures=()) -> list[str]:
    out = Path(out_dir)
    names = [f"{stem}.json", f"{stem}.npz"] + [f"{f}.{e}" for f in figures for e in ("png", "pdf")]
    return [f"missing {out / n}" for n in names if not (out / n).is_file()]


def check_job(out_dir, stem: str, load, summaries) -> list[str]:
    """A job's ``check``: its files exist, then every (label, attack summary) that
    ``summaries(payload)`` yields passes :func:`check_summary` (``load(out_dir)`` reads it)."""
    bad = check_files(out_dir, stem, [stem])
    if bad:
        return bad
    payload, _ = load(out_dir)
    for where, summary in summaries(payload):
        bad += check_summary(where, summary)
    return bad


def check_summary(where: str, s: dict) -> list[str]:
    """Problems in one attack summary (ranges, CI contains its estimate)."""
    bad = []
    for name in ("accuracy", "auc", "recall"):
        v = s.get(name)
        if v is None or not 0.0 <= v <= 1.0:
            bad.append(f"{where}: {name} = {v!r} outside [0, 1]")
    lo, hi = s["auc_ci"]
    if not lo - 1e-6 <= s["auc"] <= hi + 1e-6:
        bad.append(f"{where}: AUC {s['auc']} outside its CI [{lo}, {hi}]")
    return bad
