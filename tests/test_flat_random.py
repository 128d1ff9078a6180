"""``mtl_tracing.flat_random`` draws flat through public ``jax.random`` and reshapes: the law
of the draw in its shape (KS tests, seeded, with power), shapes and dtypes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from mtl_tracing import flat_random

SHAPE = (40, 25, 20)  # 20,000 values per law: a KS test rejects a 10% scale error


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flat_draws_have_the_law_shape_and_dtype(dtype, request):
    """Each draw passes a KS test against its law (p > 1e-3 under the null, 6 tests) and
    rejects the neighbouring law (scale x 1.1 or a shifted bound: p < 1e-3)."""
    if dtype == "float64":
        request.getfixturevalue("x64")

    @jax.jit
    def draws(key):
        k = jax.random.split(key, 5)
        return (
            flat_random.normal(k[0], SHAPE, dtype),
            flat_random.uniform(k[1], SHAPE, dtype, -0.5, 2.0),
            flat_random.truncated_normal(k[2], -2, 2, SHAPE, dtype),
            flat_random.bernoulli(k[3], 0.3, SHAPE),
            flat_random.rademacher(k[4], SHAPE, dtype),
        )

    normal, unif, trunc, bern, rad = (np.asarray(x) for x in draws(jax.random.key(4)))
    for x in (normal, unif, trunc, rad):
        assert x.shape == SHAPE and x.dtype == np.dtype(dtype)
    assert bern.shape == SHAPE and bern.dtype == np.bool_
    v = normal.ravel().astype(np.float64)
    assert stats.kstest(v, "norm").pvalue > 1e-3
    assert stats.kstest(v / 1.1, "norm").pvalue < 1e-3
    u = unif.ravel().astype(np.float64)
    assert stats.kstest(u, "uniform", args=(-0.5, 2.5)).pvalue > 1e-3
    assert stats.kstest(u, "uniform", args=(-0.5, 2.6)).pvalue < 1e-3
    t = trunc.ravel().astype(np.float64)
    assert stats.kstest(t, "truncnorm", args=(-2, 2)).pvalue > 1e-3
    assert stats.kstest(t, "truncnorm", args=(-2.5, 2.5)).pvalue < 1e-3
    # Bernoulli(0.3) and Rademacher: the counts within 4.5 binomial SEs, 0.33 / 0.53 rejected
    n = math.prod(SHAPE)
    for got, p, wrong in ((bern.mean(), 0.3, 0.33), ((rad == 1).mean(), 0.5, 0.53)):
        se = math.sqrt(p * (1 - p) / n)
        assert abs(got - p) <= 4.5 * se and abs(got - wrong) > 4.5 * se
    assert set(np.unique(rad).tolist()) == {-1, 1}
    # a reshape of one flat draw: the rows are not copies of each other
    assert not np.array_equal(normal[0], normal[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lecun_normal_has_variance_one_over_fan_in(dtype, request):
    """Variance 1 / fan_in within 4.5 SEs, and the fan-out neighbour rejected, for a dense
    kernel, a conv kernel (receptive field in the fan-in) and transposed axes."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    cases = (((400, 30), -2, -1, 400, 30), ((3, 3, 16, 64), -2, -1, 144, 576))
    cases += (((30, 500), -1, -2, 500, 30),)
    keys = jax.random.split(jax.random.key(9), len(cases))
    for key, (shape, i, o, fan_in, fan_out) in zip(keys, cases, strict=True):
        w = np.asarray(flat_random.lecun_normal(in_axis=i, out_axis=o)(key, shape, dtype))
        assert w.shape == shape and w.dtype == np.dtype(dtype)
        assert np.all(np.abs(w) <= 2 / math.sqrt(fan_in) / flat_random._TRUNCATED_STD + 1e-6)
        v = w.astype(np.float64).ravel() ** 2
        est, se = v.mean(), v.std(ddof=1) / math.sqrt(v.size)
        assert abs(est - 1 / fan_in) <= 4.5 * se, (shape, est, 1 / fan_in)
        assert abs(est - 1 / fan_out) > 4.5 * se, (shape, est, 1 / fan_out)


def test_truncated_std_constant():
    """The std of N(0, 1) truncated to (-2, 2), from its closed form, is SciPy's."""
    np.testing.assert_allclose(flat_random._TRUNCATED_STD, stats.truncnorm.std(-2, 2), rtol=1e-14)


def test_lecun_normal_rejects_vectors():
    with pytest.raises(ValueError, match="rank"):
        flat_random.lecun_normal()(jax.random.key(0), (3,))
    assert flat_random.normal(jax.random.key(0), (), jnp.float32).shape == ()
