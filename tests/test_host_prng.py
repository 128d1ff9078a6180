"""The NumPy threefry twin (``mtl_tracing.host_prng``) draws JAX's integers bit for bit."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mtl_tracing import host_prng as hp
from mtl_tracing import metrics
from mtl_tracing.metrics import bootstrap

SEEDS = (0, 7, 2**31 - 1)


def test_fold_in_and_split_match_jax():
    for seed in SEEDS:
        key = jax.random.key(seed)
        data = hp.key_data(key)
        for value in (0, 1, 1_000_003, 2**32 - 1):
            want = hp.key_data(jax.random.fold_in(key, value))
            np.testing.assert_array_equal(hp.fold_in(data, value), want)
            folded = hp.fold_in_key(key, value)
            assert jax.random.key_impl(folded) == jax.random.key_impl(key)
            np.testing.assert_array_equal(hp.key_data(folded), want)
        for num in (1, 2, 5):
            np.testing.assert_array_equal(
                hp.split(data, num), hp.key_data(jax.random.split(key, num))
            )
        # batched keys: one split per row
        rows = hp.key_data(jax.random.split(key, 3))
        want = np.stack(
            [hp.key_data(jax.random.split(jax.random.wrap_key_data(r), 4)) for r in rows]
        )
        np.testing.assert_array_equal(hp.split(rows, 4), want)


def test_threefry_known_answers():
    # Random123's known-answer vectors for threefry2x32 with 20 rounds: (key, counter) -> output
    cases = [
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF,) * 2, (0xFFFFFFFF,) * 2, (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ]
    for (k1, k2), (x1, x2), want in cases:
        a, b = hp.threefry2x32(k1, k2, x1, x2)
        assert (int(a), int(b)) == want


@pytest.mark.parametrize("shape", [(1, 1, 2, True), (3, 5, 7, False), (1000, 1000, 4, True)])
def test_bootstrap_indices_match_the_compiled_draw(shape):
    g_in, g_out, reps, paired = shape
    for seed in SEEDS:
        key = jax.random.fold_in(jax.random.key(seed), 3)
        want = bootstrap._indices_kernel(
            key, g_in=g_in, g_out=g_out, num_resamples=reps, paired=paired
        )
        got = bootstrap._host_indices(key, g_in, g_out, reps, paired)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, np.asarray(w))


def test_bootstrap_indices_int64_under_x64(x64):
    key = jax.random.key(11)
    want = bootstrap._indices_kernel(key, g_in=6, g_out=9, num_resamples=5, paired=False)
    got = bootstrap._host_indices(key, 6, 9, 5, False)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == np.int64
        np.testing.assert_array_equal(g, np.asarray(w))


def test_randint_wraps_like_jax_for_large_spans():
    # span > 2^16: the uint32 multiplier square wraps; the twin must wrap the same way
    key = jax.random.key(5)
    for span in (65_537, 2**31 - 1):
        want = jax.random.randint(key, (64,), 0, span)
        got = hp.randint(hp.key_data(key), 64, span)
        np.testing.assert_array_equal(got, np.asarray(want))


def test_applies_only_to_concrete_partitionable_threefry_keys():
    assert hp.applies(jax.random.key(0))
    assert not hp.applies(jax.random.key(0, impl="rbg"))
    seen = []
    jax.jit(lambda k: seen.append(hp.applies(k)) or 0)(jax.random.key(0))
    assert seen == [False]
    prev = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", False)
    try:
        assert not hp.applies(jax.random.key(0))
    finally:
        jax.config.update("jax_threefry_partitionable", prev)


def test_host_bootstrap_same_with_and_without_the_twin(monkeypatch):
    key = jax.random.key(3)
    s_in = jax.random.normal(jax.random.key(1), (40, 3)) + 0.5
    s_out = jax.random.normal(jax.random.key(2), (40, 3))
    stats = (metrics.auc, metrics.TprAtFprStatistic(0.1))
    with_twin = metrics.grouped_bootstrap(key, stats, s_in, s_out, paired=True, num_resamples=50)
    monkeypatch.setattr(hp, "applies", lambda key: False)
    without = metrics.grouped_bootstrap(key, stats, s_in, s_out, paired=True, num_resamples=50)
    for a, b in zip(with_twin, without, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_randint_rejects_bad_arguments():
    data = hp.key_data(jax.random.key(0))
    with pytest.raises(ValueError, match="width"):
        hp.randint(data, 3, 5, width=16)
    with pytest.raises(ValueError, match="maxval"):
        hp.randint(data, 3, 0)


def test_permutation_matches_jax_including_two_sort_rounds():
    # n >= 1626 takes two rounds of the sort-based shuffle
    for n in (1, 2, 11, 1700):
        key = jax.random.key(n)
        want = np.asarray(jax.random.permutation(key, n))
        got = hp.permutation(hp.key_data(key), n)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(hp.permutation_key(key, n), want)
