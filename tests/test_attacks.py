"""Tests of the attacks (Algorithms 1-2), LOTO whitening (A.7.1) and adversary sampling."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_close, assert_rejects, assert_within_se
from hypothesis import given
from hypothesis import strategies as st

from mtl_tracing import attacks, flat_random
from mtl_tracing.attacks import evaluation as attacks_impl

# k = 3 hand-built challenge set, m = 3.
E3 = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 2.0], [0.0, 0.0, 1.0]])
# Coordinate variances (ddof = 1): x = (1, 3, 0): mean 4/3, ss = 1/9 + 25/9 + 16/9 = 42/9 -> 7/3;
# y = (2, -1, 0): mean 1/3, ss = 25/9 + 16/9 + 1/9 = 42/9 -> 7/3; w = (0, 2, 1): ss = 2 -> 1.
VAR_E3 = 7 / 3 + 7 / 3 + 1
# Pair inner products: <e0, e1> = 3 - 2 + 0 = 1, <e0, e2> = 0, <e1, e2> = 2 -> mean |.| = 1.
IP_E3 = 1.0

SHAPES = [(2, 3, 4), (5, 2, 3)]  # small fixed set of (batch, k, m) to limit compiles


def test_variance_statistic_hand_computed():
    z = attacks.variance_statistic(E3)
    assert z.dtype == jnp.float32
    np.testing.assert_allclose(z, VAR_E3, rtol=1e-6)
    np.testing.assert_allclose(z, np.cov(E3, rowvar=False).trace(), rtol=1e-6)
    # Power: the biased (ddof = 0) covariance gives a different number.
    assert abs(float(z) - np.cov(E3, rowvar=False, ddof=0).trace()) > 1.0
    np.testing.assert_allclose(attacks.variance_statistic(E3, per_dimension=True), VAR_E3 / 3)


def test_inner_product_statistic_hand_computed():
    np.testing.assert_allclose(attacks.inner_product_statistic(E3), IP_E3, rtol=1e-6)
    # The typo of Algorithm 2 line 10, |<e_i, e_i>|, would give the mean squared norm instead.
    typo = np.mean([E3[i] @ E3[i] for i, j in itertools.combinations(range(3), 2)])
    assert abs(typo - IP_E3) > 1.0
    # Cosine: cos(e0, e1) = 1 / (sqrt 5 sqrt 14), cos(e0, e2) = 0, cos(e1, e2) = 2 / sqrt 14.
    n = np.linalg.norm(E3, axis=1)
    want = (1 / (n[0] * n[1]) + 0 + 2 / (n[1] * n[2])) / 3
    np.testing.assert_allclose(attacks.inner_product_statistic(E3, cosine=True), want, rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_statistics_match_numpy_batched(shape):
    rng = np.random.default_rng(0)
    e = rng.normal(size=shape).astype(np.float32)
    want_var = np.array([np.cov(x, rowvar=False).trace() for x in e])
    k = shape[1]
    want_ip = np.array(
        [np.mean([abs(x[i] @ x[j]) for i, j in itertools.combinations(range(k), 2)]) for x in e]
    )
    np.testing.assert_allclose(attacks.variance_statistic(e), want_var, rtol=1e-5)
    np.testing.assert_allclose(attacks.inner_product_statistic(e), want_ip, rtol=1e-5)


@given(
    shape=st.sampled_from(SHAPES),
    seed=st.integers(0, 2**16),
    log_scales=st.lists(st.floats(-3.0, 3.0), min_size=15, max_size=15),
)
def test_cosine_invariant_to_rescaling(shape, seed, log_scales):
    e = np.random.default_rng(seed).normal(size=shape)
    scales = np.exp(np.asarray(log_scales))[: shape[0] * shape[1]].reshape(shape[:2] + (1,))
    a = attacks.inner_product_statistic(e.astype(np.float32), cosine=True)
    b = attacks.inner_product_statistic((e * scales).astype(np.float32), cosine=True)
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_cosine_zero_embedding_is_finite():
    e = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    z = attacks.inner_product_statistic(e, cosine=True)
    assert np.isfinite(z)
    np.testing.assert_allclose(z, (0 + 0 + 1 / np.sqrt(2)) / 3, rtol=1e-6)


@pytest.mark.parametrize("fn", [attacks.variance_statistic, attacks.inner_product_statistic])
def test_statistics_reject_single_row(fn):
    with pytest.raises(ValueError, match="k >= 2.*k=1"):
        fn(np.ones((4, 1, 3)))
    with pytest.raises(ValueError, match="embeddings"):
        fn(np.ones(3))


def test_statistics_float64(x64):
    e = jnp.asarray(E3, dtype=jnp.float64)
    assert attacks.variance_statistic(e).dtype == jnp.float64
    assert attacks.inner_product_statistic(e, cosine=True).dtype == jnp.float64
    np.testing.assert_allclose(attacks.variance_statistic(e), VAR_E3, rtol=1e-13)


def test_statistics_monte_carlo_expectations():
    """Gaussian challenge sets: E tr(Q) = m (ddof = 1), E|e_i e_j| = 2/pi for m = 1."""
    n, k, m = 5_000, 4, 8
    e = flat_random.normal(jax.random.key(0), (n, k, m))
    z = np.asarray(attacks.variance_statistic(e), dtype=np.float64)
    se = z.std(ddof=1) / np.sqrt(n)
    # |z| > 4.5 se under the null has probability ~7e-6 (CLT).
    assert_within_se(z.mean(), m, se)
    assert_rejects(z.mean(), m * (k - 1) / k, se)  # power: the ddof = 0 trace is rejected
    e1 = flat_random.normal(jax.random.key(1), (n, k, 1))
    w = np.asarray(attacks.inner_product_statistic(e1), dtype=np.float64)
    se = w.std(ddof=1) / np.sqrt(n)
    assert_within_se(w.mean(), 2 / np.pi, se)  # E|XY| = E|X| E|Y| = 2/pi
    assert_rejects(w.mean(), 1.0, se)  # power: the <e_i, e_i> typo has mean E X^2 = 1


# ---------------------------------------------------------------------------------------------
# whitening
# ---------------------------------------------------------------------------------------------


def _brute_force_whitening(pool, counts, ridge):
    mats, centres = [], []
    for t in range(pool.shape[0]):  # the loop lives only in the test
        rows = np.concatenate([pool[u, : counts[u]] for u in range(pool.shape[0]) if u != t])
        q = np.cov(rows, rowvar=False)
        vals, vecs = np.linalg.eigh(q)
        vals = np.maximum(vals, 0.0)
        tau = ridge * vals.sum() / q.shape[0]
        mats.append(vecs @ np.diag((vals + tau) ** -0.5) @ vecs.T)
        centres.append(rows.mean(axis=0))
    return np.stack(mats), np.stack(centres)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loto_whitening_matches_brute_force(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    rng = np.random.default_rng(1)
    tasks, n, m = 5, 7, 4
    mix = rng.normal(size=(m, m))
    pool = (rng.normal(size=(tasks, n, m)) @ mix + 3.0).astype(dtype)
    counts = np.array([7, 3, 5, 7, 2])
    mask = np.arange(n) < counts[:, None]
    pool = np.where(mask[..., None], pool, 99.0).astype(dtype)  # padding must be ignored
    w = attacks.loto_whitening(jnp.asarray(pool), mask=jnp.asarray(mask), ridge=0.01)
    assert w.matrix.dtype == jnp.dtype(dtype) and w.centre.dtype == jnp.dtype(dtype)
    want_w, want_c = _brute_force_whitening(pool.astype(np.float64), counts, 0.01)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(w.centre, want_c, rtol=tol, atol=tol)
    np.testing.assert_allclose(w.matrix, want_w, rtol=tol * 10, atol=tol * 10)
    # apply_whitening: W_t (e - ebar_t) for every row of task t.
    out = attacks.apply_whitening(jnp.asarray(pool), w)
    want_out = np.einsum("tij,tnj->tni", want_w, pool - want_c[:, None, :])
    np.testing.assert_allclose(out, want_out, rtol=tol * 100, atol=tol * 100)


def test_whitened_pooled_covariance_is_identity_up_to_ridge():
    rng = np.random.default_rng(2)
    tasks, n, m, ridge = 6, 40, 5, 1e-3
    scales = np.array([10.0, 3.0, 1.0, 0.3, 0.1])
    pool = (rng.normal(size=(tasks, n, m)) @ rng.normal(size=(m, m)) * scales).astype(np.float32)
    w = attacks.loto_whitening(pool, ridge=ridge)
    for t in (0, tasks - 1):  # two tasks' leave-out pools
        rows = np.concatenate([pool[u] for u in range(tasks) if u != t]).astype(np.float64)
        q = np.cov(rows, rowvar=False)
        wt = np.asarray(w.matrix[t], dtype=np.float64)
        got = np.linalg.eigvalsh(wt @ q @ wt)
        vals = np.linalg.eigvalsh(q)
        tau = ridge * vals.sum() / m
        # Exactly vals / (vals + tau): in [q_min / (q_min + tau), 1).
        np.testing.assert_allclose(np.sort(got), np.sort(vals / (vals + tau)), rtol=2e-3)
        assert got.max() <= 1.0 + 1e-4
        assert got.min() >= vals.min() / (vals.min() + tau) * (1 - 2e-3)
        # Power: without the ridge the spectrum would be exactly 1; the ridge is visible.
        assert got.min() < 1.0 - 1e-4


@pytest.mark.parametrize("case", ["n_less_than_m", "duplicated_coordinates", "constant"])
def test_whitening_rank_deficient_is_finite_and_well_conditioned(case):
    rng = np.random.default_rng(3)
    tasks, m, ridge = 3, 8, 1e-3
    if case == "n_less_than_m":
        pool = rng.normal(size=(tasks, 2, m))  # 4 rows outside each task < m
    elif case == "duplicated_coordinates":
        base = rng.normal(size=(tasks, 20, m // 2))
        pool = np.concatenate([base, base], axis=-1)
    else:
        pool = np.ones((tasks, 4, m))
    w = attacks.loto_whitening(pool.astype(np.float32), ridge=ridge)
    mats = np.asarray(w.matrix, dtype=np.float64)
    assert np.all(np.isfinite(mats)) and np.all(np.isfinite(np.asarray(w.centre)))
    sigma_reg = np.linalg.inv(mats @ mats)  # W^-2
    cond = np.linalg.cond(sigma_reg)
    assert np.all(cond <= (1 + m / ridge) * 1.01)  # cond <= (q_max + tau) / tau <= 1 + m/lambda
    if case == "constant":  # zero-variance pool: nothing to whiten, W = I
        np.testing.assert_allclose(mats, np.broadcast_to(np.eye(m), mats.shape), atol=1e-6)


def test_whitening_validation():
    with pytest.raises(ValueError, match="ridge must be >= 0, got -1.0"):
        attacks.loto_whitening(np.ones((3, 4, 2)), ridge=-1.0)
    with pytest.raises(ValueError, match=r"mask must have shape \(3, 4\)"):
        attacks.loto_whitening(np.ones((3, 4, 2)), mask=np.ones((3, 5), bool))
    with pytest.raises(ValueError, match="shape \\(tasks, n, m\\)"):
        attacks.loto_whitening(np.ones((4, 2)))
    with pytest.raises(ValueError, match=">= 2 rows outside every task"):
        attacks.loto_whitening(
            np.ones((2, 4, 2)), mask=np.array([[1, 1, 1, 1], [1, 0, 0, 0]], bool)
        )


# ---------------------------------------------------------------------------------------------
# adversary sampling
# ---------------------------------------------------------------------------------------------


def test_challenge_sets_distinct_and_within_ragged_pools():
    tasks, n, m, k, trials = 4, 6, 2, 3, 64
    sizes = np.array([3, 6, 4, 5])
    # Row r of task t holds (t, r): the drawn embeddings identify their source rows.
    pool = np.stack(np.meshgrid(np.arange(tasks), np.arange(n), indexing="ij"), -1).astype(float)
    sets = np.asarray(attacks.challenge_sets(jax.random.key(0), pool, k, trials, pool_sizes=sizes))
    assert sets.shape == (trials, tasks, k, m)
    np.testing.assert_array_equal(
        sets[..., 0], np.broadcast_to(np.arange(tasks)[:, None], (trials, tasks, k))
    )
    rows = sets[..., 1].astype(int)
    assert np.all(rows < sizes[None, :, None])
    srt = np.sort(rows, axis=-1)
    assert np.all(np.diff(srt, axis=-1) > 0)  # distinct within each set
    idx = np.asarray(attacks.challenge_indices(jax.random.key(0), sizes, n, k, trials))
    np.testing.assert_array_equal(idx, rows)
    with pytest.raises(
        ValueError, match="challenge k must be <= the smallest pool size 3, got k=4"
    ):
        attacks.challenge_sets(jax.random.key(0), pool, 4, trials, pool_sizes=sizes)


def test_selection_masks_large_pools_match_pairwise_and_indices(monkeypatch):
    """Pools above PAIRWISE_MAX_N take the top_k path: the same sets as the pairwise ranking
    and as challenge_indices, k valid rows each (ragged pools)."""
    from mtl_tracing.attacks import challenge

    n, k, trials = challenge.PAIRWISE_MAX_N + 6, 5, 7
    sizes = jnp.asarray([n, n - 3, 9], jnp.int32)
    key = jax.random.key(3)
    fast = np.asarray(challenge.selection_masks(key, sizes, n, k, trials))
    idx = np.asarray(attacks.challenge_indices(key, sizes, n, k, trials))
    monkeypatch.setattr(challenge, "PAIRWISE_MAX_N", n)
    pairwise = np.asarray(challenge.selection_masks(key, sizes, n, k, trials))
    np.testing.assert_array_equal(fast, pairwise)
    assert fast.shape == (trials, 3, n) and np.all(fast.sum(-1) == k)
    for r in range(trials):
        for t in range(3):
            assert set(np.flatnonzero(fast[r, t])) == set(idx[r, t])
            assert fast[r, t, int(sizes[t]) :].sum() == 0


def test_challenge_inclusion_probability():
    """Each valid row is in a set with probability k / size (uniform subsets)."""
    trials, n, k = 4000, 6, 2
    sizes = np.array([4, 6])
    idx = np.asarray(attacks.challenge_indices(jax.random.key(1), sizes, n, k, trials))
    for t, size in enumerate(sizes):
        hits = (idx[:, t, :, None] == np.arange(size)).any(axis=1)  # (trials, size)
        p_hat = hits.mean(axis=0)
        p = k / size
        se = np.sqrt(p * (1 - p) / trials)
        # 4.5 se per row, <= 10 rows: family-wise failure probability < 1e-4.
        assert np.all(np.abs(p_hat - p) <= 4.5 * se)
        if size < n:  # power: ignoring the ragged size (k / n) is rejected
            assert np.all(np.abs(p_hat - k / n) > 4.5 * se)


# ---------------------------------------------------------------------------------------------
# the attack sweep
# ---------------------------------------------------------------------------------------------


# One static configuration shared by the sweep tests (and the CLI test): few compiles.
RUN = dict(whiten=True, cosine=False)


def _pools(rng, dtype=np.float32, t_in=6, t_out=5, n=8, m=4):
    return (
        rng.normal(size=(t_in, n, m)).astype(dtype),
        rng.normal(size=(t_out, n - 2, m)).astype(dtype),
    )


def test_run_attacks_matches_manual_pipeline():
    rng = np.random.default_rng(4)
    p_in, p_out = _pools(rng)
    key, k, trials = jax.random.key(5), 3, 8
    scores = attacks.run_attacks(key, p_in, p_out, k=k, trials=trials, **RUN)
    assert scores.variance.scores_in.shape == (6, trials)
    assert scores.inner_product.scores_out.shape == (5, trials)
    # Same computation from the public pieces.
    pool = np.concatenate([p_in, np.pad(p_out, ((0, 0), (0, 2), (0, 0)))])
    sizes = np.array([8] * 6 + [6] * 5)
    mask = np.arange(8) < sizes[:, None]
    w = attacks.loto_whitening(pool, mask=mask)
    sets = attacks.challenge_sets(
        key, attacks.apply_whitening(pool, w), k, trials, pool_sizes=sizes
    )
    var = attacks.variance_statistic(sets).T
    ip = attacks.inner_product_statistic(sets).T
    np.testing.assert_allclose(scores.variance.scores_in, var[:6], rtol=1e-5)
    np.testing.assert_allclose(scores.variance.scores_out, var[6:], rtol=1e-5)
    np.testing.assert_allclose(scores.inner_product.scores_in, ip[:6], rtol=1e-5)
    np.testing.assert_allclose(scores.inner_product.scores_out, ip[6:], rtol=1e-5)


def test_run_attacks_no_recompile_on_new_key():
    rng = np.random.default_rng(6)
    p_in, p_out = _pools(rng)
    kw = dict(k=3, trials=8, **RUN)
    attacks.run_attacks(jax.random.key(0), p_in, p_out, **kw)
    before = attacks_impl.attack_kernel._cache_size()
    p_in2, p_out2 = _pools(rng)
    out = attacks.run_attacks(jax.random.key(1), p_in2, p_out2, **kw)
    jax.block_until_ready(out)
    assert attacks_impl.attack_kernel._cache_size() == before


def test_run_attacks_dtypes(x64):
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        p_in, p_out = _pools(rng, dtype=dtype)
        s = attacks.run_attacks(jax.random.key(0), p_in, p_out, k=3, trials=8, **RUN)
        for leaf in jax.tree.leaves(s):
            assert leaf.dtype == dtype and np.all(np.isfinite(leaf))


def test_run_attacks_validation():
    rng = np.random.default_rng(8)
    p_in, p_out = _pools(rng)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="challenge k must be >= 2, got 1"):
        attacks.run_attacks(key, p_in, p_out, k=1, trials=3, whiten=False)
    with pytest.raises(ValueError, match="trials must be >= 1, got 0"):
        attacks.run_attacks(key, p_in, p_out, k=2, trials=0, whiten=False)
    with pytest.raises(ValueError, match="smallest pool size 6, got k=7"):
        attacks.run_attacks(key, p_in, p_out, k=7, trials=3, whiten=False)
    with pytest.raises(ValueError, match="same embedding dimension m, got 4 and 3"):
        attacks.run_attacks(key, p_in, p_out[..., :3], k=2, trials=3, whiten=False)
    with pytest.raises(ValueError, match="pool_sizes must lie in"):
        attacks.run_attacks(key, p_in, p_out, k=2, trials=3, whiten=False, sizes_in=[9] * 6)


# ---------------------------------------------------------------------------------------------
# the attack registry: every statistic, its Gram form, any subset
# ---------------------------------------------------------------------------------------------


def _sets_and_masks(key, k=3, trials=6):
    """A ragged pool (5 tasks, n = 7 rows, m = 4) and challenge masks of k rows."""
    from mtl_tracing.attacks.challenge import selection_masks

    pool = flat_random.normal(jax.random.key(12), (5, 7, 4)) * jnp.asarray([1.0, 2.0, 0.5, 3.0])
    sizes = jnp.asarray([7, 7, 5, 6, 4], jnp.int32)
    return pool, sizes, selection_masks(key, sizes, 7, k, trials)


def _gram_scores(attack, pool, sizes, select, k, opts):
    s = select.astype(pool.dtype)
    M = attack.gram.matrix(pool, sizes, **opts)
    hi = jax.lax.Precision.HIGHEST
    total = jnp.einsum("rti,tij,rtj->rt", s, M, s, precision=hi)
    diag = jnp.einsum("rti,tii->rt", s, M, precision=hi)
    return attack.gram.score(total, diag, k, pool.shape[-1], **opts)


@pytest.mark.parametrize("attack", attacks.STATISTICS, ids=lambda a: a.name)
def test_gram_form_equals_the_definition(attack):
    """An attack's Gram form (one matrix per task, two sums over the selected rows) is its
    definition on the gathered (trials, tasks, k, m) sets, for every value of its options, to
    float32 rounding of sums of n m products; scored on another draw's rows it fails (power:
    the comparison sees which rows a set holds)."""
    if attack.gram is None:
        pytest.skip(f"{attack.name} has no Gram form: the evaluation uses its definition")
    k = 3
    pool, sizes, select = _sets_and_masks(jax.random.key(13), k)
    other = _sets_and_masks(jax.random.key(14), k)[2]
    sets = attacks_impl._gathered(pool, select, k)
    assert bool(jnp.all(jnp.sum(select, -1) == k)) and sets.shape == (6, 5, k, 4)
    for values in itertools.product((False, True), repeat=len(attack.options)):
        opts = dict(zip(attack.options, values, strict=True))
        want = attack.statistic(sets, **opts)
        got = _gram_scores(attack, pool, sizes, select, k, opts)
        assert_close(got, want, terms=7 * 4, what=f"{attack.name} {opts}")
        wrong = _gram_scores(attack, pool, sizes, other, k, opts)
        with pytest.raises(AssertionError):
            assert_close(wrong, want, terms=7 * 4)


def test_run_attacks_fast_path_equals_the_definitions_on_gathered_sets():
    """``run_attacks`` scores every registered attack from its Gram form; the kernel's generic
    path (``gram=False``: the definitions on the gathered sets, what an attack without a Gram
    form gets) gives the same scores on the same challenge sets."""
    rng = np.random.default_rng(15)
    p_in, p_out = _pools(rng)
    kw = dict(k=3, trials=8, **RUN)
    fast = attacks.run_attacks(jax.random.key(16), p_in, p_out, **kw)
    assert list(fast) == list(attacks.ATTACKS)
    pool = jnp.concatenate([p_in, jnp.pad(p_out, ((0, 0), (0, 2), (0, 0)))])
    sizes = jnp.asarray([8] * 6 + [6] * 5, jnp.int32)
    slow = attacks.attack_kernel(
        jax.random.key(16), pool, sizes, jnp.float32(attacks.DEFAULT_RIDGE), tasks_in=6, k=3,
        trials=8, whiten=True, cosine=False, per_dimension=False, gram=False,
    )  # fmt: skip
    for name in attacks.ATTACKS:
        for a, b in zip(fast[name], slow[name], strict=True):
            assert_close(a, b, terms=8 * 4, what=name)


def test_run_attacks_runs_any_subset_and_refuses_unknown_names():
    rng = np.random.default_rng(17)
    p_in, p_out = _pools(rng)
    kw = dict(k=3, trials=8, **RUN)
    full = attacks.run_attacks(jax.random.key(18), p_in, p_out, **kw)
    one = attacks.run_attacks(jax.random.key(18), p_in, p_out, attacks=("inner_product",), **kw)
    assert list(one) == ["inner_product"] and len(one) == 1
    for a, b in zip(one.inner_product, full["inner_product"], strict=True):
        assert_close(a, b, terms=8 * 4)  # the same challenge sets
    with pytest.raises(ValueError, match="attack must be one of .* got 'cosine'"):
        attacks.run_attacks(jax.random.key(0), p_in, p_out, attacks=("cosine",), **kw)
    with pytest.raises(ValueError, match="at least one"):
        attacks.run_attacks(jax.random.key(0), p_in, p_out, attacks=(), **kw)
    # AttackScores: a mapping and a pytree, attribute access for convenience
    leaves, tree = jax.tree.flatten(full)
    again = jax.tree.unflatten(tree, leaves)
    assert list(again) == list(full) and again.variance is again["variance"]
    with pytest.raises(AttributeError):
        full.cosine  # noqa: B018


def test_embed_tasks_adapter():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    proj = np.ones((4, 5), np.float32)
    e = attacks.embed_tasks(lambda b: b @ proj, x)
    assert e.shape == (2, 3, 5)
    np.testing.assert_allclose(e[1, 2], np.full(5, x[1, 2].sum()))


def test_evaluate_resamples_tasks():
    from mtl_tracing import metrics

    rng = np.random.default_rng(9)
    p_in, p_out = _pools(rng)
    p_in = p_in + 3.0 * rng.normal(size=(6, 1, 4)).astype(np.float32)  # planted task means
    scores = attacks.run_attacks(jax.random.key(2), p_in, p_out, k=3, trials=8, **RUN)
    res = attacks.evaluate(jax.random.key(3), scores, num_resamples=50, tpr_ci=True, fprs=(0.05,))
    assert set(res) == set(attacks.ATTACKS)
    for i, name in enumerate(attacks.ATTACKS):
        s_in, s_out = scores[name]
        # the same AUC, computed by another program: equal to float32 rounding of its sums
        assert_close(res[name]["auc"], metrics.auc(s_in, s_out), terms=s_in.size)
        # The CI resamples tasks (rows of the (T, trials) arrays), IN and OUT independently.
        want = metrics.grouped_bootstrap(
            jax.random.fold_in(jax.random.fold_in(jax.random.key(3), i), 0),
            metrics.auc,
            s_in,
            s_out,
            num_resamples=50,
            paired=False,
        )
        assert_close(res[name]["auc_ci"].low, want.low, terms=s_in.size)
        assert_close(res[name]["auc_ci"].high, want.high, terms=s_in.size)
        (tpr,) = res[name]["tpr_at_fpr"]
        assert tpr["target_fpr"] == 0.05 and tpr["fpr"] <= 0.05
        assert tpr["ci"].low <= tpr["tpr"] <= tpr["ci"].high
        assert len(np.asarray(res[name]["percentile_table"].percentile)) == 3
    assert float(res["inner_product"]["auc"]) > 0.8


@pytest.mark.parametrize("ridge", [1e-3, 0.5])
def test_cholesky_whitening_has_the_zca_inner_products(ridge):
    """The attacks whiten with L^-1 (e - ebar), L L^T = Sigma_reg; every statistic depends on
    inner products only, and those equal the ZCA-whitened W (e - ebar)'s (W = Sigma_reg^-1/2).
    A transform without the ridge (Q^-1/2) has different inner products (power)."""
    rng = np.random.default_rng(3)
    pool = jnp.asarray(rng.normal(size=(7, 6, 4)) * [1.0, 2.0, 0.5, 3.0], jnp.float32)
    mask = jnp.ones(pool.shape[:2], bool)
    lam = jnp.asarray(ridge, jnp.float32)
    chol = attacks.whiten_for_gram(pool, mask, lam)
    zca = attacks.apply_whitening(pool, attacks.loto_whitening(pool, mask=mask, ridge=ridge))
    gram = lambda x: np.einsum("tim,tjm->tij", x, x)  # noqa: E731
    np.testing.assert_allclose(gram(chol), gram(zca), rtol=2e-5, atol=2e-5)
    no_ridge = attacks.apply_whitening(pool, attacks.loto_whitening(pool, mask=mask, ridge=0.0))
    assert np.max(np.abs(gram(no_ridge) - gram(zca))) > 1e-3
