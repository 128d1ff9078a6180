"""Task-level DP-SGD for the shared encoder: a :class:`~mtl_tracing.victims.trainer.Trainer`.

The privacy unit is a whole task (all N samples of one user), as App. C.1 of the paper asks.
Each step of :class:`DPSGDTrainer`:

1. **Poisson task sampling.** Task i joins the step with probability q, independently (a mask
   over the T tasks: static shapes, one compiled step for every draw).
2. **Per-task gradients** of the shared encoder theta, g_i = grad_theta ell_i(theta, beta_i),
   with ell_i task i's BCE averaged over its N samples, never a Python loop
   (``benchmarks/bench_dp.py``): ``jax.vmap`` over tasks (:func:`per_task_grads`).
   ``per_task="chunked"``: tasks reordered sampled-first in chunks, a chunk with no sampled
   task skipped (:func:`clipped_task_sum`); ``per_task="all"``: all T tasks at once, the
   reference; the default ``"auto"`` takes the faster on the running backend (chunked on
   CPU, all on a GPU: :func:`resolve_per_task`). Same result to float tolerance.
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
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import (
    check_choice,
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

__all__ = [
    "DPConfig",
    "DPSGDTrainer",
    "DP_DELTA",
    "make_trainer",
    "PER_TASK_METHODS",
    "clip_and_noise",
    "clipped_task_sum",
    "per_task_grads",
]

PER_TASK_METHODS = ("auto", "chunked", "all")


def resolve_per_task(per_task: str) -> str:
    """``"auto"`` -> the faster per-task path on the running backend (measured by
    ``benchmarks/bench_dp.py``, T = 64, q = 1/4): ``"chunked"`` on CPU (1.5 ms against 3.5 ms
    for ``"all"`` on 2 cores: it skips chunks with no sampled task) and ``"all"`` elsewhere (on
    an H200 the chunks' ``lax.scan`` of ``lax.cond`` took 0.60 ms against 0.36 ms: one wide
    vmap beats sequential chunks, and under a vmap over runs the cond is a select anyway)."""
    if per_task != "auto":
        return per_task
    return "chunked" if jax.default_backend() == "cpu" else "all"


@dataclasses.dataclass(frozen=True)
class DPConfig:
    """Task-level DP-SGD parameters (hashable).

    ``sampling_rate`` q in (0, 1]; ``noise_multiplier`` z >= 0 (0: clipping only, epsilon =
    inf); ``clip`` C > 0; ``steps_per_epoch``: default round(1 / q) (one expected pass).
    ``per_task``: ``"chunked"`` (:func:`clipped_task_sum` skips chunks of ``task_chunk``
    tasks that hold no sampled task; default ceil(q T / 2)), ``"all"`` (every task's gradient,
    then :func:`clip_and_noise`: the reference) or ``"auto"`` (the default: the faster of the
    two on the running backend, :func:`resolve_per_task`). Both give the same privatised
    gradient to float tolerance (tested in float32 and float64).
    """

    sampling_rate: float = 0.25
    noise_multiplier: float = 1.0
    clip: float = 1.0
    steps_per_epoch: int | None = None
    per_task: str = "auto"
    task_chunk: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        q = check_probability("sampling_rate", self.sampling_rate, open_high=False)
        set_(self, "sampling_rate", q)
        set_(self, "noise_multiplier", check_nonnegative("noise_multiplier", self.noise_multiplier))
        set_(self, "clip", check_positive_float("clip", self.clip))
        spe = self.steps_per_epoch
        set_(self, "steps_per_epoch", max(1, round(1 / q)) if spe is None else spe)
        check_int("steps_per_epoch", self.steps_per_epoch, low=1)
        check_choice("per_task", self.per_task, PER_TASK_METHODS)
        if self.task_chunk is not None:
            set_(self, "task_chunk", check_int("task_chunk", self.task_chunk, low=1))

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


def _clip_scale(norms: Array, mask: Array, clip) -> Array:
    """s_i = mask_i min(1, C / ||g_i||), (T,)."""
    return mask * jnp.minimum(1.0, clip / jnp.maximum(norms, 1e-30))


def _add_noise(key: Array, totals: dict, *, clip, noise_multiplier, expected) -> dict:
    """(total + N(0, z^2 C^2 I)) / expected per leaf; leaf l uses ``split(key, L)[l]``."""
    leaves, treedef = jax.tree.flatten(totals)
    keys = jax.random.split(key, len(leaves))
    out = []
    for total, k in zip(leaves, keys, strict=True):
        noise = noise_multiplier * clip * flat_random.normal(k, total.shape, total.dtype)
        out.append((total + noise) / expected)
    return jax.tree.unflatten(treedef, out)


def _clipped_sum(grads: dict, mask: Array, clip) -> tuple[dict, Array]:
    """(sum_i s_i g_i, per-task pre-clip norms (T,)), s_i = mask_i min(1, C / ||g_i||)."""
    leaves, treedef = jax.tree.flatten(grads)
    sq = sum(jnp.sum(jnp.reshape(g, (g.shape[0], -1)) ** 2, axis=1) for g in leaves)
    norms = jnp.sqrt(sq)
    scale = _clip_scale(norms, mask, clip)
    totals = [jnp.tensordot(scale.astype(g.dtype), g, axes=1) for g in leaves]
    return jax.tree.unflatten(treedef, totals), norms


def clip_and_noise(key: Array, grads: dict, mask: Array, *, clip, noise_multiplier, expected):
    """(sum_i mask_i clip_C(g_i) + N(0, z^2 C^2 I)) / expected, for leaves with leading (T,).

    Returns (the privatised gradient, per-task pre-clip norms (T,)).
    """
    totals, norms = _clipped_sum(grads, mask, clip)
    noised = _add_noise(
        key, totals, clip=clip, noise_multiplier=noise_multiplier, expected=expected
    )
    return noised, norms


def _task_sum_core(params: dict, x: Array, y: Array, mask: Array, clip, hidden: int):
    """Per-task gradients (:func:`per_task_grads`) of these n tasks, clipped and summed."""
    n, _, d = x.shape
    graphdef = model_graphdef(d, params["head_kernel"].shape[-1], n, hidden, x.dtype)
    g_sh, heads, loss = per_task_grads(graphdef, params, x, y)
    total, norms = _clipped_sum(g_sh, mask, clip)
    return total, heads, loss, norms


def clipped_task_sum(
    params: dict, x: Array, y: Array, mask: Array, clip, *, hidden: int, chunk: int | None = None
):
    """sum_t mask_t clip_C(g_t) over the T tasks, skipping chunks with no sampled task.

    The tasks are reordered sampled-first (a stable argsort of the mask), cut into chunks of
    ``chunk`` tasks (the last padded with masked tasks), and a ``lax.scan`` over the chunks
    runs each under ``lax.cond``: the per-task gradients (``jax.vmap``) of a chunk with no
    sampled task are never computed. Every sampled task is computed (no truncation: the
    Poisson sampling and its analysis are unchanged); the result is the unchunked one up to
    the summation order. Static shapes, one program for every mask; with q T sampled tasks
    the work falls to about ceil(q T / chunk) chunks. Under a vmap over runs (``fit``'s
    ``"vmap"`` layout, its default on accelerators) ``lax.cond`` becomes a select and every
    chunk runs: correct, but no skipping.

    Args:
      params: one run's params (pure dict of ``MultitaskModel``). x: (T, N, d). y: (T, N).
      mask: (T,) Poisson mask (float). clip: C. hidden: the encoder's width H.
      chunk: tasks per chunk (None: all T tasks in one pass).

    Returns:
      (clipped sum of the shared gradients (the shared params' structure, no noise), head
      gradients {"head_kernel": (T, m), "head_bias": (T,)} (row t from task t only, unclipped;
      0 for skipped tasks), per-task losses (T,) and pre-clip norms (T,) (0 for skipped tasks)).
    """
    if chunk is None:
        return _task_sum_core(params, x, y, mask, clip, hidden)
    shared_p = {k: v for k, v in params.items() if k not in HEAD_KEYS}
    wh, bh = params["head_kernel"], params["head_bias"]
    T = x.shape[0]
    chunk = check_int("chunk", chunk, low=1)
    n_chunks = -(-T // chunk)
    pad = n_chunks * chunk - T
    order = jnp.argsort(mask <= 0, stable=True)  # sampled tasks first
    order = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)])
    m_sorted = jnp.concatenate([mask[order[:T]], jnp.zeros((pad,), mask.dtype)])

    def chunked(a):
        return a[order].reshape((n_chunks, chunk) + a.shape[1:])

    xs = (chunked(wh), chunked(bh), chunked(x), chunked(y), m_sorted.reshape(n_chunks, chunk))
    zero_total = jax.tree.map(jnp.zeros_like, shared_p)

    def body(total, xs_c):
        wh_c, bh_c, x_c, y_c, m_c = xs_c

        def run(_):
            p = dict(shared_p, head_kernel=wh_c, head_bias=bh_c)
            return _task_sum_core(p, x_c, y_c, m_c, clip, hidden)

        def skip(_):
            zeros = jnp.zeros((chunk,), x.dtype)
            heads = {"head_kernel": jnp.zeros_like(wh_c), "head_bias": zeros}
            return zero_total, heads, zeros, zeros

        part, heads, loss, norms = jax.lax.cond(jnp.any(m_c > 0), run, skip, None)
        return jax.tree.map(jnp.add, total, part), (heads, loss, norms)

    total, per_task = jax.lax.scan(body, zero_total, xs)
    inverse = jnp.argsort(order[:T])  # position of task t in the sorted order

    def unsorted(a):
        return a.reshape((n_chunks * chunk,) + a.shape[2:])[inverse]

    heads, loss, norms = jax.tree.map(unsorted, per_task)
    return total, heads, loss, norms


@dataclasses.dataclass(frozen=True)
class DPSGDTrainer(MTLTrainerBase):
    """Task-level DP-SGD (module docstring) as a :class:`~mtl_tracing.victims.trainer.Trainer`.

    - ``init``: as :class:`~mtl_tracing.victims.mtl.MTLTrainer` (same model and optimiser;
      warm-start schedule on ``dp.steps_per_epoch``).
    - ``batches``: (steps_per_epoch, T) Poisson masks, plus the data (static shapes).
    - ``step``: the clipped sum of per-task gradients (``dp.per_task``: by chunks that skip
      unsampled tasks, or all at once), noise, divide by q T; noise-free heads.
      Metrics: ``loss`` (mean over sampled tasks), ``sampled`` (number of sampled tasks),
      ``clipped`` (fraction of sampled tasks whose gradient norm exceeded C).
    - ``evaluate``, ``embed``: as MTLTrainer.
    """

    dp: DPConfig = dataclasses.field(default_factory=DPConfig)

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
        mask = flat_random.bernoulli(key, self.dp.sampling_rate, (steps, T))
        x = jnp.broadcast_to(data.x, (steps,) + data.x.shape)
        y = jnp.broadcast_to(data.y, (steps,) + data.y.shape)
        return {"mask": mask, "x": x, "y": y}

    def step(self, state: MTLState, key: Array, batch: dict) -> tuple[MTLState, dict]:
        mask, x, y = batch["mask"], batch["x"], batch["y"]
        T, dtype = x.shape[0], x.dtype
        expected = self.dp.sampling_rate * T
        m = mask.astype(dtype)
        noise = {
            "clip": jnp.asarray(self.dp.clip, dtype),
            "noise_multiplier": self._noise_multiplier(dtype),
            "expected": expected,
        }
        chunk = None
        if resolve_per_task(self.dp.per_task) == "chunked":
            chunk = self.dp.task_chunk or max(1, math.ceil(self.dp.sampling_rate * T / 2))
            chunk = min(chunk, T)
        total, g_heads, loss, norms = clipped_task_sum(
            state.params, x, y, m, noise["clip"], hidden=self.config.hidden, chunk=chunk
        )
        shared = _add_noise(key, total, **noise)
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


#: delta of the registry's DP-SGD trainer (``--dp-epsilon`` is its epsilon at this delta).
DP_DELTA = 1e-5


def make_trainer(
    config, embed_dim: int, *, tasks: int, dp_epsilon: float = 4.0, delta: float = DP_DELTA
) -> DPSGDTrainer:
    """The trainer registry's ``dp``: task-level DP-SGD at (``dp_epsilon``, ``delta``).

    Clip C = 1, task sampling rate q = B / T (the non-private trainer's expected batch, B =
    ``config.task_batch``, T = ``tasks``), and the noise multiplier z the RDP accountant
    calibrates to ``dp_epsilon`` over the trainer's noisy steps.
    """
    dp_epsilon = check_positive_float("dp_epsilon", dp_epsilon)
    q = config.task_batch / check_int("tasks", tasks, low=1)
    probe = DPSGDTrainer(config, embed_dim, DPConfig(q, 0.0, 1.0))
    if probe.noisy_steps() < 1:
        raise ValueError(
            f"epochs must exceed warm_start_epochs (no noisy step to calibrate), got "
            f"{config.epochs} and {config.warm_start_epochs}"
        )
    z = accounting.calibrate_noise(dp_epsilon, q, probe.noisy_steps(), delta)
    return DPSGDTrainer(config, embed_dim, DPConfig(q, z, 1.0))
