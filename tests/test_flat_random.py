"""``mtl_tracing.flat_random`` draws flat and reshapes: JAX's numbers bit for bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtl_tracing import flat_random


def _draws(mod, key, shape, dtype):
    k = jax.random.split(key, 5)
    return (
        mod.normal(k[0], shape, dtype),
        mod.uniform(k[1], shape, dtype, -0.5, 2.0),
        mod.truncated_normal(k[2], -2, 2, shape, dtype),
        mod.bernoulli(k[3], 0.3, shape),
        mod.rademacher(k[4], shape, dtype),
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flat_draws_are_jax_draws_bitwise(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")

    @jax.jit  # one program: every kind on a 3-D shape, two kinds vmapped over keys (3-D too)
    def both(key):
        keys = jax.random.split(key, 3)
        shape = (2, 3, 2)
        return [
            (_draws(flat_random, key, shape, dtype), _draws(jax.random, key, shape, dtype)),
            (
                jax.vmap(lambda k: _draws(flat_random, k, (3, 4), dtype)[::2])(keys),
                jax.vmap(lambda k: _draws(jax.random, k, (3, 4), dtype)[::2])(keys),
            ),
        ]

    for ours, theirs in both(jax.random.key(4)):
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lecun_normal_is_jax_lecun_normal_bitwise(dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    cases = (((4, 3), -2, -1), ((3, 3, 4, 8), -2, -1), ((5, 7), -1, -2))

    @jax.jit
    def both(key):
        out = []
        for shape, i, o in cases:
            ours = flat_random.lecun_normal(in_axis=i, out_axis=o)
            ref = jax.nn.initializers.lecun_normal(in_axis=i, out_axis=o)
            out.append((ours(key, shape, dtype), ref(key, shape, dtype)))
        return out

    for a, b in both(jax.random.key(9)):
        assert a.dtype == b.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # a neighbouring wrong scale (fan_out instead of fan_in) differs
    fan_out = jax.nn.initializers.variance_scaling(1.0, "fan_out", "truncated_normal")
    a = flat_random.lecun_normal()(jax.random.key(9), (4, 3), dtype)
    assert not np.array_equal(np.asarray(a), np.asarray(fan_out(jax.random.key(9), (4, 3), dtype)))


def test_lecun_normal_rejects_vectors():
    with pytest.raises(ValueError, match="rank"):
        flat_random.lecun_normal()(jax.random.key(0), (3,))
