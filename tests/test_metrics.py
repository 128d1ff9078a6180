"""Tests for mtl_tracing.metrics: oracles (scikit-learn, brute-force NumPy), weights, dtypes,
jit/vmap, compile counts, validation, and the grouped bootstrap's coverage (with power)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_close, assert_rejects, assert_within_se
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from mtl_tracing import flat_random, metrics
from mtl_tracing.metrics import _fast, _host


@pytest.fixture(autouse=True, scope="module")
def _device_bootstrap():
    """These tests pin the compiled (device) bootstrap paths: the host path for small inputs
    is off here, and tested on its own below (``test_host_bootstrap_*``). Module-scoped, so
    Hypothesis tests see it too."""
    prev = _host.HOST_MAX_WORK
    _host.HOST_MAX_WORK = 0
    yield
    _host.HOST_MAX_WORK = prev


@pytest.fixture
def host_bootstrap(monkeypatch):
    monkeypatch.setattr(_host, "HOST_MAX_WORK", 1 << 23)


@pytest.fixture
def pairs_here(monkeypatch):
    """The group-pair path is the default on CPU only (``bootstrap._PAIR_BACKENDS``); tests of
    its public use turn it on for the backend they run on."""
    monkeypatch.setattr(metrics.bootstrap, "_PAIR_BACKENDS", (jax.default_backend(),))


SHAPES = [(37, 23), (16, 16)]  # small fixed set of (n_in, n_out): few compiles


def _data(seed, n_in, n_out, ties):
    rng = np.random.default_rng(seed)
    if ties:  # integer-valued scores: many ties, within and across classes
        return (
            rng.integers(0, 6, n_in).astype(np.float32),
            rng.integers(-1, 4, n_out).astype(np.float32),
        )
    return (
        rng.normal(0.7, 1.0, n_in).astype(np.float32),
        rng.normal(0.0, 1.0, n_out).astype(np.float32),
    )


def _sk_auc(a, b):
    y = np.r_[np.ones(a.size), np.zeros(b.size)]
    return roc_auc_score(y, np.r_[a, b].astype(np.float64))


def _brute_tpr_at_fpr(a, b, target):
    """Max TPR over rules ``score > t`` with FPR <= target, then min FPR (NumPy, float64)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cands = np.r_[np.unique(np.r_[a, b]), -np.inf]
    tpr = (a[None, :] > cands[:, None]).mean(1)
    fpr = (b[None, :] > cands[:, None]).mean(1)
    ok = fpr <= target
    best = tpr[ok].max()
    sel = ok & (tpr == best)
    j = np.flatnonzero(sel)[np.argmin(fpr[sel])]
    return tpr[j], fpr[j]


@given(seed=st.integers(0, 2**16), shape=st.sampled_from(SHAPES), ties=st.booleans())
def test_auc_and_roc_match_sklearn(seed, shape, ties):
    a, b = _data(seed, *shape, ties)
    got = metrics.auc(a, b)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), _sk_auc(a, b), rtol=0, atol=2e-6)

    roc = metrics.roc_curve(a, b)
    n = a.size + b.size
    assert roc.fpr.shape == roc.tpr.shape == roc.thresholds.shape == (n + 1,)
    fpr, tpr, thr = (np.asarray(x, np.float64) for x in roc)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # Distinct points, in order, are sklearn's full (undropped) curve.
    y = np.r_[np.ones(a.size), np.zeros(b.size)]
    sk_fpr, sk_tpr, _ = sk_roc_curve(y, np.r_[a, b], drop_intermediate=False)
    keep = np.r_[True, (np.diff(fpr) != 0) | (np.diff(tpr) != 0)]
    np.testing.assert_allclose(fpr[keep], sk_fpr, atol=1e-6)
    np.testing.assert_allclose(tpr[keep], sk_tpr, atol=1e-6)
    # Each threshold realises its point under the rule score > t.
    np.testing.assert_allclose(tpr, (a[None, :] > thr[:, None]).mean(1), atol=1e-6)
    np.testing.assert_allclose(fpr, (b[None, :] > thr[:, None]).mean(1), atol=1e-6)
    # Trapezoid area of the curve equals the Mann-Whitney AUC.
    np.testing.assert_allclose(np.trapezoid(tpr, fpr), float(got), atol=2e-6)
    # Point count with ties: exactly one repeated point per tied pair of neighbours.
    assert keep.sum() == np.unique(np.r_[a, b]).size + 1


def test_auc_ties_count_half():
    # One IN, one OUT, equal scores: AUC = 1/2 exactly; a wrong "ties count 0 or 1" fails.
    assert float(metrics.auc([1.0], [1.0])) == 0.5
    assert float(metrics.auc([1.0, 2.0], [1.0, 0.0])) == pytest.approx(0.875)


