"""MAML as a victim (Sec. III of "Privacy Challenges in Meta-Learning"): second-order MAML on
few-shot image tasks, with each task learner's shared gradient g_i exposed for the attacks.

Notation (argument -> paper symbol): ``params`` omega (meta-parameters), ``theta`` theta_i
(adapted parameters), ``inner_steps`` the steps of the update U (eq. 5), ``inner_lr`` its step
size, ``task_gradients(...).grads`` g_i = grad_omega L(U(omega, D^s_i), D^q_i) (eq. 2, 4),
``meta_batch`` the tasks of one meta-step, w ``ways``, s ``shots``.

- **Model** (:class:`ConvNet`): a Flax NNX conv net sized for the image. MAML's 4-block conv
  for 28x28 (3x3 convolutions of stride 2, as MAML's Omniglot net, so every layer is smooth to
  differentiate three times), 2 blocks for 8x8; then a linear head with w outputs.
- **Inner loop** (:func:`adapt`): ``inner_steps`` SGD steps on the support set.
- **Meta-gradient** (:func:`task_gradients`): second order, ``jax.grad`` through the inner
  loop; the B tasks of a meta-batch are vmapped, and sharded over devices on the task axis
  (``jax.sharding``) when asked.
- **Defences** (Sec. IV-E, :class:`Noise`): Gaussian noise with standard deviation sigma at
  four places: the support data, the adaptation gradient (every inner step), the query data
  and the validation gradient (g_i itself).
- **Training** (:class:`MAMLTrainer`): implements the :class:`~mtl_tracing.victims.trainer.
  Trainer` protocol, so :func:`~mtl_tracing.victims.trainer.fit` meta-trains it;
  :func:`train_checkpoints` is the same schedule (same keys, same numbers) keeping the
  meta-parameters at chosen epochs (the sensitivity study observes g_i at several epochs).
  Utility is the meta-test accuracy: adapt (without noise) on the support set of tasks from the
  ``test`` pool, accuracy on their query set.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import Array
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mtl_tracing import flat_random
from mtl_tracing._validate import (
    check_choice,
    check_int,
    check_key,
    check_nonnegative,
    check_positive_float,
)
from mtl_tracing.data.fewshot import FewShotPool, FewShotTasks, check_task_shape, sample_tasks

__all__ = [
    "NOISE_PLACES",
    "ACTIVATIONS",
    "ConvNet",
    "PatchConv",
    "ModelConfig",
    "Noise",
    "noise_at",
    "MAMLData",
    "MAMLState",
    "MetaBatch",
    "TaskGradients",
    "MAMLTrainer",
    "init_params",
    "apply",
    "loss_fn",
    "adapt",
    "task_gradient",
    "task_gradients",
    "task_mesh",
    "meta_test_accuracy",
    "train_checkpoints",
    "tree_dot",
    "tree_cosine",
]

NOISE_PLACES = ("support", "adaptation", "query", "validation")
ACTIVATIONS = ("relu", "tanh", "softplus")
_ACT = {"relu": jax.nn.relu, "tanh": jnp.tanh, "softplus": jax.nn.softplus}


class PatchConv(nnx.Module):
    """3x3 convolution, stride 2, SAME padding, as patches (im2col) @ kernel.

    The same function as ``nnx.Conv(c_in, c_out, (3, 3), strides=2, padding="SAME")`` (tested),
    written as a matmul, so that per-trial weight gradients (what the attacks differentiate,
    vmapped over trials) are batched matmuls rather than XLA's batch-grouped convolutions.
    """

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        init = flat_random.lecun_normal()  # flax's default, drawn flat
        self.kernel = nnx.Param(init(rngs.params(), (3, 3, c_in, c_out)))
        self.bias = nnx.Param(jnp.zeros((c_out,)))

    def __call__(self, x):
        lead = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        patches = jax.lax.conv_general_dilated_patches(
            x, (3, 3), (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )  # (n, H', W', c_in * 9), feature index c * 9 + 3 i + j
        kernel = self.kernel[...]
        k = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(-1, kernel.shape[-1])
        y = patches @ k + self.bias[...]
        return y.reshape(lead + y.shape[1:])


class ConvNet(nnx.Module):
    """Conv blocks (3x3, stride 2, ``channels`` filters, activation) then a linear head.

    Input (..., H, W, 1) -> logits (..., ways). ``features`` is the flattened last block.
    """

    def __init__(self, image_shape, ways, channels, blocks, activation, conv="xla", *, rngs):
        h, w, c = image_shape
        convs = []
        for _ in range(blocks):
            if conv == "patches":
                convs.append(PatchConv(c, channels, rngs=rngs))
            else:
                kw = {"strides": 2, "padding": "SAME", "kernel_init": flat_random.lecun_normal()}
                convs.append(nnx.Conv(c, channels, (3, 3), rngs=rngs, **kw))
            c = channels
            h, w = -(-h // 2), -(-w // 2)
        self.convs = nnx.List(convs)
        self.head = nnx.Linear(h * w * c, ways, rngs=rngs, kernel_init=flat_random.lecun_normal())
        self.activation = activation

    def features(self, x):
        act = _ACT[self.activation]
        for conv in self.convs:
            x = act(conv(x))
        return x.reshape(x.shape[:-3] + (-1,))

    def __call__(self, x):
        return self.head(self.features(x))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The victim: model and inner loop (static, hashable).

    Fields:
      image_shape: (H, W, 1).
      ways: w, the classes of a task (the head's outputs).
      channels: filters per conv block (MAML: 64 on Omniglot, 32 on MiniImagenet).
      blocks: conv blocks; None picks 4 for images >= 16 pixels a side, else 2.
      activation: one of :data:`ACTIVATIONS`.
      inner_steps: SGD steps of the adaptation U (>= 1).
      inner_lr: their step size.
      conv: ``"patches"`` (default, :class:`PatchConv`) or ``"xla"`` (``nnx.Conv``): the same
        function; patches ran the support attack 3-10x faster on a 2-core CPU
        (``benchmarks/README.md``).
    """

    image_shape: tuple[int, int, int] = (8, 8, 1)
    ways: int = 5
    channels: int = 16
    blocks: int | None = None
    activation: str = "relu"
    inner_steps: int = 1
    inner_lr: float = 0.1
    conv: str = "patches"

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) != 3 or shape[2] != 1 or min(shape) < 1:
            raise ValueError(f"image_shape must be (H, W, 1), got {self.image_shape!r}")
        object.__setattr__(self, "image_shape", tuple(int(s) for s in shape))
        check_int("ways", self.ways, low=2)
        check_int("channels", self.channels, low=1)
        if self.blocks is None:
            object.__setattr__(self, "blocks", 4 if min(shape[:2]) >= 16 else 2)
        check_int("blocks", self.blocks, low=1, high=6)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_int("inner_steps", self.inner_steps, low=1)
        check_choice("conv", self.conv, ("xla", "patches"))
        object.__setattr__(self, "inner_lr", check_positive_float("inner_lr", self.inner_lr))

    def build(self, rngs: nnx.Rngs) -> ConvNet:
        return ConvNet(
            self.image_shape,
            self.ways,
            self.channels,
            self.blocks,
            self.activation,
            self.conv,
            rngs=rngs,
        )


