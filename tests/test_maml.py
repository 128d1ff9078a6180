"""MAML victim and gradient-inversion attacks: exact meta-gradient, attack power, defences.

Tolerances: float64 meta-gradients agree to 1e-10 relative (the same arithmetic in another
order); central finite differences with eps = 1e-5 have O(eps^2) truncation and O(1e-16/eps)
rounding error, so 1e-6 relative. The game checks use 95% CIs from resampling trials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_close, assert_rejects, assert_within_se
from jax.flatten_util import ravel_pytree

from mtl_tracing import flat_random
from mtl_tracing.attacks import gradient_inversion as gi
from mtl_tracing.attacks import maml_game as mg
from mtl_tracing.data import fewshot
from mtl_tracing.victims import maml


@pytest.fixture(scope="module")
def pools():
    return fewshot.split_pools(jax.random.key(0), fewshot.load_source("digits"))


def _task(pools, ways, shots, seed=1, dtype=None):
    t = fewshot.sample_tasks(jax.random.key(seed), pools.train, ways=ways, shots=shots, num_tasks=1)
    t = jax.tree.map(lambda a: a[0], t)
    if dtype is not None:
        t = t._replace(support_x=t.support_x.astype(dtype), query_x=t.query_x.astype(dtype))
    return t


def test_meta_gradient_hand_unrolled_and_finite_differences(pools, x64):
    model = maml.ModelConfig(ways=2, channels=3, activation="tanh", inner_steps=2, inner_lr=0.3)
    params = maml.init_params(model, jax.random.key(2), jnp.float64)
    task = _task(pools, 2, 2, dtype=jnp.float64)
    tg = jax.jit(maml.task_gradient, static_argnums=0)
    g, _, _ = tg(model, params, task, jax.random.key(3), maml.Noise())
    g_vec = ravel_pytree(g)[0]

    # Hand-unrolled: theta_{k+1} = theta_k - a grad L_s(theta_k); g = J^T grad L_q(theta_K)
    # with J = prod_k (I - a H_s(theta_k)), applied right to left as Hessian-vector products.
    flat, unravel = ravel_pytree(params)
    ls = lambda v: maml.loss_fn(model, unravel(v), task.support_x, task.support_y)  # noqa: E731
    lq = lambda v: maml.loss_fn(model, unravel(v), task.query_x, task.query_y)  # noqa: E731

    @jax.jit
    def unrolled(flat):
        thetas = [flat]
        for _ in range(model.inner_steps):
            thetas.append(thetas[-1] - model.inner_lr * jax.grad(ls)(thetas[-1]))
        v = jax.grad(lq)(thetas[-1])
        for th in reversed(thetas[:-1]):
            v = v - model.inner_lr * jax.jvp(jax.grad(ls), (th,), (v,))[1]
        return v, jax.grad(lq)(thetas[-1])

    v, first_order = unrolled(flat)
    np.testing.assert_allclose(g_vec, v, rtol=1e-10, atol=1e-13)
    # First-order MAML (no Hessian) differs: the check has power.
    assert float(jnp.max(jnp.abs(first_order - g_vec))) > 1e-6

    @jax.jit
    def outer(vec):
        theta = maml.adapt(model, unravel(vec), task.support_x, task.support_y)
        return maml.loss_fn(model, theta, task.query_x, task.query_y)

    u = jax.random.normal(jax.random.key(4), flat.shape, jnp.float64)
    eps = 1e-5
    fd = (outer(flat + eps * u) - outer(flat - eps * u)) / (2 * eps)
    np.testing.assert_allclose(float(fd), float(g_vec @ u), rtol=1e-6)


def test_meta_gradient_dtype_and_noise_places(pools):
    model = maml.ModelConfig(ways=2, channels=2)
    params = maml.init_params(model, jax.random.key(0))
    tasks = fewshot.sample_tasks(jax.random.key(1), pools.train, ways=2, shots=1, num_tasks=4)
    clean = maml.task_gradients(model, params, tasks, jax.random.key(2))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(clean.grads))
    assert clean.loss.shape == (4,) and clean.accuracy.shape == (4,)
    base = ravel_pytree(jax.tree.map(lambda a: a[0], clean.grads))[0]
    for place in maml.NOISE_PLACES:
        noisy = maml.task_gradients(
            model, params, tasks, jax.random.key(2), maml.noise_at(place, 0.5)
        )
        diff = ravel_pytree(jax.tree.map(lambda a: a[0], noisy.grads))[0] - base
        assert float(jnp.max(jnp.abs(diff))) > 1e-4, place


_SHARD_SCRIPT = textwrap.dedent(
    """
    import json, jax, numpy as np
    from jax.flatten_util import ravel_pytree
    from mtl_tracing.data import fewshot
    from mtl_tracing.victims import maml
    assert jax.device_count() == 4
    pools = fewshot.split_pools(jax.random.key(0), fewshot.load_source("digits"))
    model = maml.ModelConfig(ways=3, channels=4)
    params = maml.init_params(model, jax.random.key(1))
    tasks = fewshot.sample_tasks(jax.random.key(2), pools.train, ways=3, shots=1, num_tasks=8)
    noise = maml.noise_at("adaptation", 0.01)
    one = maml.task_gradients(model, params, tasks, jax.random.key(3), noise)
    mesh = maml.task_mesh()
    many = maml.task_gradients(model, params, tasks, jax.random.key(3), noise, mesh=mesh)
    a = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(one.grads))
    b = np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(many.grads))
    shards = len(jax.tree.leaves(many.grads)[0].sharding.device_set)
    print(json.dumps({"err": float(np.max(np.abs(a - b))), "scale": float(np.max(np.abs(a))),
                      "shards": shards}))
    """
)


def test_sharded_meta_batch_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", _SHARD_SCRIPT],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shards"] == 4
    # float32, same arithmetic per task: agreement to a few ulps of the largest entry.
    assert res["err"] <= 1e-5 * res["scale"], res


def test_ssim_equals_skimage_oracle():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    for size in (8, 28):
        a = rng.uniform(size=(size, size)).astype(np.float64)
        b = np.clip(a + rng.normal(scale=0.2, size=a.shape), 0, 1)
        f, sigma = gi.ssim_filter(size, size)
        want = skimage_metrics.structural_similarity(
            a,
            b,
            data_range=1.0,
            gaussian_weights=True,
            sigma=sigma,
            use_sample_covariance=False,
        )
        got = float(
            gi.ssim(jnp.asarray(a[..., None], jnp.float32), jnp.asarray(b[..., None], jnp.float32))
        )
        assert abs(got - want) < 1e-4, (size, got, want)
        assert abs(float(gi.ssim(jnp.asarray(a[..., None]), jnp.asarray(a[..., None]))) - 1) < 1e-5


def test_query_attack_recovers_member_and_moves_non_member(pools):
    """One image, observed gradient grad_omega L(omega, x): started at a member the attack stays
    (SSIM > 0.9); started at a non-member of the same class it moves away (power)."""
    model = maml.ModelConfig(ways=2, channels=8)
    params = maml.init_params(model, jax.random.key(5))
    member = pools.train.images[3, 0][None]
    other = pools.outside.images[3, 0][None]
    y = jnp.zeros((1,), jnp.int32)
    g = jax.grad(lambda p: maml.loss_fn(model, p, member, y))(params)
    cfg = gi.AttackConfig(iterations=60, lr=0.02, alpha=1e-3)
    scores = []
    for x0 in (member, other):
        obj = lambda x: gi.query_objective(model, params, x, y, g, cfg.alpha)  # noqa: E731
        x_star, values = gi.invert(obj, x0, cfg)
        scores.append(float(gi.ssim(x0[0], x_star[0])))
        assert values.shape == (60,)
    assert scores[0] > 0.9, scores
    assert scores[1] < scores[0] - 0.1, scores


def test_validation_noise_drives_query_auc_to_half(pools):
    """The tuned query game (one grid point, validation and test in one program) beats chance
    without noise and is at chance under huge validation-gradient noise."""
    model = maml.ModelConfig(ways=2, channels=8)
    params = maml.init_params(model, jax.random.key(6))
    grid = mg.AttackGrid(lrs=(0.05,), alphas=(1e-3,), checkpoints=(15, 30))
    game = mg.GameConfig(kinds=("query",), trials=48, validation_trials=48, grid=grid)
    aucs = {}
    for sigma in (0.0, 100.0):
        summary, res = mg.membership_inference(
            jax.random.key(7), model, params, pools, game, maml.noise_at("validation", sigma)
        )
        aucs[sigma] = summary["query"]["any-class"]["auc_ci"]
        assert summary["query"]["same-class"]["chosen"]["iterations"] in (15, 30)
        assert res.kinds["query"].val_scores.shape == (1, 2, 3, 48)
    assert aucs[0.0][0] > 0.5, aucs  # power: the noiseless attack beats chance
    assert aucs[100.0][0] <= 0.5 <= aucs[100.0][1], aucs


def test_support_attack_has_power_and_not_on_shuffled_labels(pools):
    """A small victim (2-way 1-shot digits, untrained): the support attack scores members
    above any-class non-members attacked with the same g_i and start (paired per trial):
    mean SSIM difference > 4.5 se. Power check: the same statistic on randomly swapped
    member/non-member labels (a sign flip per trial) is within 4.5 se of 0."""
    model = maml.ModelConfig(ways=2, channels=8)
    params = maml.init_params(model, jax.random.key(8))
    n = 32
    tr = mg.victim_trials(jax.random.key(9), model, params, pools, shots=1, n=n)
    targets = tr.targets("support")[:2].reshape((2 * n,) + tr.member_query.shape[1:])
    two = lambda a: jnp.concatenate([a, a])  # noqa: E731
    _, score = gi.invert_trials(
        model,
        params,
        jax.tree.map(two, tr.grads),
        targets,
        two(tr.slot),
        jax.random.key(10),
        kind="support",
        shots=1,
        config=gi.AttackConfig(iterations=30, lr=0.1, alpha=1e-3),
        query_x=two(tr.query_x),
    )
    d = np.asarray(score[:n] - score[n:], np.float64)
    se = d.std(ddof=1) / np.sqrt(n)
    assert_rejects(d.mean(), 0.0, se, what="support attack: no member/non-member difference")
    flips = np.random.default_rng(0).choice((-1.0, 1.0), size=n)
    shuffled = d * flips
    assert_within_se(shuffled.mean(), 0.0, shuffled.std(ddof=1) / np.sqrt(n), what="shuffled")
    with pytest.raises(AssertionError, match="not rejected"):
        assert_rejects(shuffled.mean(), 0.0, shuffled.std(ddof=1) / np.sqrt(n))


def test_padded_task_is_the_small_task(x64):
    """A 2-way 1-shot task in a padded 3-way 2-shot layout (mask) gives the unpadded model's
    meta-gradient on the active coordinates and 0 on the inactive head column, even with
    validation noise; the query objective is the same number."""
    small = maml.ModelConfig(ways=2, channels=4, activation="tanh", inner_lr=0.3)
    big = maml.ModelConfig(ways=3, channels=4, activation="tanh", inner_lr=0.3)
    p_small = maml.init_params(small, jax.random.key(0), jnp.float64)
    p_big = maml.init_params(big, jax.random.key(1), jnp.float64)
    # copy the small model into the big one's active part
    flat_b = dict(jax.tree_util.tree_leaves_with_path(p_big))
    leaves = []
    for (path, leaf_s), (path_b, leaf_b) in zip(
        jax.tree_util.tree_leaves_with_path(p_small), flat_b.items(), strict=True
    ):
        assert path == path_b
        if leaf_b.shape != leaf_s.shape:  # the head: one more column
            leaf_s = jnp.concatenate([leaf_s, leaf_b[..., 2:]], axis=-1)
        leaves.append(leaf_s)
    p_big = jax.tree.unflatten(jax.tree.structure(p_big), leaves)
    x = flat_random.uniform(jax.random.key(2), (2, 2, 8, 8, 1), jnp.float64)  # support, query
    junk = flat_random.uniform(jax.random.key(3), (2, 6, 8, 8, 1), jnp.float64)
    y_small = jnp.arange(2, dtype=jnp.int32)
    y_big = fewshot.task_labels(3, 2)
    active = fewshot.active_slots(3, 2, (2, 1))
    np.testing.assert_array_equal(active, [True, False, True, False, False, False])
    big_x = junk.at[:, jnp.array([0, 2])].set(x)
    t_small = fewshot.FewShotTasks(x[0], y_small, x[1], y_small, y_small, y_small, y_small)
    t_big = fewshot.FewShotTasks(big_x[0], y_big, big_x[1], y_big, y_big, y_big, y_big, active)
    tg = jax.jit(maml.task_gradient, static_argnums=0)  # 5 s; eager dispatch took 11-27 s
    g_s, loss_s, _ = tg(small, p_small, t_small, jax.random.key(4), maml.Noise())
    g_b, loss_b, _ = tg(big, p_big, t_big, jax.random.key(4), maml.Noise())
    np.testing.assert_allclose(loss_b, loss_s, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g_s), jax.tree.leaves(g_b), strict=True):
        np.testing.assert_allclose(b[..., : a.shape[-1]], a, rtol=1e-10, atol=1e-14)
        if b.shape != a.shape:
            np.testing.assert_array_equal(b[..., 2:], 0.0)
    noisy, _, _ = tg(big, p_big, t_big, jax.random.key(4), maml.noise_at("validation", 1.0))
    head = [b for b in jax.tree.leaves(noisy) if b.shape[-1] == 3]  # the head's kernel, bias
    assert len(head) == 2 and all(float(jnp.max(jnp.abs(h[..., 2]))) == 0.0 for h in head)
    assert all(float(jnp.max(jnp.abs(h[..., :2]))) > 0.1 for h in head)  # noise elsewhere
    qo = jax.jit(gi.query_objective, static_argnums=0)
    obj_s = qo(small, p_small, x[1], y_small, g_s, 1e-2)
    obj_b = qo(big, p_big, big_x[1], y_big, g_b, 1e-2, active)
    np.testing.assert_allclose(obj_b, obj_s, rtol=1e-10)


def test_plateau_rule_and_trial_batch():
    rule = maml.Plateau(patience=2, min_delta=0.01)
    assert not rule.reached([0.3, 0.5])  # too short
    assert not rule.reached([0.3, 0.5, 0.6, 0.62])  # still gaining
    assert rule.reached([0.3, 0.5, 0.6, 0.605, 0.6])  # < 0.01 over two epochs
    with pytest.raises(ValueError, match="patience must be >= 1"):
        maml.Plateau(patience=0)
    assert gi.resolve_trial_batch(5, 3) == 3 and gi.resolve_trial_batch(2, 9) == 2
    auto = gi.resolve_trial_batch("auto", 100)
    assert auto == (1 if jax.default_backend() == "cpu" else 100)


def test_configs_validate():
    with pytest.raises(ValueError, match="ways must be >= 2, got 1"):
        maml.ModelConfig(ways=1)
    with pytest.raises(ValueError, match="image_shape must be"):
        maml.ModelConfig(image_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="activation must be one of"):
        maml.ModelConfig(activation="gelu")
    with pytest.raises(ValueError, match="inner_lr must be > 0"):
        maml.ModelConfig(inner_lr=0.0)
    assert maml.ModelConfig(image_shape=(28, 28, 1)).blocks == 4
    assert maml.ModelConfig().blocks == 2
    with pytest.raises(ValueError, match="noise place must be one of"):
        maml.noise_at("labels", 0.1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        maml.noise_at("query", -1.0)
    with pytest.raises(ValueError, match="meta_batch must be >= 1"):
        maml.MAMLTrainer(meta_batch=0)
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        gi.AttackConfig(iterations=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        mg.GameConfig(kinds=("both",))
    with pytest.raises(ValueError, match="validation_trials must be >= 2"):
        mg.GameConfig(validation_trials=1)
    with pytest.raises(ValueError, match="lrs must be > 0"):
        mg.AttackGrid(lrs=(0.0,))
    assert mg.choose_threshold([0.9, 0.8], [0.1, 0.2]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--shots", "0"], "--shots must be >= 1, got 0"),
        (["--ways", "11"], "--ways must be <= the 10 classes"),
        (["--sigma", "-1"], "--sigma must be >= 0"),
        (["--source", "mnist", "--data-dir", "/nonexistent/dir"], "--data-dir must be a readable"),
    ],
)
def test_cli_one_line_errors(tmp_path, capsys, argv, match):
    from mtl_tracing import cli

    code = cli.main(["maml-attack", "--out", str(tmp_path / "o.json"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and match in err, err


def test_cli_empty_data_dir_is_one_line(tmp_path, capsys):
    from mtl_tracing import cli

    code = cli.main(
        [
            "maml-attack",
            "--out",
            str(tmp_path / "o.json"),
            "--source",
            "mnist",
            "--data-dir",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "missing IDX file" in err, err


def test_patch_conv_equals_nnx_conv():
    from flax import nnx

    pc = maml.PatchConv(3, 5, rngs=nnx.Rngs(0))
    conv = nnx.Conv(3, 5, (3, 3), strides=2, padding="SAME", rngs=nnx.Rngs(1))
    conv.kernel[...] = pc.kernel[...]
    pc.bias[...] = conv.bias[...] = jnp.arange(5.0)
    for size in (7, 8):
        x = flat_random.normal(jax.random.key(0), (2, 3, size, size, 3))
        # two float32 computations of the same 27-term sums, at full matmul precision (TF32,
        # XLA's GPU default, would round each product to 10 mantissa bits)
        with jax.default_matmul_precision("highest"):
            assert_close(pc(x), conv(x), terms=27, what=f"size {size}")


def test_maml_job_checks_name_missing_files(tmp_path):
    """Each maml job's ``check`` (through ``maml_common.check_job``) names the files a run
    must leave, before reading any payload."""
    from mtl_tracing.experiments import maml_noise, maml_runtime, maml_sensitivity, maml_tables

    for mod, files in ((maml_tables, 8), (maml_noise, 4), (maml_sensitivity, 4), (maml_runtime, 4)):
        problems = mod.check(tmp_path)
        assert len(problems) == files, mod.STEM
        assert all(p.startswith(f"missing {tmp_path}") for p in problems)


def _point(place, sigma, per_trial, utility):
    """A noise-job point whose two attacks share the per-trial accuracies ``per_trial``."""
    acc = float(np.mean(per_trial))
    s = {"accuracy": acc, "trial_accuracy": list(per_trial)}
    by_mode = {"any-class": s, "same-class": s}
    return {
        "place": place,
        "sigma": sigma,
        "meta_test_accuracy": utility,
        "query": by_mode,
        "support": by_mode,
    }


def test_confident_area_needs_a_significant_paired_decrease():
    """Constructed points (32 paired trials): an attack that got stronger (0.61 -> 0.67, the
    issue's sigma = 0.001 case) or weaker by one trial is never marked, nor a large drop that
    costs too much utility; a large paired drop with utility kept is (the rule's power)."""
    from mtl_tracing.experiments import maml_noise

    rng = np.random.default_rng(0)
    n = 32
    base = rng.permutation(np.r_[np.ones(20), np.full(10, 0.5), np.zeros(2)])  # mean 0.78
    up = base.copy()
    up[np.flatnonzero(base == 0.5)[:4]] = 1.0  # stronger attack
    one_less = base.copy()
    one_less[np.flatnonzero(base == 1.0)[0]] = 0.5  # weaker by half a trial
    down = np.full(n, 0.5)  # chance: a large paired decrease
    points = [
        _point("none", 0.0, base, 0.90),
        _point("validation", 0.001, up, 0.90),
        _point("validation", 0.01, one_less, 0.90),
        _point("validation", 0.1, down, 0.89),  # utility within the margin
        _point("query", 1.0, down, 0.70),  # utility drop 0.2 > margin
    ]
    areas = maml_noise.confident_areas(points)
    for mode in ("any-class", "same-class"):
        for kind in ("query", "support"):
            val = {r["sigma"]: r for r in areas[mode]["validation"][kind]}
            assert val[0.001]["delta"] > 0 and not val[0.001]["confident"]
            assert val[0.01]["delta"] < 0 and not val[0.01]["confident"]
            assert val[0.01]["p_value"] > 0.05
            assert val[0.1]["confident"] and val[0.1]["p_value"] < 1e-3  # power
            assert not areas[mode]["query"][kind][0]["confident"]
            assert maml_noise.confident_sigmas(areas, mode, "validation", kind) == [0.1]
    # an increase is never marked, whatever the sample: p >= 1/2 when the sum rises
    assert maml_noise.paired_decrease_pvalue(base, up) > 0.5
    with pytest.raises(ValueError, match="one length"):
        maml_noise.paired_decrease_pvalue(base, up[:-1])


def test_train_checkpoints_follows_fit(pools):
    """train_checkpoints runs fit's epoch kernel with fit's keys: its final omega is fit's (to
    float rounding: one scan over epochs vs one call per epoch), and a plateau stops it early."""
    from mtl_tracing.victims.trainer import fit

    model = maml.ModelConfig(ways=2, channels=2)
    trainer = maml.MAMLTrainer(model=model, meta_batch=2, epochs=3, steps_per_epoch=2)
    tasks = fewshot.sample_tasks(jax.random.key(1), pools.test, ways=2, shots=1, num_tasks=4)
    data = maml.MAMLData(pools.train, tasks, maml.Noise())
    kept, hist = maml.train_checkpoints(trainer, jax.random.key(2), data, checkpoints=[1])
    assert sorted(kept) == [1, 3] and hist["meta_test_accuracy"].shape == (4,)
    ref = fit(trainer, jax.random.key(2), data, layout="loop")
    for a, b in zip(jax.tree.leaves(kept[3]), jax.tree.leaves(ref.state.params), strict=True):
        np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hist["meta_test_accuracy"][1:], ref.history["meta_test_accuracy"][0])
    stop = maml.Plateau(patience=1, min_delta=1.0)  # nothing gains 1.0: stop after epoch 1
    kept, hist = maml.train_checkpoints(trainer, jax.random.key(2), data, plateau=stop)
    assert sorted(kept) == [1] and hist["meta_test_accuracy"].shape == (2,)


def test_reproduce_data_dir_adds_the_maml_jobs_on_mnist(tmp_path, capsys):
    """reproduce --data-dir DIR: the MAML jobs also run on DIR/mnist-* (into <job>_mnist), a
    missing fashion-mnist/ is one line; nothing without --data-dir."""
    import argparse

    from mtl_tracing.commands import reproduce

    (tmp_path / "mnist-5k").mkdir()
    args = argparse.Namespace(data_dir=str(tmp_path))
    runs = reproduce.maml_data_runs(args, tmp_path / "out", ["maml_tables", "maml_noise"])
    assert [(name, out.name, opts["source"]) for name, out, opts in runs] == [
        ("maml_tables", "maml_tables_mnist", "mnist"),
        ("maml_noise", "maml_noise_mnist", "mnist"),
    ]
    assert runs[0][2]["data_dir"] == str(tmp_path / "mnist-5k")
    assert "MAML jobs on fashion-mnist skipped" in capsys.readouterr().out
    assert (
        reproduce.maml_data_runs(argparse.Namespace(data_dir=None), tmp_path, ["maml_tables"]) == []
    )
