"""Gradient-inversion membership inference against MAML (Sec. IV-C, IV-D).

Notation (argument -> paper symbol): ``params`` omega^t, ``grads`` g = g_i (the task learner's
shared gradient), ``x0`` the target x_0, ``slot`` its place in the set, x* the reconstruction,
``alpha`` the total-variation weight, ``iterations`` the attack's gradient steps, w ``ways``,
s ``shots``, n ``trials`` (members and non-members each).

- **Query attack** (eq. 9): x* = argmin_x 1 - cos(grad_omega L(omega, omega, x), g) +
  alpha TV(x), with x a whole query set (w s images; labels fixed by the protocol, slot k has
  label k // s), the target x_0 in its slot and uniform noise in the others.
- **Support attack** (eq. 10): the adversary knows the query set D^q; x is a support set
  (x_0 in its slot), adapted on: minimise 1 - cos(grad_omega L(U(omega, x), D^q), g) +
  alpha TV(x) (differentiates through the adaptation: third order).
- Both run optax's Adam as a ``lax.scan`` over iterations, pixels projected to [0, 1], and are
  vmapped over trials (many targets per compiled call).
- **Score**: SSIM(x_0, x*[slot]) (:func:`ssim`, dm-pix's Gaussian SSIM; equal to scikit-image's
  ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``, tested).
- **The game** (Sec. IV-A, :func:`play`): per trial a task of the victim's pool and a slot;
  the member target is the task's own image in that slot; the non-member target is a fresh
  image of the same class from the ``outside`` pool (the data distribution, never in a task).
  Both are attacked with the same observed g_i (a paired game; CIs resample trials).
- **Report** (:func:`membership_inference`): the threshold d maximises accuracy on a validation
  split of trials (the paper's validation set); accuracy, recall and precision at d on the test
  trials (Tables I-II), AUC and TPR at 1% FPR, each with a percentile CI from resampling trials.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from mtl_tracing import flat_random, metrics
from mtl_tracing._validate import (
    check_choice,
    check_int,
    check_key,
    check_nonnegative,
    check_positive_float,
)
from mtl_tracing.data.fewshot import FewShotPools, check_task_shape, sample_tasks, task_labels
from mtl_tracing.victims import maml

__all__ = [
    "KINDS",
    "AttackConfig",
    "GameConfig",
    "GameResult",
    "ssim_filter",
    "ssim",
    "total_variation",
    "query_objective",
    "support_objective",
    "invert",
    "invert_trials",
    "play",
    "choose_threshold",
    "accuracy_at_zero",
    "summarize",
    "membership_inference",
]

KINDS = ("query", "support")


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """The attack's optimiser (static, hashable).

    Fields: ``iterations`` Adam steps, ``lr`` its step size, ``alpha`` the TV weight.
    """

    iterations: int = 100
    lr: float = 0.05
    alpha: float = 1e-3

    def __post_init__(self):
        check_int("iterations", self.iterations, low=1)
        object.__setattr__(self, "lr", check_positive_float("lr", self.lr))
        object.__setattr__(self, "alpha", check_nonnegative("alpha", self.alpha))


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


def total_variation(x: Array) -> Array:
    """Anisotropic TV of a set of images (n, H, W, 1): mean |horizontal| + |vertical| steps."""
    dh = jnp.abs(x[:, 1:, :, :] - x[:, :-1, :, :]).mean()
    dw = jnp.abs(x[:, :, 1:, :] - x[:, :, :-1, :]).mean()
    return dh + dw


def query_objective(model, params, x, labels, grads, alpha):
    """1 - cos(grad_omega L(omega, omega, x), g) + alpha TV(x) (eq. 9)."""
    g_hat = jax.grad(functools.partial(maml.loss_fn, model))(params, x, labels)
    return 1.0 - maml.tree_cosine(g_hat, grads) + alpha * total_variation(x)


def support_objective(model, params, x, labels, query_x, query_y, grads, alpha):
    """1 - cos(grad_omega L(U(omega, x), D^q), g) + alpha TV(x) (eq. 10)."""

    def outer(omega):
        theta = maml.adapt(model, omega, x, labels)
        return maml.loss_fn(model, theta, query_x, query_y)

    g_hat = jax.grad(outer)(params)
    return 1.0 - maml.tree_cosine(g_hat, grads) + alpha * total_variation(x)


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


def _one_trial(model, config, kind, shots, params, grads, x0, slot, key, query_x):
    n_slots = model.ways * shots
    labels = task_labels(model.ways, shots)
    x_init = flat_random.uniform(key, (n_slots,) + x0.shape, x0.dtype).at[slot].set(x0)
    if kind == "query":
        obj = functools.partial(
            query_objective, model, params, labels=labels, grads=grads, alpha=config.alpha
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
            alpha=config.alpha,
        )
    x_star, values = invert(obj, x_init, config)
    return x_star[slot], values[-1]


@functools.partial(jax.jit, static_argnames=("model", "config", "kind", "shots"))
def _invert_trials(model, config, kind, shots, params, grads, x0, slots, keys, query_x):
    fn = functools.partial(_one_trial, model, config, kind, shots, params)
    q_axis = None if query_x is None else 0
    x_star, final = jax.vmap(fn, in_axes=(0, 0, 0, 0, q_axis))(grads, x0, slots, keys, query_x)
    return x_star, final, ssim(x0, x_star)


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
):
    """Run the query or support attack on n trials at once (vmapped, one compiled call).

    Args:
      model: the victim's :class:`~mtl_tracing.victims.maml.ModelConfig` (known to the
        meta-learner, who is the adversary).
      params: omega^t.
      grads: g_i per trial, pytree leaves (n, ...).
      x0: (n, H, W, 1) targets. slots: (n,) int, the target's slot (its label is slot // s).
      key: typed key (the noise of the other slots).
      kind: ``"query"`` or ``"support"``. shots: s.
      query_x: (n, w s, H, W, 1) the known query sets (support attack only).

    Returns:
      ``(x* at the slot (n, H, W, 1), final objective (n,), SSIM(x0, x*) (n,))``.
    """
    check_key("key", key)
    kind = check_choice("kind", kind, KINDS)
    if (kind == "support") != (query_x is not None):
        raise ValueError(f"query_x is needed by (only) the support attack, got kind={kind!r}")
    n = int(x0.shape[0])
    keys = jax.random.split(key, n)
    return _invert_trials(
        model, config, kind, shots, params, grads, x0, jnp.asarray(slots), keys, query_x
    )


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """One membership game (static, hashable).

    Fields: ``kind`` (query/support attack), ``shots`` s (w is the model's ``ways``),
    ``trials`` n (each trial yields one member and one non-member score), ``attack``.
    """

    kind: str = "query"
    shots: int = 1
    trials: int = 32
    attack: AttackConfig = AttackConfig()

    def __post_init__(self):
        check_choice("kind", self.kind, KINDS)
        check_int("shots", self.shots, low=1)
        check_int("trials", self.trials, low=1)
        if not isinstance(self.attack, AttackConfig):
            raise ValueError(f"attack must be an AttackConfig, got {self.attack!r}")


class GameResult(NamedTuple):
    """Scores of n trials: member (IN) and non-member (OUT) targets and their reconstructions."""

    scores_in: Array  # (n,) SSIM(x0, x*) for member targets
    scores_out: Array  # (n,) for non-member targets
    x0_in: Array  # (n, H, W, 1)
    x_star_in: Array
    x0_out: Array
    x_star_out: Array


@functools.partial(jax.jit, static_argnames=("model", "game"))
def _play(key, model, game, params, pools, noise):
    n, w, s = game.trials, model.ways, game.shots
    k_task, k_slot, k_out, k_victim, k_attack = jax.random.split(key, 5)
    tasks = sample_tasks(k_task, pools.train, ways=w, shots=s, num_tasks=n)
    victim = jax.vmap(functools.partial(maml.task_gradient, model), in_axes=(None, 0, 0, None))
    grads, _, _ = victim(params, tasks, jax.random.split(k_victim, n), noise)
    slots = jax.random.randint(k_slot, (n,), 0, w * s)
    rows = jnp.arange(n)
    own = tasks.query_x if game.kind == "query" else tasks.support_x
    x_in = own[rows, slots]
    cls = tasks.classes[rows, slots // s]
    pick = jax.random.randint(k_out, (n,), 0, pools.outside.per_class)
    x_out = pools.outside.images[cls, pick]
    both = lambda a: jnp.concatenate([a, a])  # noqa: E731
    x0 = jnp.concatenate([x_in, x_out])
    keys = jax.random.split(k_attack, 2 * n)
    q = both(tasks.query_x) if game.kind == "support" else None
    fn = functools.partial(_one_trial, model, game.attack, game.kind, s, params)
    q_axis = None if q is None else 0
    x_star, _ = jax.vmap(fn, in_axes=(0, 0, 0, 0, q_axis))(
        jax.tree.map(both, grads), x0, both(slots), keys, q
    )
    scores = ssim(x0, x_star)
    return GameResult(scores[:n], scores[n:], x_in, x_star[:n], x_out, x_star[n:])


def play(
    key: Array,
    model: maml.ModelConfig,
    params,
    pools: FewShotPools,
    game: GameConfig,
    noise: maml.Noise | None = None,
) -> GameResult:
    """n trials of the membership game against the victim at omega = ``params`` (one compiled
    call: sample tasks, the victims' g_i with ``noise``, 2 n attacks, SSIM scores)."""
    check_key("key", key)
    if not isinstance(game, GameConfig):
        raise ValueError(f"game must be a GameConfig, got {game!r}")
    check_task_shape(pools.train, model.ways, game.shots)
    noise = (maml.Noise() if noise is None else noise).check()
    return _play(key, model, game, params, pools, noise)


def choose_threshold(scores_in, scores_out) -> float:
    """The threshold d maximising accuracy of the rule ``score > d`` (midpoint between scores;
    ties broken towards the middle candidate)."""
    s_in, s_out = np.asarray(scores_in, float), np.asarray(scores_out, float)
    pooled = np.sort(np.concatenate([s_in, s_out]))
    cands = np.concatenate([[pooled[0] - 1e-6], (pooled[1:] + pooled[:-1]) / 2, [pooled[-1]]])
    acc = [(np.sum(s_in > t) + np.sum(s_out <= t)) for t in cands]
    best = np.flatnonzero(acc == np.max(acc))
    return float(cands[best[len(best) // 2]])


def accuracy_at_zero(scores_in, scores_out, *, weights_in=None, weights_out=None):
    """Bootstrap statistic: accuracy of the rule ``score > 0`` (weights = multiplicities).

    Pass scores minus the threshold d: AUC and TPR at FPR are shift-invariant, so one bootstrap
    (one compilation, whatever d) serves all three statistics.
    """
    w_in = jnp.ones_like(scores_in) if weights_in is None else weights_in
    w_out = jnp.ones_like(scores_out) if weights_out is None else weights_out
    hits = jnp.sum(w_in * (scores_in > 0)) + jnp.sum(w_out * (scores_out <= 0))
    return hits / (jnp.sum(w_in) + jnp.sum(w_out))


_STATS = (metrics.auc, metrics.TprAtFprStatistic(0.01), accuracy_at_zero)


def summarize(key: Array, val: GameResult, test: GameResult, *, bootstrap: int = 200) -> dict:
    """Threshold from ``val``; accuracy/recall/precision, AUC, TPR@1%FPR on ``test`` with CIs
    from resampling test trials (paired: a trial's member and non-member move together)."""
    check_key("key", key)
    d = choose_threshold(val.scores_in, val.scores_out)
    s_in, s_out = np.asarray(test.scores_in, float), np.asarray(test.scores_out, float)
    tp, fp = int(np.sum(s_in > d)), int(np.sum(s_out > d))
    n = s_in.size
    auc_ci, tpr_ci, acc_ci = metrics.grouped_bootstrap(
        key,
        _STATS,
        jnp.asarray(s_in - d)[:, None],
        jnp.asarray(s_out - d)[:, None],
        num_resamples=bootstrap,
        paired=True,
    )
    ci = lambda iv: [float(iv.low), float(iv.high)]  # noqa: E731
    return {
        "threshold": d,
        "accuracy": (tp + n - fp) / (2 * n),
        "accuracy_ci": ci(acc_ci),
        "recall": tp / n,
        "precision": tp / (tp + fp) if tp + fp else None,
        "auc": float(metrics.auc(s_in, s_out)),
        "auc_ci": ci(auc_ci),
        "tpr_at_1pct_fpr": float(metrics.tpr_at_fpr(s_in, s_out, 0.01).tpr),
        "tpr_at_1pct_fpr_ci": ci(tpr_ci),
        "trials": n,
        "mean_ssim_in": float(s_in.mean()),
        "mean_ssim_out": float(s_out.mean()),
    }


def membership_inference(
    key: Array,
    model: maml.ModelConfig,
    params,
    pools: FewShotPools,
    game: GameConfig,
    noise: maml.Noise | None = None,
    *,
    bootstrap: int = 200,
):
    """Validation game (threshold) + test game (report), same compiled call twice.

    Returns ``(summary dict, validation GameResult, test GameResult)``.
    """
    check_key("key", key)
    bootstrap = check_int("bootstrap", bootstrap, low=2)
    k_val, k_test, k_boot = jax.random.split(key, 3)
    val = play(k_val, model, params, pools, game, noise)
    test = play(k_test, model, params, pools, game, noise)
    return summarize(k_boot, val, test, bootstrap=bootstrap), val, test
