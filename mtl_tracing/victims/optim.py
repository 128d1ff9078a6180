"""Algorithm 3's training hyper-parameters and optimiser (App. A.3), shared by every trainer of
its model (:mod:`mtl_tracing.victims.mtl`, GMRF, robust, DP-SGD, the encoder trainer).

Optimiser (:func:`make_optimizer`), one ``optax.multi_transform`` over a label tree:

- heads (beta_j, b_j): per-head ``clip_by_global_norm(head_clip)`` (each task's (m + 1) gradient
  is clipped on its own: "head gradients clipped at norm 1"), then AdamW(wd=1e-3);
- shared encoder theta: per-parameter ``normalize_by_update_norm`` (every weight matrix / bias
  vector gets a unit-norm gradient), then AdamW(wd=1e-4).

Warm start (Nguyen et al. 2023): for the first ``warm_start_epochs`` the shared learning rate
schedule is 0 (encoder frozen, weight decay included) and heads use ``warm_start_lr``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from mtl_tracing._validate import check_finite_float, check_int, check_positive_float

__all__ = ["HEAD_KEYS", "TrainConfig", "steps_per_epoch", "make_optimizer"]

HEAD_KEYS = ("head_kernel", "head_bias")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (App. A.3); hashable, used as a jit static argument.

    ``seed`` is for scripts building the key (``jax.random.key(seed)``); library functions take
    explicit keys.
    """

    epochs: int = 300
    task_batch: int = 16
    hidden: int = 512
    head_lr: float = 1e-3
    shared_lr: float = 1e-3
    warm_start_epochs: int = 20
    warm_start_lr: float = 1e-4
    head_weight_decay: float = 1e-3
    shared_weight_decay: float = 1e-4
    head_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "epochs", check_int("epochs", self.epochs, low=1))
        set_(self, "task_batch", check_int("task_batch", self.task_batch, low=1))
        set_(self, "hidden", check_int("hidden", self.hidden, low=1))
        for name in ("head_lr", "shared_lr", "warm_start_lr", "head_clip"):
            set_(self, name, check_positive_float(name, getattr(self, name)))
        set_(
            self,
            "warm_start_epochs",
            check_int("warm_start_epochs", self.warm_start_epochs, low=0, high=self.epochs),
        )
        for name in ("head_weight_decay", "shared_weight_decay"):
            value = check_finite_float(name, getattr(self, name))
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
            set_(self, name, value)
        set_(self, "seed", check_int("seed", self.seed, low=0))

    def replace(self, **changes) -> TrainConfig:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def steps_per_epoch(tasks: int, task_batch: int) -> int:
    """Optimiser steps per epoch: ceil(T / B)."""
    return -(-tasks // task_batch)


def _per_task(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """Apply a stateless transform to each task's slice (leading axis of every leaf) separately."""

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        out = jax.vmap(lambda u: inner.update(u, inner.init(u))[0])(updates)
        return out, state

    return optax.GradientTransformation(init_fn, update_fn)


def _labels(params: dict) -> dict:
    def label(path, _):
        names = [getattr(p, "key", getattr(p, "name", str(p))) for p in path]
        return "heads" if names[0] in HEAD_KEYS else "shared/" + "/".join(map(str, names))

    return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(config: TrainConfig, params: dict, *, steps_per_epoch: int):
    """The App. A.3 optimiser as one ``optax.multi_transform`` over heads vs shared leaves.

    Args:
      config: ``TrainConfig``.
      params: one run's params (pure dict), only its structure is used.
      steps_per_epoch: optimiser steps per epoch (for the warm-start schedules).
    """
    warm = config.warm_start_epochs * steps_per_epoch

    def head_lr(count):
        return jnp.where(count < warm, config.warm_start_lr, config.head_lr)

    def shared_lr(count):
        return jnp.where(count < warm, 0.0, config.shared_lr)

    labels = _labels(params)
    transforms = {
        "heads": optax.chain(
            _per_task(optax.clip_by_global_norm(config.head_clip)),
            optax.adamw(head_lr, weight_decay=config.head_weight_decay),
        )
    }
    for lab in jax.tree.leaves(labels):
        if lab != "heads":
            transforms[lab] = optax.chain(
                optax.normalize_by_update_norm(),
                optax.adamw(shared_lr, weight_decay=config.shared_weight_decay),
            )
    return optax.multi_transform(transforms, labels)
