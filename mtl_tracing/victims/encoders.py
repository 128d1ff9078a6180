"""Shared encoders for real data, each followed by the paper's linear projection to m (App. A.3).

Three encoder specs (frozen dataclasses: hashable, static under ``jit``):

- :class:`ResNetSpec`: a small residual network for images (CelebA, FEMNIST). A 3x3 stem, then
  one stage per entry of ``widths`` (the first block of stages after the first has stride 2),
  each of ``blocks`` residual blocks conv3x3-GroupNorm-ReLU-conv3x3-GroupNorm + skip, then
  global average pooling. GroupNorm (no batch statistics) keeps the model a pure function of its
  parameters, which Algorithm 3's per-task routing and the attacks' black-box queries need. With
  ``widths=(16, 32, 64)`` and one block per stage it is a ResNet-8 (App. A.6's FEMNIST model).
  Its ``conv`` picks the convolution (:data:`CONVS`, :func:`resolve_conv`: ``"auto"`` takes
  :func:`loop_safe_conv` on CPU, XLA's own convolution elsewhere).
- :class:`MLPSpec`: a ReLU MLP for vectors: the hashed-n-gram inputs of Stack Overflow.
- :class:`LinearSpec`: no encoder: features brought by the user (a frozen pretrained backbone
  run offline) go straight to the projection.

:class:`EncoderModel` = encoder, ``project`` (linear to m: the embedding h_theta(x)), and T
linear heads stored as one ``head_kernel`` and ``head_bias`` (the names
:func:`mtl_tracing.victims.mtl.make_optimizer` treats as heads): (T, m) and (T,) for one binary
logit per task (C = ``head_outputs`` = 1), (T, C, m) and (T, C) for C logits per task (softmax
or multi-label heads, :mod:`mtl_tracing.victims.heads`). Its interface is the one of
:class:`mtl_tracing.victims.model.MultitaskModel`: ``embed(x)`` (..., *F) -> (..., m) and
``__call__(x, task_ids)`` -> logits (..., ) or (..., C).

Compute dtype. :func:`compute_params` casts the encoder and projection parameters to a
narrower compute dtype (bfloat16): the convolutions and matmuls then run in it, GroupNorm's
statistics stay float32 (flax), and the caller casts the embeddings back, so the heads, the
loss and the optimiser (float32 master weights) are unchanged (mixed precision; an option of
:class:`~mtl_tracing.victims.encoder_mtl.EncoderMTLTrainer`, off by default).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array, lax

from mtl_tracing import flat_random

__all__ = [
    "ResNetSpec", "MLPSpec", "LinearSpec", "EncoderModel", "build_encoder", "head_logits",
    "loop_safe_conv", "CONVS", "resolve_conv", "compute_params",
]  # fmt: skip

#: The ResNet's convolution implementations (``ResNetSpec.conv``).
CONVS = ("auto", "loop_safe", "xla")


def resolve_conv(conv: str, backend: str | None = None) -> str:
    """``"auto"`` -> ``"loop_safe"`` on CPU, ``"xla"`` on other backends (GPU, TPU); others as
    given. ``backend`` defaults to ``jax.default_backend()``.

    Why, per backend:

    - CPU: XLA:CPU runs a convolution's kernel gradient inside ``lax.scan`` (the training
      epochs) as a slow loop nest, 21x slower than the same step outside a loop;
      :func:`loop_safe_conv` (im2col kernel gradient) is 15x faster in the scan
      (``benchmarks/bench_conv_scan.py``, 2-core CPU; the FEMNIST epoch 427 s -> 19 s).
    - GPU: the slowdown is XLA:CPU's (jax-ml/jax#12868); XLA:GPU sends all three convolutions
      to cuDNN, loop or not. The workaround would replace cuDNN's backward-filter kernel by a
      grouped one-hot convolution that writes 9x the activations (the patches, ~460 MB per
      16-channel layer of a 1024-image FEMNIST step) and a matmul contracting over ~8e5 rows
      with a 144 x 16 output, the shape GPUs run worst. Measured side by side on the GPU by
      ``benchmarks/bench_real.py --variants conv=loop_safe,xla`` and
      ``benchmarks/profile_real_step.py`` (results in ``benchmarks/README.md``).
    """
    conv = _check_conv(conv)
    if conv == "auto":
        backend = jax.default_backend() if backend is None else backend
        return "loop_safe" if backend == "cpu" else "xla"
    return conv


def _check_conv(conv) -> str:
    if conv not in CONVS:
        raise ValueError(f"conv must be one of {CONVS}, got {conv!r}")
    return conv


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """Small ResNet for (H, W, C) images: stage ``widths`` and ``blocks`` per stage; ``conv``
    one of :data:`CONVS` (resolved by :func:`resolve_conv` when the model is built)."""

    widths: tuple[int, ...] = (16, 32, 64)
    blocks: int = 1
    groups: int = 4
    conv: str = "auto"

    def __post_init__(self) -> None:
        _check_conv(self.conv)
        w = tuple(int(v) for v in self.widths)
        if not w or any(v < 1 or v % self.groups for v in w):
            raise ValueError(f"widths must be positive multiples of groups={self.groups}, got {w}")
        object.__setattr__(self, "widths", w)
        if int(self.blocks) < 1:
            raise ValueError(f"blocks must be >= 1, got {self.blocks!r}")


@dataclasses.dataclass(frozen=True)
class MLPSpec:
    """ReLU MLP for (d,) vectors with hidden ``widths``."""

    widths: tuple[int, ...] = (512,)

    def __post_init__(self) -> None:
        w = tuple(int(v) for v in self.widths)
        if not w or any(v < 1 for v in w):
            raise ValueError(f"widths must be positive integers, got {self.widths!r}")
        object.__setattr__(self, "widths", w)


@dataclasses.dataclass(frozen=True)
class LinearSpec:
    """No encoder: the projection to m acts on the input vector (user-provided features)."""


_NHWC = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # nnx.Conv's, 2-D


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_nhwc(x, w, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


def _conv_nhwc_fwd(x, w, strides, padding):
    return _conv_nhwc(x, w, strides, padding), (x, w)


def _conv_nhwc_bwd(strides, padding, res, g):
    x, w = res
    kh, kw, cin, cout = w.shape
    _, vjp_x = jax.vjp(
        lambda v: lax.conv_general_dilated(v, w, strides, padding, dimension_numbers=_NHWC), x
    )
    (dx,) = vjp_x(g)
    patches = lax.conv_general_dilated_patches(
        x, (kh, kw), strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )  # (n, H', W', cin kh kw), feature index c kh kw + kw i + j
    dk = patches.reshape(-1, patches.shape[-1]).T @ g.reshape(-1, cout)
    return dx, dk.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)


_conv_nhwc.defvjp(_conv_nhwc_fwd, _conv_nhwc_bwd)


def loop_safe_conv(
    lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
    dimension_numbers=None, feature_group_count=1, precision=None, **kwargs,
):  # fmt: skip
    """``lax.conv_general_dilated`` whose kernel gradient is a matmul (for ``nnx.Conv``).

    Inside ``lax.scan`` (the training epochs) XLA:CPU lowers the kernel gradient of a
    convolution (a convolution over the batch) to a slow loop nest: measured 20x slower than
    the same step outside a loop (jax-ml/jax#12868). Here the forward pass and the input
    gradient are XLA's own (the forward bitwise), and the kernel gradient is
    patches(x)^T @ dy (im2col), equal to XLA's to float rounding (tested). Plain 2-D NHWC
    convolutions only (``nnx.Conv``'s layout, no dilation, one group); anything else goes to
    ``lax.conv_general_dilated`` unchanged.
    """
    plain = (
        lhs.ndim == 4
        and dimension_numbers == _NHWC
        and all(v == 1 for v in (lhs_dilation or (1,)) + (rhs_dilation or (1,)))
        and feature_group_count == 1
        and precision is None
        and all(v is None for v in kwargs.values())
    )
    if not plain:
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, precision=precision, **kwargs,
        )  # fmt: skip
    pad = padding if isinstance(padding, str) else tuple(tuple(p) for p in padding)
    return _conv_nhwc(lhs, rhs, tuple(window_strides), pad)


def _conv_kwargs(conv: str, dtype) -> dict:
    """``nnx.Conv`` keyword arguments shared by the ResNet's convolutions."""
    fn = loop_safe_conv if resolve_conv(conv) == "loop_safe" else lax.conv_general_dilated
    kw = {"param_dtype": dtype, "use_bias": False, "padding": "SAME"}
    kw["conv_general_dilated"] = fn
    kw["kernel_init"] = flat_random.lecun_normal()  # flax's default, drawn flat
    return kw


class _Block(nnx.Module):
    def __init__(self, cin, cout, stride, groups, *, rngs, dtype, conv="auto"):
        kw = {"rngs": rngs, **_conv_kwargs(conv, dtype)}
        self.conv1 = nnx.Conv(cin, cout, (3, 3), strides=stride, **kw)
        self.norm1 = nnx.GroupNorm(cout, num_groups=groups, rngs=rngs, param_dtype=dtype)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), **kw)
        self.norm2 = nnx.GroupNorm(cout, num_groups=groups, rngs=rngs, param_dtype=dtype)
        self.skip = (
            nnx.Conv(cin, cout, (1, 1), strides=stride, **kw)
            if stride != 1 or cin != cout
            else None
        )

    def __call__(self, x):
        h = nnx.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return nnx.relu(h + (x if self.skip is None else self.skip(x)))


