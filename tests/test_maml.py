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
from _stats import assert_close
from jax.flatten_util import ravel_pytree

from mtl_tracing import flat_random
from mtl_tracing.attacks import gradient_inversion as gi
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
    model = maml.ModelConfig(ways=2, channels=8)
    params = maml.init_params(model, jax.random.key(6))
    game = gi.GameConfig(kind="query", shots=1, trials=48, attack=gi.AttackConfig(iterations=30))
    aucs = {}
    for sigma in (0.0, 100.0):
        summary, _, _ = gi.membership_inference(
            jax.random.key(7),
            model,
            params,
            pools,
            game,
            maml.noise_at("validation", sigma),
            bootstrap=200,
        )
        aucs[sigma] = summary["auc_ci"]
    assert aucs[0.0][0] > 0.5, aucs  # power: the noiseless attack beats chance
    assert aucs[100.0][0] <= 0.5 <= aucs[100.0][1], aucs


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
        gi.GameConfig(kind="both")
    assert gi.choose_threshold([0.9, 0.8], [0.1, 0.2]) == pytest.approx(0.5)


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
    from mtl_tracing.experiments import maml_noise, maml_sensitivity, maml_tables

    for mod in (maml_tables, maml_noise, maml_sensitivity):
        problems = mod.check(tmp_path)
        assert len(problems) == 4, mod.STEM
        assert all(p.startswith(f"missing {tmp_path}") for p in problems)
