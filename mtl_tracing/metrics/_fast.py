"""XLA:CPU kernels of the metrics: integer-key sorts and the bootstrap's group-pair path.

Every function here is an **unchecked kernel**: traceable and vmappable, no input validation
(callers in :mod:`mtl_tracing.metrics.roc` and :mod:`mtl_tracing.metrics.bootstrap` validate
first). Two facts of XLA:CPU shape them: it sorts int32 ~5x faster than float32, and any
multi-operand sort (argsort) is slow. So floats are sorted through order-preserving integer
keys (:func:`order_keys`, :func:`sort_floats`) and a descending permutation is built from one
single-operand sort and a binary search (:func:`desc_positions`).

The group-pair path (:func:`pair_path`) computes every bootstrap replicate of the AUC and of
TPRs at fixed FPRs from one (G_in, G_out) matrix of IN-above-OUT pair counts; the sorted path
of :mod:`mtl_tracing.metrics.bootstrap` is the reference it is tested against.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# Largest tie group the group-pair path handles (larger ones take the sorted path).
MAX_TIE = 4
# Group-pair path limits: G_in * G_out at most PAIR_LIMIT (its cost is O(n G_in G_out / 32)
# once, against O(n) per replicate for the sorted path) and at most PAIR_MAX_SCORES pooled
# scores (its within-block pairs take ~16 int32 per score).
PAIR_LIMIT = 1 << 18
PAIR_MAX_SCORES = 1 << 21
PAIR_BLOCK = 32  # positions per block of :func:`pair_counts`


def count_dtype() -> jnp.dtype:
    """The integer dtype of counts and weights: int64 under ``jax_enable_x64``, else int32."""
    return jnp.dtype(jax.dtypes.canonicalize_dtype(np.int64))


def rate(count: Array, total: Array, dtype) -> Array:
    """Unchecked kernel: ``count / total`` in ``dtype`` from integer counts, one division
    (to an ulp: XLA may divide through the reciprocal), exactly 1 where ``count == total``
    (and 0 / total is exactly 0) on every backend."""
    q = count.astype(dtype) / total.astype(dtype)
    return jnp.where(count == total, jnp.ones((), dtype), q)


def order_keys(x: Array) -> Array:
    """Unchecked kernel: integers with the order of the floats ``x`` (ties stay ties).

    int32 keys for float32, int64 for float64; -0.0 ties with +0.0. Any shape.
    """
    x = jnp.where(x == 0, jnp.zeros_like(x), x)
    it = jnp.int32 if x.dtype == jnp.float32 else jnp.int64
    return flip_negative(jax.lax.bitcast_convert_type(x, it))


def flip_negative(bits: Array) -> Array:
    """Unchecked kernel: flip the non-sign bits of negative integers (float bits <-> order
    keys; an involution)."""
    return jnp.where(bits < 0, bits ^ jnp.asarray(jnp.iinfo(bits.dtype).max, bits.dtype), bits)


def sort_floats(x: Array) -> Array:
    """Unchecked kernel: ``jnp.sort`` of a 1-D array, through integer keys for float32/64
    (the same values, faster on XLA:CPU)."""
    if x.dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        return jnp.sort(x)
    keys = jnp.sort(order_keys(x))
    return jax.lax.bitcast_convert_type(flip_negative(keys), x.dtype)


def desc_positions(keys: Array) -> tuple[Array, Array, Array]:
    """Unchecked kernel: a permutation of ``keys`` (n,) into descending order, no argsort.

    One single-operand sort and a binary search give each key's rank; members of a tie group
    (up to ``MAX_TIE``) then claim distinct slots of their group by scatter-max rounds.
    Returns (position of each key (n,) int32, the keys in descending order (n,), ok): ``ok``
    is False when a tie group is larger than ``MAX_TIE`` (positions then collide).
    """
    n = keys.shape[0]
    srt = jnp.sort(keys)
    left = jnp.searchsorted(srt, keys, side="left").astype(jnp.int32)
    nxt = srt[jnp.minimum(left + 1, n - 1)]
    idx = jnp.arange(n, dtype=jnp.int32)
    pos, done = left, (left == n - 1) | (nxt != keys)  # alone in its tie group
    for r in range(1, MAX_TIE):  # round r - 1 assigned slot left + r - 1 of every tie group
        want = jnp.where(done, left, left + r - 1)
        slot = jnp.full((n,), -1, jnp.int32).at[jnp.where(done, n, want)].max(idx, mode="drop")
        win = ~done & (slot[jnp.minimum(want, n - 1)] == idx)
        pos, done = jnp.where(win, want, pos), done | win
    pos = jnp.where(done, pos, left + MAX_TIE - 1)  # the last member of a group of MAX_TIE
    small = jnp.all(srt[MAX_TIE:] != srt[:-MAX_TIE]) if n > MAX_TIE else jnp.asarray(True)
    return (n - 1) - pos, srt[::-1], small


def rev_excl_cumsum(x: Array, step: int = 32) -> Array:
    """Unchecked kernel: y[i] = sum_{j > i} x[j] along axis 0 of (n, g), as matmuls
    (XLA:CPU cumsum is slow)."""
    n, g = x.shape
    n1 = -(-n // step)
    x3 = jnp.concatenate([x, jnp.zeros((n1 * step - n, g), x.dtype)]).reshape(n1, step, g)
    later = jnp.triu(jnp.ones((step, step), x.dtype), 1)  # later[i, j] = 1 if j > i
    within = jnp.einsum("ij,ajg->aig", later, x3, precision=jax.lax.Precision.HIGHEST)
    tot = x3.sum(axis=1)  # (n1, g)
    after = jnp.cumsum(tot[::-1], axis=0)[::-1] - tot  # later superblocks
    return (within + after[:, None, :]).reshape(n1 * step, g)[:n]


def pair_counts(pos, is_in, grp, key_desc, g_in: int, g_out: int, dt, block: int = PAIR_BLOCK):
    """Unchecked kernel: K[g, h] = sum over (i in IN group g, j in OUT group h) of
    1[s_i > s_j] + 1[s_i = s_j] / 2, shape (G_in, G_out).

    ``pos`` (n,) is a permutation into descending order (ties in any order, tie groups of at
    most ``MAX_TIE``), ``key_desc`` (n,) the sorted keys. Blocked over positions: pairs in
    different blocks come from block counts (a matmul against reverse cumulative OUT counts),
    pairs inside a block from one scatter-add; then tied IN/OUT pairs, counted 1 or 0 by
    position, are moved to 1/2. O(n G_in G_out / block + n block), no per-pair work.
    """
    n = pos.shape[0]
    nb = -(-n // block)
    size = nb * block
    gi = jnp.full((size,), g_in, jnp.int32).at[pos].set(jnp.where(is_in, grp, g_in))
    ho = jnp.full((size,), g_out, jnp.int32).at[pos].set(jnp.where(is_in, g_out, grp))
    g2, h2 = gi.reshape(nb, block), ho.reshape(nb, block)
    blk = jnp.arange(nb, dtype=jnp.int32)[:, None]
    a = jnp.zeros((nb, g_in + 1), dt).at[blk, g2].add(1)[:, :g_in]
    o = jnp.zeros((nb, g_out + 1), dt).at[blk, h2].add(1)[:, :g_out]
    k = jnp.matmul(a.T, rev_excl_cumsum(o), precision=jax.lax.Precision.HIGHEST)
    first, second = np.triu_indices(block, 1)  # the block(block - 1)/2 ordered slot pairs
    idx = (g2[:, first] * (g_out + 1) + h2[:, second]).ravel()  # IN earlier, OUT later
    w = jnp.zeros(((g_in + 1) * (g_out + 1),), dt).at[idx].add(1)
    idx, val = [], []
    for d in range(1, MAX_TIE):  # tied pairs d positions apart
        tie = key_desc[:-d] == key_desc[d:]
        first_in = gi[: n - d] < g_in
        second_in = gi[d:n] < g_in
        # IN then OUT was counted 1 (-1/2); OUT then IN was counted 0 (+1/2).
        fix = jnp.where(tie & first_in & ~second_in, -0.5, 0.0)
        fix = jnp.where(tie & ~first_in & second_in, 0.5, fix)
        row = jnp.where(first_in, gi[: n - d], gi[d:n])
        col = jnp.where(first_in, ho[d:n], ho[: n - d])
        idx.append(row * (g_out + 1) + col)
        val.append(fix.astype(dt))
    if idx:
        w = w.at[jnp.concatenate(idx)].add(jnp.concatenate(val))
    return k + w.reshape(g_in + 1, g_out + 1)[:g_in, :g_out]


def pair_window(fpr: float, n_out: int, per_group_out: int) -> int:
    """How many of the top OUT scores :func:`pair_path` reads for a TPR at ``fpr``."""
    return min(n_out, math.ceil(4 * fpr * n_out) + 4 * per_group_out + 64)


def pair_path_applies(shape_in, shape_out, fprs, dtype) -> bool:
    """Whether :func:`pair_path` can take these shapes, statistics and dtype (host, static).

    ``fprs`` as in :func:`pair_path`. An FPR of 1 is excluded: its window is never exceeded.
    The tie structure is checked separately (:func:`ties_small`, or ``ok`` when traced).
    """
    (g_in, p_in), (g_out, p_out) = shape_in, shape_out
    return (
        jnp.dtype(dtype) in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
        and all(f is None or f < 1.0 for f in fprs)
        and g_in * g_out <= PAIR_LIMIT
        and g_in * p_in + g_out * p_out <= PAIR_MAX_SCORES
    )


def ties_small(s_in: np.ndarray, s_out: np.ndarray) -> bool:
    """Host check (NumPy): no tie group of the pooled scores is larger than ``MAX_TIE``
    (the same test as ``ok`` of :func:`desc_positions`; -0.0 ties with +0.0)."""
    pooled = np.sort(np.concatenate([np.ravel(s_in), np.ravel(s_out)]))
    if pooled.size <= MAX_TIE:
        return True
    return not np.any(pooled[MAX_TIE:] == pooled[:-MAX_TIE])


def pair_path(s_in, s_out, fprs, c_in, c_out) -> tuple[Array, Array]:
    """Unchecked kernel: all bootstrap replicates at once from group-pair counts.

    Exact, ties counted 1/2. ``s_in`` (G_in, P_in), ``s_out`` (G_out, P_out) float32/64
    scores; ``fprs`` a static tuple with one entry per statistic: ``None`` for the AUC or the
    target FPR of a TPR; ``c_in`` (R, G_in), ``c_out`` (R, G_out) integer group counts per
    replicate (``count_dtype``).

    The AUC of a replicate is c_in^T K c_out / (c_in^T K c_out + c_in^T (P - K) c_out),
    K[g, h] = pairs (IN of g above OUT of h, ties 1/2), P = P_in P_out; the TPR at ``fpr``
    reads the first top OUT score whose weighted count passes fpr * W_out, from a window of
    the top OUT scores (:func:`pair_window`).

    Returns (values (R, S), ok): ``ok`` is False when a tie group is larger than ``MAX_TIE``
    or a window was too short; the values are then wrong and the caller must use the sorted
    path.
    """
    (g_in, p_in), (g_out, p_out) = s_in.shape, s_out.shape
    dt = s_in.dtype
    n_in, n_out = g_in * p_in, g_out * p_out
    hi = jax.lax.Precision.HIGHEST
    key_in, key_out = order_keys(s_in), order_keys(s_out)
    pos, key_desc, ok = desc_positions(jnp.concatenate([key_in.ravel(), key_out.ravel()]))
    i = jnp.arange(n_in + n_out, dtype=jnp.int32)
    is_in = i < n_in
    grp = jnp.where(is_in, i // p_in, (i - n_in) // p_out)
    cols, pairs, window = [], None, None
    for fpr in fprs:
        if fpr is None:
            if pairs is None:
                pairs = pair_counts(pos, is_in, grp, key_desc, g_in, g_out, dt)
            a, b = c_in.astype(dt), c_out.astype(dt)
            all_pairs = jnp.asarray(float(p_in * p_out), dt)  # a Python int may pass int32
            conc = jnp.sum(jnp.matmul(a, pairs, precision=hi) * b, axis=1)
            disc = jnp.sum(jnp.matmul(a, all_pairs - pairs, precision=hi) * b, axis=1)
            cols.append(conc / (conc + disc))
            continue
        m = pair_window(fpr, n_out, p_out)
        if window is None or window[0] < m:
            flat = key_out.ravel()
            # Rank of each OUT score among OUT scores: its pooled position minus the IN
            # scores placed before it.
            in_before = jnp.cumsum(jnp.zeros((n_in + n_out,), jnp.int32).at[pos].set(is_in))
            rank = pos[n_in:] - in_before[pos[n_in:]]
            top = jnp.zeros((m,), jnp.int32).at[rank].set(i[:n_out], mode="drop")
            rows = jnp.sort(key_in, axis=1)  # (G_in, P_in) ascending
            search = jax.vmap(functools.partial(jnp.searchsorted, side="right"), (0, None))
            above = p_in - search(rows, flat[top])
            window = (m, top // p_out, above.T.astype(c_in.dtype))  # (m,), (m, G_in)
        _, h_top, above = window
        fp = jnp.cumsum(c_out[:, h_top[:m]], axis=1)  # weighted FP after each top OUT score
        # The rule must leave out the first OUT score whose FP passes fpr * W_out (W_out =
        # n_out: the counts of a replicate sum to G_out), as the sorted path's FP <= fpr W_out.
        exceed = fp.astype(dt) > jnp.asarray(fpr, dt) * jnp.asarray(float(n_out), dt)
        ok = ok & jnp.all(jnp.any(exceed, axis=1))
        first = jnp.argmax(exceed, axis=1)  # the first OUT score the rule must leave out
        tp = jnp.sum(c_in * above[first], axis=1)  # weighted IN strictly above it
        cols.append(rate(tp, jnp.sum(c_in, axis=1) * p_in, dt))  # / W_in, as the sorted path
    return jnp.stack(cols, axis=1).astype(dt), ok


def pair_path_bytes(shape_in, shape_out, fprs, num_resamples: int, dtype) -> int:
    """Working memory of :func:`pair_path` in bytes (estimate, host): the within-block pair
    indices, the pair matrices and the TPR window for ``num_resamples`` + 1 rows."""
    (g_in, p_in), (g_out, p_out) = shape_in, shape_out
    word = max(jnp.dtype(dtype).itemsize, 4)
    n = g_in * p_in + g_out * p_out
    total = n * (PAIR_BLOCK // 2) * 4  # within-block pair indices (int32)
    if any(f is None for f in fprs):
        total += 2 * g_in * g_out * word  # K and P - K
    m = max((pair_window(f, g_out * p_out, p_out) for f in fprs if f is not None), default=0)
    total += (g_in + num_resamples + 1) * m * word
    return int(total)