@given(seed=st.integers(0, 2**16), ties=st.booleans())
def test_weights_equal_repeated_data(seed, ties):
    a, b = _data(seed, 37, 23, ties)
    rng = np.random.default_rng(seed + 1)
    # Permuted fixed multisets of multiplicities (0..3): the repeated data have fixed sizes,
    # so the oracle call does not recompile per example.
    wa, wb = rng.permutation(np.arange(a.size) % 4), rng.permutation(np.arange(b.size) % 4)
    ra, rb = np.repeat(a, wa), np.repeat(b, wb)
    kw = dict(weights_in=wa.astype(np.float32), weights_out=wb.astype(np.float32))
    np.testing.assert_allclose(float(metrics.auc(a, b, **kw)), _sk_auc(ra, rb), atol=2e-6)
    targets = np.array([0.05, 0.3, 1.0])
    got = metrics.tpr_at_fpr(a, b, targets, **kw)
    ref = metrics.tpr_at_fpr(ra, rb, targets)
    np.testing.assert_allclose(np.asarray(got.tpr), np.asarray(ref.tpr), atol=1e-6)
    np.testing.assert_allclose(np.asarray(got.fpr), np.asarray(ref.fpr), atol=1e-6)


def test_rates_are_integer_counts_with_exact_endpoints():
    """Rates are integer counts divided once, with the endpoint pinned: the ROC runs from
    exactly (0, 0) to exactly (1, 1), TPR at FPR 1 is exactly 1 and percentile rates are
    count / n, whatever order a backend sums in. The neighbouring formula, a float count times
    the reciprocal of its total (what XLA may emit for a division by a broadcast scalar), is
    not exact: for some n it gives 0.99999994 at the end."""
    ns = np.arange(1, 200, dtype=np.float32)
    assert np.any(ns * (np.float32(1) / ns) != 1)  # the neighbouring formula fails here
    for n in (41, 47, 55, 61):  # totals where n * (1 / n) != 1 in float32 (47 and 55 do)
        a, b = _data(n, n, n + 6, ties=False)
        roc = metrics.roc_curve(a, b)
        assert float(roc.fpr[0]) == float(roc.tpr[0]) == 0.0
        assert float(roc.fpr[-1]) == float(roc.tpr[-1]) == 1.0
        assert float(metrics.tpr_at_fpr(a, b, 1.0).tpr) == 1.0
        tab = metrics.percentile_table(a, b)
        thr = np.asarray(tab.threshold)
        want = np.sum(a[None] > thr[:, None], 1) / a.size
        assert_close(tab.tpr, want, dtype=np.float32, ulps=1, what="percentile TPR")
    # the kernel itself: exactly 1 at count == total and 0 at 0, one division (to an ulp:
    # XLA may divide by a constant through its reciprocal) elsewhere
    count = jnp.arange(56, dtype=metrics.roc.count_dtype())
    got = np.asarray(metrics.roc.rate(count, count[-1], jnp.float32))
    assert got[-1] == 1.0 and got[0] == 0.0
    assert_close(got, np.arange(56) / 55, dtype=np.float32, ulps=1, what="rate")


def test_weights_must_be_integer_multiplicities_in_range():
    with pytest.raises(ValueError, match="weights_in must be integer multiplicities.*1 frac"):
        metrics.auc([1.0, 2.0], [0.0], weights_in=[1.0, 0.5])
    with pytest.raises(ValueError, match="weights_out must be integer multiplicities"):
        metrics.auc([1.0], [0.0], weights_out=np.array([True]))
    with pytest.raises(ValueError, match="total weight must be <= 2147483647.*int32"):
        metrics.auc([1.0, 2.0], [0.0], weights_in=[2**31 - 1, 5])
    got = metrics.auc([1.0, 2.0], [0.0], weights_in=np.array([3, 1], np.int64))
    assert float(got) == 1.0


def test_bootstrap_with_more_than_2_31_pairs_per_group_pair():
    """Regression (``game --tasks 200000 --games 2``): P_in x P_out above 2^31 pairs per
    group pair passed a Python int that does not fit int32 into the group-pair path
    (OverflowError). Sizes are exact now; the AUC matches scikit-learn's."""
    rng = np.random.default_rng(0)
    p = 50_000  # p * p = 2.5e9 > 2^31 - 1
    s_in = rng.normal(0.5, 1.0, (2, p)).astype(np.float32)
    s_out = rng.normal(0.0, 1.0, (2, p)).astype(np.float32)
    iv = metrics.grouped_bootstrap(
        jax.random.key(0), metrics.auc, s_in, s_out, paired=True, num_resamples=2, host=False
    )
    np.testing.assert_allclose(float(iv.estimate), _sk_auc(s_in.ravel(), s_out.ravel()), atol=1e-5)


@given(seed=st.integers(0, 2**16), shape=st.sampled_from(SHAPES), ties=st.booleans())
def test_tpr_at_fpr_matches_brute_force(seed, shape, ties):
    a, b = _data(seed, *shape, ties)
    n_out = b.size
    # Targets half-way between grid points k/n_out (and exactly 1), so float rounding cannot
    # decide admissibility (0.3 + 0.1 / n_out was the grid point 7/23 at n_out = 23).
    grid = np.array([0.5, 2.5, np.floor(0.3 * n_out) + 0.5, np.floor(0.77 * n_out) + 0.5])
    targets = np.r_[grid / n_out, 1.0]
    got = metrics.tpr_at_fpr(a, b, targets)
    assert got.tpr.shape == (targets.size,)
    for i, t in enumerate(targets):
        tpr, fpr = _brute_tpr_at_fpr(a, b, t)
        assert float(got.tpr[i]) == pytest.approx(tpr, abs=1e-6)
        assert float(got.fpr[i]) == pytest.approx(fpr, abs=1e-6)
        assert float(got.fpr[i]) <= t
        thr = float(got.threshold[i])
        assert np.mean(a > thr) == pytest.approx(tpr, abs=1e-6)
        assert np.mean(b > thr) == pytest.approx(fpr, abs=1e-6)
    scalar = metrics.tpr_at_fpr(a, b, 1.0)
    assert scalar.tpr.shape == () and float(scalar.tpr) == 1.0
    assert float(scalar.fpr) == pytest.approx(_brute_tpr_at_fpr(a, b, 1.0)[1], abs=1e-6)


