r"""The Gaussian game with a differentially private release: clipping, noise, exact theory.

The release (notation of :mod:`mtl_tracing.gaussian.config`; C ``clip``, z
``noise_multiplier``, sigma ``release_noise_std``):

    c_i = clip_C(xbar_i - mu_bar),    clip_C(v) = v min(1, C / ||v||),
    mu_hat = mu_bar + (sum_i c_i + xi) / T + sigma n,   xi ~ N(0, (z C)^2 I_d), n ~ N(0, I_d),

where xbar_i is the mean of task i's N samples. ``DPRelease()`` (no clipping, z = 0,
sigma = 0) is today's release: :func:`simulate_release` then calls
:func:`~mtl_tracing.gaussian.game.simulate` itself, bit for bit.

**Privacy of the clipped release (mu = 2/z).** The game's IN and OUT worlds both hold T tasks
and differ in one (the target, or a fresh task in its place): replace-one adjacency. The
clipped sum S = sum_i c_i then moves by ||c_j - c'_j|| <= ||c_j|| + ||c'_j|| <= 2C, its L2
sensitivity. S + xi with xi ~ N(0, (zC)^2 I) is the Gaussian mechanism, which is
(sensitivity / std)-GDP = 2C/(zC) = 2/z-GDP (Dong, Roth and Su 2022, Thm 2.7). mu_hat is a
function of S + xi (and of public mu_bar, T), so it is 2/z-GDP too, and so is every score
computed from mu_hat and the adversary's challenge batch (post-processing, Prop. 2.8). Hence
every test of IN against OUT has TPR <= Phi(Phi^-1(FPR) + mu) for each fixed pair of worlds,
and the game's marginal (FPR, TPR), an average over random pairs, also lies under the curve:
the tradeoff curve G_mu is concave, so E[TPR] <= E[G_mu(FPR)] <= G_mu(E[FPR]) (Jensen; this is
the joint convexity of the hockey-stick divergence). ``release_noise_std`` alone gives no
guarantee (no clipping: unbounded sensitivity); tests show the tracing attack then beats the
2/z curve at large task norms.

**Exact theory without clipping.** Unclipped, the release is today's mu_hat plus independent
Gaussian noise of total std sigma_tot = sqrt((zC/T)^2 + sigma^2) per coordinate (only sigma when
nothing is clipped and z C is undefined). Per coordinate alpha = mu_hat - mu_bar gains
variance sigma_tot^2 and nothing else changes: A -> A + sigma_tot^2, while B and
c = Cov(alpha, beta) are unchanged (the noise is independent of every batch). The whole exact
theory (moments, the law z = a X - b Y, ROC, AUC, TPR) follows with this A
(:func:`noisy_second_order`, :func:`release_law`, :func:`release_roc`; ``roc_theory`` takes the
noise as one more broadcast column, ``release_noise_std``).

**Samplers.** ``"faithful"`` draws the release literally and supports everything.
``"sufficient"`` supports noise without clipping exactly: per coordinate the noise enters
alpha_l as one more independent normal, so the reduction of
:func:`~mtl_tracing.gaussian.game._sufficient_game` holds with A + sigma_tot^2 (proof in
:func:`_sufficient_release_game`). Clipping couples the d coordinates through ||xbar_i -
mu_bar||, which breaks the per-coordinate independence the reduction rests on, so the
sufficient sampler refuses a clipped release and points to ``sampler="faithful"``.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import (
    check_choice,
    check_dtype,
    check_int,
    check_key,
    check_nonnegative,
    check_positive_float,
    check_probability,
    scalar_or_array,
)
from mtl_tracing.gaussian.config import (
    IN_ADVERSARIES,
    GameShape,
    GaussianGameConfig,
    check_config,
)
from mtl_tracing.gaussian.draws import (
    norms_from,
    orthogonal_squares,
    score_batches,
    static_shape_args,
)
from mtl_tracing.gaussian.game import (
    SAMPLERS,
    GameNorms,
    GameScores,
    pack_outputs,
    simulate,
    sufficient_draws,
)
from mtl_tracing.gaussian.moments import ScoreMoments, law_scale_parts, second_order

__all__ = [
    "DPRelease",
    "with_release_noise",
    "noisy_second_order",
    "release_law",
    "release_roc",
    "release_auc",
    "release_tpr_at_fpr",
    "release_moments",
    "simulate_release",
    "release_kernel",
]


@dataclasses.dataclass(frozen=True)
class DPRelease:
    """How mu_hat is released: ``clip`` C (None: no clipping), ``noise_multiplier`` z (noise
    std z C on the clipped sum; needs ``clip``), ``release_noise_std`` sigma (noise on mu_hat,
    no guarantee). The default is today's release."""

    clip: float | None = None
    noise_multiplier: float = 0.0
    release_noise_std: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.clip is not None:
            set_(self, "clip", check_positive_float("clip", self.clip))
        set_(self, "noise_multiplier", check_nonnegative("noise_multiplier", self.noise_multiplier))
        if self.noise_multiplier > 0 and self.clip is None:
            raise ValueError(
                "noise_multiplier needs clip (the noise std is noise_multiplier * clip), got "
                f"noise_multiplier={self.noise_multiplier!r} with clip=None; use "
                "release_noise_std for noise without clipping"
            )
        set_(
            self,
            "release_noise_std",
            check_nonnegative("release_noise_std", self.release_noise_std),
        )

    @property
    def is_plain(self) -> bool:
        """No clipping and no noise: today's release."""
        return self.clip is None and self.noise_multiplier == 0 and self.release_noise_std == 0

    def sum_noise_std(self) -> float:
        """z C, the std of xi on the clipped sum (0 without noise)."""
        return self.noise_multiplier * self.clip if self.noise_multiplier > 0 else 0.0

    def noise_std(self, tasks: int) -> float:
        """sigma_tot = sqrt((z C / T)^2 + sigma^2), the noise std per coordinate of mu_hat."""
        tasks = check_int("tasks", tasks, low=1)
        return math.hypot(self.sum_noise_std() / tasks, self.release_noise_std)

    @property
    def mu(self) -> float:
        """The GDP mu of the release: 2/z with clipping (replace-one adjacency), inf otherwise."""
        if self.clip is None or self.noise_multiplier == 0:
            return math.inf
        return 2.0 / self.noise_multiplier

    def epsilon(self, delta: float) -> float:
        """epsilon at ``delta`` implied by mu-GDP (inf without a guarantee)."""
        from mtl_tracing.audit.gdp import gdp_epsilon

        delta = check_probability("delta", delta)
        return math.inf if math.isinf(self.mu) else float(gdp_epsilon(self.mu, delta))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_release(release: object) -> DPRelease:
    if not isinstance(release, DPRelease):
        raise ValueError(f"release must be a DPRelease, got {release!r}")
    return release


