"""Tests for task-level DP-SGD (victims/dp.py) and its accountant (victims/accounting.py):
per-task gradients against a Python loop, clipping and the noise law (seeded, SE tolerance),
the noiseless unclipped limit equal to the full-batch gradient, a short fit, calibration."""

from __future__ import annotations

import functools
import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _stats import assert_close
from flax import nnx
from scipy import stats

from mtl_tracing.data import synthetic
from mtl_tracing.data.synthetic import SyntheticConfig
from mtl_tracing.victims import accounting
from mtl_tracing.victims.dp import DPConfig, DPSGDTrainer, clip_and_noise, per_task_grads
from mtl_tracing.victims.model import MultitaskModel, split_params
from mtl_tracing.victims.mtl import TrainConfig
from mtl_tracing.victims.trainer import fit

logging.getLogger("absl").setLevel(logging.ERROR)

T, N, D, M = 6, 5, 4, 3


def _setup(seed=0):
    model = MultitaskModel(D, M, T, hidden=8, rngs=nnx.Rngs(seed))
    graphdef, params = split_params(model)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(T, N, D)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, (T, N)), jnp.float32)
    return graphdef, params, x, y


def _loss_i(graphdef, params, x, y, i):
    logits = nnx.merge(graphdef, params)(x[i], jnp.full((N,), i))
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y[i]))


# Equivalence tests compare two computations of the same gradient in float32; they run under
# full float32 matmul precision (XLA defaults to TF32 on recent GPUs, whose 1e-3 rounding is
# not what they test) and compare to a float32 tolerance (tests/_stats.assert_close).
HIGHEST = "highest"


def test_per_task_grads_match_a_python_loop():
    graphdef, params, x, y = _setup()
    with jax.default_matmul_precision(HIGHEST):
        g_sh, g_heads, loss = jax.jit(per_task_grads, static_argnums=0)(graphdef, params, x, y)
        loop_grad = jax.jit(jax.grad(_loss_i, argnums=1), static_argnums=0)
        loss_i = jax.jit(_loss_i, static_argnums=0)
        for i in range(T):  # the reference: one task at a time (i traced: one compile)
            g = loop_grad(graphdef, params, x, y, i)
            for name in ("hidden", "project"):
                for leaf in ("kernel", "bias"):
                    assert_close(g_sh[name][leaf][i], g[name][leaf], terms=16, what=name)
            assert_close(g_heads["head_kernel"][i], g["head_kernel"][i], terms=16)
            assert_close(g_heads["head_bias"][i], g["head_bias"][i], terms=16)
            assert_close(loss[i], loss_i(graphdef, params, x, y, i), terms=16)


def test_unclipped_noiseless_step_is_the_full_batch_gradient():
    graphdef, params, x, y = _setup(1)
    with jax.default_matmul_precision(HIGHEST):
        g_sh, _, _ = jax.jit(per_task_grads, static_argnums=0)(graphdef, params, x, y)
        got, _ = clip_and_noise(
            jax.random.key(0), g_sh, jnp.ones(T), clip=1e9, noise_multiplier=0.0, expected=T
        )
        full = jax.jit(
            jax.grad(lambda p: sum(_loss_i(graphdef, p, x, y, i) for i in range(T)) / T)
        )(params)
    for name in ("hidden", "project"):
        assert_close(got[name]["kernel"], full[name]["kernel"], terms=4 * T, what=name)


def test_clipping_bounds_each_task_and_mask_drops_tasks():
    graphdef, params, x, y = _setup(2)
    g_sh, _, _ = per_task_grads(graphdef, params, x, y)
    mask = jnp.zeros(T).at[2].set(1.0)
    got, norms = clip_and_noise(
        jax.random.key(0), g_sh, mask, clip=1e-3, noise_multiplier=0.0, expected=1.0
    )
    total = math.sqrt(sum(float(jnp.sum(v**2)) for v in jax.tree.leaves(got)))
    np.testing.assert_allclose(total, min(1e-3, float(norms[2])), rtol=1e-4)


def test_noise_law_matches_z_c_over_expected():
    """With zero gradients the output is N(0, (z C / qT)^2) per coordinate: KS test (seeded;
    failure probability 1e-3 under the null), and power: the scale x 1.1 is rejected."""
    grads = {"w": jnp.zeros((T, 20_000))}
    out, _ = clip_and_noise(
        jax.random.key(3), grads, jnp.ones(T), clip=2.0, noise_multiplier=1.5, expected=3.0
    )
    sd = 1.5 * 2.0 / 3.0
    v = np.asarray(out["w"], np.float64)
    assert stats.kstest(v / sd, "norm").pvalue > 1e-3
    assert stats.kstest(v / (1.1 * sd), "norm").pvalue < 1e-3


