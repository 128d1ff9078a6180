"""Algorithm 3 (App. A.3) with any encoder of :mod:`mtl_tracing.victims.encoders`, sharded.

:class:`EncoderMTLTrainer` is a :class:`~mtl_tracing.victims.trainer.Trainer` run by
:func:`~mtl_tracing.victims.trainer.fit`, like :class:`~mtl_tracing.victims.mtl.MTLTrainer`,
and reuses its optimiser (:func:`~mtl_tracing.victims.mtl.make_optimizer`: warm start with
the encoder frozen, per-head clipping, per-parameter gradient normalisation, AdamW with the two
weight decays) and :class:`~mtl_tracing.victims.mtl.TrainConfig` (``hidden`` is unused: the
encoder spec sets the widths). Differences from ``MTLTrainer``: inputs of any shape F (images
(H, W, C) or vectors), and optional per-step subsampling of each task's samples
(``sample_batch``, App. A.3: "when there is sufficient data per task, we randomly subsample
data from each task"), and heads of any kind of :mod:`mtl_tracing.victims.heads` (``head_loss``
binary / softmax / multilabel with ``head_outputs`` C; binary is Algorithm 3's BCE).

Precision. ``compute_dtype`` (None: the parameters' own, float32 by default) is the dtype the
encoder and projection compute in, in the step, the evaluation and the embeddings the attacks
query (:func:`~mtl_tracing.victims.encoders.compute_params`): ``"bfloat16"`` runs the
convolutions and matmuls in bfloat16 with float32 parameters, GroupNorm statistics, heads,
loss and optimiser. The default stays float32: a bfloat16 run differs from a float32 one by
more than rounding, and at the paper's sizes the step is not expected to be FLOP-bound
(DEVELOPERS.md, "Real data"; ``benchmarks/bench_real.py --variants dtype=float32,bfloat16``
measures it). Training (this trainer's step, evaluation and embeddings) is where the library
takes the backend's default matmul and convolution precision: on recent NVIDIA GPUs XLA runs
float32 convolutions and matmuls in TF32 (10-bit mantissa), so a "float32" GPU run trains in
TF32. The trained models are equal in law across backends, not to float32 rounding.

Sharding. :func:`shard_tasks` places the task axis of every ``MultitaskData`` array on a 1-D
device mesh (axis ``"tasks"``, all local devices; with ``jax.distributed.initialize()`` called
first, all devices of all hosts); ``devices > 1`` makes each step constrain its task minibatch
to the same axis, so the forward and backward passes of the B tasks of a step run on their own
devices and XLA all-reduces the encoder gradient. The numbers equal the single-device ones to
float tolerance (reduction order differs; tested with 4 forced host devices).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import Array
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mtl_tracing._validate import check_int
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.victims import heads
from mtl_tracing.victims.encoders import (
    EncoderModel,
    LinearSpec,
    MLPSpec,
    ResNetSpec,
    compute_params,
    head_logits,
)
from mtl_tracing.victims.mtl import MTLState, TrainConfig, make_optimizer, steps_per_epoch

__all__ = [
    "EncoderMTLTrainer",
    "task_mesh",
    "shard_tasks",
    "embed_states",
    "generalization_gaps",
    "COMPUTE_DTYPES",
]

_AXIS = "tasks"
#: ``EncoderMTLTrainer.compute_dtype`` values (None: the parameters' dtype).
COMPUTE_DTYPES = (None, "float32", "bfloat16")


def task_mesh(devices: int | None = None) -> Mesh:
    """A 1-D mesh ``("tasks",)`` over the first ``devices`` devices (default all)."""
    devs = jax.devices()
    n = len(devs) if devices is None else check_int("devices", devices, low=1, high=len(devs))
    return Mesh(np.asarray(devs[:n]), (_AXIS,))


def shard_tasks(data: MultitaskData, mesh: Mesh) -> MultitaskData:
    """Put each array of ``data`` on ``mesh``, its task axis sharded when divisible, else
    replicated (``info`` is dropped: it never reaches the compiled program)."""
    n = mesh.devices.size

    def put(a):
        if a is None:
            return None
        a = jnp.asarray(a)
        spec = PartitionSpec(_AXIS) if a.shape[0] % n == 0 else PartitionSpec()
        return jax.device_put(a, NamedSharding(mesh, spec))

    return MultitaskData(*(put(getattr(data, f)) for f in MultitaskData._fields[:-1]), None)


@functools.cache
def _graphdef(spec, input_shape, embed_dim, tasks, dtype, head_outputs=1):
    abstract = nnx.eval_shape(
        lambda: EncoderModel(
            spec, input_shape, embed_dim, tasks, rngs=nnx.Rngs(0), dtype=jnp.dtype(dtype),
            head_outputs=head_outputs,
        )
    )  # fmt: skip
    return nnx.split(abstract)[0]


@dataclasses.dataclass(frozen=True)
class EncoderMTLTrainer:
    """Algorithm 3 with encoder ``spec`` and projection to ``embed_dim`` (module docstring).

    Fields: ``config`` (TrainConfig), ``spec`` (encoder), ``embed_dim`` (m), ``sample_batch``
    (samples per task per step, None = all N), ``devices`` (> 1: constrain each step's tasks
    to the ``"tasks"`` mesh axis of :func:`task_mesh`), ``eval_chunk`` (tasks per chunk when
    evaluating, bounds memory for images), ``head_loss`` and ``head_outputs`` (C; the heads of
    :mod:`mtl_tracing.victims.heads`: labels y (T, N) float for binary, (T, N) int for softmax,
    (T, N, C) for multilabel).
    """

    config: TrainConfig
    spec: Any
    embed_dim: int
    sample_batch: int | None = None
    devices: int = 1
    eval_chunk: int = 16
    head_loss: str = "binary"
    head_outputs: int = 1
    compute_dtype: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(self.config).__name__}")
        if not isinstance(self.spec, ResNetSpec | MLPSpec | LinearSpec):
            raise ValueError(f"spec must be ResNetSpec, MLPSpec or LinearSpec, got {self.spec!r}")
        object.__setattr__(self, "embed_dim", check_int("embed_dim", self.embed_dim, low=1))
        if self.sample_batch is not None:
            object.__setattr__(
                self, "sample_batch", check_int("sample_batch", self.sample_batch, low=1)
            )
        object.__setattr__(self, "devices", check_int("devices", self.devices, low=1))
        object.__setattr__(self, "eval_chunk", check_int("eval_chunk", self.eval_chunk, low=1))
        kind, c = heads.check_head(self.head_loss, self.head_outputs)
        object.__setattr__(self, "head_loss", kind)
        object.__setattr__(self, "head_outputs", c)
        cd = self.compute_dtype
        try:
            cd = None if cd is None else jnp.dtype(cd).name
        except TypeError:
            cd = "invalid"
        if cd not in COMPUTE_DTYPES:
            raise ValueError(
                f"compute_dtype must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}"
            )
        object.__setattr__(self, "compute_dtype", cd)

    @property
    def epochs(self) -> int:
        return self.config.epochs

    def graphdef(self, input_shape, tasks: int, dtype) -> nnx.GraphDef:
        return _graphdef(
            self.spec,
            tuple(int(s) for s in input_shape),
            self.embed_dim,
            tasks,
            jnp.dtype(dtype).name,
            self.head_outputs,
        )

    def state_sharding(self) -> NamedSharding:
        """The states' one sharding, replicated on the task mesh: :func:`~mtl_tracing.victims.
        trainer.fit_checkpoints` pins the states to it, so equal segments share one program."""
        return NamedSharding(task_mesh(self.devices), PartitionSpec())

    def _tx(self, params, tasks):
        return make_optimizer(
            self.config, params, steps_per_epoch=steps_per_epoch(tasks, self.config.task_batch)
        )

    def init(self, key: Array, data: MultitaskData) -> MTLState:
        T = data.x.shape[0]
        model = EncoderModel(
            self.spec,
            data.x.shape[2:],
            self.embed_dim,
            T,
            rngs=nnx.Rngs(params=key),
            dtype=data.x.dtype,
            head_outputs=self.head_outputs,
        )
        params = nnx.to_pure_dict(nnx.split(model)[1])
        return MTLState(params, self._tx(params, T).init(params))

    def batches(self, key: Array, data: MultitaskData) -> dict:
        T, N = data.x.shape[:2]
        B = self.config.task_batch
        k_perm, k_samp = jax.random.split(key)
        ids = jnp.resize(jax.random.permutation(k_perm, T), (steps_per_epoch(T, B), B))
        x, y = data.x[ids], data.y[ids]  # (steps, B, N, *F)
        S = self.sample_batch
        if S is not None and S < N:
            keys = jax.random.split(k_samp, ids.size).reshape(ids.shape)
            pick = jax.vmap(jax.vmap(lambda k: jax.random.permutation(k, N)[:S]))(keys)
            x = jnp.take_along_axis(x, pick.reshape(pick.shape + (1,) * (x.ndim - 3)), axis=2)
            y = jnp.take_along_axis(y, pick.reshape(pick.shape + (1,) * (y.ndim - 3)), axis=2)
        return {"ids": ids, "x": x, "y": y}

    def _constrain(self, a):
        if self.devices == 1 or a.shape[0] % self.devices:
            return a
        return jax.lax.with_sharding_constraint(
            a, NamedSharding(task_mesh(self.devices), PartitionSpec(_AXIS))
        )

    def step(self, state: MTLState, key: Array, batch: dict) -> tuple[MTLState, dict]:
        del key
        ids = batch["ids"]
        x, y = self._constrain(batch["x"]), self._constrain(batch["y"])
        T = state.params["head_bias"].shape[0]
        graphdef = self.graphdef(x.shape[2:], T, x.dtype)
        tx = self._tx(state.params, T)

        def loss_fn(p):
            e = _embed(graphdef, p, x, self.compute_dtype)
            logits = head_logits(e, p["head_kernel"], p["head_bias"], ids[:, None])
            return heads.loss(self.head_loss, logits, y)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return MTLState(optax.apply_updates(state.params, updates), opt_state), {"loss": loss}

    def logits(self, state: MTLState, x: Array) -> Array:
        """Head j on task row j: x (T, n, *F) -> (T, n) (or (T, n, C)), in chunks of tasks."""
        e = self.embed(state, x)
        return head_logits(e, state.params["head_kernel"], state.params["head_bias"])

    def loss(self, logits: Array, y: Array) -> Array:
        """The heads' mean cross-entropy (:func:`mtl_tracing.victims.heads.loss`)."""
        return heads.loss(self.head_loss, logits, y)

    def evaluate(self, state: MTLState, data: MultitaskData) -> dict:
        lt = self.logits(state, data.x)
        lh = self.logits(state, data.x_heldout)
        acc = functools.partial(heads.accuracy, self.head_loss)
        return {
            "train_loss": self.loss(lt, data.y),
            "train_accuracy": acc(lt, data.y),
            "heldout_loss": self.loss(lh, data.y_heldout),
            "heldout_accuracy": acc(lh, data.y_heldout),
        }

    def embed(self, state: MTLState, x: Array) -> Array:
        """h_theta: (tasks, n, *F) -> (tasks, n, m), in chunks of ``eval_chunk`` tasks."""
        T = state.params["head_bias"].shape[0]
        graphdef = self.graphdef(x.shape[2:], T, x.dtype)
        fn = functools.partial(_embed, graphdef, state.params, compute_dtype=self.compute_dtype)
        return _chunked(fn, x, self.eval_chunk)


def _embed(graphdef, params, x, compute_dtype=None):
    """h_theta(x) computed in ``compute_dtype`` (None: the parameters'), returned in the
    projection's parameter dtype."""
    if compute_dtype is None:
        return nnx.merge(graphdef, params).embed(x)
    model = nnx.merge(graphdef, compute_params(params, compute_dtype))
    e = model.embed(x.astype(compute_dtype))
    return e.astype(params["project"]["kernel"].dtype)


def _chunked(fn, x, chunk: int):
    """fn over the leading axis of x in chunks (lax.map over padded chunks)."""
    n = x.shape[0]
    c = min(chunk, n)
    pad = (-n) % c
    xp = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
    out = jax.lax.map(fn, xp.reshape((-1, c) + x.shape[1:]))
    return out.reshape((-1,) + out.shape[2:])[:n]


@functools.partial(jax.jit, static_argnames=("trainer",))
def _embed_states(trainer, states, x):
    return jax.vmap(lambda s: trainer.embed(s, x))(states)


def embed_states(trainer: EncoderMTLTrainer, states: MTLState, x) -> Array:
    """(R, tasks, n, m) embeddings of x (tasks, n, *F) under R stacked trained states."""
    return _embed_states(trainer, states, jnp.asarray(x))


@functools.partial(jax.jit, static_argnames=("trainer",))
def _gaps(trainer, states, data, ridge):
    T = data.x.shape[0]
    x_all = jnp.concatenate([data.x, data.x_out])
    y_all = jnp.concatenate([data.y, data.y_out])
    xh_all = jnp.concatenate([data.x_heldout, data.x_out_heldout])
    yh_all = jnp.concatenate([data.y_heldout, data.y_out_heldout])
    probe = functools.partial(
        heads.probe_loss, trainer.head_loss, classes=trainer.head_outputs, ridge=ridge
    )

    def one(s):
        tr = trainer.loss(trainer.logits(s, data.x), data.y)
        ho = trainer.loss(trainer.logits(s, data.x_heldout), data.y_heldout)
        e_fit, e_eval = trainer.embed(s, x_all), trainer.embed(s, xh_all)
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


def generalization_gaps(trainer: EncoderMTLTrainer, states: MTLState, data, ridge) -> dict:
    """The losses of Sec. 6.5 (Fig. 3) for R stacked states, each (R,): the heads' loss on the
    IN training and held-out samples, the linear probe's (:func:`~mtl_tracing.victims.heads.
    probe_loss`, fitted on a task's N samples, evaluated on its held-out ones) on IN and OUT
    tasks, and the gaps ``strong_gap = probe_out_loss - train_loss``, ``weak_gap =
    probe_out_loss - heldout_loss`` (as :func:`mtl_tracing.victims.mtl.generalization_gaps`).
    ``ridge``: the probe's ridge, a scalar of the data's dtype."""
    return _gaps(trainer, states, data, ridge)