def test_grid_targets_are_decided_on_counts():
    """Regression (jax 0.6-0.10.0 gave TPR 0.432 where brute force gives 0.162): a target one
    float64 ulp below the grid point 7/23 does not admit FPR 7/23, whatever the division
    rounding (the float32 target is below 7/23 too): admissibility is FP <= target W_out on
    integer counts, not a comparison of rounded rates (XLA computes x / n as x * (1 / n) on
    XLA:CPU since jaxlib 0.10.1 and on GPUs)."""
    a, b = _data(0, 37, 23, False)
    t = float(np.nextafter(7 / 23, 0))
    assert float(metrics.tpr_at_fpr(a, b, t).fpr) == pytest.approx(_brute_tpr_at_fpr(a, b, t)[1])
    assert float(metrics.tpr_at_fpr(a, b, t).tpr) == pytest.approx(_brute_tpr_at_fpr(a, b, t)[0])


def test_tpr_at_fpr_ties_realised_below_target():
    # All OUT tied at 0: any FPR target < 1 can only realise FPR 0.
    res = metrics.tpr_at_fpr([1.0, 0.0, -1.0], [0.0, 0.0], 0.6)
    assert float(res.fpr) == 0.0 and float(res.tpr) == pytest.approx(1 / 3)
    assert float(res.threshold) == 0.0


@given(seed=st.integers(0, 2**16), ties=st.booleans())
def test_percentile_table_matches_numpy(seed, ties):
    a, b = _data(seed, 37, 23, ties)
    q = (50.0, 75.0, 90.0)
    tab = metrics.percentile_table(a, b, q)
    pooled = np.r_[a, b].astype(np.float64)
    np.testing.assert_allclose(np.asarray(tab.threshold), np.percentile(pooled, q), rtol=1e-6)
    thr = np.asarray(tab.threshold, np.float64)
    tpr = (a[None, :] > thr[:, None]).mean(1)
    fpr = (b[None, :] > thr[:, None]).mean(1)
    np.testing.assert_allclose(np.asarray(tab.tpr), tpr, atol=1e-6)
    np.testing.assert_allclose(np.asarray(tab.fpr), fpr, atol=1e-6)
    np.testing.assert_allclose(np.asarray(tab.balanced_accuracy), (tpr + 1 - fpr) / 2, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(tab.percentile), q)


def test_percentile_table_identity_equal_classes():
    # Equal class sizes, no ties: a pooled p-th percentile threshold puts a fraction
    # (1 - p/100) of all 2n scores above it, so TPR + FPR = 2 (1 - p/100) up to 1/n.
    a, b = _data(3, 16, 16, ties=False)
    tab = metrics.percentile_table(a, b, (50.0, 75.0, 90.0))
    total = np.asarray(tab.tpr) + np.asarray(tab.fpr)
    np.testing.assert_allclose(total, 2 * (1 - np.array([0.5, 0.75, 0.9])), atol=1 / 16 + 1e-6)


def test_jit_vmap_match_loop():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 1, (5, 16, 16)).astype(np.float32)  # any shape is pooled
    b = rng.integers(-2, 3, (5, 256)).astype(np.float32)
    batched = jax.jit(jax.vmap(metrics.auc))(a, b)
    loop = np.array([float(metrics.auc(a[i], b[i])) for i in range(5)])
    np.testing.assert_allclose(np.asarray(batched), loop, atol=1e-6)
    tb = jax.vmap(lambda x, y: metrics.tpr_at_fpr(x, y, jnp.array([0.1, 0.5])))(a, b)
    tl = np.stack([np.asarray(metrics.tpr_at_fpr(a[i], b[i], [0.1, 0.5]).tpr) for i in range(5)])
    np.testing.assert_allclose(np.asarray(tb.tpr), tl, atol=1e-6)


def test_float32_default():
    a, b = _data(0, 16, 16, ties=False)
    assert metrics.auc(a.astype(np.float64), b).dtype == jnp.float32  # x64 off: float32
    assert metrics.auc(a.astype(np.int32), b.astype(np.int32)).dtype == jnp.float32
    assert metrics.roc_curve(a, b).fpr.dtype == jnp.float32
    assert metrics.percentile_table(a, b).tpr.dtype == jnp.float32


def test_float64_preserved(x64):
    a, b = _data(0, 37, 23, ties=True)
    a, b = a.astype(np.float64), b.astype(np.float64)
    got = metrics.auc(a, b)
    assert got.dtype == jnp.float64
    assert float(got) == pytest.approx(_sk_auc(a, b), abs=1e-14)
    for x in metrics.roc_curve(a, b):
        assert x.dtype == jnp.float64
    assert metrics.tpr_at_fpr(a, b, 0.1).tpr.dtype == jnp.float64
    tab = metrics.percentile_table(a, b)
    assert tab.threshold.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(tab.threshold), np.percentile(np.r_[a, b], (50, 75, 90)))


