r"""The faithful game streamed over blocks of tasks: one game of any size.

The one-shot faithful sampler (``game._faithful_game``) holds the training samples x (T, N, d)
of a game at once: T = d = 20000, N = 8, k = 2 needs ~109 GB. The release mu_hat needs only the
sum over tasks, but every score needs mu_hat, hence all T tasks, before any task is scored.
Two designs keep the memory bounded:

* one pass keeping per-task sufficient quantities (each task's strong, weak and OUT batch
  means, 3 T d floats) and scoring them after the pass: O(block N d + T d) memory;
* two passes over the task blocks with the same keys (this module): pass 1 draws block j
  from its key and adds up the task deviations xbar_i - mu_bar (clipped, for the DP release);
  pass 2 draws block j again from the same key and scores its three challenge batches against
  mu_hat. Memory O(block (N + 3k) d + d) plus the 3T scores, whatever T: no T d term, at the
  price of drawing the training samples twice (~1.6x the draws of one game at N = 8, k = 2).

We keep the second: it is the only one whose memory does not grow with T d (at T = d = 20000
the first needs 4.8 GB in float32 besides the block, and ~5 TB at T = d = 10^6).

**Law.** Tasks are i.i.d. Block j holds tasks j b ... j b + b - 1 (b = ``block``; the last
block is padded, its padding masked out of the sum and cut from the scores) and draws them
exactly as the one-shot sampler draws its T tasks, from ``fold_in(k_tasks, j)``: task means
mu_i, samples x_ij, a uniformly random k-subset of each task's samples (the strong batch),
k fresh samples (weak) and a fresh task's k samples (OUT). Pass 2 recomputes the same draws
(same key and code; the arithmetic on them may round differently in the last bit where XLA
fuses it differently). So the release and the 3T scores have the one-shot sampler's joint law
(tested at SE tolerance against the exact moments), not its bits: the keys differ.

**DP release** (``release=True``, :mod:`mtl_tracing.gaussian.release`): each task's deviation
is clipped to C before it is summed, and the noise (z C on the sum, sigma on mu_hat, keyed by
``k_noise``) is added once after pass 1, as the one-shot release sampler does.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import check_int
from mtl_tracing.gaussian.config import GameShape
from mtl_tracing.gaussian.draws import score_batches

__all__ = ["streamed_game", "block_bytes", "plan_block", "simulate_streamed"]


def streamed_game(
    key,
    task_std,
    sample_std,
    mean,
    clip=None,
    sum_std=None,
    sigma=None,
    *,
    shape: GameShape,
    block: int,
    dtype,
    release: bool = False,
    norms: bool = False,
):
    """One faithful game in ``ceil(T / block)`` blocks of tasks (two passes; module docstring).

    Same signature and outputs as ``game._faithful_game`` (``release=False``: ``clip``,
    ``sum_std``, ``sigma`` are ignored) or the release's faithful kernel (``release=True``:
    clip C, inf for none; z C; sigma). Returns (strong_in, weak_in, out), each (T,), then with
    ``norms`` ||alpha||^2 () and the three ||beta||^2 (T,) (``game.GameNorms``).
    """
    T, N, d, k = shape
    nb = -(-T // block)
    k_tasks, k_noise = jax.random.split(key)
    sbar = jnp.asarray(task_std, dtype)
    s = jnp.asarray(sample_std, dtype)
    mu_bar = jnp.broadcast_to(jnp.asarray(mean, dtype), (d,))

    def draws(j):
        """Block j: task means mu (b, d), samples x (b, N, d), keys of its batches."""
        k_mu, k_x, k_perm, k_weak, k_omu, k_out = jax.random.split(
            jax.random.fold_in(k_tasks, j), 6
        )
        mu = mu_bar + sbar * flat_random.normal(k_mu, (block, d), dtype)
        x = mu[:, None, :] + s * flat_random.normal(k_x, (block, N, d), dtype)
        return mu, x, (k_perm, k_weak, k_omu, k_out)

    def pass1(total, j):  # add up block j's (clipped) deviations xbar_i - mu_bar
        _, x, _ = draws(j)
        dev = jnp.mean(x, axis=1) - mu_bar  # (b, d)
        if release:
            norm = jnp.linalg.norm(dev, axis=-1, keepdims=True)
            dev = dev * jnp.minimum(1.0, clip / jnp.maximum(norm, jnp.finfo(dtype).tiny))
        real = (j * block + jnp.arange(block)) < T  # padding of the last block
        return total + jnp.sum(jnp.where(real[:, None], dev, 0), axis=0), None

    total, _ = jax.lax.scan(pass1, jnp.zeros((d,), dtype), jnp.arange(nb))
    if release:
        noise = flat_random.normal(k_noise, (2, d), dtype)
        alpha = (total + sum_std * noise[0]) / T + sigma * noise[1]
    else:
        alpha = total / T  # mu_hat - mu_bar

    def pass2(carry, j):  # block j again (same key): its three batches, scored
        mu, x, (k_perm, k_weak, k_omu, k_out) = draws(j)
        idx = jnp.argsort(flat_random.uniform(k_perm, (block, N), dtype), axis=1)[:, :k]
        strong_b = jnp.take_along_axis(x, idx[:, :, None], axis=1)
        weak_b = mu[:, None, :] + s * flat_random.normal(k_weak, (block, k, d), dtype)
        mu_out = mu_bar + sbar * flat_random.normal(k_omu, (block, d), dtype)
        out_b = mu_out[:, None, :] + s * flat_random.normal(k_out, (block, k, d), dtype)
        res = score_batches((strong_b, weak_b, out_b), mu_bar, alpha, norms)
        return carry, res[:3] + res[4:]  # the per-block alpha_sq is the game's: once, below

    _, scores = jax.lax.scan(pass2, None, jnp.arange(nb))
    scores = tuple(z.reshape(nb * block)[:T] for z in scores)
    return scores[:3] + (jnp.sum(alpha * alpha),) + scores[3:] if norms else scores


def block_bytes(shape: GameShape, block: int, dtype=None) -> int:
    """A conservative estimate of the peak memory of one streamed game with ``block`` tasks
    per block: one block's draws (``game.bytes_per_game`` of a ``block``-task game) plus the
    sum, the noise, mu_hat and the 3T scores (exact integers)."""
    from mtl_tracing.gaussian.game import bytes_per_game

    T, N, d, k = shape
    item = jnp.dtype(jnp.float32 if dtype is None else dtype).itemsize
    draws = bytes_per_game("faithful", GameShape(min(block, T), N, d, k), dtype)
    return int(draws + 2 * item * (5 * d + 3 * T) + 1024)


def plan_block(shape: GameShape, dtype, budget: int, cap: int, task_block: int | None = None):
    """Tasks per block: ``task_block`` (at most T) if given, else the largest b <= T whose
    :func:`block_bytes` fit ``budget`` (at least 1). ``ValueError`` (one line, before any work)
    when that block is above ``cap``: then not even one block fits."""
    T, N, d, _ = shape
    if task_block is not None:
        block = min(check_int("task_block", task_block, low=1), T)
    else:
        lo, hi = 1, T  # block_bytes is increasing in b: the largest b within the budget
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if block_bytes(shape, mid, dtype) <= budget else (lo, mid - 1)
        block = lo
    need = block_bytes(shape, block, dtype)
    if need > cap:
        raise ValueError(
            f"one faithful game streamed in blocks of {block} task(s) needs ~{need:,} bytes "
            f"(T={T}, N={N}, d={d}), above the memory cap of {cap:,} bytes (max of "
            "memory_budget_bytes and half the device memory); use sampler='sufficient' (exact "
            "in law, O(T) memory) or a smaller N or d"
        )
    return block


def _lanes(shape: GameShape, block: int, dtype) -> int:
    """Games vectorised together: a power of two in [1, 32] within 4 MiB (1 for any game that
    really needs streaming; small games with a forced block run up to 32 at a time)."""
    width = max(1, min(32, (1 << 22) // block_bytes(shape, block, dtype)))
    return 1 << (width.bit_length() - 1)


@functools.lru_cache(maxsize=32)
def _runner(shape: GameShape, dtype, block: int, chunk: int, release: bool, norms: bool):
    """Jitted ``run(key, start, params) -> 3 x (chunk, T)``: games start ... start + chunk - 1
    in groups of :func:`_lanes` games (a ``lax.map`` of vmaps), game g keyed by
    ``fold_in(key, g)``; ``chunk`` is a multiple of the lanes."""
    kernel = functools.partial(
        streamed_game, shape=shape, block=block, dtype=dtype, release=release, norms=norms
    )
    width = _lanes(shape, block, dtype)

    def run(key, start, params):
        games = start + jnp.arange(chunk, dtype=jnp.uint32)
        keys = jax.vmap(lambda g: jax.random.fold_in(key, g))(games)
        group = jax.vmap(lambda kk: kernel(kk, *params))
        outs = jax.lax.map(group, keys.reshape(chunk // width, width))
        return tuple(o.reshape(chunk, *o.shape[2:]) for o in outs)

    return jax.jit(run)


def simulate_streamed(
    key: Array,
    shape: GameShape,
    params: tuple,
    *,
    games: int,
    dtype,
    block: int,
    budget: int,
    chunk_games: int | None = None,
    release: bool = False,
    progress: bool = False,
    norms: bool = False,
) -> tuple[Array, ...]:
    """``games`` streamed games; game g is keyed by ``fold_in(key, g)``. Unchecked: the public
    callers (``game.simulate``, ``release.simulate_release``) validate and plan ``block``.

    ``params``: (sbar, s, mu_bar) or, with ``release``, (sbar, s, mu_bar, C, z C, sigma), as
    NumPy values in ``dtype``. Games run one group of lanes at a time (one game per group
    unless a game takes under 2 MiB) inside a compiled chunk of ``chunk_games`` games (default:
    as many as :func:`block_bytes` allows in ``budget``, at least 1; rounded up to a multiple
    of the lanes; the last chunk padded). Returns (strong_in, weak_in, out), each (G, T), and
    with ``norms`` alpha_sq (G,) and the three beta_sq (G, T).
    """
    width = _lanes(shape, block, dtype)
    if chunk_games is None:
        chunk_games = max(1, budget // block_bytes(shape, block, dtype))
    chunk = -(-min(chunk_games, games) // width) * width  # a multiple of the lanes
    run = _runner(shape, jnp.dtype(dtype), block, chunk, release, norms)
    starts = range(0, games, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"streamed games ({block} tasks/block)", unit="chunk")
    parts = [run(key, np.uint32(start), params) for start in starts]
    n = len(parts[0])
    return tuple(jnp.concatenate([p[i] for p in parts], axis=0)[:games] for i in range(n))
