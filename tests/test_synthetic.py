"""Tests for the App. A.8 synthetic data generator."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_rejects, assert_within_se

from mtl_tracing.data.base import MultitaskData
from mtl_tracing.data.synthetic import SyntheticConfig, generate

SMALL = SyntheticConfig(tasks=4, dim=6, embed_dim=3, samples=5, holdout=2)


def test_shapes_and_float32_default():
    data = generate(jax.random.key(0), SMALL)
    T2, N, d, m, h = 8, 5, 6, 3, 2
    assert isinstance(data, MultitaskData)
    T = T2 // 2
    assert data.x.shape == (T, N, d) and data.y.shape == (T, N)
    assert data.x_out.shape == (T, N, d) and data.y_out.shape == (T, N)
    assert data.x_heldout.shape == (T, h, d) and data.y_heldout.shape == (T, h)
    assert data.x_out_heldout.shape == (T, h, d) and data.y_out_heldout.shape == (T, h)
    assert data.stacked()[0].shape == (T2, N, d) and data.stacked(True)[1].shape == (T2, h)
    info = data.info
    assert info["projection"].shape == (m, d) and info["heads"].shape == (T2, m)
    assert info["task_means"].shape == (T2, d)
    assert data.tasks == 4 and data.out_tasks == 4 and data.samples == N and data.heldout == h
    for leaf in jax.tree.leaves(data):
        assert leaf.dtype == jnp.float32


def test_float64_on_request(x64):
    data = generate(jax.random.key(0), SMALL, dtype=jnp.float64)
    for leaf in jax.tree.leaves(data):
        assert leaf.dtype == jnp.float64


def test_float64_without_x64_is_refused():
    if jax.config.jax_enable_x64:
        pytest.skip("x64 already on")
    with pytest.raises(ValueError, match="dtype"):
        generate(jax.random.key(0), SMALL, dtype=jnp.float64)


def test_labels_follow_projection_rule():
    """y = 1[<g_i, H x> > 0] for pool and holdout samples of all 2T tasks."""
    data = jax.tree.map(np.asarray, generate(jax.random.key(3), SMALL))
    for x, y in (data.stacked(), data.stacked(heldout=True)):
        x, y = np.asarray(x), np.asarray(y)
        scores = np.einsum("tm,md,tnd->tn", data.info["heads"], data.info["projection"], x)
        np.testing.assert_array_equal(y, (scores > 0).astype(np.float32))
    assert set(np.unique(data.y)) <= {0.0, 1.0}


@pytest.mark.parametrize(("dim", "embed_dim"), [(6, 3), (3, 5)])
def test_projection_full_rank(dim, embed_dim):
    cfg = SMALL.replace(dim=dim, embed_dim=embed_dim)
    H = np.asarray(generate(jax.random.key(1), cfg).info["projection"], np.float64)
    assert np.linalg.matrix_rank(H) == min(dim, embed_dim)


def test_vmap_over_keys_equals_single_calls():
    keys = jax.random.split(jax.random.key(7), 3)
    batched = jax.tree.map(np.asarray, jax.jit(jax.vmap(lambda k: generate(k, SMALL)))(keys))
    for i in range(3):
        single = jax.tree.map(np.asarray, generate(keys[i], SMALL))
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("task_std", "sample_std"), [(1.0, 1.0), (1.0, 2.0)])
def test_label_balance_and_task_rate_variance(task_std, sample_std):
    """Labels are balanced overall and per-task label rates vary as theory says.

    Task i's label rate is p_i = Phi(a Z), a = sbar/s, so E ybar_i = 1/2 and
    E (ybar_i - 1/2)^2 = Var p (1 - 1/N) + 1/(4N), Var p = arcsin(a^2/(1+a^2)) / (2 pi).
    Tasks are i.i.d. given (H, g) and these moments do not depend on H, so per-task values are
    uncorrelated: se = std / sqrt(#tasks). Each two-sided 4.5-se check fails with prob ~7e-6.
    Power: the same data reject a rate of 1/2 +- 0.05, and the variance formula without the
    task-level term (Var p = 0) or without the (1 - 1/N) factor.
    """
    cfg = SyntheticConfig(
        tasks=32, dim=8, embed_dim=4, samples=4, holdout=4, task_std=task_std,
        sample_std=sample_std,
    )  # fmt: skip
    keys = jax.random.split(jax.random.key(11), 64)
    data = jax.jit(jax.vmap(lambda k: generate(k, cfg)))(keys)
    y = np.concatenate(
        [
            np.concatenate([data.y, data.y_out], 1),
            np.concatenate([data.y_heldout, data.y_out_heldout], 1),
        ],
        -1,
    )  # (64, 2T, N_tot = 8)
    y = np.asarray(y)
    n_tot = y.shape[-1]
    rate = y.reshape(-1, n_tot).mean(-1)  # (64 * 2T,)
    n = rate.size

    mean, se_mean = rate.mean(), rate.std(ddof=1) / math.sqrt(n)
    assert_within_se(mean, 0.5, se_mean, what="label rate")
    for wrong in (0.45, 0.55):  # power
        assert_rejects(mean, wrong, se_mean)

    a2 = (task_std / sample_std) ** 2
    var_p = math.asin(a2 / (1 + a2)) / (2 * math.pi)
    v = (rate - 0.5) ** 2
    est, se = v.mean(), v.std(ddof=1) / math.sqrt(n)
    theory = var_p * (1 - 1 / n_tot) + 1 / (4 * n_tot)
    assert_within_se(est, theory, se, what="Var p")
    for wrong in (1 / (4 * n_tot), var_p + 1 / (4 * n_tot)):  # power: missing term / factor
        assert_rejects(est, wrong, se, what="wrong Var p")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tasks", 0),
        ("dim", -1),
        ("embed_dim", 1.5),
        ("samples", 0),
        ("holdout", 0),
        ("task_std", -1.0),
        ("sample_std", 0.0),
        ("task_std", float("nan")),
        ("mean", float("inf")),
    ],
)
def test_config_validation_names_field(field, value):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})


def test_generate_rejects_bad_key_and_config():
    with pytest.raises(ValueError, match="key"):
        generate(0, SMALL)
    with pytest.raises(ValueError, match="key"):
        generate(jax.random.PRNGKey(0), SMALL)
    with pytest.raises(ValueError, match="key"):
        generate(jax.random.split(jax.random.key(0), 2), SMALL)
    with pytest.raises(ValueError, match="config"):
        generate(jax.random.key(0), {"tasks": 4})