class _ResNet(nnx.Module):
    def __init__(self, spec: ResNetSpec, channels: int, *, rngs, dtype):
        w0 = spec.widths[0]
        self.stem = nnx.Conv(channels, w0, (3, 3), rngs=rngs, **_conv_kwargs(spec.conv, dtype))
        self.stem_norm = nnx.GroupNorm(w0, num_groups=spec.groups, rngs=rngs, param_dtype=dtype)
        blocks, cin = [], w0
        for s, w in enumerate(spec.widths):
            for b in range(spec.blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(
                    _Block(cin, w, stride, spec.groups, rngs=rngs, dtype=dtype, conv=spec.conv)
                )
                cin = w
        self.blocks = nnx.List(blocks)
        self.features = cin

    def __call__(self, x):
        h = nnx.relu(self.stem_norm(self.stem(x)))
        for blk in self.blocks:
            h = blk(h)
        return h.mean(axis=(-3, -2))


class _MLP(nnx.Module):
    def __init__(self, spec: MLPSpec, dim: int, *, rngs, dtype):
        layers, cin = [], dim
        for w in spec.widths:
            layers.append(
                nnx.Linear(
                    cin, w, rngs=rngs, param_dtype=dtype, kernel_init=flat_random.lecun_normal()
                )
            )
            cin = w
        self.layers = nnx.List(layers)
        self.features = cin

    def __call__(self, x):
        for layer in self.layers:
            x = nnx.relu(layer(x))
        return x


def build_encoder(spec, input_shape: tuple[int, ...], *, rngs, dtype):
    """(encoder module or None, its output width) for ``spec`` on inputs of ``input_shape``."""
    if isinstance(spec, ResNetSpec):
        if len(input_shape) != 3:
            raise ValueError(f"ResNetSpec needs (H, W, C) inputs, got shape {input_shape}")
        enc = _ResNet(spec, input_shape[-1], rngs=rngs, dtype=dtype)
        return enc, enc.features
    if len(input_shape) != 1:
        raise ValueError(f"{type(spec).__name__} needs (d,) inputs, got shape {input_shape}")
    if isinstance(spec, MLPSpec):
        enc = _MLP(spec, input_shape[0], rngs=rngs, dtype=dtype)
        return enc, enc.features
    if isinstance(spec, LinearSpec):
        return None, input_shape[0]
    raise ValueError(f"encoder spec must be ResNetSpec, MLPSpec or LinearSpec, got {spec!r}")


class EncoderModel(nnx.Module):
    """Encoder of ``spec`` + linear projection to m + T linear heads (module docstring).

    Args:
      spec: :class:`ResNetSpec`, :class:`MLPSpec` or :class:`LinearSpec`.
      input_shape: F, the shape of one input ((H, W, C) or (d,)).
      embed_dim: m.
      tasks: T, the number of heads.
      head_outputs: C, logits per head (1: binary, (T, m) kernel; else (T, C, m)).
    """

    def __init__(
        self, spec, input_shape, embed_dim: int, tasks: int, *, rngs, dtype=jnp.float32,
        head_outputs: int = 1,
    ):  # fmt: skip
        self.input_rank = len(input_shape)
        self.encoder, width = build_encoder(spec, tuple(input_shape), rngs=rngs, dtype=dtype)
        self.project = nnx.Linear(
            width, embed_dim, rngs=rngs, param_dtype=dtype, kernel_init=flat_random.lecun_normal()
        )
        if head_outputs == 1:
            init = flat_random.lecun_normal()
            self.head_kernel = nnx.Param(init(rngs.params(), (tasks, embed_dim), dtype))
            self.head_bias = nnx.Param(jnp.zeros((tasks,), dtype))
        else:  # fan-in m per output
            init = flat_random.lecun_normal(in_axis=-1, out_axis=-2)
            shape = (tasks, head_outputs, embed_dim)
            self.head_kernel = nnx.Param(init(rngs.params(), shape, dtype))
            self.head_bias = nnx.Param(jnp.zeros((tasks, head_outputs), dtype))

    def embed(self, x: Array) -> Array:
        """h_theta(x): (..., *F) -> (..., m)."""
        lead = x.shape[: x.ndim - self.input_rank]
        flat = x.reshape((math.prod(lead),) + x.shape[x.ndim - self.input_rank :])
        h = flat if self.encoder is None else self.encoder(flat)
        return self.project(h).reshape(lead + (-1,))

    def __call__(self, x: Array, task_ids: Array | None = None) -> Array:
        """Logits: (T, n, *F) -> (T, n) (or (T, n, C)) by head row, or with ``task_ids``
        broadcast to x's lead shape L: (*L,) (or (*L, C))."""
        return head_logits(self.embed(x), self.head_kernel[...], self.head_bias[...], task_ids)


def head_logits(e: Array, w: Array, b: Array, task_ids: Array | None = None) -> Array:
    """Logits of heads w (T, m) / (T, C, m), b (T,) / (T, C) on embeddings e (T, n, m) (row j
    by head j) or e (*L, m) with ``task_ids`` broadcastable to L."""
    binary = w.ndim == 2
    if task_ids is None:
        if binary:
            return jnp.einsum("tnm,tm->tn", e, w) + b[:, None]
        return jnp.einsum("tnm,tcm->tnc", e, w) + b[:, None, :]
    task_ids = jnp.asarray(task_ids)
    if binary:
        return jnp.sum(e * w[task_ids], axis=-1) + b[task_ids]
    return jnp.einsum("...m,...cm->...c", e, w[task_ids]) + b[task_ids]


def compute_params(params: dict, dtype) -> dict:
    """``params`` (an :class:`EncoderModel`'s pure dict) with the encoder and projection leaves
    cast to the compute ``dtype`` (None: unchanged); the heads keep theirs.

    Differentiating through the cast gives gradients in the parameters' own dtype (float32
    master weights): the usual mixed-precision step.
    """
    if dtype is None:
        return params
    dtype = jnp.dtype(dtype)

    def cast(a):
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return {
        k: v if k in ("head_kernel", "head_bias") else jax.tree.map(cast, v)
        for k, v in params.items()
    }