def test_no_recompile_on_second_call():
    a1, b1 = _data(1, 37, 23, ties=False)
    a2, b2 = _data(2, 37, 23, ties=True)
    metrics.auc(a1, b1)
    metrics.tpr_at_fpr(a1, b1, [0.1, 0.2])
    n_auc, n_tpr = (
        metrics.roc._auc_kernel._cache_size(),
        metrics.roc._tpr_kernel._cache_size(),
    )
    metrics.auc(a2, b2)
    metrics.tpr_at_fpr(a2, b2, [0.3, 0.4])
    assert metrics.roc._auc_kernel._cache_size() == n_auc
    assert metrics.roc._tpr_kernel._cache_size() == n_tpr
    s_in, s_out = a1[:36].reshape(6, 6), b1[:18].reshape(6, 3)
    stat = metrics.TprAtFprStatistic(0.25)
    metrics.grouped_bootstrap(jax.random.key(1), stat, s_in, s_out, paired=False)
    programs = (metrics.bootstrap._intervals_program, metrics.bootstrap._counts_program)
    n_boot = [p._cache_size() for p in programs]
    metrics.grouped_bootstrap(
        jax.random.key(2), metrics.TprAtFprStatistic(0.25), s_in + 1, s_out, paired=False
    )
    assert [p._cache_size() for p in programs] == n_boot


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: metrics.auc([1.0, np.nan, np.inf], [0.0]), "scores_in.*2 non-finite"),
        (lambda: metrics.auc([1.0], []), "scores_out must be non-empty"),
        (lambda: metrics.auc([1.0], [0.0], weights_in=[-1.0]), "weights_in.*negative"),
        (lambda: metrics.auc([1.0], [0.0], weights_out=[0.0]), "weights_out.*positive sum"),
        (lambda: metrics.auc([1.0, 2.0], [0.0], weights_in=[1.0]), "weights_in must have shape"),
        (lambda: metrics.tpr_at_fpr([1.0], [0.0], 0.0), r"fpr must be in \(0, 1\]"),
        (lambda: metrics.tpr_at_fpr([1.0], [0.0], [0.1, 1.5]), r"got \[1.5\]"),
        (lambda: metrics.percentile_table([1.0], [0.0], (50, 100)), r"\(0, 100\), got \[100"),
        (lambda: metrics.TprAtFprStatistic(0.0), "fpr"),
        (
            lambda: metrics.grouped_bootstrap(
                jax.random.key(0), metrics.auc, np.ones((3, 2)), np.ones((4, 2)), paired=True
            ),
            "equal group counts",
        ),
        (
            lambda: metrics.grouped_bootstrap(
                0, metrics.auc, np.ones((3, 2)), np.ones((3, 2)), paired=True
            ),
            "typed key",
        ),
        (
            lambda: metrics.grouped_bootstrap(
                jax.random.key(0), metrics.auc, np.ones(3), np.ones((3, 2)), paired=False
            ),
            r"scores_in must have shape \(groups, per_group\)",
        ),
        (
            lambda: metrics.grouped_bootstrap(
                jax.random.key(0),
                metrics.auc,
                np.ones((3, 2)),
                np.ones((3, 2)),
                paired=True,
                level=1.0,
            ),
            "level",
        ),
    ],
)
def test_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bootstrap_seeded_and_contains_estimate():
    # Same shapes and statistic as test_no_recompile_on_second_call: shares its compile.
    a, b = _data(1, 37, 23, ties=False)
    s_in, s_out = a[:36].reshape(6, 6), b[:18].reshape(6, 3)
    stat = metrics.TprAtFprStatistic(0.25)
    k = jax.random.key(7)
    iv1 = metrics.grouped_bootstrap(k, stat, s_in, s_out, paired=False)
    iv2 = metrics.grouped_bootstrap(k, stat, s_in, s_out, paired=False)
    assert [float(x) for x in iv1] == [float(x) for x in iv2]
    assert float(iv1.estimate) == float(metrics.tpr_at_fpr(s_in, s_out, 0.25).tpr)
    assert float(iv1.low) <= float(iv1.estimate) <= float(iv1.high)
    assert float(iv1.std) > 0


def _bootstrap_std(key, s_in, s_out, paired):
    return metrics.grouped_bootstrap(
        key, metrics.auc, s_in, s_out, paired=paired, num_resamples=64, chunk=64
    ).std


