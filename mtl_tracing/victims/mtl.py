"""Multitask training (Algorithm 3, App. A.3) with optax, R seeds in one vmapped program.

Each step takes a minibatch of IN tasks (a fresh random permutation of the T IN tasks per epoch),
routes each task's N pool samples through the shared encoder and its own head, and minimises the
binary cross-entropy averaged over samples and tasks (ell_MTL), with the App. A.3 optimiser
and warm start of :mod:`mtl_tracing.victims.optim` (``TrainConfig``, ``make_optimizer`` and
``steps_per_epoch`` are re-exported here).

:class:`MTLTrainer` is the algorithm as a :class:`~mtl_tracing.victims.trainer.Trainer`; the
driver :func:`~mtl_tracing.victims.trainer.fit` runs it as one jitted ``lax.scan`` over epochs
(inner scan over steps), the R runs vmapped or looped. Run r uses key ``fold_in(key, r)``: its
numbers do not depend on R. :func:`train` is the convenience entry point.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import Array

from mtl_tracing._validate import check_int, check_key, check_positive_float
from mtl_tracing.data.base import MultitaskData, check_multitask_data
from mtl_tracing.victims.model import MultitaskModel, embed_fn, logits_fn, split_params
from mtl_tracing.victims.optim import HEAD_KEYS, TrainConfig, make_optimizer, steps_per_epoch
from mtl_tracing.victims.trainer import fit

__all__ = [
    "HEAD_KEYS",
    "TrainConfig",
    "MTLTrainer",
    "MTLTrainerBase",
    "make_trainer",
    "batch_bce",
    "probe_fit",
    "probe_loss",
    "MTLState",
    "steps_per_epoch",
    "History",
    "TrainResult",
    "GeneralizationGaps",
    "make_optimizer",
    "train",
    "generalization_gaps",
    "bce",
    "accuracy",
    "model_graphdef",
]


class History(NamedTuple):
    """Per-epoch metrics after each epoch's updates, all (R, epochs), IN tasks only."""

    train_loss: Array  # BCE on the N training samples of each IN task
    train_accuracy: Array
    heldout_loss: Array  # BCE on the holdout fresh samples of each IN task
    heldout_accuracy: Array


class TrainResult(NamedTuple):
    """Stacked trained models: ``params`` leaves have a leading (R,) axis."""

    graphdef: nnx.GraphDef  # static; nnx.merge(graphdef, params_r) rebuilds run r's model
    params: dict  # pure nested dict, leaves (R, ...)
    history: History


class GeneralizationGaps(NamedTuple):
    """Losses for Sec. 6.5, each (R,); see ``generalization_gaps``."""

    train_loss: Array  # trained heads, IN training samples
    heldout_loss: Array  # trained heads, fresh samples of IN tasks
    probe_in_loss: Array  # linear probe on frozen embeddings, IN tasks, holdout samples
    probe_out_loss: Array  # linear probe on frozen embeddings, OUT tasks, holdout samples
    strong_gap: Array  # probe_out_loss - train_loss
    weak_gap: Array  # probe_out_loss - heldout_loss


def _bce(logits: Array, y: Array) -> Array:
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))


def _acc(logits: Array, y: Array) -> Array:
    return jnp.mean(((logits > 0).astype(y.dtype) == y).astype(logits.dtype))


bce = _bce  # public: mean binary cross-entropy of logits against {0, 1} labels
accuracy = _acc  # public: mean 0/1 accuracy of the sign of the logits


def batch_bce(graphdef: nnx.GraphDef, params: dict, batch: dict, x: Array | None = None) -> Array:
    """Mean BCE of one task minibatch: ``batch`` holds task ``ids`` (B,), ``x`` (B, N, d) and
    ``y`` (B, N); ``x`` replaces the batch's inputs (e.g. their PGD perturbations)."""
    x = batch["x"] if x is None else x
    return _bce(nnx.merge(graphdef, params)(x, batch["ids"][:, None]), batch["y"])


@functools.cache
def _graphdef(dim, embed_dim, tasks, hidden, dtype):
    abstract = nnx.eval_shape(
        lambda: MultitaskModel(
            dim, embed_dim, tasks, hidden, rngs=nnx.Rngs(0), param_dtype=jnp.dtype(dtype)
        )
    )
    return nnx.split(abstract)[0]


def model_graphdef(dim: int, embed_dim: int, tasks: int, hidden: int, dtype) -> nnx.GraphDef:
    """The cached static structure of a ``MultitaskModel`` (for trainers built on this model)."""
    return _graphdef(dim, embed_dim, tasks, hidden, jnp.dtype(dtype).name)


