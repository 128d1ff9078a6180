"""Synthetic projection-labelled multitask data (App. A.8).

The Gaussian task model of Sec. 4 adapted to learning: 2T task means mu_i ~ N(mu_bar, sbar^2 I_d),
samples x_ij ~ N(mu_i, s^2 I_d), one shared random projection H (m x d) and one target head
g_i in R^m per task; labels y_ij = 1[<g_i, H x_ij> > 0] (the paper's sign, mapped to {0, 1}).
Tasks ``0..T-1`` are IN (trained on their N pool samples), tasks ``T..2T-1`` are OUT (never
trained: all their samples are fresh). Every task also gets ``holdout`` fresh samples (the weak
adversary's samples, and the held-out set for IN accuracy).

Notation (argument name -> paper symbol):

===============  ===========  ==========================================================
argument         symbol       meaning
===============  ===========  ==========================================================
``tasks``        T            number of IN tasks (there are also T OUT tasks)
``dim``          d            data dimension
``embed_dim``    m (k)        embedding dimension; H is m x d (App. A.8 calls it k)
``samples``      N            pool (training) samples per task
``holdout``      -            fresh held-out samples per task
``task_std``     sbar         std of task means
``sample_std``   s (sigma)    std of samples around their task mean
``mean``         mu_bar       global mean (scalar, broadcast over the d coordinates)
``clusters``     K            task clusters of the heads (0: i.i.d. heads, the paper's data)
``cluster_spread`` -          std of a head around its cluster centre
===============  ===========  ==========================================================

Task clusters (``clusters`` = K > 0): K centres c_1..c_K ~ N(0, I_m) and task i (IN and OUT
alike) in cluster z_i = i mod K gets the head g_i = c_{z_i} + ``cluster_spread`` * eps_i,
eps_i ~ N(0, I_m); ``info["clusters"]`` holds z (2T,). The default K = 0 draws g exactly as
before (same key, same numbers: tested bit for bit).

Since <g, H mu_i> / (s ||H^T g||) ~ N(0, sbar^2/s^2) when mu_bar = 0, the label rate of task i is
p_i = Phi((sbar/s) Z), Z ~ N(0, 1): labels are balanced overall and, with the default
sbar = s = 1, Var p_i = arcsin(1/2)/(2 pi) = 1/12 (tested in ``tests/test_synthetic.py``).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import (
    check_dtype,
    check_finite_float,
    check_int,
    check_key,
    check_nonnegative,
    check_positive_float,
)
from mtl_tracing.data.base import MultitaskData

__all__ = ["SyntheticConfig", "generate"]


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Shape and scale of the App. A.8 synthetic multitask data set (hashable, jit-static).

    Defaults (T=64, d=64, m=16, N=16, holdout=8, sbar=s=1) are the paper's synthetic-ablation
    scale shrunk to run on a laptop CPU in seconds; with the default ``TrainConfig`` the
    held-out accuracy of IN tasks is clearly above chance (see the training report).
    """

    tasks: int = 64
    dim: int = 64
    embed_dim: int = 16
    samples: int = 16
    holdout: int = 8
    task_std: float = 1.0
    sample_std: float = 1.0
    mean: float = 0.0
    clusters: int = 0
    cluster_spread: float = 0.5

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "tasks", check_int("tasks", self.tasks, low=1))
        set_(self, "dim", check_int("dim", self.dim, low=1))
        set_(self, "embed_dim", check_int("embed_dim", self.embed_dim, low=1))
        set_(self, "samples", check_int("samples", self.samples, low=1))
        set_(self, "holdout", check_int("holdout", self.holdout, low=1))
        set_(self, "task_std", check_positive_float("task_std", self.task_std))
        set_(self, "sample_std", check_positive_float("sample_std", self.sample_std))
        set_(self, "mean", check_finite_float("mean", self.mean))
        set_(self, "clusters", check_int("clusters", self.clusters, low=0, high=self.tasks))
        set_(self, "cluster_spread", check_nonnegative("cluster_spread", self.cluster_spread))

    def replace(self, **changes) -> SyntheticConfig:
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def generate(key: Array, config: SyntheticConfig, *, dtype=None) -> MultitaskData:
    """Draw one synthetic data set (App. A.8) from a single typed key.

    Jittable and vmappable over keys (``config`` is static): ``jax.vmap(lambda k: generate(k,
    cfg))(keys)`` gives a ``MultitaskData`` whose fields carry a leading ``(len(keys),)`` axis and
    whose slice ``i`` equals ``generate(keys[i], cfg)``.

    Args:
      key: typed PRNG key.
      config: ``SyntheticConfig`` (T, d, m, N, holdout, sbar, s, mu_bar).
      dtype: float32 (default) or float64 (needs x64).

    Returns:
      ``MultitaskData`` with x (T, N, d), y (T, N), x_out (T, N, d), y_out (T, N), x_heldout
      (T, holdout, d), y_heldout (T, holdout), x_out_heldout, y_out_heldout likewise, and
      info = {"projection": H (m, d), "heads": g (2T, m), "task_means": mu (2T, d)} (IN rows
      first, then OUT rows), plus "clusters": z (2T,) int32 when ``config.clusters`` > 0.
    """
    check_key("key", key)
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    return _generate(key, config, check_dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _generate(key: Array, config: SyntheticConfig, dtype) -> MultitaskData:
    T2, d, m = 2 * config.tasks, config.dim, config.embed_dim
    k_mu, k_h, k_g, k_x, k_xh = jax.random.split(key, 5)
    mu = config.mean + config.task_std * flat_random.normal(k_mu, (T2, d), dtype)
    H = flat_random.normal(k_h, (m, d), dtype) / jnp.sqrt(jnp.asarray(d, dtype))
    g = flat_random.normal(k_g, (T2, m), dtype)
    if config.clusters:
        z = jnp.arange(T2) % config.clusters
        centres = flat_random.normal(jax.random.fold_in(k_g, 1), (config.clusters, m), dtype)
        g = centres[z] + config.cluster_spread * g
    # Labels are signs of exact float products (TF32, a GPU default, would flip some).
    hi = jax.lax.Precision.HIGHEST
    w = jnp.matmul(g, H, precision=hi)  # (2T, d): <g_i, H x> = <H^T g_i, x>

    def draw(k, n):
        x = mu[:, None, :] + config.sample_std * flat_random.normal(k, (T2, n, d), dtype)
        y = (jnp.einsum("tnd,td->tn", x, w, precision=hi) > 0).astype(dtype)
        return x, y

    x, y = draw(k_x, config.samples)
    xh, yh = draw(k_xh, config.holdout)
    T = config.tasks
    info = {"projection": H, "heads": g, "task_means": mu}
    if config.clusters:
        info["clusters"] = z
    return MultitaskData(x[:T], y[:T], x[T:], y[T:], xh[:T], yh[:T], xh[T:], yh[T:], info)