def test_bootstrap_coverage_with_power():
    """Paired game resampling matches the true sampling std of the pooled AUC; the wrong
    scheme (scores resampled as if independent) is rejected on the same data.

    Games share a per-game offset a_g with opposite signs in IN and OUT (like mu_hat in
    Figure 7, the shared release moves a game's IN and OUT scores together), so the game
    effects of the two classes add up in the pooled AUC.
    """
    games, per, datasets = 24, 6, 300
    key = jax.random.key(2024)
    k_data, k_boot = jax.random.split(key)

    def dataset(k):
        ka, ki, ko = jax.random.split(k, 3)
        off = flat_random.normal(ka, (games, 1))
        s_in = 0.5 + off + flat_random.normal(ki, (games, per))
        s_out = -off + flat_random.normal(ko, (games, per))
        return s_in, s_out

    s_in, s_out = jax.vmap(dataset)(jax.random.split(k_data, datasets))
    aucs = np.asarray(jax.vmap(metrics.auc)(s_in, s_out), np.float64)
    keys = jax.random.split(k_boot, datasets)
    paired = np.asarray(jax.vmap(lambda k, a, b: _bootstrap_std(k, a, b, True))(keys, s_in, s_out))
    flat = lambda x: x.reshape(datasets, games * per, 1)  # noqa: E731 - naive: each score a group
    naive = np.asarray(
        jax.vmap(lambda k, a, b: _bootstrap_std(k, a, b, True))(keys, flat(s_in), flat(s_out))
    )

    # True std of the AUC and its SE (delta method from the 4th central moment).
    dev = aucs - aucs.mean()
    var = dev.var(ddof=1)
    true_std = np.sqrt(var)
    se_true = np.sqrt((np.mean(dev**4) - var**2) / datasets) / (2 * true_std)

    def ratio(boot_std):  # mean bootstrap std / true std, and its standard error
        r = boot_std.mean() / true_std
        se_r = r * np.hypot(
            se_true / true_std, boot_std.std(ddof=1) / np.sqrt(datasets) / boot_std.mean()
        )
        return r, se_r

    # The bootstrap std of a mean of G groups is biased by sqrt((G-1)/G) ~ 0.98 here, well
    # inside tolerance.
    r_paired, se_paired = ratio(paired)
    assert_within_se(r_paired, 1.0, se_paired, what="paired bootstrap std / true std")
    # Power: the same data reject the naive (score-level) resampling.
    r_naive, se_naive = ratio(naive)
    assert r_naive < 1
    assert_rejects(r_naive, 1.0, se_naive, what="naive score-level bootstrap")


class _Generic:
    """Wraps a statistic so that it has no sorted form: forces the bootstrap's generic path."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, scores_in, scores_out, **weights):
        return self.fn(scores_in, scores_out, **weights)


@pytest.mark.parametrize("ties", [False, True])
def test_sorted_bootstrap_equals_generic_path(ties):
    """The one-sort fast path (auc, TprAtFprStatistic) gives the same replicates as calling
    the public weighted metrics on every replicate (ties exercise the tie groups)."""
    a, b = _data(3, 37, 23, ties=ties)
    s_in, s_out = a[:36].reshape(6, 6), b[:18].reshape(6, 3)
    fast = (metrics.auc, metrics.TprAtFprStatistic(0.25))
    slow = tuple(_Generic(f) for f in fast)
    k = jax.random.key(11)
    got = metrics.grouped_bootstrap(k, fast, s_in, s_out, paired=False, num_resamples=32)
    want = metrics.grouped_bootstrap(k, slow, s_in, s_out, paired=False, num_resamples=32)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=2e-6)
    assert float(got[0].estimate) == pytest.approx(_sk_auc(a[:36], b[:18]), abs=2e-6)


def test_auc_exact_at_perfect_separation():
    """Separated classes give AUC exactly 1 (and 0 reversed) under any weights, so a bootstrap
    interval of a perfect attack is [1, 1] and contains its estimate (a trapezoid over a
    float32 ROC returned 0.99999988 here)."""
    rng = np.random.default_rng(0)
    a = rng.normal(10.0, 1.0, (40, 48)).astype(np.float32)
    b = rng.normal(0.0, 1.0, (40, 48)).astype(np.float32)
    assert float(metrics.auc(a, b)) == 1.0 and float(metrics.auc(b, a)) == 0.0
    w = rng.integers(0, 4, a.shape).astype(np.float32)
    assert float(metrics.auc(a, b, weights_in=w + 1, weights_out=w + 1)) == 1.0
    iv = metrics.grouped_bootstrap(jax.random.key(0), metrics.auc, a, b, paired=True)
    assert float(iv.estimate) == float(iv.low) == float(iv.high) == 1.0


@pytest.mark.parametrize("ties", [False, True])
def test_tpr_at_fpr_from_roc_equals_tpr_at_fpr(ties):
    a, b = _data(5, 37, 23, ties=ties)
    targets = [0.01, 0.1, 0.3, 1.0]
    want = metrics.tpr_at_fpr(a, b, targets)
    got = metrics.tpr_at_fpr_from_roc(metrics.roc_curve(a, b), targets)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    with pytest.raises(ValueError, match="roc must be a Roc"):
        metrics.tpr_at_fpr_from_roc((1, 2, 3), 0.1)
    with pytest.raises(ValueError, match="fpr must be in"):
        metrics.tpr_at_fpr_from_roc(metrics.roc_curve(a, b), 0.0)


def test_percentile_thresholds_exact_in_float32():
    """Regression: jnp.percentile's own q / 100 rounds in float32 (75 -> 0.7499999), which put
    the 75th-percentile threshold of this tied data at 3.2499962 instead of 3.25. The fraction
    is now computed on the host, so interpolation at exactly representable points is exact."""
    a, b = _data(15, 37, 23, ties=True)
    tab = metrics.percentile_table(a, b, (50.0, 75.0, 90.0))
    want = np.percentile(np.r_[a, b].astype(np.float64), (50, 75, 90))
    np.testing.assert_array_equal(np.asarray(tab.threshold, np.float64), want)
    assert want[1] == 3.25


def _replicates(s_in, s_out, stats, paired, resamples=40):
    """(group-pair values, ok) and the sorted path's values for the same group counts."""
    (g_in, p_in), (g_out, p_out) = s_in.shape, s_out.shape
    c_in, c_out = metrics.bootstrap._draw_counts(jax.random.key(3), g_in, g_out, resamples, paired)
    fprs = metrics.bootstrap._pair_fprs(stats)
    fast, ok = jax.jit(lambda a, b, c, d: _fast.pair_path(a, b, fprs, c, d))(
        s_in, s_out, c_in, c_out
    )
    srt = metrics.roc.sort_pooled(s_in.ravel(), s_out.ravel())
    group = jnp.concatenate(
        [jnp.repeat(jnp.arange(g_in), p_in), g_in + jnp.repeat(jnp.arange(g_out), p_out)]
    )[srt.order]
    forms = [metrics.bootstrap._sorted_form(st) for st in stats]
    slow = jnp.stack(
        [
            jnp.stack([f(srt, jnp.concatenate([a, b])[group]) for f in forms])
            for a, b in zip(c_in, c_out, strict=True)
        ]
    )
    return np.asarray(fast), bool(ok), np.asarray(slow)