class MTLState(NamedTuple):
    """Algorithm 3's training state for one run."""

    params: dict  # pure dict: shared encoder theta and heads (T, m), (T,)
    opt_state: Any  # optax state of ``make_optimizer``


@dataclasses.dataclass(frozen=True)
class MTLTrainerBase:
    """Fields and checks of every trainer of Algorithm 3's model: ``config`` (``TrainConfig``)
    and ``embed_dim`` (m). Subclasses add their own config fields with a ``default_factory``
    (``gmrf: GMRFConfig = field(default_factory=GMRFConfig)``), whose type is checked here,
    and reach Algorithm 3's methods through :attr:`base`."""

    config: TrainConfig
    embed_dim: int

    def __post_init__(self) -> None:
        if not isinstance(self.config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(self.config).__name__}")
        object.__setattr__(self, "embed_dim", check_int("embed_dim", self.embed_dim, low=1))
        for f in dataclasses.fields(self):
            kind, value = f.default_factory, getattr(self, f.name)
            if isinstance(kind, type) and not isinstance(value, kind):
                raise ValueError(f"{f.name} must be a {kind.__name__}, got {type(value).__name__}")

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def base(self) -> MTLTrainer:
        """Algorithm 3 on the same config and embedding size."""
        return MTLTrainer(self.config, self.embed_dim)

    def graphdef_for(self, x: Array, tasks: int) -> nnx.GraphDef:
        """The model's static structure for inputs like ``x`` (..., d) and T = ``tasks`` heads."""
        return model_graphdef(x.shape[-1], self.embed_dim, tasks, self.config.hidden, x.dtype)

    def optimizer_step(
        self, params: dict, opt_state: Any, loss_fn: Callable, *, tasks: int, has_aux=False
    ) -> tuple[dict, Any, Any]:
        """One step of the App. A.3 optimiser on ``loss_fn(params)`` (T = ``tasks`` heads):
        ``(params, opt_state, value)``, ``value`` the loss (or ``(loss, aux)`` with
        ``has_aux``) at the old params."""
        spe = steps_per_epoch(tasks, self.config.task_batch)
        tx = make_optimizer(self.config, params, steps_per_epoch=spe)
        value, grads = jax.value_and_grad(loss_fn, has_aux=has_aux)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value


@dataclasses.dataclass(frozen=True)
class MTLTrainer(MTLTrainerBase):
    """Algorithm 3 (App. A.3) as a :class:`~mtl_tracing.victims.trainer.Trainer`.

    Objective: ell_MTL(theta, beta) = (1/|B|) sum_{i in B} (1/N) sum_j BCE(<beta_i, h_theta(x_ij)>
    + b_i, y_ij) over task minibatches B of the T IN tasks, with the optimiser of
    :func:`make_optimizer` (warm start, per-head clipping, AdamW).

    - ``init``: the model from ``nnx.Rngs(params=key)`` and the optimiser state.
    - ``batches``: a fresh permutation of the T IN tasks cut into ceil(T/B) minibatches of B
      task ids (wrapping around when B does not divide T): (steps, B) int32.
    - ``step``: one AdamW step on one minibatch (the key is unused: the algorithm is
      deterministic given the schedule). Metrics: ``loss``.
    - ``evaluate``: BCE and accuracy on the IN tasks' training and held-out samples.
    - ``embed``: the shared encoder h_theta, (..., d) -> (..., m).
    """

    def _graphdef(self, data: MultitaskData):
        T, _, d = data.x.shape
        return _graphdef(d, self.embed_dim, T, self.config.hidden, jnp.dtype(data.x.dtype).name)

    def _tx(self, params: dict, tasks: int):
        return make_optimizer(
            self.config, params, steps_per_epoch=steps_per_epoch(tasks, self.config.task_batch)
        )

    def init(self, key: Array, data: MultitaskData) -> MTLState:
        T, _, d = data.x.shape
        model = MultitaskModel(
            d,
            self.embed_dim,
            T,
            self.config.hidden,
            rngs=nnx.Rngs(params=key),
            param_dtype=data.x.dtype,
        )
        params = split_params(model)[1]
        return MTLState(params, self._tx(params, T).init(params))

    def batches(self, key: Array, data: MultitaskData) -> dict:
        T, B = data.x.shape[0], self.config.task_batch
        perm = jax.random.permutation(key, T)
        ids = jnp.resize(perm, (steps_per_epoch(T, B), B))
        return {"ids": ids, "x": data.x[ids], "y": data.y[ids]}

    def step(self, state: MTLState, key: Array, batch: dict) -> tuple[MTLState, dict]:
        del key
        T = state.params["head_bias"].shape[-1]
        graphdef = self.graphdef_for(batch["x"], T)
        params, opt_state, loss = self.optimizer_step(
            state.params, state.opt_state, lambda p: batch_bce(graphdef, p, batch), tasks=T
        )
        return MTLState(params, opt_state), {"loss": loss}

    def evaluate(self, state: MTLState, data: MultitaskData) -> dict:
        graphdef = self._graphdef(data)
        lt = logits_fn(graphdef, state.params, data.x)
        lh = logits_fn(graphdef, state.params, data.x_heldout)
        return {
            "train_loss": _bce(lt, data.y),
            "train_accuracy": _acc(lt, data.y),
            "heldout_loss": _bce(lh, data.y_heldout),
            "heldout_accuracy": _acc(lh, data.y_heldout),
        }

    def embed(self, state: MTLState, x: Array) -> Array:
        T = state.params["head_bias"].shape[-1]
        d = x.shape[-1]
        graphdef = _graphdef(d, self.embed_dim, T, self.config.hidden, jnp.dtype(x.dtype).name)
        return embed_fn(graphdef, state.params, x)


