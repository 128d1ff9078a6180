"""What the ``maml*`` jobs share: victim and attack settings per source, one "setting" runner,
files and checks.

A setting is (source, w, s, defences): meta-train the victim until its meta-test accuracy
plateaus (:func:`~mtl_tracing.victims.maml.train_checkpoints` with a
:class:`~mtl_tracing.victims.maml.Plateau`), record the meta-test accuracy (utility), then
play the membership game (:func:`~mtl_tracing.attacks.maml_game.membership_inference`:
attack hyperparameters tuned on validation trials, thresholds from them, metrics on disjoint
test trials, both non-member modes) against the meta-parameters at the observed epochs.

Compiled programs depend only on static shapes. On the bundled digits (compilation dominates)
the Tables I-II grid is played in one padded task layout, :data:`LAYOUT` (7-way 3-shot, the
largest of the paper's grid): a w-way s-shot task is a masked 7 x 3 task with the same law, so
the nine settings share one set of programs (``VictimSettings.pad``). The noise and epoch jobs
have one (w, s) each and run in its own shape (every sigma and epoch reuses its programs); so
does MNIST, where the attacks' arithmetic dominates (padding would cost ~2.5x).

Keys: setting c uses ``fold_in(key(seed), c)``; inside it, ``fold_in(., 0)`` trains,
``fold_in(., 1)`` draws the meta-test tasks and ``fold_in(., 2)`` plays every game (the same
trials at every observed epoch: paired across epochs).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from mtl_tracing import results
from mtl_tracing._validate import check_choice, check_int, check_nonnegative, check_positive_float
from mtl_tracing.options import Option

__all__ = [
    "VictimSettings",
    "DEFAULTS",
    "QUICK_VICTIM",
    "LAYOUT",
    "FIG4_SAMPLES",
    "settings_for",
    "load_pools",
    "run_setting",
    "auto_epochs",
    "write",
    "load",
    "source_option",
    "check_files",
    "check_job",
    "check_summary",
    "find_source_dir",
]

#: The padded layout of digits runs (the paper's largest w and s).
LAYOUT = (7, 3)
#: Test trials whose targets and reconstructions are kept (Fig. 4).
FIG4_SAMPLES = 4


@dataclasses.dataclass(frozen=True)
class VictimSettings:
    """Victim, training and attack sizes shared by a job's settings.

    Victim: ``channels`` per conv block, ``inner_lr`` / ``inner_steps`` of the adaptation,
    Adam ``meta_lr`` on meta-batches of ``meta_batch`` tasks, epochs of ``steps_per_epoch``
    meta-steps, at most ``max_epochs``, stopped when the meta-test accuracy (``test_tasks``
    tasks) plateaus (``patience`` epochs without a gain of ``min_delta``).
    Attack: ``trials`` test trials, ``validation_trials`` per grid point, the grid ``lrs`` x
    ``alphas`` x ``checkpoints`` (iterations), ``bootstrap`` resamples for CIs,
    ``trial_batch`` attacks mapped at once, ``pad`` (play a grid of settings in
    :data:`LAYOUT`).
    """

    channels: int = 16
    inner_lr: float = 0.4
    inner_steps: int = 1
    meta_batch: int = 8
    meta_lr: float = 1e-2
    max_epochs: int = 40
    steps_per_epoch: int = 25
    patience: int = 5
    min_delta: float = 0.01
    test_tasks: int = 100
    trials: int = 32
    validation_trials: int = 8
    lrs: tuple[float, ...] = (0.1, 0.3)
    alphas: tuple[float, ...] = (1e-4, 1e-2)
    checkpoints: tuple[int, ...] = (10, 25, 50)
    bootstrap: int = 200
    trial_batch: int | str = "auto"
    pad: bool = True

    def __post_init__(self):
        for name in ("channels", "inner_steps", "meta_batch", "steps_per_epoch", "patience"):
            check_int(name, getattr(self, name), low=1)
        check_int("max_epochs", self.max_epochs, low=0)
        for name in ("test_tasks", "trials", "validation_trials", "bootstrap"):
            check_int(name, getattr(self, name), low=2)
        check_positive_float("inner_lr", self.inner_lr)
        check_positive_float("meta_lr", self.meta_lr)
        check_nonnegative("min_delta", self.min_delta)
        for name in ("lrs", "alphas", "checkpoints"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def grid(self):
        from mtl_tracing.attacks import maml_game as mg

        return mg.AttackGrid(self.lrs, self.alphas, self.checkpoints)

    def game(self, shots: int, kinds=("query", "support")):
        from mtl_tracing.attacks import maml_game as mg

        return mg.GameConfig(
            kinds=tuple(kinds),
            shots=shots,
            trials=self.trials,
            validation_trials=self.validation_trials,
            grid=self.grid(),
            trial_batch=self.trial_batch,
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Per source. Digits: cheap (the default ``reproduce`` runs them, 2-block net at 8x8).
#: MNIST / Fashion-MNIST: the usual 4-block conv net of MAML (32 filters, as MAML's
#: MiniImagenet net) at 28x28; 24 test trials and 6 validation trials per grid point (the
#: four grid points x 6 = 24: one attack program) keep a 9-setting table within ~2 h on a
#: loaded 2-core CPU.
DEFAULTS = {
    "digits": VictimSettings(),
    "mnist": VictimSettings(
        channels=32,
        meta_lr=3e-3,
        max_epochs=60,
        patience=6,
        trials=24,
        validation_trials=6,
        lrs=(0.03, 0.1),
        pad=False,
    ),
}
DEFAULTS["fashion-mnist"] = DEFAULTS["mnist"]
QUICK_VICTIM = VictimSettings(
    max_epochs=2,
    steps_per_epoch=10,
    test_tasks=20,
    trials=8,
    validation_trials=8,
    lrs=(0.1,),
    alphas=(1e-3,),
    checkpoints=(10, 20),
    bootstrap=50,
    pad=False,  # one 3-way 1-shot setting per job: the three quick jobs share its programs
)


def settings_for(source: str, quick: bool = False, **overrides) -> VictimSettings:
    """The settings of ``source`` (``QUICK_VICTIM`` when ``quick``), fields overridden by any
    non-None keyword."""
    check_choice("source", source, tuple(DEFAULTS))
    base = QUICK_VICTIM if quick else DEFAULTS[source]
    if quick and source != "digits":
        base = dataclasses.replace(base, channels=8)
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def source_option():
    return (
        Option(
            "--source",
            str,
            "digits (bundled, default), mnist or fashion-mnist",
            None,
            ("digits", "mnist", "fashion-mnist"),
        ),
        Option("--data-dir", str, "folder with the IDX files (mnist / fashion-mnist)"),
        Option("--trials", int, "test trials per game (default: the source's)"),
        Option(
            "--nonmember",
            str,
            "non-members of the headline: any-class (the paper's, default) or same-class; the "
            "files report both",
            None,
            ("any-class", "same-class"),
        ),
    )


def load_pools(source: str, data_dir, seed: int, dtype=None):
    import jax

    from mtl_tracing.data import fewshot

    src = fewshot.load_source(source, data_dir)
    # MNIST has ~6000 images per class; 400 is plenty for few-shot tasks and keeps pools small.
    return fewshot.split_pools(
        jax.random.fold_in(jax.random.key(seed), 2**30), src, max_per_class=400, dtype=dtype
    )


def auto_epochs(trained: int) -> list[int]:
    """Observed epochs from untrained to trained: 0, 1, 2, 4, ... below ``trained``, and it."""
    out, e = [0], 1
    while e < trained:
        out.append(e)
        e *= 2
    return sorted(set(out) | {trained})


def _model(pools, ways, shots, victim: VictimSettings, layout):
    from mtl_tracing.victims import maml

    w_lay, s_lay = (ways, shots) if layout is None else layout
    if ways > w_lay or shots > s_lay:
        raise ValueError(f"(ways, shots) must fit the layout {layout}, got {(ways, shots)}")
    model = maml.ModelConfig(
        image_shape=pools.train.image_shape,
        ways=w_lay,
        channels=victim.channels,
        inner_steps=victim.inner_steps,
        inner_lr=victim.inner_lr,
    )
    return model, s_lay


def run_setting(
    key,
    pools,
    *,
    ways: int,
    shots: int,
    victim: VictimSettings,
    kinds=("query", "support"),
    noise=None,
    observe=None,
    layout=None,
    dtype=None,
    progress: bool = False,
) -> dict:
    """Train the victim for one (w, s, noise) until it plateaus and attack it.

    Args:
      observe: the epochs whose meta-parameters are attacked: None (the last), ``"auto"``
        (:func:`auto_epochs`) or a list (capped at the epochs run; the last is added).
      layout: (w, s) of the padded task layout, or None (the setting's own shape).

    Returns ``{"meta_test_accuracy": float (final), "history": [...] (epochs 0..E),
    "epochs_trained": E, "plateaued": bool, "observed": [...], "attacks": {epoch: {kind: {mode:
    summary}}}, "arrays": {name: array}, "seconds": float}``; arrays are the test scores
    ``{kind}_e{epoch}_scores`` (3, n) (targets: member, any-class, same-class) and the first
    :data:`FIG4_SAMPLES` test targets and reconstructions ``{kind}_e{epoch}_x0`` / ``_xstar``.
    """
    import jax
    import jax.numpy as jnp

    from mtl_tracing.attacks import maml_game as mg
    from mtl_tracing.data import fewshot
    from mtl_tracing.victims import maml

    for k in kinds:
        check_choice("kind", k, mg.KINDS)
    t0 = time.perf_counter()
    model, s_lay = _model(pools, ways, shots, victim, layout)
    active = jnp.asarray([ways, shots], jnp.int32)
    trainer = maml.MAMLTrainer(
        model=model,
        shots=s_lay,
        meta_batch=victim.meta_batch,
        meta_lr=victim.meta_lr,
        epochs=victim.max_epochs,
        steps_per_epoch=victim.steps_per_epoch,
        dtype=str(np.dtype(dtype or "float32")),
    )
    noise = maml.Noise() if noise is None else noise
    k_train, k_test, k_game = (jax.random.fold_in(key, i) for i in range(3))
    test_tasks = fewshot.sample_tasks(
        k_test,
        pools.test,
        ways=model.ways,
        shots=s_lay,
        num_tasks=victim.test_tasks,
        active=active,
    )
    data = maml.MAMLData(pools.train, test_tasks, noise, active)
    plateau = maml.Plateau(victim.patience, victim.min_delta)
    wanted = "all" if observe is not None else None
    kept, hist = maml.train_checkpoints(
        trainer, k_train, data, checkpoints=wanted, plateau=plateau, progress=progress
    )
    history = np.asarray(hist["meta_test_accuracy"]).tolist()
    trained = len(history) - 1
    if observe is None:
        epochs = [trained]
    elif isinstance(observe, str):
        epochs = auto_epochs(trained)
    else:
        epochs = sorted({min(int(e), trained) for e in observe} | {trained})
    game = victim.game(s_lay, kinds)
    out = {
        "meta_test_accuracy": history[-1],
        "history": history,
        "epochs_trained": trained,
        "plateaued": plateau.reached(history),
        "observed": epochs,
        "attacks": {},
        "arrays": {},
    }
    for e in epochs:
        summaries, res = mg.membership_inference(
            k_game, model, kept[e], pools, game, noise, active=active, bootstrap=victim.bootstrap
        )
        out["attacks"][str(e)] = summaries
        for kind, r in res.kinds.items():
            out["arrays"][f"{kind}_e{e}_scores"] = r.scores
            out["arrays"][f"{kind}_e{e}_x0"] = r.x0[:, :FIG4_SAMPLES]
            out["arrays"][f"{kind}_e{e}_xstar"] = r.x_star[:, :FIG4_SAMPLES]
    out["seconds"] = time.perf_counter() - t0
    return out


def find_source_dir(data_dir, source: str) -> Path | None:
    """``data_dir/<source>`` or the first ``data_dir/<source>-*`` folder (e.g. ``mnist-5k``)."""
    root = Path(data_dir)
    if (root / source).is_dir():
        return root / source
    found = sorted(p for p in root.glob(f"{source}-*") if p.is_dir())
    return found[0] if found else None


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


def check_job(out_dir, stem: str, load, summaries, figures=None) -> list[str]:
    """A job's ``check``: its files exist, then every (label, attack summary) that
    ``summaries(payload)`` yields passes :func:`check_summary` (``load(out_dir)`` reads it)."""
    bad = check_files(out_dir, stem, [stem] if figures is None else figures)
    if bad:
        return bad
    payload, _ = load(out_dir)
    for where, summary in summaries(payload):
        bad += check_summary(where, summary)
    return bad


def check_summary(where: str, s: dict) -> list[str]:
    """Problems in one attack summary (ranges, CI contains its estimate, tuned values kept)."""
    bad = []
    for name in ("accuracy", "auc", "recall"):
        v = s.get(name)
        if v is None or not 0.0 <= v <= 1.0:
            bad.append(f"{where}: {name} = {v!r} outside [0, 1]")
    lo, hi = s["auc_ci"]
    if not lo - 1e-6 <= s["auc"] <= hi + 1e-6:
        bad.append(f"{where}: AUC {s['auc']} outside its CI [{lo}, {hi}]")
    if not {"lr", "alpha", "iterations"} <= set(s.get("chosen", {})):
        bad.append(f"{where}: the tuned attack hyperparameters are not recorded")
    return bad


def attack_rows(attacks: dict, kinds=("query", "support")):
    """(kind, mode, summary) of one observed epoch's ``{kind: {mode: summary}}``."""
    for kind in kinds:
        for mode, s in attacks.get(kind, {}).items():
            yield kind, mode, s