PAIR_STATS = (
    metrics.auc,
    metrics.TprAtFprStatistic(0.01),
    metrics.TprAtFprStatistic(0.1),
    metrics.TprAtFprStatistic(0.001),
)


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("rounding", [0.0, 3e-4])  # none / small tie groups (IN-OUT included)
def test_group_pair_bootstrap_equals_sorted_path(paired, rounding):
    """The group-pair path (one G_in x G_out pair-count matrix for all replicates) gives the
    sorted path's replicates: TPRs bitwise, AUCs to float32 rounding, ties counted 1/2."""
    rng = np.random.default_rng(7)
    a = rng.normal(0.3, 1.0, (40, 16))
    b = rng.normal(0.0, 1.0, (40 if paired else 30, 16))
    if rounding:
        a, b = np.round(a / rounding) * rounding, np.round(b / rounding) * rounding
        pooled = np.concatenate([a.ravel(), b.ravel()])
        assert len(np.unique(pooled)) < pooled.size  # ties present
        assert np.intersect1d(a, b).size > 0  # including IN-OUT ties
    s_in, s_out = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    fast, ok, slow = _replicates(s_in, s_out, PAIR_STATS, paired)
    assert ok
    np.testing.assert_array_equal(fast[:, 1:], slow[:, 1:])
    np.testing.assert_allclose(fast[:, 0], slow[:, 0], rtol=0, atol=3e-7)
    # Power: AUC with ties counted 1 (not 1/2) is off by over 10x the tolerance.
    if rounding:
        strict_ge = float(np.mean(a.ravel()[:, None] >= b.ravel()[None, :]))
        assert abs(strict_ge - fast[0, 0]) > 10 * 3e-7


def test_group_pair_bootstrap_falls_back_on_large_ties():
    """Tie groups larger than MAX_TIE switch to the sorted path: ``ok`` is False in the
    kernel, the host sees the ties before compiling, and the public result equals the
    sorted path's."""
    a, b = _data(3, 36, 18, ties=True)  # integer scores: large tie groups
    s_in, s_out = jnp.asarray(a.reshape(6, 6)), jnp.asarray(b.reshape(6, 3))
    _, ok, _ = _replicates(s_in, s_out, PAIR_STATS, paired=False)
    assert not ok
    assert not _fast.ties_small(a, b)
    assert metrics.bootstrap._choose_path(jax.random.key(0), s_in, s_out, PAIR_STATS) == "sorted"
    k = jax.random.key(5)
    got = metrics.grouped_bootstrap(k, PAIR_STATS, s_in, s_out, paired=False, num_resamples=16)
    slow = tuple(_Generic(f) for f in PAIR_STATS)
    want = metrics.grouped_bootstrap(k, slow, s_in, s_out, paired=False, num_resamples=16)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=2e-6)


def test_group_pair_window_too_short_falls_back(monkeypatch, pairs_here):
    """fpr = 1 never exceeds its budget inside the window: the path reports it, the host
    takes the sorted path for it, and the public bootstrap returns TPR = 1 everywhere. A
    window found too short only when run (here forced to one score) makes the host re-run
    the sorted program: the same numbers as the group-pair path with its normal window."""
    rng = np.random.default_rng(1)
    s_in = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
    s_out = jnp.asarray(rng.normal(size=(8, 5)), jnp.float32)
    stat = (metrics.TprAtFprStatistic(1.0),)
    _, ok, _ = _replicates(s_in, s_out, stat, paired=True)
    assert not ok
    iv = metrics.grouped_bootstrap(jax.random.key(0), stat, s_in, s_out, paired=True)
    assert [float(x) for x in iv[0][:3]] == [1.0, 1.0, 1.0]

    # The setup of test_bootstrap_seeded_and_contains_estimate: its program is cached.
    a, b = _data(1, 37, 23, ties=False)
    s_in, s_out = a[:36].reshape(6, 6), b[:18].reshape(6, 3)
    stat = metrics.TprAtFprStatistic(0.25)
    k, kernel = jax.random.key(7), metrics.bootstrap._intervals_program
    kw = dict(paired=False)
    want = metrics.grouped_bootstrap(k, stat, s_in, s_out, **kw)  # pairs, ok
    calls = []
    real = kernel

    def spy(*args, path, **kwargs):
        calls.append(path)
        return real(*args, path=path, **kwargs)

    monkeypatch.setattr(_fast, "pair_window", lambda fpr, n_out, per_group_out: 1)
    monkeypatch.setattr(metrics.bootstrap, "_intervals_program", spy)
    kernel.clear_cache()  # the programs traced with the one-score window are not kept
    try:
        got = metrics.grouped_bootstrap(k, stat, s_in, s_out, **kw)
    finally:
        kernel.clear_cache()
    assert calls == ["pairs", "sorted"]
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sort_floats_equals_sort(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    x = np.array([3.0, -0.0, 0.0, -1e-30, 1e-30, -2.5, 7.0, -7.0, 3.0, -1e30, 1e30], dtype)
    got = np.asarray(_fast.sort_floats(jnp.asarray(x)))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.sort(x))


