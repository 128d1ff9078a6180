"""Task-level DP-SGD for the shared encoder: a :class:`~mtl_tracing.victims.trainer.Trainer`.

The privacy unit is a whole task (all N samples of one user), as App. C.1 of the paper asks.
Each step of :class:`DPSGDTrainer`:

1. **Poisson task sampling.** Task i joins the step with probability q, independently (a mask
   over the T tasks: static shapes, one compiled step for every draw).
2. **Per-task gradients** of the shared encoder theta, g_i = grad_theta ell_i(theta, beta_i),
   with ell_i task i's BCE averaged over its N samples: ``jax.vmap`` over the T tasks, not a
   Python loop (``benchmarks/bench_dp.py``).
3. **Clip** each g_i to global norm C over all shared leaves: g_i min(1, C / ||g_i||).
4. **Sum and noise**: G = (sum_i mask_i clip(g_i) + N(0, z^2 C^2 I)) / (q T): the sum divided
   by the *expected* batch q T (a data-independent normaliser, so the sum's sensitivity C
   carries over).
5. The App. A.3 optimiser (:func:`~mtl_tracing.victims.mtl.make_optimizer`) then post-processes
   G, which keeps the guarantee.

**Heads are trained without noise.** Head beta_i belongs to task i alone, is updated only from
task i's gradient (and only when task i is sampled), and is never released: in the black-box
threat model the adversary queries the shared encoder h_theta only. Changing task i changes
beta_i and task i's clipped contributions, and nothing else, so the encoder's whole trajectory
is the adaptive composition of Poisson-subsampled Gaussian mechanisms on the task level, and
:func:`~mtl_tracing.victims.accounting.dpsgd_epsilon` bounds it (add/remove-one-task
adjacency).

Warm start: during the first ``warm_start_epochs`` the optimiser freezes the encoder (learning
rate 0), so those steps release nothing about the data through theta; the accountant counts
only the ``(epochs - warm_start_epochs) * steps_per_epoch`` steps that update it
(:meth:`DPSGDTrainer.noisy_steps`).

One compile for every z. The noise multiplier is a *traced* field: :meth:`DPSGDTrainer.
split_traced` gives :func:`~mtl_tracing.victims.trainer.fit` a canonical trainer (z = 0) and z
as an array, so trainers that differ only in z (hence epsilon) share one compiled program.

Libraries. Clipping and noise are written here, not taken from optax or jax_privacy:
``optax.contrib.differentially_private_aggregate`` (and ``optax.dpsgd``) take per-*example*
gradients with a leading batch axis and add noise to their sum, but they divide by the actual
batch size, draw their own keys from a seed in the optimiser state, and would also clip and
noise the heads, which must stay noise-free here; jax_privacy's clipped-gradient functions
expect a per-example loss of a whole model with fixed-size batches. Our per-task gradient of
only the shared leaves, a mask over T tasks and the expected-batch normaliser are three lines
each, tested against a per-task loop.
"""

from __future__ import annotations

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import Array

from mtl_tracing._validate import (
    check_int,
    check_nonnegative,
    check_positive_float,
    check_probability,
)
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.victims import accounting
from mtl_tracing.victims.mtl import (
    HEAD_KEYS,
    MTLState,
    MTLTrainerBase,
    make_optimizer,
    model_graphdef,
)

__all__ = ["DPConfig", "DPSGDTrainer", "clip_and_noise", "per_task_grads"]


