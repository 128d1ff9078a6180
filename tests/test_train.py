"""Tests for the NNX multitask model and the vmapped optax training loop."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mtl_tracing.data.synthetic import SyntheticConfig, generate
from mtl_tracing.victims import mtl as train_mod
from mtl_tracing.victims.model import MultitaskModel, embed_fn, embed_runs, split_params
from mtl_tracing.victims.mtl import (
    TrainConfig,
    generalization_gaps,
    make_optimizer,
    train,
)

DATA_CFG = SyntheticConfig(tasks=8, dim=8, embed_dim=4, samples=8, holdout=4)
TRAIN_CFG = TrainConfig(
    epochs=12, task_batch=4, hidden=16, warm_start_epochs=2, head_lr=1e-2, shared_lr=1e-2
)


@pytest.fixture(scope="module")
def data():
    return generate(jax.random.key(0), DATA_CFG)


@pytest.fixture(scope="module")
def result(data):
    return train(jax.random.key(1), data, TRAIN_CFG, runs=2)


# ----------------------------------------------------------------------------- model


def test_model_shapes():
    d, m, T, n = 5, 3, 4, 6
    model = MultitaskModel(d, m, T, hidden=7, rngs=nnx.Rngs(0))
    graphdef, params = split_params(model)
    assert params["head_kernel"].shape == (T, m) and params["head_bias"].shape == (T,)
    x = jnp.ones((T, n, d))

    @jax.jit  # one compile instead of many eager ops
    def outputs(params, x):
        model = nnx.merge(graphdef, params)
        ids = jnp.arange(T)[:, None]
        flat = model(x[0, :3], jnp.zeros(3, jnp.int32))
        return model.embed(x), model(x), model(x, ids), flat, embed_fn(graphdef, params, x)

    emb, batched, by_ids, flat, emb_fn = outputs(params, x)
    assert emb.shape == (T, n, m) and batched.shape == (T, n) and flat.shape == (3,)
    np.testing.assert_allclose(by_ids, batched, rtol=1e-6)
    np.testing.assert_allclose(emb_fn, emb, rtol=1e-6)
    with pytest.raises(ValueError, match="x must have shape"):
        jax.eval_shape(lambda p: nnx.merge(graphdef, p)(jnp.ones((T + 1, n, d))), params)

    stacked = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), params)
    out = embed_runs(graphdef, stacked, x)
    assert out.shape == (2, T, n, m)
    np.testing.assert_allclose(out[0], emb, rtol=1e-6)


# ----------------------------------------------------------------------------- optimiser


def test_per_head_clipping():
    from mtl_tracing.victims import optim

    clip = optim._per_task(optax.clip_by_global_norm(1.0))
    g = {"head_kernel": jnp.array([[3.0, 4.0], [0.3, 0.4]]), "head_bias": jnp.array([0.0, 0.0])}
    out, _ = clip.update(g, clip.init(g))
    np.testing.assert_allclose(out["head_kernel"], [[0.6, 0.8], [0.3, 0.4]], rtol=1e-6)


def test_warm_start_freezes_shared_only():
    model = MultitaskModel(4, 2, 3, hidden=5, rngs=nnx.Rngs(0))
    _, params = split_params(model)
    cfg = TrainConfig(epochs=4, warm_start_epochs=2, task_batch=3)
    tx = make_optimizer(cfg, params, steps_per_epoch=1)
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)

    @jax.jit
    def step(p, state):
        upd, state = tx.update(grads, state, p)
        return optax.apply_updates(p, upd), state

    p = params
    for _ in range(2):  # warm start: 2 epochs x 1 step
        p, state = step(p, state)
    for name in ("hidden", "project"):
        for k in ("kernel", "bias"):
            np.testing.assert_array_equal(p[name][k], params[name][k])
    assert not np.allclose(p["head_kernel"], params["head_kernel"])
    p2, _ = step(p, state)
    assert not np.allclose(p2["hidden"]["kernel"], params["hidden"]["kernel"])


# ----------------------------------------------------------------------------- training


def test_result_shapes_and_float32(result):
    R, E, T = 2, TRAIN_CFG.epochs, DATA_CFG.tasks
    assert result.params["head_kernel"].shape == (R, T, DATA_CFG.embed_dim)
    assert result.params["hidden"]["kernel"].shape == (R, DATA_CFG.dim, TRAIN_CFG.hidden)
    for h in result.history:
        assert h.shape == (R, E) and h.dtype == jnp.float32
        assert np.all(np.isfinite(h))
    for leaf in jax.tree.leaves(result.params):
        assert leaf.dtype == jnp.float32


def test_training_reduces_loss(result):
    loss = np.asarray(result.history.train_loss)
    assert np.all(loss[:, -1] < 0.8 * loss[:, 0]), loss
    assert np.all(loss[:, -1] < math.log(2))


def test_vmapped_run_equals_single_run(data, result):
    alone = train(jax.random.key(1), data, TRAIN_CFG, runs=1)
    for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(result.params), strict=True):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-4, atol=1e-5)
    for a, b in zip(alone.history, result.history, strict=True):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-4, atol=1e-5)
    # runs are independent draws
    assert not np.allclose(result.params["head_kernel"][0], result.params["head_kernel"][1])


def test_no_recompile_on_second_call(data, result):
    from mtl_tracing.victims import trainer as driver

    before = driver._fit_one._cache_size(), driver._fit_vmap._cache_size()
    again = train(jax.random.key(2), data, TRAIN_CFG, runs=2)
    assert (driver._fit_one._cache_size(), driver._fit_vmap._cache_size()) == before
    assert not np.allclose(again.params["head_kernel"], result.params["head_kernel"])


def test_float64_training_with_progress_bar(x64):
    data64 = generate(jax.random.key(0), DATA_CFG, dtype=jnp.float64)
    res = train(jax.random.key(1), data64, TRAIN_CFG.replace(epochs=2), runs=1, progress=True)
    for leaf in [*jax.tree.leaves(res.params), *res.history]:
        assert leaf.dtype == jnp.float64
    assert res.history.train_loss.shape == (1, 2)
    from mtl_tracing.victims import trainer as driver

    assert not driver._BARS  # the bar is released


def test_heldout_accuracy_beats_chance():
    """Reduced-cost default config (default data; 20 epochs, hidden 64, learning rates 3e-3).

    Held-out samples of one task share (mu_i, g_i), so the se of the accuracy uses per-task
    accuracies (i.i.d. over tasks): se = std / sqrt(T); one-sided 4.5 se fails w.p. ~3e-6.
    Power / control: the same held-out samples scored with the wrong heads (head j on task j+1)
    are NOT above chance by that margin, so the margin comes from the task-specific heads.
    """
    cfg = SyntheticConfig()
    data = generate(jax.random.key(5), cfg)
    tc = TrainConfig(epochs=20, warm_start_epochs=2, hidden=64, head_lr=3e-3, shared_lr=3e-3)
    res = train(jax.random.key(6), data, tc, runs=1)
    T = cfg.tasks
    p = jax.tree.map(lambda a: a[0], res.params)
    model = nnx.merge(res.graphdef, p)
    xh, yh = data.x_heldout, data.y_heldout
    per_task = np.asarray(jnp.mean((model(xh) > 0) == (yh > 0), axis=-1))
    acc, se = per_task.mean(), per_task.std(ddof=1) / math.sqrt(T)
    assert acc > 0.5 + 4.5 * se, (acc, se)
    np.testing.assert_allclose(acc, res.history.heldout_accuracy[0, -1], rtol=1e-6)
    wrong = np.asarray(
        jnp.mean((model(xh, jnp.roll(jnp.arange(T), 1)[:, None]) > 0) == (yh > 0), -1)
    )
    acc_w, se_w = wrong.mean(), wrong.std(ddof=1) / math.sqrt(T)
    assert acc_w <= 0.5 + 4.5 * se_w, (acc_w, se_w)
    assert acc - acc_w > 4.5 * math.hypot(se, se_w)


def test_generalization_gaps(data, result):
    gaps = generalization_gaps(result, data)
    for g in gaps:
        assert g.shape == (2,) and np.all(np.isfinite(g))
    np.testing.assert_allclose(gaps.train_loss, result.history.train_loss[:, -1], rtol=1e-5)
    np.testing.assert_allclose(gaps.heldout_loss, result.history.heldout_loss[:, -1], rtol=1e-5)
    np.testing.assert_allclose(gaps.strong_gap, gaps.probe_out_loss - gaps.train_loss, rtol=1e-6)
    np.testing.assert_allclose(gaps.weak_gap, gaps.probe_out_loss - gaps.heldout_loss, rtol=1e-6)


def test_probe_newton_reaches_optimum():
    """The ridge-logistic Newton solve zeroes the gradient of its objective."""
    k1, k2 = jax.random.split(jax.random.key(3))
    e = jax.random.normal(k1, (16, 4))
    y = (jax.random.uniform(k2, (16,)) < jax.nn.sigmoid(e[:, 0])).astype(jnp.float32)

    def objective(w):
        z = train_mod._with_bias(e) @ w
        return jnp.sum(optax.sigmoid_binary_cross_entropy(z, y)) + 0.5 * jnp.sum(w**2)

    @jax.jit
    def grad_norm_at_fit(e, y):
        w = train_mod.probe_fit(e, y, ridge=1.0, newton_steps=25)
        return jnp.linalg.norm(jax.grad(objective)(w))

    assert float(grad_norm_at_fit(e, y)) < 1e-4


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("task_batch", 0),
        ("hidden", -2),
        ("head_lr", 0.0),
        ("shared_lr", float("nan")),
        ("warm_start_lr", -1.0),
        ("head_clip", 0.0),
        ("warm_start_epochs", 301),
        ("head_weight_decay", -1e-3),
        ("shared_weight_decay", float("inf")),
        ("seed", -1),
    ],
)
def test_train_config_validation_names_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_train_rejects_bad_arguments(data):
    with pytest.raises(ValueError, match="task_batch"):
        train(jax.random.key(0), data, TRAIN_CFG.replace(task_batch=9))
    with pytest.raises(ValueError, match="runs"):
        train(jax.random.key(0), data, TRAIN_CFG, runs=0)
    with pytest.raises(ValueError, match="key"):
        train(jax.random.PRNGKey(0), data, TRAIN_CFG)
    with pytest.raises(ValueError, match="data"):
        train(jax.random.key(0), data.x, TRAIN_CFG)
    bad = data._replace(x=data.x.at[0, 0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="data.x"):
        train(jax.random.key(0), bad, TRAIN_CFG)


# ------------------------------------------------------------------ Trainer protocol / driver


def test_layouts_agree_and_runs_are_independent(data, result):
    """loop == vmap to float tolerance (reduction order only); run r does not depend on R."""
    from mtl_tracing.victims.trainer import fit, resolve_layout

    loop = train(jax.random.key(1), data, TRAIN_CFG, runs=2, layout="loop")
    vm = train(jax.random.key(1), data, TRAIN_CFG, runs=2, layout="vmap")
    for a, b in zip(jax.tree.leaves(loop.params), jax.tree.leaves(vm.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loop.history.train_loss, vm.history.train_loss, rtol=1e-4)
    # Power: a different key gives visibly different parameters (the check can fail).
    other = train(jax.random.key(2), data, TRAIN_CFG, runs=1, layout="loop")
    assert (
        np.max(np.abs(np.asarray(other.params["head_kernel"][0] - loop.params["head_kernel"][0])))
        > 1e-2
    )
    assert resolve_layout("auto") == ("loop" if jax.default_backend() == "cpu" else "vmap")
    # The driver on its own: step metrics and history have (R, epochs[, steps]) shapes.
    trainer = train_mod.MTLTrainer(TRAIN_CFG, DATA_CFG.embed_dim)
    out = fit(trainer, jax.random.key(1), data, runs=1, layout="loop")
    steps = train_mod.steps_per_epoch(DATA_CFG.tasks, TRAIN_CFG.task_batch)
    assert out.step_metrics["loss"].shape == (1, TRAIN_CFG.epochs, steps)
    assert out.history["heldout_accuracy"].shape == (1, TRAIN_CFG.epochs)
    np.testing.assert_allclose(
        out.state.params["head_kernel"][0], loop.params["head_kernel"][0], rtol=1e-6, atol=1e-7
    )
    emb = trainer.embed(jax.tree.map(lambda a: a[0], out.state), data.x)
    assert emb.shape == (DATA_CFG.tasks, DATA_CFG.samples, DATA_CFG.embed_dim)


def test_fit_rejects_bad_arguments(data):
    from mtl_tracing.victims.trainer import fit

    trainer = train_mod.MTLTrainer(TRAIN_CFG, 4)
    with pytest.raises(ValueError, match="trainer"):
        fit(object(), jax.random.key(0), data)
    with pytest.raises(ValueError, match="layout"):
        fit(trainer, jax.random.key(0), data, layout="pmap")
    with pytest.raises(ValueError, match="runs"):
        fit(trainer, jax.random.key(0), data, runs=0)
    with pytest.raises(ValueError, match="embed_dim"):
        train_mod.MTLTrainer(TRAIN_CFG, 0)