def test_group_pair_bootstrap_float64(x64):
    """The group-pair path in float64 (int64 keys): same replicates as the sorted path, and
    the public bootstrap keeps float64."""
    rng = np.random.default_rng(8)
    s_in = jnp.asarray(rng.normal(0.3, 1.0, (24, 10)), jnp.float64)
    s_out = jnp.asarray(rng.normal(0.0, 1.0, (20, 10)), jnp.float64)
    fast, ok, slow = _replicates(s_in, s_out, PAIR_STATS, paired=False)
    assert ok and fast.dtype == np.float64
    np.testing.assert_array_equal(fast[:, 1:], slow[:, 1:])
    np.testing.assert_allclose(fast[:, 0], slow[:, 0], rtol=0, atol=1e-14)
    iv = metrics.grouped_bootstrap(jax.random.key(0), metrics.auc, s_in, s_out, paired=False)
    assert iv.estimate.dtype == jnp.float64
    assert float(iv.estimate) == pytest.approx(
        _sk_auc(np.asarray(s_in).ravel(), np.asarray(s_out).ravel()), abs=1e-14
    )


def test_host_chosen_path_compiles_no_fallback(pairs_here):
    """Concrete inputs: the host picks the path, and the compiled statistics program holds
    no conditional and no random draw (the counts come drawn). Traced inputs keep the traced
    choice (a conditional), with the same numbers."""
    rng = np.random.default_rng(4)
    s_in = jnp.asarray(rng.normal(0.3, 1.0, (6, 6)), jnp.float32)
    s_out = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    stats = (metrics.auc, metrics.TprAtFprStatistic(0.25))
    key = jax.random.key(9)
    assert metrics.bootstrap._choose_path(key, s_in, s_out, stats) == "pairs"
    counts = metrics.bootstrap._counts_program(
        key, g_in=6, g_out=6, num_resamples=200, paired=False
    )
    assert all(c.dtype == metrics.roc.count_dtype() for c in counts)
    kw = dict(statistics=stats, level=0.95, chunk=4)
    program = metrics.bootstrap._intervals_program
    for path, has_cond in (("pairs", False), ("sorted", False), ("auto", True)):
        text = program.lower(counts, s_in, s_out, path=path, **kw).as_text()
        assert ("stablehlo.case" in text) == has_cond, path
        assert "threefry" not in text
    host = metrics.grouped_bootstrap(key, stats, s_in, s_out, paired=False)
    traced = jax.jit(lambda k, a, b: metrics.grouped_bootstrap(k, stats, a, b, paired=False))(
        key, s_in, s_out
    )
    for h, t in zip(host, traced, strict=True):
        np.testing.assert_allclose(np.asarray(h), np.asarray(t), rtol=0, atol=1e-7)


def test_default_path_by_backend(monkeypatch):
    """The group-pair path is the default only on the backends listed in ``_PAIR_BACKENDS``
    (CPU, where it was measured to pay); elsewhere the sorted path, traced or not."""
    rng = np.random.default_rng(4)
    s_in = jnp.asarray(rng.normal(0.3, 1.0, (6, 6)), jnp.float32)
    s_out = jnp.asarray(rng.normal(size=(6, 3)), jnp.float32)
    stats, key = (metrics.auc,), jax.random.key(0)
    here = jax.default_backend()
    monkeypatch.setattr(metrics.bootstrap, "_PAIR_BACKENDS", (here,))
    assert metrics.bootstrap._choose_path(key, s_in, s_out, stats, host=False) == "pairs"
    monkeypatch.setattr(metrics.bootstrap, "_PAIR_BACKENDS", ("no-such-backend",))
    assert metrics.bootstrap._choose_path(key, s_in, s_out, stats, host=False) == "sorted"
    assert metrics.bootstrap._PAIR_BACKENDS == ("no-such-backend",)
    monkeypatch.undo()
    assert metrics.bootstrap._PAIR_BACKENDS == ("cpu",)