@functools.lru_cache(maxsize=64)
def _graphdef(model: ModelConfig):
    return nnx.split(nnx.eval_shape(lambda: model.build(nnx.Rngs(0))))[0]


def init_params(model: ModelConfig, key: Array, dtype=None):
    """omega_0: the meta-parameters of a freshly initialised :class:`ConvNet` (a State pytree)."""
    params = nnx.split(model.build(nnx.Rngs(key)))[1]
    if dtype is not None:
        params = jax.tree.map(lambda p: p.astype(dtype), params)
    return params


def apply(model: ModelConfig, params, x: Array) -> Array:
    """Logits (..., w) of images x (..., H, W, 1)."""
    return nnx.merge(_graphdef(model), params)(x)


def features(model: ModelConfig, params, x: Array) -> Array:
    """The penultimate representation (..., m) of images x (..., H, W, 1)."""
    return nnx.merge(_graphdef(model), params).features(x)


def loss_fn(model: ModelConfig, params, x: Array, y: Array) -> Array:
    """Mean cross-entropy of images x (n, H, W, 1) with integer labels y (n,)."""
    logits = apply(model, params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def tree_dot(a, b) -> Array:
    """<a, b> summed over all leaves of two pytrees of the same structure."""
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def tree_cosine(a, b, eps: float = 1e-12) -> Array:
    """cos(a, b) of two pytrees flattened into vectors."""
    return tree_dot(a, b) / jnp.sqrt(tree_dot(a, a) * tree_dot(b, b) + eps)


def _tree_normal(key: Array, tree, sigma):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    noise = [
        sigma * flat_random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, noise)


class Noise(NamedTuple):
    """Standard deviations of the four defences (Sec. IV-E); a pytree, traced (no recompile).

    Fields: ``support`` (added to D^s), ``adaptation`` (to every inner-loop gradient),
    ``query`` (to D^q), ``validation`` (to g_i). Build with :func:`noise_at` or
    ``Noise(0., 0., 0., 0.)``.
    """

    support: Any = 0.0
    adaptation: Any = 0.0
    query: Any = 0.0
    validation: Any = 0.0

    def check(self) -> Noise:
        """Validated copy (every sigma finite and >= 0); not traceable."""
        pairs = zip(NOISE_PLACES, self, strict=True)
        return Noise(*(check_nonnegative(f"sigma ({p})", _host(v)) for p, v in pairs))


def _host(v):
    return v if isinstance(v, int | float) else np.asarray(v)


def noise_at(place: str, sigma: float) -> Noise:
    """Noise of standard deviation ``sigma`` at one of :data:`NOISE_PLACES` (``"none"`` too)."""
    check_choice("noise place", place, ("none",) + NOISE_PLACES)
    sigma = check_nonnegative("sigma", sigma)
    if place == "none":
        return Noise()
    return Noise(**{place: sigma})


def adapt(model: ModelConfig, params, x: Array, y: Array, key: Array | None = None, sigma=0.0):
    """theta = U(omega, D^s): ``inner_steps`` SGD steps on (x, y), each gradient plus
    N(0, sigma^2) noise (the adaptation-gradient defence; ``key`` may be None when sigma = 0).

    Differentiable in ``params`` (second order) and in ``x`` (the support attack).
    """
    grad = jax.grad(functools.partial(loss_fn, model))
    theta = params
    for i in range(model.inner_steps):
        g = grad(theta, x, y)
        if key is not None:
            g = jax.tree.map(jnp.add, g, _tree_normal(jax.random.fold_in(key, i), g, sigma))
        theta = jax.tree.map(lambda t, gg: t - model.inner_lr * gg, theta, g)
    return theta


class TaskGradients(NamedTuple):
    """What the task learners send: g_i (leaves (B, ...)), and their query loss/accuracy (B,)."""

    grads: Any
    loss: Array
    accuracy: Array


def task_gradient(model: ModelConfig, params, task: FewShotTasks, key: Array, noise: Noise):
    """One task learner (unbatched ``task``): g_i = grad_omega L(U(omega, D^s), D^q) + noise.

    Returns ``(g_i, query loss, query accuracy)``.
    """
    k_s, k_a, k_q, k_v = jax.random.split(key, 4)
    dt = task.support_x.dtype
    xs = task.support_x + noise.support * flat_random.normal(k_s, task.support_x.shape, dt)
    xq = task.query_x + noise.query * flat_random.normal(k_q, task.query_x.shape, dt)

    def outer(omega):
        theta = adapt(model, omega, xs, task.support_y, k_a, noise.adaptation)
        logits = apply(model, theta, xq)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, task.query_y).mean()
        acc = jnp.mean(jnp.argmax(logits, -1) == task.query_y)
        return loss, acc

    (loss, acc), g = jax.value_and_grad(outer, has_aux=True)(params)
    g = jax.tree.map(jnp.add, g, _tree_normal(k_v, g, noise.validation))
    return g, loss, acc.astype(loss.dtype)


