"""MAML as a victim (Sec. III of "Privacy Challenges in Meta-Learning"): second-order MAML on
few-shot image tasks, with each task learner's shared gradient g_i exposed for the attacks.

Notation (argument -> paper symbol): ``params`` omega (meta-parameters), ``theta`` theta_i
(adapted parameters), ``inner_steps`` the steps of the update U (eq. 5), ``inner_lr`` its step
size, ``task_gradients(...).grads`` g_i = grad_omega L(U(omega, D^s_i), D^q_i) (eq. 2, 4),
``meta_batch`` the tasks of one meta-step, w ``ways``, s ``shots``.

The package is three modules: :mod:`~mtl_tracing.victims.maml_model` (the conv net, the masked
loss of padded tasks), :mod:`~mtl_tracing.victims.maml_noise` (the four defences) and this one
(adaptation, meta-gradients, the trainer); their public names are re-exported here.

- **Inner loop** (:func:`adapt`): ``inner_steps`` SGD steps on the support set.
- **Meta-gradient** (:func:`task_gradients`): second order, ``jax.grad`` through the inner
  loop; the B tasks of a meta-batch are vmapped, and sharded over devices on the task axis
  (``jax.sharding``) when asked.
- **Defences** (Sec. IV-E, :class:`Noise`): Gaussian noise with standard deviation sigma at
  four places: the support data, the adaptation gradient (every inner step), the query data
  and the validation gradient (g_i itself).
- **Training** (:class:`MAMLTrainer`): implements the :class:`~mtl_tracing.victims.trainer.
  Trainer` protocol, so :func:`~mtl_tracing.victims.trainer.fit` meta-trains it;
  :func:`train_checkpoints` runs the same epochs (``trainer.epoch_fn``, fit's keys) one call
  per epoch, keeps omega at chosen epochs and stops when the meta-test accuracy plateaus
  (:class:`Plateau`), which ``fit`` (one scan over a fixed number of epochs) cannot.
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
from mtl_tracing.victims.maml_model import (
    ACTIVATIONS,
    ConvNet,
    ModelConfig,
    PatchConv,
    accuracy,
    apply,
    class_mask,
    features,
    head_mask,
    init_params,
    loss_fn,
    masked_logits,
    params_dtype,
    tree_cosine,
    tree_dot,
)
from mtl_tracing.victims.maml_noise import NOISE_PLACES, Noise, noise_at, tree_normal
from mtl_tracing.victims.trainer import epoch_fn

__all__ = [
    "NOISE_PLACES",
    "ACTIVATIONS",
    "ConvNet",
    "PatchConv",
    "ModelConfig",
    "Noise",
    "noise_at",
    "tree_normal",
    "MAMLData",
    "MAMLState",
    "MetaBatch",
    "TaskGradients",
    "MAMLTrainer",
    "Plateau",
    "init_params",
    "apply",
    "features",
    "class_mask",
    "masked_logits",
    "loss_fn",
    "accuracy",
    "head_mask",
    "params_dtype",
    "adapt",
    "task_gradient",
    "task_gradients",
    "task_mesh",
    "meta_test_accuracy",
    "train_checkpoints",
    "tree_dot",
    "tree_cosine",
]


def adapt(
    model: ModelConfig,
    params,
    x: Array,
    y: Array,
    key: Array | None = None,
    sigma=0.0,
    mask: Array | None = None,
):
    """theta = U(omega, D^s): ``inner_steps`` SGD steps on (x, y) (active slots ``mask``), each
    gradient plus N(0, sigma^2) noise (the adaptation-gradient defence; ``key`` may be None
    when sigma = 0).

    Differentiable in ``params`` (second order) and in ``x`` (the support attack).
    """
    grad = jax.grad(functools.partial(loss_fn, model))
    theta = params
    for i in range(model.inner_steps):
        g = grad(theta, x, y, mask)
        if key is not None:
            g = jax.tree.map(jnp.add, g, tree_normal(jax.random.fold_in(key, i), g, sigma))
        theta = jax.tree.map(lambda t, gg: t - model.inner_lr * gg, theta, g)
    return theta


class TaskGradients(NamedTuple):
    """What the task learners send: g_i (leaves (B, ...)), and their query loss/accuracy (B,)."""

    grads: Any
    loss: Array
    accuracy: Array


def task_gradient(model: ModelConfig, params, task: FewShotTasks, key: Array, noise: Noise):
    """One task learner (unbatched ``task``): g_i = grad_omega L(U(omega, D^s), D^q) + noise.

    A padded task (``task.mask``) keeps the validation noise off the inactive classes' head
    entries (the w'-way model has no such coordinate). Returns ``(g_i, query loss, query
    accuracy)``.
    """
    k_s, k_a, k_q, k_v = jax.random.split(key, 4)
    dt = task.support_x.dtype
    mask = task.mask
    xs = task.support_x + noise.support * flat_random.normal(k_s, task.support_x.shape, dt)
    xq = task.query_x + noise.query * flat_random.normal(k_q, task.query_x.shape, dt)

    def outer(omega):
        theta = adapt(model, omega, xs, task.support_y, k_a, noise.adaptation, mask)
        logits = masked_logits(model, theta, xq, mask)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, task.query_y)
        hit = (jnp.argmax(logits, -1) == task.query_y).astype(ce.dtype)
        m = jnp.ones_like(ce) if mask is None else mask.astype(ce.dtype)
        return jnp.sum(ce * m) / jnp.sum(m), jnp.sum(hit * m) / jnp.sum(m)

    (loss, acc), g = jax.value_and_grad(outer, has_aux=True)(params)
    v = tree_normal(k_v, g, noise.validation)
    if mask is not None:
        v = jax.tree.map(jnp.multiply, v, head_mask(g, mask, model.ways))
    g = jax.tree.map(jnp.add, g, v)
    return g, loss, acc


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
    """Mean query accuracy (active slots) after noise-free adaptation on each support set."""

    def one(task):
        theta = adapt(model, params, task.support_x, task.support_y, mask=task.mask)
        return accuracy(model, theta, task.query_x, task.query_y, task.mask)

    return jnp.mean(jax.vmap(one)(tasks)).astype(params_dtype(params))


class MAMLData(NamedTuple):
    """The trainer's data: the task learners' pool, fixed meta-test tasks, the defences and the
    active (w', s') of padded tasks ((2,) int; None: the trainer's own w and s)."""

    train: FewShotPool
    test_tasks: FewShotTasks
    noise: Noise
    active: Any = None


class MetaBatch(NamedTuple):
    """One meta-step's batch: B tasks and the defences' sigmas."""

    tasks: FewShotTasks
    noise: Noise


class MAMLState(NamedTuple):
    params: Any  # omega, the ConvNet's State pytree
    opt_state: Any  # Adam's state on omega


@dataclasses.dataclass(frozen=True)
class Plateau:
    """When meta-training has plateaued: after epoch e (>= ``patience``), the best meta-test
    accuracy of the last ``patience`` epochs is below the best before them + ``min_delta``."""

    patience: int = 5
    min_delta: float = 0.01

    def __post_init__(self):
        check_int("patience", self.patience, low=1)
        object.__setattr__(self, "min_delta", check_nonnegative("min_delta", self.min_delta))

    def reached(self, history) -> bool:
        """``history``: meta-test accuracy after epochs 0 (untrained), 1, ..., e."""
        h = np.asarray(history, float)
        if h.size <= self.patience:
            return False
        return float(h[-self.patience :].max()) < float(h[: -self.patience].max()) + self.min_delta


@dataclasses.dataclass(frozen=True)
class MAMLTrainer:
    """Second-order MAML as a :class:`~mtl_tracing.victims.trainer.Trainer`.

    One epoch = ``steps_per_epoch`` meta-steps; a meta-step samples ``meta_batch`` w-way
    s-shot tasks from ``data.train`` (w'-way s'-shot padded tasks when ``data.active`` is set),
    computes their g_i (with ``data.noise``) and takes an Adam step of size ``meta_lr`` on
    their mean. ``shard`` shards the meta-batch over all devices (the task axis).
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
            active=data.active,
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


@functools.partial(jax.jit, static_argnames=("trainer",))
def _run_epoch(trainer, state, k_sched, epoch, data):
    # fit's own epoch kernel (schedule, step keys, scan over steps, evaluate), one call per epoch
    return epoch_fn(trainer, data)(state, k_sched, epoch)


_init = jax.jit(lambda trainer, key, data: trainer.init(key, data), static_argnums=0)
_evaluate = jax.jit(lambda trainer, state, data: trainer.evaluate(state, data), static_argnums=0)


def train_checkpoints(
    trainer: MAMLTrainer,
    key: Array,
    data: MAMLData,
    *,
    checkpoints=None,
    plateau: Plateau | None = None,
    progress: bool = False,
):
    """Meta-train like ``fit(trainer, key, data, runs=1)``, keeping omega at chosen epochs and
    stopping early once the meta-test accuracy plateaus.

    The key schedule of :func:`~mtl_tracing.victims.trainer.fit` (run 0: ``fold_in(key, 0)``,
    then ``trainer.epoch_fn``), one compiled epoch called per epoch: the same numbers as
    ``fit`` for the epochs run (``fit`` keeps only the final state and runs a fixed number).

    Args:
      checkpoints: epochs (0 = before training, up to ``trainer.epochs``) whose params to keep,
        or ``"all"``; the last epoch run is always kept.
      plateau: a :class:`Plateau` rule checked after every epoch (None: run every epoch);
        ``trainer.epochs`` is then the cap.

    Returns:
      ``(params by epoch {e: omega_e}, history {"meta_test_accuracy": (E + 1,)})`` with E the
      epochs run; the history starts with the untrained model's meta-test accuracy.
    """
    check_key("key", key)
    if not isinstance(trainer, MAMLTrainer):
        raise ValueError(f"trainer must be a MAMLTrainer, got {trainer!r}")
    if plateau is not None and not isinstance(plateau, Plateau):
        raise ValueError(f"plateau must be a Plateau or None, got {plateau!r}")
    check_task_shape(data.train, trainer.ways, trainer.shots)
    data = data._replace(noise=data.noise.check())
    keep_all = isinstance(checkpoints, str) and checkpoints == "all"
    if isinstance(checkpoints, str) and not keep_all:
        raise ValueError(f"checkpoints must be epochs or 'all', got {checkpoints!r}")
    wanted = set() if checkpoints is None or keep_all else {int(e) for e in checkpoints}
    for e in wanted:
        check_int("checkpoint epoch", e, low=0, high=trainer.epochs)
    # The epoch program does not depend on the number of epochs: one compilation for all.
    static = dataclasses.replace(trainer, epochs=0)
    k_init, k_sched = jax.random.split(jax.random.fold_in(key, 0))
    state = _init(static, k_init, data)
    kept = {0: state.params} if (keep_all or 0 in wanted) else {}
    hist = [float(_evaluate(static, state, data)["meta_test_accuracy"])]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=trainer.epochs, desc="MAML meta-training", unit="epoch")
    for e in range(trainer.epochs):
        state, metrics, _ = _run_epoch(static, state, k_sched, e, data)
        hist.append(float(metrics["meta_test_accuracy"]))
        if keep_all or e + 1 in wanted:
            kept[e + 1] = state.params
        if bar is not None:
            bar.update()
            bar.set_postfix(meta_test=f"{hist[-1]:.3f}")
        if plateau is not None and plateau.reached(hist):
            break
    if bar is not None:
        bar.close()
    kept[len(hist) - 1] = state.params
    return kept, {"meta_test_accuracy": jnp.asarray(hist)}