def _exact_release(config: GaussianGameConfig, release: DPRelease) -> float:
    """sigma_tot for the exact theory; refuses a clipped release (no closed form)."""
    if release.clip is not None:
        raise ValueError(
            f"the exact theory covers unclipped releases only, got clip={release.clip!r}; "
            "simulate a clipped release with sampler='faithful'"
        )
    return release.noise_std(config.tasks)


# ------------------------------------------------------------------------------- exact theory


def with_release_noise(m: ScoreMoments, noise_std, dim) -> ScoreMoments:
    """Moments with release noise of std ``noise_std`` on mu_hat: A + sigma^2, same B and c;
    mean d c, var d((A + sigma^2) B + c^2). The paper's fields are kept (noiseless)."""
    sig2 = np.asarray(noise_std, dtype=np.float64) ** 2
    d = np.asarray(dim, dtype=np.float64)
    a_var = np.asarray(m.A, dtype=np.float64) + sig2
    var = d * (a_var * np.asarray(m.B) + np.asarray(m.c) ** 2)
    fields = np.broadcast_arrays(a_var, m.B, m.c, m.mean, var, m.paper_mean, m.paper_var)
    return ScoreMoments(*(scalar_or_array(np.array(x, dtype=np.float64)) for x in fields))


def noisy_second_order(
    tasks, samples, challenge, task_std, sample_std, adversary: str, noise_std=0.0
):
    """(A + sigma^2, B, c) per coordinate; broadcast over the numeric arguments."""
    from mtl_tracing._validate import check_nonnegative_array

    sig = check_nonnegative_array("release_noise_std", noise_std)
    a_var, b_var, cov = second_order(tasks, samples, challenge, task_std, sample_std, adversary)
    a_var, b_var, cov = np.broadcast_arrays(np.asarray(a_var) + sig**2, b_var, cov)
    return tuple(scalar_or_array(np.array(x)) for x in (a_var, b_var, cov))


