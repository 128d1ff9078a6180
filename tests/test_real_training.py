"""Real-data training choices: the ResNet's convolution per backend, the compute dtype, and the
checkpointed training the real-data job runs (``trainer.fit_checkpoints``: one compiled segment
program, ``fit``'s states).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_rejects
from flax import nnx

from mtl_tracing.data.synthetic import SyntheticConfig, generate
from mtl_tracing.victims import heads
from mtl_tracing.victims.encoder_mtl import EncoderMTLTrainer
from mtl_tracing.victims.encoders import (
    CONVS,
    EncoderModel,
    MLPSpec,
    ResNetSpec,
    compute_params,
    resolve_conv,
)
from mtl_tracing.victims.mtl import TrainConfig
from mtl_tracing.victims.trainer import fit, fit_checkpoints

#: Unit roundoff of the precision a float32 convolution / matmul may run in on this backend:
#: float32 on CPU, TF32 (10-bit mantissa) on GPUs (XLA's default there).
_EPS32 = 2.0**-24 if jax.default_backend() == "cpu" else 2.0**-11


def test_resolve_conv_per_backend_and_validation():
    assert CONVS == ("auto", "loop_safe", "xla")
    assert resolve_conv("auto", "cpu") == "loop_safe"
    for backend in ("gpu", "cuda", "rocm", "tpu"):
        assert resolve_conv("auto", backend) == "xla"
    for conv in ("loop_safe", "xla"):
        assert resolve_conv(conv, "cpu") == resolve_conv(conv, "gpu") == conv
    want = "loop_safe" if jax.default_backend() == "cpu" else "xla"
    assert resolve_conv("auto") == want
    with pytest.raises(ValueError, match="conv must be one of .* got 'cudnn'"):
        resolve_conv("cudnn")
    with pytest.raises(ValueError, match="conv must be one of"):
        ResNetSpec((4,), conv="im2col")
    cfg = TrainConfig(epochs=2, warm_start_epochs=0)
    tr = EncoderMTLTrainer(cfg, MLPSpec((4,)), 2, compute_dtype=jnp.bfloat16)
    assert tr.compute_dtype == "bfloat16"
    assert EncoderMTLTrainer(cfg, MLPSpec((4,)), 2, compute_dtype="float32").compute_dtype == (
        "float32"
    )
    with pytest.raises(ValueError, match="compute_dtype must be one of .* got 'float16'"):
        EncoderMTLTrainer(cfg, MLPSpec((4,)), 2, compute_dtype="float16")
    from mtl_tracing.experiments import real

    opt = {o.flag: o for o in real.OPTIONS}
    assert tuple(opt["--conv"].choices) == CONVS


def test_resnet_conv_choices_agree_in_a_scan():
    """The ResNet with ``loop_safe_conv`` and with XLA's convolution: same parameters, same
    forward and gradients inside ``lax.scan`` (where training runs) to a tolerance derived
    from the precision and the kernel gradient's contraction length K = n H W; a kernel
    gradient with the 3 x 3 window flipped (the classic im2col ordering bug) is rejected."""
    x = jax.random.normal(jax.random.key(0), (2, 6, 8, 8, 1))
    y = jax.random.randint(jax.random.key(1), (2, 6), 0, 3)

    def model(conv):
        spec = ResNetSpec((4, 8), groups=2, conv=conv)
        rngs = nnx.Rngs(params=jax.random.key(2))
        return EncoderModel(spec, (8, 8, 1), 4, 2, rngs=rngs, head_outputs=3)

    graphs = {c: nnx.split(model(c)) for c in ("loop_safe", "xla")}
    params = nnx.to_pure_dict(graphs["xla"][1])

    @jax.jit
    def both(params):
        def one(conv):
            gd = graphs[conv][0]

            def loss(p):
                return heads.loss("softmax", nnx.merge(gd, p)(x), y)

            def body(c, _):
                return c, jax.value_and_grad(loss)(params)

            return jax.lax.scan(body, 0, None, length=1)[1]

        return one("loop_safe"), one("xla")

    (l_ours, g_ours), (l_ref, g_ref) = jax.tree.map(lambda a: a[0], both(params))
    K = 2 * 6 * 8 * 8  # largest contraction of a kernel gradient (first stage, stride 1)
    tol = 8 * math.sqrt(K) * _EPS32
    np.testing.assert_allclose(float(l_ours), float(l_ref), rtol=tol)
    worst, flipped = 0.0, 0.0
    ref = dict(jax.tree_util.tree_leaves_with_path(g_ref))
    for path, a in jax.tree_util.tree_leaves_with_path(g_ours):
        b = ref[path]
        scale = float(jnp.abs(b).max())
        worst = max(worst, float(jnp.abs(a - b).max()) / scale)
        if b.ndim == 4 and b.shape[:2] == (3, 3):  # conv kernels (3, 3, cin, cout)
            flipped = max(flipped, float(jnp.abs(jnp.flip(b, (0, 1)) - b).max()) / scale)
    assert worst <= tol, (worst, tol)
    assert flipped > 3 * tol, (flipped, tol)  # power: the neighbouring wrong formula fails


def test_compute_params_casts_the_encoder_only():
    m = EncoderModel(MLPSpec((8,)), (5,), 4, 3, rngs=nnx.Rngs(0))
    p = nnx.to_pure_dict(nnx.split(m)[1])
    c = compute_params(p, "bfloat16")
    assert compute_params(p, None) is p
    assert c["head_kernel"].dtype == c["head_bias"].dtype == jnp.float32
    assert c["project"]["kernel"].dtype == jnp.bfloat16
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(c["encoder"]))


def test_bfloat16_compute_trains_above_chance():
    """Mixed precision (bfloat16 encoder, float32 weights, heads and loss) learns the synthetic
    projection-labelled tasks: finite losses, float32 states and embeddings, held-out
    accuracy above chance (z from the n held-out labels; the power check is the chance
    level itself, rejected at the same z)."""
    cfg = SyntheticConfig(tasks=8, dim=16, embed_dim=4, samples=32, holdout=64)
    data = generate(jax.random.key(0), cfg)
    tc = TrainConfig(epochs=30, task_batch=4, warm_start_epochs=2, head_lr=1e-2, shared_lr=3e-3)
    tr = EncoderMTLTrainer(tc, MLPSpec((32,)), 4, compute_dtype="bfloat16")
    out = fit(tr, jax.random.key(1), data)
    loss = np.asarray(out.step_metrics["loss"])
    assert np.isfinite(loss).all() and loss[0, -1].mean() < loss[0, 0].mean()
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(out.state.params))
    state = jax.tree.map(lambda a: a[0], out.state)
    e = tr.embed(state, data.x_heldout)
    assert e.dtype == jnp.float32 and bool(jnp.isfinite(e).all())
    acc = float(out.history["heldout_accuracy"][0, -1])
    n = data.y_heldout.size
    se = math.sqrt(0.25 / n)
    assert_rejects(acc, 0.5, se, what="held-out accuracy vs chance")
    assert acc > 0.5


def test_checkpoint_segments_compile_once_and_match_fit():
    """``trainer.fit_checkpoints``: equal-length segments reuse one compiled program (the
    states keep the trainer's ``state_sharding``; the second segment used to recompile), the
    last state is ``fit``'s to float tolerance, and the history at the checkpoints is ``fit``'s
    history at those epochs."""
    import jax.monitoring as mon

    compiled = []
    mon.register_event_duration_secs_listener(
        lambda event, d, **kw: (
            compiled.append(kw.get("fun_name", ""))
            if event == "/jax/core/compile/backend_compile_duration"
            else None
        )
    )
    cfg = SyntheticConfig(tasks=4, dim=6, embed_dim=3, samples=6, holdout=4)
    data = generate(jax.random.key(3), cfg)
    data = data._replace(x_out=None, y_out=None, x_out_heldout=None, y_out_heldout=None)
    tr = EncoderMTLTrainer(
        TrainConfig(epochs=6, task_batch=2, warm_start_epochs=1), MLPSpec((8,)), 3
    )
    key = jax.random.key(4)
    states, hists = [], None
    # float32 products on every backend (not TF32): this compares two programs' bookkeeping
    with jax.default_matmul_precision("float32"):
        for _, s, h in fit_checkpoints(tr, key, data, runs=2, checkpoints=(2, 4, 6)):
            states.append(s)
            hists = h
        ref = fit(tr, key, data, runs=2, layout="vmap")
    assert sum("_fit_segment" in name for name in compiled) == 1, compiled
    for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[-1]), strict=True):
        assert a.sharding == b.sharding
    for a, b in zip(jax.tree.leaves(states[-1]), jax.tree.leaves(ref.state), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    for k, v in hists.items():
        assert v.shape == (2, 3)
        want = np.asarray(ref.history[k])[:, [1, 3, 5]]
        np.testing.assert_allclose(v, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="checkpoints must be non-empty and strictly increasing"):
        next(fit_checkpoints(tr, key, data, checkpoints=(4, 2)))
    with pytest.raises(ValueError, match="checkpoints must be <= 6"):
        next(fit_checkpoints(tr, key, data, checkpoints=(7,)))
