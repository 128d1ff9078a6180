"""Gradient-inversion attacks against MAML (Sec. IV-C, IV-D): the query and support attacks.

Notation (argument -> paper symbol): ``params`` omega^t, ``grads`` g = g_i (the task learner's
shared gradient), ``x0`` the target x_0, ``slot`` its place in the set, x* the reconstruction,
``alpha`` the total-variation weight, ``iterations`` the attack's gradient steps, w ``ways``,
s ``shots``, n ``trials``.

- **Query attack** (eq. 9): x* = argmin_x 1 - cos(grad_omega L(omega, omega, x), g) +
  alpha TV(x), with x a whole query set (w s images; labels fixed by the protocol, slot k has
  label k // s), the target x_0 in its slot and uniform noise in the others.
- **Support attack** (eq. 10): the adversary knows the query set D^q; x is a support set
  (x_0 in its slot), adapted on: minimise 1 - cos(grad_omega L(U(omega, x), D^q), g) +
  alpha TV(x) (differentiates through the adaptation: third order).
- Both run optax's Adam, pixels projected to [0, 1], for a *traced* number of iterations
  (``lax.fori_loop``: one program for every iteration count) with per-attack traced lr and
  alpha, keeping x*[slot] at checkpoint iterations (:func:`attack_kernel`); attacks are mapped
  over a batch axis (``jax.lax.map`` in chunks of ``trial_batch``: :func:`resolve_trial_batch`).
- **Score**: SSIM(x_0, x*[slot]) (:func:`ssim`, dm-pix's Gaussian SSIM; equal to scikit-image's
  ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``, tested).

The membership game played with these attacks (tuning, non-members, thresholds, metrics) is
:mod:`mtl_tracing.attacks.maml_game`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import (
    check_choice,
    check_int,
    check_key,
    check_nonnegative,
    check_positive_float,
)
from mtl_tracing.data.fewshot import task_labels
from mtl_tracing.victims import maml

__all__ = [
    "KINDS",
    "AttackConfig",
    "resolve_trial_batch",
    "ssim_filter",
    "ssim",
    "total_variation",
    "query_objective",
    "support_objective",
    "invert",
    "attack_kernel",
    "invert_trials",
]

KINDS = ("query", "support")


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """One attack's optimiser (static, hashable).

    Fields: ``iterations`` Adam steps, ``lr`` its step size, ``alpha`` the TV weight.
    """

    iterations: int = 100
    lr: float = 0.05
    alpha: float = 1e-3

    def __post_init__(self):
        check_int("iterations", self.iterations, low=1)
        object.__setattr__(self, "lr", check_positive_float("lr", self.lr))
        object.__setattr__(self, "alpha", check_nonnegative("alpha", self.alpha))


def resolve_trial_batch(trial_batch: int | str, n: int) -> int:
    """The attacks mapped at once (``jax.lax.map``'s ``batch_size``) for n attacks.

    ``"auto"``: all n at once (one vmap) on an accelerator, where the vectorised attack was
    11-17x the per-trial loop at 64 trials and 18-26x at 256 on an H200 (the review's
    measurement with ``benchmarks/bench_maml.py``); one at a time on CPU (a ``lax.scan`` over
    the attacks, no vmap), where ``bench_maml.py --quick --trials 24`` on the loaded 2-core
    machine gave loop / vectorised 0.7-1.2x with 1 at a time, 0.4-0.8x with 8 and 0.9-1.1x
    with all 24 (one attack's convolutions already keep both cores busy), so batching only
    costs memory (the support attack's third-order temporaries grow with the batch).
    """
    n = check_int("n", n, low=1)
    if trial_batch == "auto":
        return n if jax.default_backend() != "cpu" else 1
    return min(check_int("trial_batch", trial_batch, low=1), n)


def ssim_filter(height: int, width: int) -> tuple[int, float]:
    """(filter_size, sigma) of the Gaussian SSIM window: (11, 1.5) as Wang et al. when the image
    allows it, else (5, 0.7) (8x8 digits leave a 4x4 map of valid windows). Both are the windows
    scikit-image derives from sigma: 2 int(3.5 sigma + 0.5) + 1 taps."""
    return (11, 1.5) if min(height, width) >= 11 else (5, 0.7)


def ssim(a: Array, b: Array) -> Array:
    """Mean SSIM of images (..., H, W, 1) in [0, 1] (dm-pix, valid windows, Gaussian weights).

    Equals ``skimage.metrics.structural_similarity(a, b, data_range=1, gaussian_weights=True,
    sigma=sigma, use_sample_covariance=False)`` with ``(size, sigma) = ssim_filter(H, W)``.
    """
    import dm_pix

    size, sigma = ssim_filter(a.shape[-3], a.shape[-2])
    return dm_pix.ssim(a, b, max_val=1.0, filter_size=size, filter_sigma=sigma)


def total_variation(x: Array, mask: Array | None = None) -> Array:
    """Anisotropic TV of a set of images (n, H, W, 1): mean over the (active) images of their
    mean |horizontal| + |vertical| steps."""
    per = jnp.abs(x[:, 1:] - x[:, :-1]).mean(axis=(1, 2, 3))
    per = per + jnp.abs(x[:, :, 1:] - x[:, :, :-1]).mean(axis=(1, 2, 3))
    if mask is None:
        return per.mean()
    m = mask.astype(per.dtype)
    return jnp.sum(per * m) / jnp.sum(m)


def query_objective(model, params, x, labels, grads, alpha, mask=None):
    """1 - cos(grad_omega L(omega, omega, x), g) + alpha TV(x) (eq. 9)."""
    g_hat = jax.grad(maml.loss_fn, argnums=1)(model, params, x, labels, mask)
    return 1.0 - maml.tree_cosine(g_hat, grads) + alpha * total_variation(x, mask)


def support_objective(model, params, x, labels, query_x, query_y, grads, alpha, mask=None):
    """1 - cos(grad_omega L(U(omega, x), D^q), g) + alpha TV(x) (eq. 10)."""

    def outer(omega):
        theta = maml.adapt(model, omega, x, labels, mask=mask)
        return maml.loss_fn(model, theta, query_x, query_y, mask)

    g_hat = jax.grad(outer)(params)
    return 1.0 - maml.tree_cosine(g_hat, grads) + alpha * total_variation(x, mask)


def invert(objective, x_init: Array, config: AttackConfig):
    """Adam on ``objective(x)`` from ``x_init`` for ``config.iterations`` steps (a scan),
    projected to [0, 1]. Returns (x*, objective per iteration (iterations,))."""
    opt = optax.adam(config.lr)

    def body(carry, _):
        x, state = carry
        value, grad = jax.value_and_grad(objective)(x)
        updates, state = opt.update(grad, state, x)
        x = jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0)
        return (x, state), value

    (x, _), values = jax.lax.scan(body, (x_init, opt.init(x_init)), None, config.iterations)
    return x, values


def _attack_one(
    model, kind, shots, params, grads, query_x, mask, x0, slot, key, lr, alpha, n_it, checkpoints
):
    """One attack: x*[slot] after ``n_it`` steps and at each checkpoint (K, H, W, 1)."""
    labels = task_labels(model.ways, shots)
    x = flat_random.uniform(key, (labels.shape[0],) + x0.shape, x0.dtype).at[slot].set(x0)
    if kind == "query":
        obj = functools.partial(
            query_objective, model, params, labels=labels, grads=grads, alpha=alpha, mask=mask
        )
    else:
        obj = functools.partial(
            support_objective,
            model,
            params,
            labels=labels,
            query_x=query_x,
            query_y=labels,
            grads=grads,
            alpha=alpha,
            mask=mask,
        )
    opt = optax.adam(lr)

    def body(i, carry):
        x, state, snaps = carry
        updates, state = opt.update(jax.grad(obj)(x), state, x)
        x = jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0)
        hit = (checkpoints == i + 1)[:, None, None, None]
        return x, state, jnp.where(hit, x[slot], snaps)

    snaps = jnp.zeros((checkpoints.shape[0],) + x0.shape, x0.dtype)
    x, _, snaps = jax.lax.fori_loop(0, n_it, body, (x, opt.init(x), snaps))
    return x[slot], snaps


@functools.partial(jax.jit, static_argnames=("model", "kind", "shots", "batch"))
def attack_kernel(
    model,
    kind,
    shots,
    batch,
    params,
    grads,
    query_x,
    mask,
    trial,
    x0,
    slot,
    keys,
    lr,
    alpha,
    iterations,
    checkpoints,
):
    """Unchecked kernel (jitted; static: model, kind, shots, batch): M attacks at once.

    Attack j reconstructs around ``x0[j]`` (H, W, 1) in slot ``slot[j]`` from the gradient
    ``grads[trial[j]]`` (leaves (n, ...)), known query set ``query_x[trial[j]]`` (support
    attack; (n, w s, H, W, 1)) and slot mask ``mask[trial[j]]`` ((n, w s) or None), random start
    ``keys[j]``, Adam step ``lr[j]``, TV weight ``alpha[j]``, for ``iterations`` (traced int)
    steps, keeping x*[slot] at ``checkpoints`` ((K,) int, traced). Mapped in chunks of
    ``batch``. Returns ``(x* (M, H, W, 1), SSIM(x0, x*) (M,), SSIM at checkpoints (M, K))``.
    """

    def one(args):
        t, x0_i, slot_i, key_i, lr_i, alpha_i = args
        g = jax.tree.map(lambda a: a[t], grads)
        q = None if kind == "query" else query_x[t]
        m = None if mask is None else mask[t]
        x_star, snaps = _attack_one(
            model,
            kind,
            shots,
            params,
            g,
            q,
            m,
            x0_i,
            slot_i,
            key_i,
            lr_i,
            alpha_i,
            iterations,
            checkpoints,
        )
        at = jnp.broadcast_to(x0_i, snaps.shape)
        return x_star, ssim(x0_i, x_star), ssim(at, snaps)

    xs = (trial, x0, slot, keys, lr, alpha)
    return jax.lax.map(one, xs) if batch == 1 else jax.lax.map(one, xs, batch_size=batch)


def invert_trials(
    model: maml.ModelConfig,
    params,
    grads,
    x0: Array,
    slots: Array,
    key: Array,
    *,
    kind: str,
    shots: int,
    config: AttackConfig,
    query_x: Array | None = None,
    mask: Array | None = None,
    trial_batch: int | str = "auto",
):
    """Run the query or support attack on n trials at once (one compiled call).

    Args:
      model: the victim's :class:`~mtl_tracing.victims.maml.ModelConfig` (known to the
        meta-learner, who is the adversary).
      params: omega^t.
      grads: g_i per trial, pytree leaves (n, ...).
      x0: (n, H, W, 1) targets. slots: (n,) int, the target's slot (its label is slot // s).
      key: typed key (the noise of the other slots).
      kind: ``"query"`` or ``"support"``. shots: s.
      config: iterations (traced: one program for all), lr and alpha.
      query_x: (n, w s, H, W, 1) the known query sets (support attack only).
      mask: (n, w s) bool active slots of padded tasks (None: all).
      trial_batch: attacks mapped at once (:func:`resolve_trial_batch`).

    Returns:
      ``(x* at the slot (n, H, W, 1), SSIM(x0, x*) (n,))``.
    """
    check_key("key", key)
    kind = check_choice("kind", kind, KINDS)
    if (kind == "support") != (query_x is not None):
        raise ValueError(f"query_x is needed by (only) the support attack, got kind={kind!r}")
    if not isinstance(config, AttackConfig):
        raise ValueError(f"config must be an AttackConfig, got {config!r}")
    n = int(x0.shape[0])
    dt = x0.dtype
    x_star, score, _ = attack_kernel(
        model,
        kind,
        check_int("shots", shots, low=1),
        resolve_trial_batch(trial_batch, n),
        params,
        grads,
        query_x,
        mask,
        jnp.arange(n),
        x0,
        jnp.asarray(slots, jnp.int32),
        jax.random.split(key, n),
        jnp.full((n,), config.lr, dt),
        jnp.full((n,), config.alpha, dt),
        jnp.asarray(config.iterations, jnp.int32),
        jnp.asarray([config.iterations], jnp.int32),
    )
    return x_star, score