def release_moments(config: GaussianGameConfig, release: DPRelease) -> dict[str, ScoreMoments]:
    """``{adversary: ScoreMoments}`` of the unclipped noisy release."""
    from mtl_tracing.gaussian.moments import moments

    sig = _exact_release(check_config(config), _check_release(release))
    return {adv: with_release_noise(m, sig, config.dim) for adv, m in moments(config).items()}


def release_law(config: GaussianGameConfig, release: DPRelease, adversary: str):
    """The exact law of z (``ScoreLaw``: z = a X - b Y) under the unclipped noisy release."""
    from mtl_tracing.gaussian.law import ScoreLaw

    config, release = check_config(config), _check_release(release)
    sig = _exact_release(config, release)
    t, n, k, sb, s = (
        config.tasks,
        config.samples,
        config.challenge,
        config.task_std,
        config.sample_std,
    )
    a_var, b_var, cov = noisy_second_order(t, n, k, sb, s, adversary, sig)
    _, pos, neg = law_scale_parts(a_var, b_var, cov)
    return ScoreLaw(config.dim, float(pos), float(neg))


def release_roc(config: GaussianGameConfig, release: DPRelease, adversary: str, fpr):
    """Exact marginal ROC TPR(fpr) of the unclipped noisy release; ``fpr`` in (0, 1)."""
    from mtl_tracing._validate import check_open_unit_array

    check_choice("adversary", adversary, IN_ADVERSARIES)
    law_in = release_law(config, release, adversary)
    law_out = release_law(config, release, "out")
    return law_in.sf(np.asarray(law_out.isf(check_open_unit_array("fpr", fpr))))


def _theory(config, release, adversary, fpr):
    from mtl_tracing.gaussian.batched import roc_theory

    sig = _exact_release(check_config(config), _check_release(release))
    return roc_theory(
        config.tasks,
        config.samples,
        config.dim,
        config.challenge,
        config.task_std,
        config.sample_std,
        adversary,
        fpr,
        release_noise_std=sig,
    )


def release_auc(config: GaussianGameConfig, release: DPRelease, adversary: str) -> float:
    """Exact marginal AUC of the unclipped noisy release (``roc_theory``'s quadrature)."""
    return float(_theory(config, release, adversary, 0.5)["exact_auc"])


def release_tpr_at_fpr(config, release: DPRelease, adversary: str, fpr: float) -> float:
    """Exact marginal TPR at ``fpr`` of the unclipped noisy release."""
    return float(_theory(config, release, adversary, fpr)["exact_tpr"])


# ----------------------------------------------------------------------------------- samplers


def _faithful_release_game(
    key, task_std, sample_std, mean, clip, sum_std, sigma, *, shape, dtype, norms=False
):
    """One game with the release drawn literally; (strong_in, weak_in, out), each (T,), and
    with ``norms`` the ``GameNorms`` fields (``game.score_batches``)."""
    T, N, d, k = shape
    k_mu, k_x, k_perm, k_weak, k_omu, k_out, k_xi = jax.random.split(key, 7)
    mu_bar = jnp.broadcast_to(jnp.asarray(mean, dtype), (d,))
    mu = mu_bar + task_std * flat_random.normal(k_mu, (T, d), dtype)
    x = mu[:, None, :] + sample_std * flat_random.normal(k_x, (T, N, d), dtype)
    dev = jnp.mean(x, axis=1) - mu_bar  # xbar_i - mu_bar, (T, d)
    norm = jnp.linalg.norm(dev, axis=-1, keepdims=True)
    contrib = dev * jnp.minimum(1.0, clip / jnp.maximum(norm, jnp.finfo(dtype).tiny))
    noise = flat_random.normal(k_xi, (2, d), dtype)
    alpha = (jnp.sum(contrib, axis=0) + sum_std * noise[0]) / T + sigma * noise[1]
    idx = jnp.argsort(flat_random.uniform(k_perm, (T, N), dtype), axis=1)[:, :k]
    strong_b = jnp.take_along_axis(x, idx[:, :, None], axis=1)
    weak_b = mu[:, None, :] + sample_std * flat_random.normal(k_weak, (T, k, d), dtype)
    mu_out = mu_bar + task_std * flat_random.normal(k_omu, (T, d), dtype)
    out_b = mu_out[:, None, :] + sample_std * flat_random.normal(k_out, (T, k, d), dtype)
    return score_batches((strong_b, weak_b, out_b), mu_bar, alpha, norms)


