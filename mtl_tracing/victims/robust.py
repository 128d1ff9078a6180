"""Adversarially robust multitask representation learning (PGD adversarial training).

After Watkins et al., "Adversarially robust multi-task representation learning" (NeurIPS 2024;
only a summary is available, so this is the standard formulation). The shared encoder h_theta
and the source-task heads are trained on worst-case perturbed inputs:

    min_{theta, beta}  (1/|B|) sum_{i in B} (1/N) sum_j
        max_{||delta_ij|| <= eps} BCE(<beta_i, h_theta(x_ij + delta_ij)> + b_i, y_ij)

over task minibatches B of the T source (IN) tasks, with Algorithm 3's optimiser. The inner
max is approximated by PGD (Madry et al. 2018): a uniform random start in the ball (from the
step's own key), then ``steps`` signed-gradient (l_inf) or normalised-gradient (l_2) ascent
steps of size ``step_size`` (default 2.5 eps / steps), each projected back onto the ball.

Target tasks (:func:`target_risks`): a fresh task gets a linear head fitted on the *frozen*
representation from few samples (ridge-logistic, :func:`~mtl_tracing.victims.mtl.probe_fit`);
its clean risk is the 0/1 error on fresh samples and its robust risk the 0/1 error under PGD
(no random start, so it is deterministic) against encoder + target head with the same budget.

Notation (argument -> symbol): ``eps`` epsilon, ``steps`` n, ``norm`` l_inf / l_2.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import check_choice, check_finite_float, check_int
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.victims.model import embed_fn
from mtl_tracing.victims.mtl import MTLState, MTLTrainerBase, accuracy, batch_bce, bce, probe_fit

__all__ = [
    "NORMS",
    "PGDConfig",
    "RobustTrainer",
    "make_trainer",
    "pgd_config",
    "pgd",
    "random_perturbation",
    "TargetRisks",
    "target_risks",
]

NORMS = ("linf", "l2")


@dataclasses.dataclass(frozen=True)
class PGDConfig:
    """PGD threat model: ``norm`` in ``NORMS``, budget ``eps`` >= 0, ``steps`` >= 1, step size
    (``None``: 2.5 eps / steps), ``random_start``."""

    norm: str = "l2"
    eps: float = 0.5
    steps: int = 5
    step_size: float | None = None
    random_start: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "norm", check_choice("norm", self.norm, NORMS))
        eps = check_finite_float("eps", self.eps)
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")
        set_(self, "eps", eps)
        set_(self, "steps", check_int("steps", self.steps, low=1))
        if self.step_size is not None:
            size = check_finite_float("step_size", self.step_size)
            if size <= 0:
                raise ValueError(f"step_size must be > 0, got {self.step_size!r}")
            set_(self, "step_size", size)
        if not isinstance(self.random_start, bool):
            raise ValueError(f"random_start must be a bool, got {self.random_start!r}")

    @property
    def alpha(self) -> float:
        return 2.5 * self.eps / self.steps if self.step_size is None else self.step_size

    def replace(self, **changes) -> PGDConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _norm(v: Array) -> Array:
    return jnp.sqrt(jnp.sum(v * v, -1, keepdims=True))


def _project(delta: Array, config: PGDConfig) -> Array:
    if config.norm == "linf":
        return jnp.clip(delta, -config.eps, config.eps)
    n = _norm(delta)
    return delta * jnp.minimum(1.0, config.eps / jnp.maximum(n, 1e-12))


def random_perturbation(key: Array, shape, config: PGDConfig, dtype, *, on_sphere=False) -> Array:
    """Uniform in the eps-ball (per sample, last axis); ``on_sphere``: norm exactly eps."""
    if config.norm == "linf":
        if on_sphere:  # a random corner of the cube: ||delta||_inf = eps
            return config.eps * flat_random.rademacher(key, shape, dtype)
        return flat_random.uniform(key, shape, dtype, -config.eps, config.eps)
    k1, k2 = jax.random.split(key)
    g = flat_random.normal(k1, shape, dtype)
    u = g / jnp.maximum(_norm(g), 1e-12)
    if on_sphere:
        return config.eps * u
    r = flat_random.uniform(k2, shape[:-1] + (1,), dtype) ** (1.0 / shape[-1])
    return config.eps * r * u


def pgd(loss_fn, x: Array, config: PGDConfig, key: Array | None = None) -> Array:
    """PGD ascent on ``loss_fn(x') -> scalar`` within the eps-ball around x (per sample).

    Returns the perturbed inputs x + delta, same shape and dtype as x. ``key`` gives the
    random start (``None``: start at delta = 0). Gradients are stopped through the result.
    """
    if key is not None and config.random_start:
        delta = random_perturbation(key, x.shape, config, x.dtype)
    else:
        delta = jnp.zeros_like(x)
    alpha = jnp.asarray(config.alpha, x.dtype)

    def body(_, d):
        g = jax.grad(lambda dd: loss_fn(x + dd))(d)
        if config.norm == "linf":
            d = d + alpha * jnp.sign(g)
        else:
            d = d + alpha * g / jnp.maximum(_norm(g), 1e-12)
        return _project(d, config)

    delta = jax.lax.fori_loop(0, config.steps, body, delta)
    return jax.lax.stop_gradient(x + delta)


@dataclasses.dataclass(frozen=True)
class RobustTrainer(MTLTrainerBase):
    """PGD adversarial training of Algorithm 3's model across the source (IN) tasks.

    ``batches`` and ``embed`` are Algorithm 3's; ``step`` replaces the minibatch's inputs by
    their PGD perturbations (random start from the step key) before the optimiser step;
    ``evaluate`` adds ``robust_heldout_accuracy`` (PGD from zero on the held-out samples).
    """

    pgd: PGDConfig = dataclasses.field(default_factory=PGDConfig)

    def init(self, key: Array, data: MultitaskData) -> MTLState:
        return self.base.init(key, data)

    def batches(self, key: Array, data: MultitaskData) -> dict:
        return self.base.batches(key, data)

    def step(self, state: MTLState, key: Array, batch: dict) -> tuple[MTLState, dict]:
        T = state.params["head_bias"].shape[-1]
        graphdef = self.graphdef_for(batch["x"], T)

        def loss_at(p, x):
            return batch_bce(graphdef, p, batch, x)

        x_adv = pgd(functools.partial(loss_at, state.params), batch["x"], self.pgd, key)
        params, opt_state, loss = self.optimizer_step(
            state.params, state.opt_state, lambda p: loss_at(p, x_adv), tasks=T
        )
        return MTLState(params, opt_state), {"loss": loss}

    def evaluate(self, state: MTLState, data: MultitaskData) -> dict:
        out = self.base.evaluate(state, data)
        graphdef = self.graphdef_for(data.x, data.x.shape[0])
        return {**out, "robust_heldout_accuracy": robust_accuracy(
            graphdef, state.params, data.x_heldout, data.y_heldout, self.pgd)}  # fmt: skip

    def embed(self, state: MTLState, x: Array) -> Array:
        return self.base.embed(state, x)


def pgd_config(*, norm: str = "l2", pgd_eps: float = 1.0, pgd_steps: int = 5) -> PGDConfig:
    """The PGD threat model of the command-line flags ``--norm --pgd-eps --pgd-steps``."""
    return PGDConfig(norm=norm, eps=pgd_eps, steps=pgd_steps)


def make_trainer(config, embed_dim: int, *, tasks: int, **pgd_options) -> RobustTrainer:
    """The trainer registry's ``robust``: :class:`RobustTrainer` with :func:`pgd_config`."""
    del tasks
    return RobustTrainer(config, embed_dim, pgd_config(**pgd_options))


def robust_accuracy(graphdef, params: dict, x: Array, y: Array, config: PGDConfig) -> Array:
    """Accuracy of the heads on task-batched x (T, n, d) under PGD from zero (per-sample loss)."""
    from mtl_tracing.victims.model import logits_fn

    def loss(xx):  # sum, so each sample's gradient is its own loss's
        logits = logits_fn(graphdef, params, xx)
        return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, y))

    x_adv = pgd(loss, x, config, None)
    return accuracy(logits_fn(graphdef, params, x_adv), y)