def make_trainer(config: TrainConfig, embed_dim: int, *, tasks: int) -> MTLTrainer:
    """Algorithm 3 (the trainer registry's ``standard``; ``tasks`` is unused)."""
    del tasks
    return MTLTrainer(config, embed_dim)


def _check_data(data: MultitaskData) -> None:
    check_multitask_data(data, heldout=True)
    if np.ndim(data.x) != 3:
        raise ValueError(f"data.x must have shape (T, N, d), got {tuple(np.shape(data.x))}")


def _embed_dim(data: MultitaskData) -> int:
    info = data.info or {}
    if "projection" not in info:
        raise ValueError("data.info must hold 'projection' (m, d) to set the embedding size m")
    return int(np.shape(info["projection"])[0])


def train(
    key: Array,
    data: MultitaskData,
    config: TrainConfig,
    *,
    runs: int = 1,
    progress: bool = False,
    layout: str = "auto",
    embed_dim: int | None = None,
    trainer=None,
) -> TrainResult:
    """Train R independent multitask models (Algorithm 3) on the T IN tasks of ``data``.

    :class:`MTLTrainer` run by :func:`~mtl_tracing.victims.trainer.fit`.

    Args:
      key: typed PRNG key; run r uses ``fold_in(key, r)`` (init and task permutations).
      data: ``MultitaskData`` (trains on x, y; held-out metrics on x_heldout, y_heldout).
      config: ``TrainConfig``.
      runs: R, number of independent runs.
      progress: show a tqdm bar over epochs, updated from inside the compiled scan.
      layout: ``"auto"`` (loop on CPU, vmap elsewhere), ``"vmap"`` or ``"loop"``.
      embed_dim: m; default the rows of ``data.info["projection"]`` (synthetic data).
      trainer: another :class:`~mtl_tracing.victims.trainer.Trainer` on the same model and
        state layout (e.g. :class:`~mtl_tracing.victims.dp.DPSGDTrainer`); default
        ``MTLTrainer(config, embed_dim)``.

    Returns:
      ``TrainResult(graphdef, params, history)``; params leaves are (R, ...), history fields
      (R, epochs). Dtype follows ``data.x`` (float32 default, float64 when data is float64).
    """
    check_key("key", key)
    _check_data(data)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    runs = check_int("runs", runs, low=1)
    T = data.tasks
    if config.task_batch > T:
        raise ValueError(f"task_batch must be <= tasks (T={T}), got {config.task_batch}")
    embed_dim = _embed_dim(data) if embed_dim is None else check_int("embed_dim", embed_dim, low=1)
    if trainer is None:
        trainer = MTLTrainer(config, embed_dim)
    # Only the IN part reaches the compiled program (OUT tasks are never trained on).
    in_part = MultitaskData(data.x, data.y, None, None, data.x_heldout, data.y_heldout)
    out = fit(trainer, key, in_part, runs=runs, layout=layout, progress=progress)
    history = History(*(out.history[f] for f in History._fields))
    d, dtype = data.x.shape[-1], data.x.dtype
    graphdef = _graphdef(d, embed_dim, T, config.hidden, jnp.dtype(dtype).name)
    return TrainResult(graphdef, out.state.params, history)


def _with_bias(e: Array) -> Array:
    return jnp.concatenate([e, jnp.ones(e.shape[:-1] + (1,), e.dtype)], -1)


