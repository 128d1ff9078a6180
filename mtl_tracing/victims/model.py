"""The multitask model of Sec. 6.1 / App. A.8 in Flax NNX.

Shared encoder h_theta: d -> hidden (ReLU) -> m (linear bottleneck, the embedding). Task heads
g_beta_j: all T linear heads live in one ``nnx.Param`` of shape (T, m) plus a bias (T,), so every
task goes through one batched op.

Functional use (many runs at once): ``graphdef, params = split_params(model)`` gives a static
``graphdef`` and a pure nested dict of arrays; stacking R such dicts on a leading axis gives the
"stacked states" returned by ``mtl_tracing.victims.mtl.train`` (leading (R,) axis).
``embed_fn`` / ``embed_runs`` query the encoder as a black box under ``jax.vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array

from mtl_tracing import flat_random

__all__ = ["MultitaskModel", "split_params", "embed_fn", "embed_runs", "logits_fn"]


class MultitaskModel(nnx.Module):
    """Shared encoder (d -> hidden -> m) plus T linear heads stored as one (T, m) parameter.

    Args:
      dim: d, input dimension.
      embed_dim: m, embedding (bottleneck) dimension.
      tasks: T, number of trained (IN) task heads.
      hidden: width of the hidden ReLU layer (512 in App. A.8).
      rngs: ``nnx.Rngs`` for initialisation.
      param_dtype: float32 (default) or float64.
    """

    def __init__(
        self,
        dim: int,
        embed_dim: int,
        tasks: int,
        hidden: int = 512,
        *,
        rngs: nnx.Rngs,
        param_dtype=jnp.float32,
    ):
        # flax's default kernel init, drawn flat (the same numbers; compiles faster)
        init = flat_random.lecun_normal()
        kw = {"rngs": rngs, "param_dtype": param_dtype, "kernel_init": init}
        self.hidden = nnx.Linear(dim, hidden, **kw)
        self.project = nnx.Linear(hidden, embed_dim, **kw)
        self.head_kernel = nnx.Param(init(rngs.params(), (tasks, embed_dim), param_dtype))
        self.head_bias = nnx.Param(jnp.zeros((tasks,), param_dtype))

    def embed(self, x: Array) -> Array:
        """h_theta(x): (..., d) -> (..., m)."""
        return self.project(nnx.relu(self.hidden(x)))

    def __call__(self, x: Array, task_ids: Array | None = None) -> Array:
        """Logits <beta_j, h_theta(x)> + b_j.

        With ``task_ids``: x (..., d) and integer task_ids broadcastable to x.shape[:-1];
        returns (broadcast shape). Without: x is task-batched (T, n, d); returns (T, n) with
        row j scored by head j.
        """
        e = self.embed(x)
        w, b = self.head_kernel[...], self.head_bias[...]
        if task_ids is None:
            if e.ndim != 3 or e.shape[0] != w.shape[0]:
                raise ValueError(
                    f"x must have shape (T={w.shape[0]}, n, d) when task_ids is None, "
                    f"got {tuple(x.shape)}"
                )
            return jnp.einsum("tnm,tm->tn", e, w) + b[:, None]
        task_ids = jnp.asarray(task_ids)
        return jnp.sum(e * w[task_ids], axis=-1) + b[task_ids]


def split_params(model: MultitaskModel) -> tuple[nnx.GraphDef, dict]:
    """(graphdef, params) with params a pure nested dict of arrays (an optax-friendly pytree)."""
    graphdef, state = nnx.split(model)
    return graphdef, nnx.to_pure_dict(state)


def embed_fn(graphdef: nnx.GraphDef, params: dict, x: Array) -> Array:
    """Pure black-box encoder query h_theta(x): x (..., d) -> (..., m) for one run's params."""
    return nnx.merge(graphdef, params).embed(x)


def logits_fn(graphdef: nnx.GraphDef, params: dict, x: Array) -> Array:
    """Pure head logits for task-batched x (T, n, d) -> (T, n), one run's params."""
    return nnx.merge(graphdef, params)(x)


@jax.jit
def _embed_runs(graphdef, params, x):
    return jax.vmap(embed_fn, in_axes=(None, 0, None))(graphdef, params, x)


def embed_runs(graphdef: nnx.GraphDef, params: dict, x: Array) -> Array:
    """Embeddings of the same samples under R stacked runs (jitted, vmapped over runs).

    Args:
      graphdef: static model structure (``TrainResult.graphdef``).
      params: stacked params, every leaf with a leading (R,) axis (``TrainResult.params``).
      x: samples (..., d), e.g. a whole (2T, n, d) array of task samples.

    Returns:
      (R, ..., m) embeddings, e.g. (R, 2T, n, m).
    """
    return _embed_runs(graphdef, params, jnp.asarray(x))