@dataclasses.dataclass(frozen=True)
class DPConfig:
    """Task-level DP-SGD parameters (hashable).

    ``sampling_rate`` q in (0, 1]; ``noise_multiplier`` z >= 0 (0: clipping only, epsilon =
    inf); ``clip`` C > 0; ``steps_per_epoch``: default round(1 / q) (one expected pass).
    """

    sampling_rate: float = 0.25
    noise_multiplier: float = 1.0
    clip: float = 1.0
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        q = check_probability("sampling_rate", self.sampling_rate, open_high=False)
        set_(self, "sampling_rate", q)
        set_(self, "noise_multiplier", check_nonnegative("noise_multiplier", self.noise_multiplier))
        set_(self, "clip", check_positive_float("clip", self.clip))
        spe = self.steps_per_epoch
        set_(self, "steps_per_epoch", max(1, round(1 / q)) if spe is None else spe)
        check_int("steps_per_epoch", self.steps_per_epoch, low=1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _is_head(path) -> bool:
    return getattr(path[0], "key", None) in HEAD_KEYS


def _split_shared(params: dict) -> tuple[dict, dict]:
    shared = {k: v for k, v in params.items() if k not in HEAD_KEYS}
    heads = {k: params[k] for k in HEAD_KEYS}
    return shared, heads


def per_task_grads(graphdef, params: dict, x: Array, y: Array) -> tuple[dict, dict, Array]:
    """Per-task gradients of the shared leaves and of each task's own head.

    Args:
      graphdef: the model's static structure. params: one run's params (pure dict).
      x: (T, N, d) samples of all T tasks. y: (T, N) labels.

    Returns:
      (shared grads with leaves (T, ...), head grads with leaves of the params' head shapes
      (row i from task i only), per-task losses (T,)).
    """
    shared, heads = _split_shared(params)
    T = x.shape[0]

    def task_loss(sh, w_i, b_i, x_i, y_i, i):
        p = dict(
            sh,
            head_kernel=heads["head_kernel"].at[i].set(w_i),
            head_bias=heads["head_bias"].at[i].set(b_i),
        )
        model = nnx.merge(graphdef, p)
        logits = model(x_i, jnp.full(x_i.shape[:-1], i))
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y_i))

    grad_fn = jax.value_and_grad(task_loss, argnums=(0, 1, 2))
    loss, (g_sh, g_w, g_b) = jax.vmap(grad_fn, in_axes=(None, 0, 0, 0, 0, 0))(
        shared, heads["head_kernel"], heads["head_bias"], x, y, jnp.arange(T)
    )
    return g_sh, {"head_kernel": g_w, "head_bias": g_b}, loss


def clip_and_noise(key: Array, grads: dict, mask: Array, *, clip, noise_multiplier, expected):
    """(sum_i mask_i clip_C(g_i) + N(0, z^2 C^2 I)) / expected, for leaves with leading (T,).

    Returns (the privatised gradient, per-task pre-clip norms (T,)).
    """
    leaves, treedef = jax.tree.flatten(grads)
    sq = sum(jnp.sum(jnp.reshape(g, (g.shape[0], -1)) ** 2, axis=1) for g in leaves)
    norms = jnp.sqrt(sq)
    scale = mask * jnp.minimum(1.0, clip / jnp.maximum(norms, 1e-30))
    keys = jax.random.split(key, len(leaves))
    out = []
    for g, k in zip(leaves, keys, strict=True):
        total = jnp.tensordot(scale.astype(g.dtype), g, axes=1)
        noise = noise_multiplier * clip * jax.random.normal(k, total.shape, g.dtype)
        out.append((total + noise) / expected)
    return jax.tree.unflatten(treedef, out), norms


