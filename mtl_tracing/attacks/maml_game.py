"""The membership-inference game against MAML (Sec. IV-A, V-B) and its report (Tables I-II).

- **Trials** (:func:`victim_trials`): per trial a task of the victim's pool, its shared g_i
  (with the defences) and a slot; three targets (:data:`TARGETS`): the member (the task's own
  image in that slot), an ``"any-class"`` non-member (the paper's game: an image of the data
  distribution, class uniform among all) and a ``"same-class"`` non-member (stricter: the
  slot's class), both from the ``outside`` pool. All three are attacked with the same g_i and
  the same random start (paired).
- **Tuning** (the paper: "we separate a portion of the data as the validation set and then
  tune the hyperparameters"): a grid of (Adam lr, TV weight alpha) x checkpoint iterations
  (:class:`AttackGrid`) on validation trials, disjoint from the test trials, in ONE call of the
  attack kernel (the grid points are more rows of its batch axis; the iteration count is read
  at the checkpoints of one run). The point with the best validation AUC of the paper's game
  (member vs any-class; ties: fewest iterations) is chosen, and the test trials are attacked
  with it (:func:`play`).
- **Report** (:func:`membership_inference`, :func:`summarize`): per non-member mode, the
  threshold d maximising accuracy on the validation trials at the chosen point; accuracy,
  recall and precision at d on the test trials (Tables I-II), AUC and TPR at 1% FPR, with
  percentile CIs from resampling test trials; the chosen lr, alpha and iterations.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing import metrics
from mtl_tracing._validate import (
    check_choice,
    check_int,
    check_key,
    check_nonnegative,
    check_positive_float,
)
from mtl_tracing.attacks.gradient_inversion import KINDS, attack_kernel, resolve_trial_batch
from mtl_tracing.data.fewshot import (
    NONMEMBER_MODES,
    FewShotPools,
    check_active,
    check_task_shape,
    sample_nonmembers,
    sample_tasks,
)
from mtl_tracing.victims import maml

__all__ = [
    "KINDS",
    "TARGETS",
    "NONMEMBER_MODES",
    "AttackGrid",
    "GameConfig",
    "Trials",
    "KindResult",
    "GameResult",
    "victim_trials",
    "play",
    "host_auc",
    "choose_threshold",
    "accuracy_at_zero",
    "summarize",
    "membership_inference",
]

#: The three targets of a trial, in the order of every (3, n) array of a game.
TARGETS = ("member",) + NONMEMBER_MODES


@dataclasses.dataclass(frozen=True)
class AttackGrid:
    """The tuning grid: Adam lrs x TV weights alphas, each run to ``max(checkpoints)``
    iterations and scored at every checkpoint (so the iteration count is tuned for free)."""

    lrs: tuple[float, ...] = (0.01, 0.1)
    alphas: tuple[float, ...] = (1e-4, 1e-2)
    checkpoints: tuple[int, ...] = (25, 50, 100)

    def __post_init__(self):
        lrs = tuple(check_positive_float("lrs", v) for v in self.lrs)
        alphas = tuple(check_nonnegative("alphas", v) for v in self.alphas)
        cks = tuple(sorted({check_int("checkpoints", c, low=1) for c in self.checkpoints}))
        if not lrs or not alphas or not cks:
            raise ValueError(f"the attack grid needs >= 1 lr, alpha and checkpoint, got {self!r}")
        object.__setattr__(self, "lrs", lrs)
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "checkpoints", cks)

    @property
    def points(self) -> list[tuple[float, float]]:
        """The G = |lrs| |alphas| (lr, alpha) pairs, lr-major."""
        return [(lr, a) for lr in self.lrs for a in self.alphas]

    @property
    def iterations(self) -> int:
        return self.checkpoints[-1]

    def to_dict(self) -> dict:
        return {k: list(getattr(self, k)) for k in ("lrs", "alphas", "checkpoints")}


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """One membership game (static, hashable).

    Fields: ``kinds`` (the attacks played on the same trials), ``shots`` s of the task layout
    (w is the model's ``ways``; a padded game draws fewer, see :func:`play`), ``trials`` n test
    trials (each yields a member and two non-member targets), ``validation_trials`` per grid
    point (so G x that many validation attacks per target: with G x ``validation_trials`` =
    ``trials`` validation and test share one compiled program), ``grid`` the tuning grid,
    ``trial_batch`` (:func:`resolve_trial_batch`).
    """

    kinds: tuple[str, ...] = KINDS
    shots: int = 1
    trials: int = 32
    validation_trials: int = 8
    grid: AttackGrid = AttackGrid()
    trial_batch: int | str = "auto"

    def __post_init__(self):
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        if not kinds:
            raise ValueError("kinds must name at least one attack, got ()")
        object.__setattr__(self, "kinds", tuple(check_choice("kind", k, KINDS) for k in kinds))
        check_int("shots", self.shots, low=1)
        check_int("trials", self.trials, low=2)
        check_int("validation_trials", self.validation_trials, low=2)
        if not isinstance(self.grid, AttackGrid):
            raise ValueError(f"grid must be an AttackGrid, got {self.grid!r}")
        if self.trial_batch != "auto":
            check_int("trial_batch", self.trial_batch, low=1)


class Trials(NamedTuple):
    """The victims' side of n trials: what the adversary observes and the targets.

    Fields: ``grads`` g_i (leaves (n, ...)); ``query_x`` (n, w s, H, W, 1); ``mask`` (n, w s);
    ``slot`` (n,); ``member_query`` / ``member_support`` (n, H, W, 1) the task's image in the
    slot of its query / support set; ``any_class`` / ``same_class`` (n, H, W, 1) non-members;
    ``classes`` (n,) the slot's class; ``any_classes`` (n,) the any-class non-member's class.
    """

    grads: Any
    query_x: Array
    mask: Array
    slot: Array
    member_query: Array
    member_support: Array
    any_class: Array
    same_class: Array
    classes: Array
    any_classes: Array

    def targets(self, kind: str) -> Array:
        """(3, n, H, W, 1): member, any-class, same-class targets of the ``kind`` attack."""
        member = self.member_query if kind == "query" else self.member_support
        return jnp.stack([member, self.any_class, self.same_class])


@functools.partial(jax.jit, static_argnames=("model", "shots", "n"))
def _victim_trials(key, model, shots, n, params, pools, noise, active):
    k_task, k_slot, k_out, k_victim = jax.random.split(key, 4)
    tasks = sample_tasks(
        k_task, pools.train, ways=model.ways, shots=shots, num_tasks=n, active=active
    )
    victim = jax.vmap(functools.partial(maml.task_gradient, model), in_axes=(None, 0, 0, None))
    grads, _, _ = victim(params, tasks, jax.random.split(k_victim, n), noise)
    # the target's slot: uniform over the w' s' active slots
    k = jax.random.randint(k_slot, (n,), 0, active[0] * active[1])
    slot = (k // active[1]) * shots + k % active[1]
    rows = jnp.arange(n)
    cls = tasks.classes[rows, slot // shots]
    any_x, any_cls, _ = sample_nonmembers(k_out, pools.outside, cls, mode="any-class")
    same_x, _, _ = sample_nonmembers(k_out, pools.outside, cls, mode="same-class")
    return Trials(
        grads,
        tasks.query_x,
        tasks.mask,
        slot,
        tasks.query_x[rows, slot],
        tasks.support_x[rows, slot],
        any_x,
        same_x,
        cls,
        any_cls,
    )


def victim_trials(key, model, params, pools, *, shots, n, noise=None, active=None) -> Trials:
    """n trials: tasks from ``pools.train`` (w'-way s'-shot in the w-way s-shot layout when
    ``active = (w', s')``), their shared g_i with ``noise``, a slot and three targets each."""
    check_key("key", key)
    check_task_shape(pools.train, model.ways, shots)
    noise = (maml.Noise() if noise is None else noise).check()
    a = check_active(active, model.ways, shots)
    return _victim_trials(key, model, shots, check_int("n", n, low=1), params, pools, noise, a)


class KindResult(NamedTuple):
    """One attack's game.

    Fields: ``val_scores`` (G, K, 3, n_val) validation SSIMs per grid point, checkpoint and
    target (:data:`TARGETS`); ``val_auc`` (G, K) member vs any-class; ``choice`` (g, k) the
    chosen grid point; ``scores`` (3, n) test SSIMs at the choice; ``x0`` and ``x_star``
    (3, n, H, W, 1) the test targets and reconstructions.
    """

    val_scores: np.ndarray
    val_auc: np.ndarray
    choice: tuple[int, int]
    scores: np.ndarray
    x0: np.ndarray
    x_star: np.ndarray


class GameResult(NamedTuple):
    """A game: ``{kind: KindResult}`` and the grid and trial counts it was played with."""

    kinds: dict
    grid: AttackGrid
    trials: int
    validation_trials: int


def host_auc(scores_in, scores_out) -> np.ndarray:
    """AUC P(IN > OUT) + P(IN = OUT) / 2 over the last axis of two score arrays (NumPy, any
    leading shape, all pairs compared: for the small validation splits)."""
    s_in = np.asarray(scores_in, float)[..., :, None]
    s_out = np.asarray(scores_out, float)[..., None, :]
    return np.mean((s_in > s_out) + 0.5 * (s_in == s_out), axis=(-2, -1))


def _choose(val_auc: np.ndarray) -> tuple[int, int]:
    """Best validation AUC; ties go to the fewest iterations, then the first grid point."""
    best = np.max(val_auc)
    g, k = np.nonzero(val_auc >= best - 1e-12)
    i = np.lexsort((g, k))[0]
    return int(g[i]), int(k[i])


def play(
    key: Array,
    model: maml.ModelConfig,
    params,
    pools: FewShotPools,
    game: GameConfig,
    noise: maml.Noise | None = None,
    *,
    active=None,
) -> GameResult:
    """Validation (tuning) and test trials of the membership game at omega = ``params``.

    One victim call draws ``validation_trials + trials`` trials (tasks, g_i with ``noise``,
    targets); per attack kind, one call attacks every validation target at every grid point
    (G x 3 x ``validation_trials`` attacks, scored at the grid's checkpoints), the best point
    by validation AUC (member vs any-class) is chosen, and one call attacks the 3 x ``trials``
    test targets with it. ``active = (w', s')`` plays w'-way s'-shot tasks in the model's
    w-way ``game.shots``-shot layout (padded: the same programs for a whole grid).
    """
    check_key("key", key)
    if not isinstance(game, GameConfig):
        raise ValueError(f"game must be a GameConfig, got {game!r}")
    n_val, n_test = game.validation_trials, game.trials
    k_victim, k_attack = jax.random.split(key)
    tr = victim_trials(
        k_victim,
        model,
        params,
        pools,
        shots=game.shots,
        n=n_val + n_test,
        noise=noise,
        active=active,
    )
    grid = game.grid
    pts = np.asarray(grid.points)  # (G, 2)
    n_g = pts.shape[0]
    cks = jnp.asarray(grid.checkpoints, jnp.int32)
    dt = tr.member_query.dtype
    trial_keys = jax.random.split(k_attack, n_val + n_test)  # one start per trial (paired)
    q = tr.query_x
    out = {}
    for kind in game.kinds:
        tg = tr.targets(kind)  # (3, n, H, W, 1)
        # validation: rows ordered (grid point, target, trial)
        t_val = np.tile(np.arange(n_val), 3 * n_g)
        x_val = jnp.tile(tg[:, :n_val].reshape((-1,) + tg.shape[2:]), (n_g, 1, 1, 1))
        m_val = t_val.size
        batch = resolve_trial_batch(game.trial_batch, max(m_val, 3 * n_test))
        _, _, s_ck = attack_kernel(
            model,
            kind,
            game.shots,
            batch,
            params,
            tr.grads,
            q,
            tr.mask,
            jnp.asarray(t_val),
            x_val,
            tr.slot[t_val],
            trial_keys[t_val],
            jnp.asarray(np.repeat(pts[:, 0], 3 * n_val), dt),
            jnp.asarray(np.repeat(pts[:, 1], 3 * n_val), dt),
            jnp.asarray(grid.iterations, jnp.int32),
            cks,
        )
        val = np.asarray(s_ck).reshape(n_g, 3, n_val, -1).transpose(0, 3, 1, 2)  # (G, K, 3, n)
        val_auc = host_auc(val[:, :, 0], val[:, :, 1])
        g, k = _choose(val_auc)
        # test: rows ordered (target, trial), trials after the validation ones
        t_test = np.tile(np.arange(n_val, n_val + n_test), 3)
        x_star, s_test, _ = attack_kernel(
            model,
            kind,
            game.shots,
            batch,
            params,
            tr.grads,
            q,
            tr.mask,
            jnp.asarray(t_test),
            tg[:, n_val:].reshape((-1,) + tg.shape[2:]),
            tr.slot[t_test],
            trial_keys[t_test],
            jnp.full((t_test.size,), pts[g, 0], dt),
            jnp.full((t_test.size,), pts[g, 1], dt),
            jnp.asarray(grid.checkpoints[k], jnp.int32),
            cks,
        )
        shape = (3, n_test) + tuple(tg.shape[2:])
        out[kind] = KindResult(
            val,
            val_auc,
            (g, k),
            np.asarray(s_test).reshape(3, n_test),
            np.asarray(tg[:, n_val:]),
            np.asarray(x_star).reshape(shape),
        )
    return GameResult(out, grid, n_test, n_val)


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


def summarize(key: Array, val_in, val_out, test_in, test_out, *, bootstrap: int = 200) -> dict:
    """Threshold d from the validation scores; accuracy/recall/precision at d, AUC and TPR at 1%
    FPR on the test scores, with CIs from resampling test trials (paired: a trial's member and
    non-member move together). All inputs (n,) SSIMs."""
    check_key("key", key)
    d = choose_threshold(val_in, val_out)
    s_in, s_out = np.asarray(test_in, float), np.asarray(test_out, float)
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
    active=None,
    bootstrap: int = 200,
):
    """:func:`play` then :func:`summarize` per attack and non-member mode.

    Returns ``(summaries {kind: {mode: summary + "chosen": {lr, alpha, iterations,
    validation_auc}}}, GameResult)``.
    """
    check_key("key", key)
    bootstrap = check_int("bootstrap", bootstrap, low=2)
    k_play, k_boot = jax.random.split(key)
    res = play(k_play, model, params, pools, game, noise, active=active)
    out = {}
    for i, (kind, r) in enumerate(res.kinds.items()):
        g, k = r.choice
        lr, alpha = res.grid.points[g]
        chosen = {
            "lr": lr,
            "alpha": alpha,
            "iterations": res.grid.checkpoints[k],
            "validation_auc": float(r.val_auc[g, k]),
        }
        out[kind] = {}
        for j, mode in enumerate(NONMEMBER_MODES, start=1):
            s = summarize(
                jax.random.fold_in(k_boot, i),
                r.val_scores[g, k, 0],
                r.val_scores[g, k, j],
                r.scores[0],
                r.scores[j],
                bootstrap=bootstrap,
            )
            out[kind][mode] = {**s, "chosen": chosen}
    return out, res
