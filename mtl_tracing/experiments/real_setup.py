"""The real-data experiment's configuration and training set-up (:mod:`.real`).

A run's configuration is the experiment's common defaults (:data:`COMMON`), then the paper's
set-up of the (data set, setting) cell from the data set registry
(:mod:`mtl_tracing.data.registry`, App. A.5-A.6), then the caller's overrides
(:func:`config_for`). The trainer is Algorithm 3 with the data set's default encoder (a small
GroupNorm ResNet for images, a hashed-n-gram MLP for text) or, with user features, a linear
projection (:func:`training_setup`), its tasks sharded over all devices.

Training choices by backend (``conv``, ``compute_dtype``; DEVELOPERS.md, "Real data"): the
ResNet's convolution is ``"auto"`` (:func:`mtl_tracing.victims.encoders.resolve_conv`:
``loop_safe_conv`` on CPU, XLA's own on GPU/TPU), the compute dtype float32 (on NVIDIA GPUs
XLA's default runs it as TF32) unless ``compute_dtype="bfloat16"``.
"""

from __future__ import annotations

import math

import numpy as np

from mtl_tracing.data import registry as datasets

__all__ = [
    "COMMON",
    "config_for",
    "checkpoint_epochs",
    "encoder_spec",
    "training_setup",
    "training_choices",
    "describe",
]

#: Defaults of every cell (the data set registry's paper set-ups override them).
COMMON = {
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


def config_for(dataset: str, setting: str, **overrides) -> dict:
    """The paper's set-up for (dataset, setting) with ``overrides`` (None values ignored)."""
    entry = datasets.get(dataset)
    if setting not in datasets.SETTINGS:
        raise ValueError(f"setting must be one of {datasets.SETTINGS}, got {setting!r}")
    if setting not in entry.paper:
        raise ValueError(f"setting must be one of {entry.settings} for {dataset}, got {setting!r}")
    cfg = {**COMMON, **entry.paper[setting]}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def checkpoint_epochs(epochs: int, checkpoints: int) -> list[int]:
    """``checkpoints`` evenly spaced epochs in [1, ``epochs``] (fewer if they coincide), the
    last ``epochs``."""
    return sorted({max(1, round(epochs * (i + 1) / checkpoints)) for i in range(checkpoints)})


def encoder_spec(encoder: str, cfg: dict, features=None):
    """The encoder of a run: linear on user ``features``, else the data set's default
    ``encoder`` (:data:`mtl_tracing.data.registry.ENCODERS`) at ``cfg``'s sizes."""
    from mtl_tracing.victims.encoders import LinearSpec, MLPSpec, ResNetSpec

    if features is not None:
        return LinearSpec()
    if encoder == "mlp":
        return MLPSpec((int(cfg["hidden"]),))
    widths = tuple(int(w) for w in str(cfg["widths"]).split(","))
    return ResNetSpec(widths, 1, groups=math.gcd(4, *widths), conv=cfg["conv"])


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
    spec = encoder_spec(datasets.get(dataset).encoder, cfg, features)
    trainer = EncoderMTLTrainer(
        train_cfg, spec, cfg["embed_dim"], sample_batch=sample_batch,
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


def training_choices(trainer, np_dtype) -> dict:
    """The backend-dependent training choices a run used (``real.json``)."""
    import jax

    from mtl_tracing.victims.encoders import ResNetSpec, resolve_conv

    spec = trainer.spec
    return {
        "backend": jax.default_backend(),
        "conv": resolve_conv(spec.conv) if isinstance(spec, ResNetSpec) else None,
        "compute_dtype": trainer.compute_dtype or np.dtype(np_dtype).name,
    }


def describe(data) -> dict:
    """The data description of ``real.json``: heads, task and sample counts, label rates."""
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