def test_fit_runs_and_accountant_counts_noisy_steps():
    cfg = SyntheticConfig(tasks=8, dim=8, embed_dim=4, samples=4, holdout=4)
    data = synthetic.generate(jax.random.key(0), cfg)
    train = TrainConfig(epochs=3, task_batch=4, hidden=16, warm_start_epochs=1)
    tr = DPSGDTrainer(train, 4, DPConfig(sampling_rate=0.5, noise_multiplier=1.0, clip=1.0))
    assert tr.dp.steps_per_epoch == 2 and tr.noisy_steps() == 4
    out = fit(tr, jax.random.key(1), data, runs=1, layout="loop")
    assert out.step_metrics["sampled"].shape == (1, 3, 2)
    assert np.all(np.isfinite(np.asarray(out.history["heldout_accuracy"])))
    eps = tr.epsilon(1e-5)
    np.testing.assert_allclose(eps, accounting.dpsgd_epsilon(0.5, 1.0, 4, 1e-5))
    assert hash(tr) == hash(DPSGDTrainer(train, 4, DPConfig(0.5, 1.0, 1.0)))
    # z is traced: another z (another epsilon) reuses the compiled program ...
    from mtl_tracing.victims import trainer as driver

    before = driver._fit_one._cache_size()
    tr3 = DPSGDTrainer(train, 4, DPConfig(sampling_rate=0.5, noise_multiplier=3.0, clip=1.0))
    out3 = fit(tr3, jax.random.key(1), data, runs=1, layout="loop")
    assert driver._fit_one._cache_size() == before
    assert not np.allclose(
        out3.state.params["hidden"]["kernel"], out.state.params["hidden"]["kernel"]
    )
    # ... and gives what the program with z as a compile-time constant gives.
    const = driver._fit_one(tr3, driver.run_keys(jax.random.key(1), 1)[0], data, progress=False)
    for a, b in zip(jax.tree.leaves(const[0]), jax.tree.leaves(out3.state), strict=True):
        np.testing.assert_allclose(a, b[0], rtol=1e-6, atol=1e-7)


def test_accounting_calibration_and_limits():
    z = accounting.calibrate_noise(2.0, 0.25, 40, 1e-5)
    eps = accounting.dpsgd_epsilon(0.25, z, 40, 1e-5)
    assert 1.99 <= eps <= 2.0
    assert accounting.dpsgd_epsilon(0.25, 2 * z, 40, 1e-5) < eps  # more noise, less epsilon
    assert accounting.dpsgd_epsilon(0.25, 0.0, 40, 1e-5) == math.inf
    assert accounting.calibrate_noise(math.inf, 0.25, 40, 1e-5) == 0.0
    # q = 1, one step: a Gaussian mechanism, the (exact) PLD accountant matches GDP mu = 1/z.
    from mtl_tracing.audit import gdp_epsilon

    np.testing.assert_allclose(
        accounting.dpsgd_epsilon(1.0, 2.0, 1, 1e-5, accountant="pld"),
        gdp_epsilon(0.5, 1e-5),
        rtol=2e-2,
    )
    assert accounting.clt_mu(1.0, 2.0, 1) > 0


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"sampling_rate": 0.0}, "sampling_rate"),
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"clip": 0.0}, "clip"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ],
)
def test_dp_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        DPConfig(**kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chunked_task_sum_equals_the_all_tasks_reference(dtype, request):
    """The clipped task sum, whole or in chunks that skip unsampled tasks, gives the
    reference's privatised gradient (every task's gradient, then ``clip_and_noise``), norms
    and head gradients."""
    from mtl_tracing.victims import dp

    if dtype == "float64":
        request.getfixturevalue("x64")
    graphdef, params, x, y = _setup(4)
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    x, y = x.astype(dtype), y.astype(dtype)
    mask = jnp.asarray([1, 0, 1, 1, 0, 0], dtype)
    close = functools.partial(assert_close, dtype=dtype, terms=4 * T)
    with jax.default_matmul_precision(HIGHEST):
        g_sh, g_heads, loss = jax.jit(per_task_grads, static_argnums=0)(graphdef, params, x, y)
        noise = {"clip": 0.05, "noise_multiplier": 0.5, "expected": 1.5}
        ref, ref_norms = jax.jit(lambda g: clip_and_noise(jax.random.key(5), g, mask, **noise))(
            g_sh
        )

        @functools.partial(jax.jit, static_argnums=0)
        def chunked(chunk):
            total, *rest = dp.clipped_task_sum(params, x, y, mask, 0.05, hidden=8, chunk=chunk)
            return dp._add_noise(jax.random.key(5), total, **noise), *rest

        for chunk in (None, 4):  # chunk 4: the 3 sampled tasks in chunk 1, chunk 2 skipped
            got, heads, loss_g, norms = chunked(chunk)
            for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got), strict=True):
                assert a.dtype == b.dtype == dtype
                close(b, a)
            keep = mask > 0 if chunk else jnp.ones(T, bool)  # skipped tasks: zeros
            close(norms[keep], ref_norms[keep])
            close(loss_g[keep], loss[keep])
            for name in ("head_kernel", "head_bias"):
                close(heads[name][keep], g_heads[name][keep])
    assert float(jnp.min(ref_norms[mask > 0])) > 0.05  # the clip binds
    with pytest.raises(ValueError, match="per_task"):
        DPConfig(per_task="loop")
    # "auto" (the default) resolves by the running backend; explicit choices pass through
    assert DPConfig().per_task == "auto"
    assert dp.resolve_per_task("auto") == ("chunked" if jax.default_backend() == "cpu" else "all")
    assert [dp.resolve_per_task(m) for m in ("chunked", "all")] == ["chunked", "all"]