def probe_fit(e_fit: Array, y_fit: Array, *, ridge, newton_steps: int) -> Array:
    """Ridge-logistic probe on (n, m) embeddings plus a bias, by Newton from 0: w (m + 1,).

    Minimises sum_j BCE(<w, [e_j, 1]>, y_j) + ridge/2 ||w||^2 (strictly convex).
    """
    X = _with_bias(e_fit)
    eye = ridge * jnp.eye(X.shape[-1], dtype=X.dtype)

    def newton(w, _):
        prob = jax.nn.sigmoid(X @ w)
        grad = X.T @ (prob - y_fit) + eye @ w
        hess = (X.T * (prob * (1 - prob))) @ X + eye
        return w - jnp.linalg.solve(hess, grad), None

    w, _ = jax.lax.scan(newton, jnp.zeros(X.shape[-1], X.dtype), None, length=newton_steps)
    return w


def probe_loss(e_fit, y_fit, e_eval, y_eval, *, ridge, newton_steps):
    """BCE on the eval set of the probe fitted on the fit set."""
    w = probe_fit(e_fit, y_fit, ridge=ridge, newton_steps=newton_steps)
    return _bce(_with_bias(e_eval) @ w, y_eval)


@functools.partial(jax.jit, static_argnames=("graphdef", "newton_steps"))
def _gaps_kernel(graphdef, params, data, ridge, *, newton_steps):
    T = data.x.shape[0]
    x_all = jnp.concatenate([data.x, data.x_out])  # (T + T_out, N, d)
    y_all = jnp.concatenate([data.y, data.y_out])
    xh_all = jnp.concatenate([data.x_heldout, data.x_out_heldout])  # (T + T_out, H, d)
    yh_all = jnp.concatenate([data.y_heldout, data.y_out_heldout])

    def one_run(p):
        train_loss = _bce(logits_fn(graphdef, p, data.x), data.y)
        heldout_loss = _bce(logits_fn(graphdef, p, data.x_heldout), data.y_heldout)
        e_fit = embed_fn(graphdef, p, x_all)  # (T + T_out, N, m)
        e_eval = embed_fn(graphdef, p, xh_all)  # (T + T_out, H, m)
        probe = functools.partial(probe_loss, ridge=ridge, newton_steps=newton_steps)
        per_task = jax.vmap(probe)(e_fit, y_all, e_eval, yh_all)  # (T + T_out,)
        return train_loss, heldout_loss, per_task[:T].mean(), per_task[T:].mean()

    tr, ho, p_in, p_out = jax.vmap(one_run)(params)
    return GeneralizationGaps(tr, ho, p_in, p_out, p_out - tr, p_out - ho)


def generalization_gaps(
    result: TrainResult, data: MultitaskData, *, ridge: float = 1.0, newton_steps: int = 25
) -> GeneralizationGaps:
    """Losses behind the generalization gaps of Sec. 6.5 (Fig. 3), per run.

    - ``train_loss``: BCE of the trained heads on the IN tasks' training samples;
    - ``heldout_loss``: BCE of the trained heads on fresh samples of IN tasks;
    - OUT tasks have no trained head, so for every task (IN and OUT alike) a linear probe
      (ridge-penalised logistic regression on the frozen embeddings h_theta(x) plus a bias,
      penalty ``ridge``/2 ||w||^2 on the summed loss, ``newton_steps`` Newton steps from 0) is
      fitted on the task's N pool samples and evaluated on its holdout samples:
      ``probe_out_loss`` (OUT tasks, the "validation loss on OUT data") and ``probe_in_loss``
      (IN tasks, the like-for-like comparison).
    - ``strong_gap = probe_out_loss - train_loss``, ``weak_gap = probe_out_loss - heldout_loss``.

    Everything is vmapped over tasks and over the R runs of ``result``; all outputs are (R,).
    """
    _check_data(data)
    if data.x_out_heldout is None:
        raise ValueError("data.x_out_heldout must be an array (OUT tasks' probe samples), got None")
    if data.tasks != result.params["head_bias"].shape[-1]:
        raise ValueError(
            f"data must have T={result.params['head_bias'].shape[-1]} IN tasks, got {data.tasks}"
        )
    ridge = check_positive_float("ridge", ridge)
    newton_steps = check_int("newton_steps", newton_steps, low=1)
    data = data._replace(info=None)
    return _gaps_kernel(
        result.graphdef,
        result.params,
        data,
        jnp.asarray(ridge, data.x.dtype),
        newton_steps=newton_steps,
    )