def params_dtype(params):
    return jax.tree.leaves(params)[0].dtype


def task_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh ``("tasks",)`` over ``devices`` (default: all), for sharding a meta-batch."""
    devs = np.asarray(jax.devices() if devices is None else devices)
    return jax.sharding.Mesh(devs, ("tasks",))


def _task_gradients(model, params, tasks, key, noise, mesh):
    b = tasks.support_x.shape[0]
    keys = jax.random.split(key, b)
    if mesh is not None:
        spec = NamedSharding(mesh, P("tasks"))
        tasks = jax.lax.with_sharding_constraint(tasks, spec)
        keys = jax.lax.with_sharding_constraint(keys, spec)
    fn = functools.partial(task_gradient, model)
    return TaskGradients(*jax.vmap(fn, in_axes=(None, 0, 0, None))(params, tasks, keys, noise))


_task_gradients_jit = jax.jit(_task_gradients, static_argnames=("model", "mesh"))


def task_gradients(
    model: ModelConfig,
    params,
    tasks: FewShotTasks,
    key: Array,
    noise: Noise | None = None,
    *,
    mesh: jax.sharding.Mesh | None = None,
) -> TaskGradients:
    """g_i of the B tasks of a meta-batch (vmapped), optionally sharded over ``mesh``.

    Args:
      model: the :class:`ModelConfig`.
      params: omega.
      tasks: B tasks (:class:`FewShotTasks`); B divisible by the mesh size when sharded.
      key: typed key; task i uses ``split(key, B)[i]`` (so sharding never changes the noise).
      noise: the defences' sigmas (:class:`Noise`).
      mesh: a 1-D ``("tasks",)`` mesh (:func:`task_mesh`) to shard the task axis over.
    """
    check_key("key", key)
    noise = (Noise() if noise is None else noise).check()
    b = int(tasks.support_x.shape[0])
    if mesh is not None and b % mesh.size:
        raise ValueError(f"the meta-batch ({b} tasks) must divide over {mesh.size} devices")
    return _task_gradients_jit(model, params, tasks, key, noise, mesh)


def meta_test_accuracy(model: ModelConfig, params, tasks: FewShotTasks) -> Array:
    """Mean query accuracy after (noise-free) adaptation on each task's support set."""

    def one(task):
        theta = adapt(model, params, task.support_x, task.support_y)
        logits = apply(model, theta, task.query_x)
        return jnp.mean(jnp.argmax(logits, -1) == task.query_y)

    return jnp.mean(jax.vmap(one)(tasks)).astype(params_dtype(params))