class TargetRisks(NamedTuple):
    """Per target task, (T_target,): clean and robust 0/1 risk, clean BCE."""

    clean_risk: Array
    robust_risk: Array
    clean_loss: Array


@functools.partial(jax.jit, static_argnames=("graphdef", "config", "shots", "newton_steps"))
def _target_kernel(graphdef, params, x_fit, y_fit, x_eval, y_eval, ridge, *, config, shots,
                   newton_steps):  # fmt: skip
    def one(xf, yf, xe, ye):
        w = probe_fit(embed_fn(graphdef, params, xf[:shots]), yf[:shots], ridge=ridge,
                      newton_steps=newton_steps)  # fmt: skip

        def logits(xx):
            return embed_fn(graphdef, params, xx) @ w[:-1] + w[-1]

        def loss(xx):
            return jnp.sum(optax.sigmoid_binary_cross_entropy(logits(xx), ye))

        x_adv = pgd(loss, xe, config, None)
        clean = logits(xe)
        return (
            1.0 - accuracy(clean, ye),
            1.0 - accuracy(logits(x_adv), ye),
            bce(clean, ye),
        )

    return TargetRisks(*jax.vmap(one)(x_fit, y_fit, x_eval, y_eval))


def target_risks(
    graphdef,
    params: dict,
    data: MultitaskData,
    config: PGDConfig,
    *,
    shots: int = 8,
    ridge: float = 1.0,
    newton_steps: int = 25,
) -> TargetRisks:
    """Clean and robust risk of few-shot linear heads on the frozen representation.

    The OUT tasks of ``data`` are the target tasks (never trained on): each gets a
    ridge-logistic head fitted on the embeddings of its first ``shots`` pool samples (x_out)
    and is evaluated on its held-out samples (x_out_heldout), clean and under PGD (from zero)
    against encoder + head with the budget of ``config``. ``params``: one run's parameters.
    """
    if data.x_out_heldout is None:
        raise ValueError("data.x_out_heldout must be an array (target tasks' test samples)")
    shots = check_int("shots", shots, low=1, high=data.x_out.shape[1])
    if not isinstance(config, PGDConfig):
        raise ValueError(f"config must be a PGDConfig, got {type(config).__name__}")
    return _target_kernel(
        graphdef, params, data.x_out, data.y_out, data.x_out_heldout, data.y_out_heldout,
        jnp.asarray(ridge, data.x.dtype), config=config, shots=shots,
        newton_steps=check_int("newton_steps", newton_steps, low=1),
    )  # fmt: skip