def test_bootstrap_memory_bytes():
    """The estimate grows with the data and the resamples, counts the group-pair path only
    where it applies, and validates its arguments."""
    stats = (metrics.auc, metrics.TprAtFprStatistic(0.01))
    mem = metrics.bootstrap_memory_bytes
    base = mem(stats, (200, 8), (200, 8), num_resamples=100, chunk=4)
    n = 2 * 200 * 8
    assert base >= 12 * n * 4  # sorted path: ~8 n words + 4 n per replicate of a chunk
    assert mem(stats, (200, 16), (200, 16), num_resamples=100, chunk=4) > base
    assert mem(stats, (200, 8), (200, 8), num_resamples=400, chunk=4) > base
    # Above PAIR_LIMIT group pairs, only the sorted path is counted.
    g = int(np.sqrt(_fast.PAIR_LIMIT)) + 1
    big = mem(stats, (g, 1), (g, 1), num_resamples=100, chunk=4)
    sorted_only = (8 + 4 * 4) * (2 * g) * 4 + 2 * 101 * (2 * g) * 8  # int64-sized counts
    assert big == sorted_only
    assert mem(_Generic(metrics.auc), (200, 8), (200, 8), num_resamples=100, chunk=4) < base
    with pytest.raises(ValueError, match="num_resamples"):
        mem(stats, (2, 2), (2, 2), num_resamples=1)
    with pytest.raises(ValueError, match="statistic"):
        mem((), (2, 2), (2, 2))


def _both_paths(key, stats, s_in, s_out, **kw):
    """(host, device) bootstrap results for the same key: the host path on, then off."""
    _host.HOST_MAX_WORK = 1 << 23
    try:
        assert metrics.bootstrap._choose_path(key, s_in, s_out, stats) == "host"
        host = metrics.grouped_bootstrap(key, stats, s_in, s_out, **kw)
    finally:
        _host.HOST_MAX_WORK = 0
    return host, metrics.grouped_bootstrap(key, stats, s_in, s_out, **kw)


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_host_bootstrap_equals_device_paths(paired, ties):
    """Small concrete inputs take the NumPy host path (nothing compiled but the counts): the
    same group counts as the device path, so the same estimates, intervals and standard
    errors to float32 rounding, with ties (sorted device path) and without (group pairs),
    paired (games) and not (tasks), fpr = 1 included."""
    a, b = _data(11, 48, 48 if paired else 40, ties)
    s_in, s_out = a.reshape(8, 6), b.reshape(8 if paired else 10, -1)
    stats = PAIR_STATS + (metrics.TprAtFprStatistic(1.0),)
    host, dev = _both_paths(jax.random.key(4), stats, s_in, s_out, paired=paired)
    for h, d in zip(host, dev, strict=True):
        assert h.estimate.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(h), np.asarray(d), rtol=0, atol=2e-7)
    np.testing.assert_allclose(float(host[0].estimate), _sk_auc(a, b), rtol=0, atol=2e-7)


def test_host_bootstrap_float64_and_no_compile(x64):
    """float64 scores stay float64 on the host and agree with the device path to 1e-15; the
    host path compiles no statistics program (only the small counts program), and inputs
    above ``HOST_MAX_WORK`` go to the device."""
    rng = np.random.default_rng(5)
    s_in = rng.normal(0.3, 1.0, (12, 7))
    s_out = rng.normal(0.0, 1.0, (12, 7))
    stats = (metrics.auc, metrics.TprAtFprStatistic(0.1))
    kernels = (metrics.bootstrap._intervals_program,)
    n_kernel = [k._cache_size() for k in kernels]
    _host.HOST_MAX_WORK = 1 << 23
    try:
        host = metrics.grouped_bootstrap(jax.random.key(2), stats, s_in, s_out, paired=True)
        assert [k._cache_size() for k in kernels] == n_kernel
        big = np.zeros((64, 1 << 10))
        assert metrics.bootstrap._choose_path(jax.random.key(0), big, big, stats) != "host"
    finally:
        _host.HOST_MAX_WORK = 0
    dev = metrics.grouped_bootstrap(jax.random.key(2), stats, s_in, s_out, paired=True)
    for h, d in zip(host, dev, strict=True):
        assert h.estimate.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(h), np.asarray(d), rtol=0, atol=1e-15)


def test_host_keyword_forces_or_refuses_the_host_path():
    """``host=True`` takes the host path whatever the size (the same numbers as the device
    path), ``host=False`` compiles even for small inputs, and ``host=True`` refuses a
    statistic without a host form."""
    a, b = _data(2, 36, 36, False)
    s_in, s_out = a.reshape(6, 6), b.reshape(6, 6)
    key = jax.random.key(1)
    stats = (metrics.auc, metrics.TprAtFprStatistic(0.1))
    host = metrics.grouped_bootstrap(key, stats, s_in, s_out, paired=True, host=True)
    dev = metrics.grouped_bootstrap(key, stats, s_in, s_out, paired=True, host=False)
    for h, d in zip(host, dev, strict=True):
        np.testing.assert_allclose(np.asarray(h), np.asarray(d), rtol=0, atol=2e-7)
    _host.HOST_MAX_WORK = 1 << 23
    try:
        assert metrics.bootstrap._choose_path(key, s_in, s_out, stats, host=False) != "host"
    finally:
        _host.HOST_MAX_WORK = 0
    with pytest.raises(ValueError, match="host=True"):
        metrics.grouped_bootstrap(key, _Generic(metrics.auc), s_in, s_out, paired=True, host=True)
    with pytest.raises(ValueError, match="host must be"):
        metrics.grouped_bootstrap(key, metrics.auc, s_in, s_out, paired=True, host="yes")