@dataclasses.dataclass(frozen=True)
class DPSGDTrainer(MTLTrainerBase):
    """Task-level DP-SGD (module docstring) as a :class:`~mtl_tracing.victims.trainer.Trainer`.

    - ``init``: as :class:`~mtl_tracing.victims.mtl.MTLTrainer` (same model and optimiser;
      warm-start schedule on ``dp.steps_per_epoch``).
    - ``batches``: (steps_per_epoch, T) Poisson masks, plus the data (static shapes).
    - ``step``: per-task gradients (vmap), clip, sum, noise, divide by q T; noise-free heads.
      Metrics: ``loss`` (mean over sampled tasks), ``sampled`` (number of sampled tasks),
      ``clipped`` (fraction of sampled tasks whose gradient norm exceeded C).
    - ``evaluate``, ``embed``: as MTLTrainer.
    """

    dp: DPConfig = dataclasses.field(default_factory=DPConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.dp, DPConfig):
            raise ValueError(f"dp must be a DPConfig, got {type(self.dp).__name__}")

    def split_traced(self) -> tuple[DPSGDTrainer, dict]:
        """(this trainer with z = 0, {"noise_multiplier": z as a float64 NumPy scalar}): the
        static key and traced values :func:`~mtl_tracing.victims.trainer.fit` compiles with."""
        static = dataclasses.replace(self, dp=dataclasses.replace(self.dp, noise_multiplier=0.0))
        return static, {"noise_multiplier": np.float64(self.dp.noise_multiplier)}

    def merge_traced(self, values: dict) -> DPSGDTrainer:
        """A copy whose ``step`` uses the traced z in ``values`` (inside ``fit``'s program)."""
        merged = copy.copy(self)
        object.__setattr__(merged, "_traced_noise", values["noise_multiplier"])
        return merged

    def _noise_multiplier(self, dtype) -> Array:
        z = getattr(self, "_traced_noise", None)
        return jnp.asarray(self.dp.noise_multiplier if z is None else z, dtype)

    def noisy_steps(self) -> int:
        """Steps that update the encoder (the accountant's count)."""
        return (self.config.epochs - self.config.warm_start_epochs) * self.dp.steps_per_epoch

    def epsilon(self, delta: float, *, accountant: str = "rdp") -> float:
        """The accountant's epsilon at ``delta`` for this trainer's (q, z, steps)."""
        return accounting.dpsgd_epsilon(
            self.dp.sampling_rate,
            self.dp.noise_multiplier,
            self.noisy_steps(),
            delta,
            accountant=accountant,
        )

    def _tx(self, params):
        return make_optimizer(self.config, params, steps_per_epoch=self.dp.steps_per_epoch)

    def init(self, key: Array, data: MultitaskData) -> MTLState:
        state = self.base.init(key, data)
        return MTLState(state.params, self._tx(state.params).init(state.params))

    def batches(self, key: Array, data: MultitaskData) -> dict:
        T, steps = data.x.shape[0], self.dp.steps_per_epoch
        mask = jax.random.bernoulli(key, self.dp.sampling_rate, (steps, T))
        x = jnp.broadcast_to(data.x, (steps,) + data.x.shape)
        y = jnp.broadcast_to(data.y, (steps,) + data.y.shape)
        return {"mask": mask, "x": x, "y": y}

    def step(self, state: MTLState, key: Array, batch: dict) -> tuple[MTLState, dict]:
        mask, x, y = batch["mask"], batch["x"], batch["y"]
        T, dtype = x.shape[0], x.dtype
        graphdef = model_graphdef(x.shape[-1], self.embed_dim, T, self.config.hidden, dtype)
        g_sh, g_heads, loss = per_task_grads(graphdef, state.params, x, y)
        expected = self.dp.sampling_rate * T
        m = mask.astype(dtype)
        shared, norms = clip_and_noise(
            key,
            g_sh,
            m,
            clip=jnp.asarray(self.dp.clip, dtype),
            noise_multiplier=self._noise_multiplier(dtype),
            expected=expected,
        )
        heads = {
            "head_kernel": g_heads["head_kernel"] * m[:, None] / expected,
            "head_bias": g_heads["head_bias"] * m / expected,
        }
        grads = dict(shared, **heads)
        updates, opt_state = self._tx(state.params).update(grads, state.opt_state, state.params)
        n = jnp.maximum(m.sum(), 1.0)
        metrics = {
            "loss": jnp.sum(loss * m) / n,
            "sampled": m.sum(),
            "clipped": jnp.sum(m * (norms > self.dp.clip)) / n,
        }
        return MTLState(optax.apply_updates(state.params, updates), opt_state), metrics

    def evaluate(self, state: MTLState, data: MultitaskData) -> dict:
        return self.base.evaluate(state, data)

    def embed(self, state: MTLState, x: Array) -> Array:
        return self.base.embed(state, x)