class MAMLData(NamedTuple):
    """The trainer's data: the task learners' pool, fixed meta-test tasks and the defences."""

    train: FewShotPool
    test_tasks: FewShotTasks
    noise: Noise


class MetaBatch(NamedTuple):
    """One meta-step's batch: B tasks and the defences' sigmas."""

    tasks: FewShotTasks
    noise: Noise


class MAMLState(NamedTuple):
    params: Any
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class MAMLTrainer:
    """Second-order MAML as a :class:`~mtl_tracing.victims.trainer.Trainer`.

    One epoch = ``steps_per_epoch`` meta-steps; a meta-step samples ``meta_batch`` w-way
    s-shot tasks from ``data.train``, computes their g_i (with ``data.noise``) and takes an
    Adam step of size ``meta_lr`` on their mean. ``shard`` shards the meta-batch over all
    devices (the task axis).
    """

    model: ModelConfig = ModelConfig()
    shots: int = 1
    meta_batch: int = 8
    meta_lr: float = 1e-3
    epochs: int = 10
    steps_per_epoch: int = 20
    shard: bool = False
    dtype: str = "float32"

    def __post_init__(self):
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig, got {self.model!r}")
        check_int("shots", self.shots, low=1)
        check_int("meta_batch", self.meta_batch, low=1)
        object.__setattr__(self, "meta_lr", check_positive_float("meta_lr", self.meta_lr))
        check_int("epochs", self.epochs, low=0)
        check_int("steps_per_epoch", self.steps_per_epoch, low=1)
        check_choice("dtype", self.dtype, ("float32", "float64"))

    @property
    def ways(self) -> int:
        return self.model.ways

    def _opt(self):
        return optax.adam(self.meta_lr)

    def init(self, key, data):
        params = init_params(self.model, key, jnp.dtype(self.dtype))
        return MAMLState(params, self._opt().init(params))

    def batches(self, key, data):
        check_task_shape(data.train, self.ways, self.shots)
        tasks = sample_tasks(
            key,
            data.train,
            ways=self.ways,
            shots=self.shots,
            num_tasks=self.steps_per_epoch * self.meta_batch,
        )
        shape = (self.steps_per_epoch, self.meta_batch)
        tasks = jax.tree.map(lambda a: a.reshape(shape + a.shape[1:]), tasks)
        # The Trainer's step sees only its batch, so the defences ride along, one per step.
        noise = jax.tree.map(
            lambda s: jnp.full((self.steps_per_epoch,), s, jnp.dtype(self.dtype)), data.noise
        )
        return MetaBatch(tasks, noise)

    def step(self, state, key, batch):
        mesh = task_mesh() if self.shard else None
        out = _task_gradients(self.model, state.params, batch.tasks, key, batch.noise, mesh)
        grad = jax.tree.map(lambda g: jnp.mean(g, axis=0), out.grads)
        updates, opt_state = self._opt().update(grad, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return MAMLState(params, opt_state), {
            "query_loss": jnp.mean(out.loss),
            "query_accuracy": jnp.mean(out.accuracy),
        }

    def evaluate(self, state, data):
        return {"meta_test_accuracy": meta_test_accuracy(self.model, state.params, data.test_tasks)}

    def embed(self, state, x):
        return features(self.model, state.params, x)


# As in mtl_tracing.victims.trainer: the step keys' fold_in offset. Added in uint32: with jax
# 0.10, ``2**31 + epoch`` on an int32 epoch overflows (the driver in trainer.py raises there).
_STEP_STREAM = np.uint32(2**31)


@functools.partial(jax.jit, static_argnames=("trainer",))
def _run_epoch(trainer, state, k_sched, epoch, data):
    batches = trainer.batches(jax.random.fold_in(k_sched, epoch), data)
    keys = jax.random.split(
        jax.random.fold_in(k_sched, _STEP_STREAM + jnp.asarray(epoch, jnp.uint32)),
        trainer.steps_per_epoch,
    )

    def body(s, xs):
        batch, k = xs
        return trainer.step(s, k, batch)

    state, step_metrics = jax.lax.scan(body, state, (batches, keys))
    return state, trainer.evaluate(state, data), step_metrics


_init = jax.jit(lambda trainer, key, data: trainer.init(key, data), static_argnums=0)
_evaluate = jax.jit(lambda trainer, state, data: trainer.evaluate(state, data), static_argnums=0)


def train_checkpoints(
    trainer: MAMLTrainer, key: Array, data: MAMLData, *, checkpoints=None, progress: bool = False
):
    """Meta-train like ``fit(trainer, key, data, runs=1)`` and keep omega at chosen epochs.

    The key schedule of :func:`~mtl_tracing.victims.trainer.fit` (run 0: ``fold_in(key, 0)``;
    epoch e's tasks from ``fold_in(k_sched, e)``, its step keys from ``fold_in(k_sched, 2**31 +
    e)``), one compiled epoch called per epoch. ``fit`` keeps only the final state; the
    sensitivity study needs the meta-parameters at several epochs, hence this driver (and, with
    jax 0.10, ``fit`` overflows on ``2**31 + epoch`` in int32; this driver adds in uint32).

    Args:
      checkpoints: epochs (0 = before training, up to ``trainer.epochs``) whose params to keep;
        default: the last epoch only.

    Returns:
      ``(params by epoch {e: omega_e}, history {"meta_test_accuracy": (epochs + 1,)})``; the
      history starts with the untrained model's meta-test accuracy.
    """
    check_key("key", key)
    if not isinstance(trainer, MAMLTrainer):
        raise ValueError(f"trainer must be a MAMLTrainer, got {trainer!r}")
    check_task_shape(data.train, trainer.ways, trainer.shots)
    data = data._replace(noise=data.noise.check())
    wanted = {trainer.epochs} if checkpoints is None else {int(e) for e in checkpoints}
    for e in wanted:
        check_int("checkpoint epoch", e, low=0, high=trainer.epochs)
    # The epoch program does not depend on the number of epochs: one compilation for all.
    static = dataclasses.replace(trainer, epochs=0)
    k_init, k_sched = jax.random.split(jax.random.fold_in(key, 0))
    state = _init(static, k_init, data)
    kept = {0: state.params} if 0 in wanted else {}
    hist = [_evaluate(static, state, data)["meta_test_accuracy"]]
    epochs = range(trainer.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="MAML meta-training", unit="epoch")
    for e in epochs:
        state, metrics, _ = _run_epoch(static, state, k_sched, e, data)
        hist.append(metrics["meta_test_accuracy"])
        if e + 1 in wanted:
            kept[e + 1] = state.params
    return kept, {"meta_test_accuracy": jnp.stack(hist)}