def _sufficient_release_game(
    key, task_std, sample_std, mean, clip, sum_std, sigma, *, shape, dtype, norms=False
):
    """The 3T scores of one unclipped noisy game from O(T) normals and one chi-square (with
    ``norms``, the ``GameNorms`` fields too: O(T d) more normals, each orthogonal row's
    alpha_1 with its own noise draw; ``draws.orthogonal_squares``).

    Proof: per coordinate, alpha_l = mean_i m_il + e_l with e_l ~ N(0, sigma_tot^2)
    independent of everything else, i.i.d. over l. The reduction of ``_sufficient_game``
    only uses that (alpha_l, the 3T beta_l) is Gaussian and i.i.d. over l, so it holds with
    A' = A + sigma_tot^2 and c unchanged: z = (c/A') R2 + sqrt(R2) eps, R2 ~ A' chi2_d, eps the
    residual beta - (c/A') alpha_1 of one coordinate drawn with the noise included.
    """
    del mean, clip  # mean cancels; clip is refused upstream (inf here)
    T, N, d, k = shape
    k_mu, k_b, k_r, k_w, k_v, k_chi, k_e = jax.random.split(key, 7)
    noise_var = (sum_std / T) ** 2 + sigma**2
    keys = (k_mu, k_b, k_r, k_w, k_v)
    b, m, w, v = sufficient_draws(keys, task_std, sample_std, shape=shape, dtype=dtype)
    alpha1 = jnp.mean(m) + jnp.sqrt(noise_var) * jax.random.normal(k_e, (), dtype)
    a_var = (task_std**2 + sample_std**2 / N) / T + noise_var
    c_strong = (task_std**2 + sample_std**2 / N) / T
    c_weak = task_std**2 / T
    r2 = a_var * 2.0 * jax.random.gamma(k_chi, d / 2.0, (), dtype)
    root = jnp.sqrt(r2)
    strong = (c_strong / a_var) * r2 + root * (b - (c_strong / a_var) * alpha1)
    weak = (c_weak / a_var) * r2 + root * (w - (c_weak / a_var) * alpha1)
    out = root * v
    if not norms:
        return strong, weak, out
    ratios = (c_strong / a_var, c_weak / a_var)
    rows = orthogonal_squares(
        jax.random.fold_in(key, 1), task_std, sample_std, ratios, jnp.sqrt(noise_var),
        shape_args=static_shape_args(shape), width=T, rows=d - 1, dtype=dtype,
    )  # fmt: skip
    return (strong, weak, out) + norms_from(r2, ratios, (b, w, v), alpha1, rows)


_KERNELS = {"faithful": _faithful_release_game, "sufficient": _sufficient_release_game}
_CHUNK = 256  # games per vmapped chunk (a lax.map over chunks); 32 with norms


def release_kernel(sampler: str, shape: GameShape, dtype=None, norms: bool = False):
    """The pure per-game function of the DP release, for sweeps:
    ``f(key, task_std, sample_std, mean, clip, sum_noise_std, release_noise_std) -> (strong,
    weak, out)``, each (T,) (``norms``: then the four ``GameNorms`` fields). All six
    parameters may be traced (one compile for every release): ``clip`` = inf means no
    clipping, ``sum_noise_std`` is z C (0 without noise). No validation inside; the sufficient
    sampler silently ignores ``clip`` (callers must refuse a finite clip there, as
    :func:`simulate_release` does)."""
    from mtl_tracing.gaussian.game import game_kernel

    game_kernel(sampler, shape, dtype)  # validates sampler and shape
    dt = check_dtype(dtype)
    return functools.partial(_KERNELS[sampler], shape=GameShape(*shape), dtype=dt, norms=norms)


