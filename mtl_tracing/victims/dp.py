"""Task-level DP-SGD for the shared encoder: a :class:`~mtl_tracing.victims.trainer.Trainer`.

The privacy unit is a whole task (all N samples of one user), as App. C.1 of the paper asks.
Each step of :class:`DPSGDTrainer`:

1. **Poisson task sampling.** Task i joins the step with probability q, independently (a mask
   over the T tasks: static shapes, one compiled step for every draw).
2. **Per-task gradients** of the shared encoder theta, g_i = grad_theta ell_i(theta, beta_i),
   with ell_i task i's BCE averaged over its N samples, never a Python loop
   (``benchmarks/bench_dp.py``). Default ``per_task="ghost"``: only their norms, from N x N
   Grams, and the clipped sum as one weighted backward pass, skipping chunks of tasks with
   none sampled (:func:`ghost_clipped_grads`); ``per_task="vmap"``: ``jax.vmap`` over the T
   tasks (:func:`per_task_grads`), the reference. Same result to float tolerance.
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
    "PER_TASK_METHODS",
    "clip_and_noise",
    "ghost_clipped_grads",
    "per_task_grads",
]

PER_TASK_METHODS = ("ghost", "vmap")


@dataclasses.dataclass(frozen=True)
class DPConfig:
    """Task-level DP-SGD parameters (hashable).

    ``sampling_rate`` q in (0, 1]; ``noise_multiplier`` z >= 0 (0: clipping only, epsilon =
    inf); ``clip`` C > 0; ``steps_per_epoch``: default round(1 / q) (one expected pass).
    ``per_task``: how the clipped sum of per-task gradients is computed, ``"ghost"``
    (:func:`ghost_clipped_grads`: per-task norms from Grams, one weighted backward pass; the
    default) or ``"vmap"`` (:func:`per_task_grads` then :func:`clip_and_noise`: the
    reference). Both give the same privatised gradient to float tolerance (tested in float32
    and float64). ``task_chunk``: the ghost path skips chunks of this many tasks that hold no
    sampled task (:func:`ghost_clipped_grads`); default ceil(q T / 2).
    """

    sampling_rate: float = 0.25
    noise_multiplier: float = 1.0
    clip: float = 1.0
    steps_per_epoch: int | None = None
    per_task: str = "ghost"
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
        noise = noise_multiplier * clip * jax.random.normal(k, total.shape, total.dtype)
        out.append((total + noise) / expected)
    return jax.tree.unflatten(treedef, out)


def clip_and_noise(key: Array, grads: dict, mask: Array, *, clip, noise_multiplier, expected):
    """(sum_i mask_i clip_C(g_i) + N(0, z^2 C^2 I)) / expected, for leaves with leading (T,).

    Returns (the privatised gradient, per-task pre-clip norms (T,)).
    """
    leaves, treedef = jax.tree.flatten(grads)
    sq = sum(jnp.sum(jnp.reshape(g, (g.shape[0], -1)) ** 2, axis=1) for g in leaves)
    norms = jnp.sqrt(sq)
    scale = _clip_scale(norms, mask, clip)
    totals = [jnp.tensordot(scale.astype(g.dtype), g, axes=1) for g in leaves]
    out = _add_noise(
        key,
        jax.tree.unflatten(treedef, totals),
        clip=clip,
        noise_multiplier=noise_multiplier,
        expected=expected,
    )
    return out, norms


def _ghost_core(params: dict, wh: Array, bh: Array, x: Array, y: Array, mask: Array, clip):
    """:func:`ghost_clipped_grads` on n tasks whose head rows are ``wh`` (n, m), ``bh`` (n,)."""
    w1, b1 = params["hidden"]["kernel"], params["hidden"]["bias"]
    w2, b2 = params["project"]["kernel"], params["project"]["bias"]
    N = x.shape[1]
    z1 = jnp.einsum("tnd,dh->tnh", x, w1) + b1
    a1 = jnp.maximum(z1, 0.0)
    e = jnp.einsum("tnh,hm->tnm", a1, w2) + b2
    logits = jnp.einsum("tnm,tm->tn", e, wh) + bh[:, None]
    loss = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y), axis=1)
    g = (jax.nn.sigmoid(logits) - y) / N  # (n, N)
    dz = jnp.einsum("tn,th->tnh", g, wh @ w2.T) * (z1 > 0)  # (n, N, H)
    w_sq = jnp.sum(wh * wh, axis=1)
    gram_x = jnp.einsum("tnd,tkd->tnk", x, x)
    gram_dz = jnp.einsum("tnh,tkh->tnk", dz, dz)
    sq = jnp.sum(gram_x * gram_dz, axis=(1, 2))
    sq += jnp.sum(jnp.sum(dz, axis=1) ** 2, axis=1)
    sq += jnp.sum(jnp.einsum("tnh,tn->th", a1, g) ** 2, axis=1) * w_sq
    sq += jnp.sum(g, axis=1) ** 2 * w_sq
    norms = jnp.sqrt(sq)
    s = _clip_scale(norms, mask, clip).astype(x.dtype)
    sg = s[:, None] * g  # (n, N)
    sdz = s[:, None, None] * dz
    shared = {
        "hidden": {
            "kernel": jnp.einsum("tnd,tnh->dh", x, sdz),
            "bias": jnp.sum(sdz, axis=(0, 1)),
        },
        "project": {
            "kernel": jnp.einsum("tnh,tnm->hm", a1, sg[:, :, None] * wh[:, None, :]),
            "bias": jnp.einsum("tn,tm->m", sg, wh),
        },
    }
    heads = {"head_kernel": jnp.einsum("tn,tnm->tm", g, e), "head_bias": jnp.sum(g, axis=1)}
    return shared, heads, loss, norms


def ghost_clipped_grads(
    params: dict, x: Array, y: Array, mask: Array, clip, *, chunk: int | None = None
):
    """Clipped sum of per-task encoder gradients without materialising them (ghost clipping).

    For Algorithm 3's MLP encoder (``MultitaskModel``: Linear(d, H) - relu - Linear(H, m),
    heads <w_t, e> + b_t) and the per-task loss ell_t = mean_j BCE. One forward pass over all
    T N samples and a hand-written backward pass give, per sample, g_tj = d ell_t / d logit_tj
    = (sigmoid(logit_tj) - y_tj) / N, the output gradient of the projection De_tj = g_tj w_t
    (rank one) and of the hidden layer Dz_tj = (De_tj W2^T) * 1[z_tj > 0]. Per-task squared
    norms then come from N x N Grams, never from (T, d, H) tensors:

      ||grad_W1 ell_t||^2 = <X_t X_t^T, Dz_t Dz_t^T>,  ||grad_b1 ell_t||^2 = ||sum_j Dz_tj||^2,
      ||grad_W2 ell_t||^2 = ||A_t^T g_t||^2 ||w_t||^2,
      ||grad_b2 ell_t||^2 = (sum_j g_tj)^2 ||w_t||^2,

    with A_t the hidden activations. The clipped sum sum_t s_t grad ell_t, s_t = mask_t min(1,
    C / ||grad ell_t||), is linear in the D's, so each weight gradient is ONE matmul over all
    rows (X^T (s * Dz), ...), never a (T, d, H) per-task gradient tensor.

    Skipping unsampled tasks (``chunk``): the tasks are reordered sampled-first (a stable
    argsort of the mask), cut into chunks of ``chunk`` tasks (the last padded with masked
    tasks) and a ``lax.scan`` over the chunks runs each under ``lax.cond``: a chunk with no
    sampled task is skipped. Every sampled task is computed (no truncation: the Poisson
    sampling and its analysis are unchanged); the result is the unchunked one up to the
    summation order. Static shapes, one program for every mask. With q T sampled tasks out of
    T the work falls to about ceil(q T / chunk) chunks. Under a vmap over runs (``fit``'s
    ``"vmap"`` layout, its default on accelerators) ``lax.cond`` becomes a select and every
    chunk runs: correct, but no skipping.

    Args:
      params: one run's params (pure dict of ``MultitaskModel``). x: (T, N, d). y: (T, N).
      mask: (T,) Poisson mask (float). clip: C. chunk: tasks per chunk (None: one pass over
        all T tasks).

    Returns:
      (clipped sum of the shared gradients (the shared params' structure, no noise), head
      gradients {"head_kernel": (T, m), "head_bias": (T,)} (row t from task t only, unclipped;
      0 for skipped tasks), per-task losses (T,) and pre-clip norms (T,) (0 for skipped tasks)).
    """
    shared_p = {k: v for k, v in params.items() if k not in HEAD_KEYS}
    wh, bh = params["head_kernel"], params["head_bias"]
    if chunk is None:
        return _ghost_core(shared_p, wh, bh, x, y, mask, clip)
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
            return _ghost_core(shared_p, wh_c, bh_c, x_c, y_c, m_c, clip)

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
    - ``step``: the clipped sum of per-task gradients (``dp.per_task``: ghost clipping or
      vmap), noise, divide by q T; noise-free heads.
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
        expected = self.dp.sampling_rate * T
        m = mask.astype(dtype)
        noise = {
            "clip": jnp.asarray(self.dp.clip, dtype),
            "noise_multiplier": self._noise_multiplier(dtype),
            "expected": expected,
        }
        if self.dp.per_task == "ghost":
            chunk = self.dp.task_chunk or max(1, math.ceil(self.dp.sampling_rate * T / 2))
            total, g_heads, loss, norms = ghost_clipped_grads(
                state.params, x, y, m, noise["clip"], chunk=min(chunk, T)
            )
            shared = _add_noise(key, total, **noise)
        else:
            graphdef = model_graphdef(x.shape[-1], self.embed_dim, T, self.config.hidden, dtype)
            g_sh, g_heads, loss = per_task_grads(graphdef, state.params, x, y)
            shared, norms = clip_and_noise(key, g_sh, m, **noise)
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
