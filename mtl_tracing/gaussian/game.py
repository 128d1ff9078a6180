"""Samplers for the Gaussian tracing game of Sec. 4 / App. B.

One game (notation as in :mod:`mtl_tracing.gaussian.config`): draw T IN tasks
mu_i ~ N(mu_bar, sbar^2 I_d) with N samples each x_ij ~ N(mu_i, s^2 I_d), release
mu_hat = (1/T) sum_i mean_j x_ij, and score every challenge batch B by
z = <mu_hat - mu_bar, mean(B) - mu_bar>:

* ``strong_in``: B = k of the task's own N training samples, drawn without replacement;
* ``weak_in``: B = k fresh samples of the same task, N(mu_i, s^2 I_d);
* ``out``: B = k samples of a fresh task mu'_j ~ N(mu_bar, sbar^2 I_d) (T such tasks).

Two samplers produce the same joint law of the 3T scores of a game:

* ``"faithful"`` draws everything (O(T N d) normals per game; a game above the memory cap is
  streamed over blocks of tasks, :mod:`~mtl_tracing.gaussian.streamed`);
* ``"sufficient"`` (default) draws O(T) normals and one chi-square per game, whatever d
  (the reduction is proved in :func:`_sufficient_game`).

Game g always uses ``jax.random.fold_in(key, g)``, so the numbers do not depend on chunking.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import check_choice, check_dtype, check_int, check_key
from mtl_tracing.gaussian.config import GameShape, GaussianGameConfig
from mtl_tracing.gaussian.draws import (
    norms_from,
    orthogonal_squares,
    row_block,
    score_batches,
    static_shape_args,
    sufficient_draws,
    sufficient_scores,
)

__all__ = [
    "SAMPLERS",
    "GameScores",
    "GameNorms",
    "pack_outputs",
    "score_batches",
    "simulate",
    "game_kernel",
    "bytes_per_game",
    "device_memory_bytes",
    "lanes",
    "sufficient_draws",
    "padded_sufficient_game",
    "padded_game_args",
]

SAMPLERS = ("sufficient", "faithful")


class GameScores(NamedTuple):
    """Scores of ``games`` independent games; rows are games, columns are the T tasks."""

    strong_in: Array  # (games, T)
    weak_in: Array  # (games, T)
    out: Array  # (games, T)


class GameNorms(NamedTuple):
    """What the optimal statistic Lambda needs besides z (``simulate(..., norms=True)``;
    :func:`~mtl_tracing.gaussian.optimal.lrt_statistic`)."""

    alpha_sq: Array  # (games,): ||mu_hat - mu_bar||^2
    strong_sq: Array  # (games, T): ||mean(B) - mu_bar||^2 of each strong batch
    weak_sq: Array  # (games, T)
    out_sq: Array  # (games, T)


# --------------------------------------------------------------------------------------------
# Per-game kernels (pure; task_std, sample_std, mean may be traced).
# --------------------------------------------------------------------------------------------


def _faithful_game(key, task_std, sample_std, mean, *, shape: GameShape, dtype, norms=False):
    """Draw one game literally. Returns (strong_in, weak_in, out), each (T,), and with
    ``norms`` the :class:`GameNorms` fields of the game (``score_batches``).

    mu (T, d), x (T, N, d); the strong batch takes k distinct indices of a random ordering of
    the task's N samples; ``mean`` (mu_bar) is () or (d,).
    """
    T, N, d, k = shape
    k_mu, k_x, k_perm, k_weak, k_omu, k_out = jax.random.split(key, 6)
    sbar = jnp.asarray(task_std, dtype)
    s = jnp.asarray(sample_std, dtype)
    mu_bar = jnp.broadcast_to(jnp.asarray(mean, dtype), (d,))
    mu = mu_bar + sbar * flat_random.normal(k_mu, (T, d), dtype)  # task means mu_i
    x = mu[:, None, :] + s * flat_random.normal(k_x, (T, N, d), dtype)  # training samples x_ij
    alpha = jnp.mean(x, axis=(0, 1)) - mu_bar  # mu_hat - mu_bar, (d,)

    # k distinct indices per task: the first k of a uniformly random ordering (argsort of
    # uniforms; ties, probability ~ N^2 2^-24, only bias the order, never repeat an index).
    idx = jnp.argsort(flat_random.uniform(k_perm, (T, N), dtype), axis=1)[:, :k]  # (T, k)
    strong_b = jnp.take_along_axis(x, idx[:, :, None], axis=1)  # (T, k, d)
    weak_b = mu[:, None, :] + s * flat_random.normal(k_weak, (T, k, d), dtype)
    mu_out = mu_bar + sbar * flat_random.normal(k_omu, (T, d), dtype)
    out_b = mu_out[:, None, :] + s * flat_random.normal(k_out, (T, k, d), dtype)
    return score_batches((strong_b, weak_b, out_b), mu_bar, alpha, norms)


def _sufficient_game(key, task_std, sample_std, mean, *, shape: GameShape, dtype, norms=False):
    """Draw the 3T scores of one game exactly from O(T) normals and one chi-square.

    Returns (strong_in, weak_in, out), each (T,), and with ``norms`` the :class:`GameNorms`
    fields (O(T d) more normals, ``draws.orthogonal_squares``; z is the same draw). ``mean``
    (mu_bar) is accepted for a common signature but cancels exactly: every quantity below is
    centred at mu_bar, so z is too.

    Proof of the reduction. Because the model's covariances are isotropic (sbar^2 I_d, s^2 I_d),
    the d coordinates are i.i.d.: per coordinate l, the vector of task sample means m_i, strong
    batch means b_i, weak batch means w_i and OUT batch means v_j (all minus mu_bar) is Gaussian
    with the same law for every l, independently over l. Write alpha = mu_hat - mu_bar
    (alpha_l = mean_i m_{i,l}) and, for each of the 3T batches, beta = mean(B) - mu_bar. Per
    coordinate, beta_l = (c / A) alpha_l + rho_l with A = Var alpha_l = (sbar^2 + s^2/N)/T,
    c = Cov(beta_l, alpha_l) (strong: A, weak: sbar^2/T, out: 0) and the residual vector
    rho_l (3T entries) independent of alpha_l, rho_l ~ N(0, Sigma_cond) i.i.d. over l. Hence

        z = sum_l alpha_l beta_l = (c/A) ||alpha||^2 + sum_l alpha_l rho_l,

    and given alpha, sum_l alpha_l rho_l ~ N(0, ||alpha||^2 Sigma_cond) jointly over the 3T
    scores, i.e. it equals ||alpha|| eps with eps ~ N(0, Sigma_cond) independent of alpha. So
    z = (c/A) R2 + sqrt(R2) eps with R2 = ||alpha||^2 ~ A chi2_d independent of eps. eps is drawn
    exactly as the regression residual of ONE coordinate's worth of the unconditional variables
    (mu_bar = 0): mu_i ~ N(0, sbar^2); b_i ~ N(mu_i, s^2/k) and the mean of the other N - k
    training samples r_i ~ N(mu_i, s^2/(N-k)) independently (no r when k = N);
    m_i = (k b_i + (N-k) r_i)/N; w_i ~ N(mu_i, s^2/k); v_j ~ N(0, sbar^2 + s^2/k);
    alpha_1 = mean_i m_i and eps = beta - (c/A) alpha_1. That the strong batch is k of the N
    training samples without replacement is exactly the split of m_i into b_i and r_i.
    """
    T, N, _d, k = shape
    d = shape.dim
    k_mu, k_b, k_r, k_w, k_v, k_chi = jax.random.split(key, 6)
    sbar = jnp.asarray(task_std, dtype)
    s = jnp.asarray(sample_std, dtype)
    del mean  # cancels exactly (see docstring)
    b, m, w, v = sufficient_draws((k_mu, k_b, k_r, k_w, k_v), sbar, s, shape=shape, dtype=dtype)
    A = (sbar**2 + s**2 / N) / T
    gamma = jax.random.gamma(k_chi, d / 2.0, (), dtype)
    scores = sufficient_scores(b, jnp.mean(m), w, v, A, sbar**2 / T, gamma)
    if not norms:
        return scores
    ratios = (1.0, sbar**2 / T / A)
    rows = orthogonal_squares(
        jax.random.fold_in(key, 1), sbar, s, ratios, shape_args=static_shape_args(shape),
        width=T, rows=d - 1, dtype=dtype,
    )  # fmt: skip
    return scores + norms_from(A * 2.0 * gamma, ratios, (b, w, v), jnp.mean(m), rows)


def padded_sufficient_game(key, task_std, sample_std, *shape_args, width: int, dtype, rows=None):
    """``_sufficient_game`` with the shape traced and the task axis padded to ``width`` >= T:
    one compiled program for every (T, N, d, k) with T <= width (the sweep's).

    ``rows`` (static, >= d - 1 for every cell): also return the :class:`GameNorms` fields
    (alpha_sq (), then (width,) each), from ``rows`` orthogonal rows of which each cell uses
    its first d - 1 (``draws.orthogonal_squares``; one program for every d <= rows + 1).

    ``shape_args`` = :func:`padded_game_args` (T, N, d, k), traced. Returns (strong, weak,
    out), each (width,): entries < T are the scores ``_sufficient_game(key, ..., shape=(T, N,
    d, k))`` returns (the same normals: a draw of ``width`` normals starts with the draw of
    T), entries >= T are 0. XLA turns a division by a constant into a product with its
    reciprocal, so the reciprocals come from the host, rounded in ``dtype`` as XLA rounds
    them: the draws b, m, w, v are then bitwise those of the per-shape program. The scores
    agree to float rounding, not bitwise, even when T = width: XLA orders the sum of alpha_1
    differently in this program (tested in ``test_game.py``). The per-shape sampler keeps its
    own code (``sufficient_draws``), as writing it through this function (with the arguments
    as constants) changed the last bits of ``game.simulate`` for some shapes.
    """
    T, N, k, inv_t, inv_n, inv_k, inv_root_k, inv_root_rest, half_d = shape_args
    k_mu, k_b, k_r, k_w, k_v, k_chi = jax.random.split(key, 6)
    sbar = jnp.asarray(task_std, dtype)
    s = jnp.asarray(sample_std, dtype)
    mu = sbar * jax.random.normal(k_mu, (width,), dtype)
    b = mu + s * jax.random.normal(k_b, (width,), dtype) * inv_root_k
    # r is drawn and discarded when k = N (its key is used by nothing else)
    r = mu + s * jax.random.normal(k_r, (width,), dtype) * inv_root_rest
    kf, nf = jnp.asarray(k, dtype), jnp.asarray(N, dtype)
    m = jnp.where(k < N, (kf * b + (nf - kf) * r) * inv_n, b)
    w = mu + s * jax.random.normal(k_w, (width,), dtype) * inv_root_k
    v = jnp.sqrt(sbar**2 + s**2 * inv_k) * jax.random.normal(k_v, (width,), dtype)
    mask = jnp.arange(width) < T
    alpha1 = jnp.sum(jnp.where(mask, m, 0)) * inv_t
    A = (sbar**2 + s**2 * inv_n) * inv_t
    gamma = jax.random.gamma(k_chi, half_d, (), dtype)
    scores = sufficient_scores(b, alpha1, w, v, A, sbar**2 * inv_t, gamma)
    if rows is not None:
        ratios = (1.0, sbar**2 * inv_t / A)
        args = (*shape_args[:8], 2 * half_d - 1)  # the cell's d - 1 rows
        sq = orthogonal_squares(
            jax.random.fold_in(key, 1), sbar, s, ratios, shape_args=args, width=width,
            rows=rows, dtype=dtype,
        )  # fmt: skip
        scores = scores + norms_from(A * 2.0 * gamma, ratios, (b, w, v), alpha1, sq)
    return tuple(z if z.ndim == 0 else jnp.where(mask, z, 0) for z in scores)


def padded_game_args(shape: GameShape, dtype=None) -> tuple:
    """The traced shape arguments of :func:`padded_sufficient_game` for ``shape``, NumPy
    scalars: T, N, k (int32), then 1/T, 1/N, 1/k, 1/sqrt(k), 1/sqrt(max(N - k, 1)) and d/2 in
    ``dtype`` (each constant rounded to ``dtype`` and its reciprocal computed in ``dtype``,
    as XLA folds the constants of :func:`_sufficient_game`)."""
    T, N, d, k = shape
    dt = np.dtype(check_dtype(dtype))
    one = dt.type(1)

    def inv(x):
        return one / dt.type(x)

    ints = (np.int32(T), np.int32(N), np.int32(k))
    roots = (inv(math.sqrt(k)), inv(math.sqrt(max(N - k, 1))))
    return ints + (inv(T), inv(N), inv(k)) + roots + (dt.type(d / 2.0),)


_KERNELS = {"faithful": _faithful_game, "sufficient": _sufficient_game}


def _check_shape(shape: object) -> GameShape:
    if not isinstance(shape, tuple) or len(shape) != 4:
        raise ValueError(
            f"shape must be a GameShape(tasks, samples, dim, challenge), got {shape!r}"
        )
    T, N, d, k = (check_int(n, v, low=1) for n, v in zip(GameShape._fields, shape, strict=True))
    if k > N:
        raise ValueError(f"challenge must be <= samples (k <= N), got challenge={k} > samples={N}")
    return GameShape(T, N, d, k)


def game_kernel(sampler: str, shape: GameShape, dtype=None, norms: bool = False) -> Callable:
    """The pure per-game function ``f(key, task_std, sample_std, mean) -> (strong, weak, out)``.

    Outputs are (T,) each, in ``dtype``; with ``norms`` four more, the :class:`GameNorms`
    fields of the game (alpha_sq (), strong_sq, weak_sq, out_sq (T,)). ``task_std`` (sbar) and
    ``sample_std`` (s) are scalar arrays and ``mean`` (mu_bar) is () or (d,); they may be
    traced, so a sweep can vmap over them without recompiling. No validation happens inside
    (keep stds > 0 and finite).
    """
    check_choice("sampler", sampler, SAMPLERS)
    shape = _check_shape(shape)
    dt = check_dtype(dtype)
    return functools.partial(_KERNELS[sampler], shape=shape, dtype=dt, norms=bool(norms))


def device_memory_bytes() -> int:
    """Memory of the default device: its ``bytes_limit`` when JAX reports one (GPU), else the
    host's physical memory."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory stats
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def bytes_per_game(sampler: str, shape: GameShape, dtype=None, norms: bool = False) -> int:
    """A conservative estimate of the peak memory one game needs inside a vmapped chunk
    (``norms``: with the :class:`GameNorms` outputs)."""
    check_choice("sampler", sampler, SAMPLERS)
    T, N, d, k = _check_shape(shape)
    item = jnp.dtype(jnp.float32 if dtype is None else dtype).itemsize
    if sampler == "faithful":
        # x and its noise (2 T N d), three batches and their noise (6 T k d), task means,
        # permutations (int32), plus slack for temporaries.
        floats = 2 * T * N * d + 6 * T * k * d + 6 * T * d + 3 * d + (4 * T if norms else 0)
        return int(2 * (floats * item + 4 * T * N) + 1024)
    rows = 12 * row_block(T, d - 1) * T if norms else 0  # a block of orthogonal rows
    return int(2 * (16 * T + rows) * item + 1024)


def lanes(sampler: str, shape: GameShape, dtype=None, norms: bool = False) -> int:
    """Games vectorised together (vmap width) inside a chunk; depends on the shape only.

    Chunks are a ``lax.map`` over groups of ``lanes`` games, each group a ``vmap``, and chunk
    sizes are multiples of ``lanes``. Game g then always runs in lane g mod lanes of the same
    compiled program, which is what makes results bitwise independent of the chunk size (XLA's
    vectorised code may round differently across lanes of vmaps of different widths).
    """
    if sampler == "sufficient" and not norms:
        return 32
    per_game = bytes_per_game(sampler, shape, dtype, norms)
    most = 32 if sampler == "sufficient" else 8  # the sufficient sampler with norms: up to 32
    width = max(1, min(most, (1 << 22) // per_game))
    return 1 << (width.bit_length() - 1)  # power of two in [1, most]


@functools.lru_cache(maxsize=64)
def _chunk_runner(sampler: str, shape: GameShape, dtype: jnp.dtype, chunk: int, norms=False):
    """Jitted ``run(key, start, sbar, s, mean) -> 3 x (chunk, T)`` for games start..start+chunk-1
    (``norms``: 7 outputs, ``alpha_sq`` of shape (chunk,)).

    ``chunk`` must be a multiple of :func:`lanes`. Cached per (sampler, shape, dtype, chunk,
    norms): new stds, means, keys or starts do not recompile.
    """
    kernel = functools.partial(_KERNELS[sampler], shape=shape, dtype=dtype, norms=norms)
    width = lanes(sampler, shape, dtype, norms)
    assert chunk % width == 0, (chunk, width)

    def group(keys, task_std, sample_std, mean):  # keys (width,) -> 3 x (width, T)
        return jax.vmap(kernel, in_axes=(0, None, None, None))(keys, task_std, sample_std, mean)

    def run(key, start, task_std, sample_std, mean):
        games = start + jnp.arange(chunk, dtype=jnp.uint32)
        keys = jax.vmap(lambda g: jax.random.fold_in(key, g))(games)
        keys = keys.reshape(chunk // width, width)
        outs = jax.lax.map(lambda kk: group(kk, task_std, sample_std, mean), keys)
        return tuple(o.reshape(chunk, *o.shape[2:]) for o in outs)

    return jax.jit(run)


def _chunk_size(sampler, shape, dtype, games, chunk_games, budget, norms=False) -> int:
    """Games per chunk: a multiple of ``lanes``, at most ``games`` rounded up to one."""
    width = lanes(sampler, shape, dtype, norms)
    if chunk_games is None:
        chunk_games = max(1, budget // bytes_per_game(sampler, shape, dtype, norms))
    chunk = min(chunk_games, games)
    return max(width, -(-chunk // width) * width)


def simulate(
    key: Array,
    config: GaussianGameConfig,
    *,
    games: int,
    sampler: str = "sufficient",
    dtype=None,
    chunk_games: int | None = None,
    memory_budget_bytes: int = 512 * 2**20,
    progress: bool = False,
    task_block: int | None = None,
    norms: bool = False,
) -> GameScores | tuple[GameScores, GameNorms]:
    """Play ``games`` independent tracing games; game g is keyed by ``fold_in(key, g)``.

    Args:
      key: typed PRNG key (``jax.random.key``).
      config: the model (T, N, d, k, sbar, s, mu_bar).
      games: G >= 1.
      sampler: ``"sufficient"`` (exact, O(T) draws per game) or ``"faithful"`` (O(T N d)).
      dtype: float32 (default) or float64 (needs x64 enabled).
      chunk_games: games per compiled chunk; default: as many as fit in ``memory_budget_bytes``
        (estimated by :func:`bytes_per_game`), at most G; rounded up to a multiple of
        :func:`lanes` (1 for a faithful game over 4 MiB). The last chunk is padded to the chunk
        size (no recompile) and trimmed. A single faithful game larger than the budget still
        runs, one game at a time (the budget is then exceeded by that one game), unless it
        exceeds the memory cap (below).
      memory_budget_bytes: memory target per chunk. The memory cap is the larger of this and
        half the device's memory (host RAM on CPU). A faithful game above the cap is streamed:
        its tasks are drawn in blocks that fit the budget, in two passes over the blocks
        (:mod:`~mtl_tracing.gaussian.streamed`; memory O(block N d + d) plus the scores, equal
        in law to the one-shot game, not bitwise). Only a game of which not even one block of
        one task fits the cap is refused, with a one-line ``ValueError`` stating the bytes
        needed and the cap, before anything is allocated (sizes are computed in exact
        integers, never int32).
      progress: show a tqdm bar over chunks.
      task_block: faithful sampler only: stream every game in blocks of this many tasks
        (at most T), whatever its size (default: stream only above the cap, in the largest
        blocks within ``memory_budget_bytes``).
      norms: also return what the optimal statistic Lambda needs (:class:`GameNorms`:
        ||alpha||^2 per game, ||beta||^2 per score; :mod:`~mtl_tracing.gaussian.optimal`).
        Same key schedule, so z is the same draw as without (equal to float rounding: another
        program); the sufficient sampler then draws O(T d) more normals per game (no O(T)
        exact law of the 3T squared norms exists, see ``draws.orthogonal_squares``).

    Returns:
      GameScores with ``strong_in``, ``weak_in``, ``out`` of shape (G, T) in ``dtype``;
      bitwise identical for any ``chunk_games``. With ``norms``: ``(GameScores, GameNorms)``.
    """
    key = check_key("key", key)
    if not isinstance(config, GaussianGameConfig):
        raise ValueError(f"config must be a GaussianGameConfig, got {config!r}")
    games = check_int("games", games, low=1)
    check_choice("sampler", sampler, SAMPLERS)
    dt = check_dtype(dtype)
    budget = check_int("memory_budget_bytes", memory_budget_bytes, low=1)
    shape = config.shape
    if chunk_games is not None:
        chunk_games = check_int("chunk_games", chunk_games, low=1)
    if task_block is not None and sampler != "faithful":
        raise ValueError(f"task_block streams the faithful sampler only, got sampler={sampler!r}")
    norms = bool(norms)
    need = bytes_per_game(sampler, shape, dt, norms)
    cap = max(budget, device_memory_bytes() // 2)
    # NumPy scalars, not jnp: the compiled chunk converts them itself, and no eager
    # conversion program is compiled (or looked up in the cache) for them.
    sbar = np.asarray(config.task_std, dt)
    s = np.asarray(config.sample_std, dt)
    mean = config.mean_array(np.float64).astype(dt)
    if sampler == "faithful" and (task_block is not None or need > cap):
        from mtl_tracing.gaussian import streamed

        block = streamed.plan_block(shape, dt, budget, cap, task_block)
        kw = dict(block=block, budget=budget, chunk_games=chunk_games, progress=progress)
        out = streamed.simulate_streamed(
            key, shape, (sbar, s, mean), games=games, dtype=dt, norms=norms, **kw
        )
        return pack_outputs(out, norms)
    if need > cap:  # pragma: no cover - the sufficient sampler needs O(T) memory
        T, N, d, _ = shape
        raise ValueError(
            f"one {sampler} game needs ~{need:,} bytes (T={T}, N={N}, d={d}), above the memory "
            f"cap of {cap:,} bytes (max of memory_budget_bytes and half the device memory)"
        )
    chunk = _chunk_size(sampler, shape, dt, games, chunk_games, budget, norms)
    runner = _chunk_runner(sampler, shape, dt, chunk, *((True,) if norms else ()))
    starts = range(0, games, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"{sampler} games", unit="chunk")
    parts = [runner(key, np.uint32(start), sbar, s, mean) for start in starts]
    out = [jnp.concatenate([p[i] for p in parts], axis=0)[:games] for i in range(len(parts[0]))]
    return pack_outputs(out, norms)


def pack_outputs(out, norms: bool):
    """GameScores, or (GameScores, GameNorms) with ``norms``, from a sampler's 3 or 7
    stacked outputs (each with a leading games axis)."""
    return (GameScores(*out[:3]), GameNorms(*out[3:])) if norms else GameScores(*out)