@functools.lru_cache(maxsize=32)
def _runner(sampler: str, shape: GameShape, dtype, chunks: int, norms: bool = False):
    kernel = functools.partial(_KERNELS[sampler], shape=shape, dtype=dtype, norms=norms)
    size = 32 if norms else _CHUNK

    def run(key, params):
        games = jnp.arange(chunks * size, dtype=jnp.uint32).reshape(chunks, size)

        def chunk(g):
            keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(g)
            return jax.vmap(kernel, in_axes=(0,) + (None,) * 6)(keys, *params)

        outs = jax.lax.map(chunk, games)
        return tuple(o.reshape(chunks * size, *o.shape[2:]) for o in outs)

    return jax.jit(run)


def simulate_release(
    key: Array,
    config: GaussianGameConfig,
    release: DPRelease,
    *,
    games: int,
    sampler: str = "sufficient",
    dtype=None,
    memory_budget_bytes: int = 512 * 2**20,
    task_block: int | None = None,
    norms: bool = False,
) -> GameScores | tuple[GameScores, GameNorms]:
    """Play ``games`` tracing games with the release ``release``; game g uses
    ``fold_in(key, g)``.

    ``DPRelease()`` returns ``gaussian.simulate(key, config, games=games, sampler=sampler,
    dtype=dtype, memory_budget_bytes=..., task_block=...)`` exactly. Otherwise all games run
    in one compiled call (chunks of 256 games, a ``lax.map`` of vmaps); the release parameters
    are traced (no recompile when they change). ``sampler="sufficient"`` refuses ``clip`` (see
    the module docstring). A faithful game above the memory cap (as in ``game.simulate``), or
    any faithful game when ``task_block`` is given, is streamed over blocks of tasks
    (:mod:`~mtl_tracing.gaussian.streamed`, the release's clipping and noise included).
    ``norms``: also return ``GameNorms`` (as ``game.simulate``; for the optimal statistic,
    with A + sigma_tot^2: ``optimal.lrt_second_order(config, adversary, release)``).

    Returns:
      GameScores, each (games, T), in ``dtype``; with ``norms``, ``(GameScores, GameNorms)``.
    """
    key = check_key("key", key)
    config, release = check_config(config), _check_release(release)
    games = check_int("games", games, low=1)
    check_choice("sampler", sampler, SAMPLERS)
    dt = check_dtype(dtype)
    budget = check_int("memory_budget_bytes", memory_budget_bytes, low=1)
    if release.is_plain:
        kw = dict(memory_budget_bytes=budget, task_block=task_block, norms=norms)
        return simulate(key, config, games=games, sampler=sampler, dtype=dtype, **kw)
    if sampler == "sufficient" and release.clip is not None:
        raise ValueError(
            f"sampler 'sufficient' has no exact reduction for a clipped release (clip="
            f"{release.clip!r}): clipping couples the d coordinates; use sampler='faithful'"
        )
    if task_block is not None and sampler != "faithful":
        raise ValueError(f"task_block streams the faithful sampler only, got sampler={sampler!r}")
    values = (
        config.task_std,
        config.sample_std,
        config.mean_array(np.float64),
        np.inf if release.clip is None else release.clip,
        release.sum_noise_std(),
        release.release_noise_std,
    )
    if sampler == "faithful":
        from mtl_tracing.gaussian import streamed
        from mtl_tracing.gaussian.game import bytes_per_game, device_memory_bytes

        cap = max(budget, device_memory_bytes() // 2)
        if task_block is not None or bytes_per_game(sampler, config.shape, dt) > cap:
            block = streamed.plan_block(config.shape, dt, budget, cap, task_block)
            params = tuple(np.asarray(v, dt) for v in values)
            out = streamed.simulate_streamed(
                key, config.shape, params, games=games, dtype=dt, block=block, budget=budget,
                release=True, norms=norms,
            )  # fmt: skip
            return pack_outputs(out, norms)
    chunks = -(-games // (32 if norms else _CHUNK))
    params = tuple(jnp.asarray(v, dt) for v in values)
    runner = _runner(sampler, config.shape, dt, chunks, *((True,) if norms else ()))
    return pack_outputs(tuple(o[:games] for o in runner(key, params)), norms)
