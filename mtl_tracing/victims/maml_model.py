"""The MAML victim's network and loss (Sec. III, V-A of "Privacy Challenges in Meta-Learning").

Notation (argument -> paper symbol): ``params`` omega (or theta after adaptation), w ``ways``
(the head's outputs), s shots, ``mask`` the active slots of a (possibly padded) task.

- **Model** (:class:`ConvNet`): a Flax NNX conv net sized for the image. MAML's 4-block conv
  for 28x28 (3x3 convolutions of stride 2, as MAML's Omniglot net, so every layer is smooth to
  differentiate three times), 2 blocks for 8x8; then a linear head with w outputs.
- **Padded tasks.** A task of w' <= w ways and s' <= s shots can live in a w-way s-shot
  layout (slot k has label ``k // s``) with a boolean slot ``mask``: the loss is the mean
  cross-entropy over the active slots and the logits of the inactive classes are masked out,
  so the function of the active parameters is the w'-way s'-shot model's (the inactive head
  rows get zero gradient). Every (w', s') of a grid then shares one compiled program.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax import Array

from mtl_tracing import flat_random
from mtl_tracing._validate import check_choice, check_int, check_positive_float

__all__ = [
    "ACTIVATIONS",
    "ConvNet",
    "PatchConv",
    "ModelConfig",
    "init_params",
    "apply",
    "features",
    "class_mask",
    "masked_logits",
    "loss_fn",
    "accuracy",
    "head_mask",
    "params_dtype",
    "tree_dot",
    "tree_cosine",
]

ACTIVATIONS = ("relu", "tanh", "softplus")
_ACT = {"relu": jax.nn.relu, "tanh": jnp.tanh, "softplus": jax.nn.softplus}
# Logit of an inactive class: exp underflows to 0 in float32 and float64; jnp.where passes no
# gradient to the masked entries.
_MASKED_LOGIT = -1e9


class PatchConv(nnx.Module):
    """3x3 convolution, stride 2, SAME padding, as patches (im2col) @ kernel.

    The same function as ``nnx.Conv(c_in, c_out, (3, 3), strides=2, padding="SAME")`` (tested),
    written as a matmul, so that per-trial weight gradients (what the attacks differentiate,
    vmapped over trials) are batched matmuls rather than XLA's batch-grouped convolutions.
    """

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        init = flat_random.lecun_normal()  # flax's default, drawn flat
        self.kernel = nnx.Param(init(rngs.params(), (3, 3, c_in, c_out)))
        self.bias = nnx.Param(jnp.zeros((c_out,)))

    def __call__(self, x):
        lead = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        patches = jax.lax.conv_general_dilated_patches(
            x, (3, 3), (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )  # (n, H', W', c_in * 9), feature index c * 9 + 3 i + j
        kernel = self.kernel[...]
        k = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(-1, kernel.shape[-1])
        y = patches @ k + self.bias[...]
        return y.reshape(lead + y.shape[1:])


class ConvNet(nnx.Module):
    """Conv blocks (3x3, stride 2, ``channels`` filters, activation) then a linear head.

    Input (..., H, W, 1) -> logits (..., ways). ``features`` is the flattened last block.
    """

    def __init__(self, image_shape, ways, channels, blocks, activation, conv="xla", *, rngs):
        h, w, c = image_shape
        convs = []
        for _ in range(blocks):
            if conv == "patches":
                convs.append(PatchConv(c, channels, rngs=rngs))
            else:
                kw = {"strides": 2, "padding": "SAME", "kernel_init": flat_random.lecun_normal()}
                convs.append(nnx.Conv(c, channels, (3, 3), rngs=rngs, **kw))
            c = channels
            h, w = -(-h // 2), -(-w // 2)
        self.convs = nnx.List(convs)
        self.head = nnx.Linear(h * w * c, ways, rngs=rngs, kernel_init=flat_random.lecun_normal())
        self.activation = activation

    def features(self, x):
        act = _ACT[self.activation]
        for conv in self.convs:
            x = act(conv(x))
        return x.reshape(x.shape[:-3] + (-1,))

    def __call__(self, x):
        return self.head(self.features(x))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The victim: model and inner loop (static, hashable).

    Fields:
      image_shape: (H, W, 1).
      ways: w, the classes of a task (the head's outputs; the largest w of a padded grid).
      channels: filters per conv block (MAML: 64 on Omniglot, 32 on MiniImagenet).
      blocks: conv blocks; None picks 4 for images >= 16 pixels a side, else 2.
      activation: one of :data:`ACTIVATIONS`.
      inner_steps: SGD steps of the adaptation U (>= 1).
      inner_lr: their step size.
      conv: ``"patches"`` (default, :class:`PatchConv`) or ``"xla"`` (``nnx.Conv``): the same
        function; patches ran the support attack 3-10x faster on a 2-core CPU
        (``benchmarks/README.md``).
    """

    image_shape: tuple[int, int, int] = (8, 8, 1)
    ways: int = 5
    channels: int = 16
    blocks: int | None = None
    activation: str = "relu"
    inner_steps: int = 1
    inner_lr: float = 0.1
    conv: str = "patches"

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) != 3 or shape[2] != 1 or min(shape) < 1:
            raise ValueError(f"image_shape must be (H, W, 1), got {self.image_shape!r}")
        object.__setattr__(self, "image_shape", tuple(int(s) for s in shape))
        check_int("ways", self.ways, low=2)
        check_int("channels", self.channels, low=1)
        if self.blocks is None:
            object.__setattr__(self, "blocks", 4 if min(shape[:2]) >= 16 else 2)
        check_int("blocks", self.blocks, low=1, high=6)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_int("inner_steps", self.inner_steps, low=1)
        check_choice("conv", self.conv, ("xla", "patches"))
        object.__setattr__(self, "inner_lr", check_positive_float("inner_lr", self.inner_lr))

    def build(self, rngs: nnx.Rngs) -> ConvNet:
        return ConvNet(
            self.image_shape,
            self.ways,
            self.channels,
            self.blocks,
            self.activation,
            self.conv,
            rngs=rngs,
        )


@functools.lru_cache(maxsize=64)
def _graphdef(model: ModelConfig):
    return nnx.split(nnx.eval_shape(lambda: model.build(nnx.Rngs(0))))[0]


def init_params(model: ModelConfig, key: Array, dtype=None):
    """omega_0: the meta-parameters of a freshly initialised :class:`ConvNet` (a State pytree)."""
    params = nnx.split(model.build(nnx.Rngs(key)))[1]
    if dtype is not None:
        params = jax.tree.map(lambda p: p.astype(dtype), params)
    return params


def apply(model: ModelConfig, params, x: Array) -> Array:
    """Logits (..., w) of images x (..., H, W, 1)."""
    return nnx.merge(_graphdef(model), params)(x)


def features(model: ModelConfig, params, x: Array) -> Array:
    """The penultimate representation (..., m) of images x (..., H, W, 1)."""
    return nnx.merge(_graphdef(model), params).features(x)


def class_mask(mask: Array, ways: int) -> Array:
    """(w,) bool: the classes with an active slot, from a slot mask (w s,) (slot k: k // s)."""
    return jnp.any(jnp.reshape(mask, (ways, -1)), axis=-1)


def masked_logits(model: ModelConfig, params, x: Array, mask: Array | None) -> Array:
    """Logits (n, w) with the inactive classes' logits set to -1e9 (``mask`` None: all active)."""
    logits = apply(model, params, x)
    if mask is None:
        return logits
    return jnp.where(class_mask(mask, model.ways), logits, jnp.asarray(_MASKED_LOGIT, logits.dtype))


def loss_fn(model: ModelConfig, params, x: Array, y: Array, mask: Array | None = None) -> Array:
    """Mean cross-entropy of images x (n, H, W, 1) with integer labels y (n,) over the active
    slots ``mask`` (n,) bool (None: all), inactive classes masked out of the softmax."""
    ce = optax.softmax_cross_entropy_with_integer_labels(masked_logits(model, params, x, mask), y)
    if mask is None:
        return ce.mean()
    m = mask.astype(ce.dtype)
    return jnp.sum(ce * m) / jnp.sum(m)


def accuracy(model: ModelConfig, params, x: Array, y: Array, mask: Array | None = None) -> Array:
    """Fraction of the active slots classified correctly (argmax over the active classes)."""
    logits = masked_logits(model, params, x, mask)
    hit = (jnp.argmax(logits, -1) == y).astype(logits.dtype)
    if mask is None:
        return hit.mean()
    m = mask.astype(hit.dtype)
    return jnp.sum(hit * m) / jnp.sum(m)


def head_mask(params, mask: Array, ways: int):
    """A pytree like ``params``: 1 everywhere except the inactive classes' head entries (0).

    Multiplying noise by it keeps a padded task's inactive head rows at 0, where the w'-way
    model has no coordinate (the validation-gradient defence stays equal in law).
    """
    cm = class_mask(mask, ways)

    def one(path, leaf):
        names = [getattr(p, "key", getattr(p, "name", None)) for p in path]
        ones = jnp.ones(leaf.shape, leaf.dtype)
        if "head" in names and leaf.shape and leaf.shape[-1] == ways:
            return ones * cm.astype(leaf.dtype)
        return ones

    return jax.tree_util.tree_map_with_path(one, params)


def params_dtype(params):
    """The float dtype of the parameters."""
    return jax.tree.leaves(params)[0].dtype


def tree_dot(a, b) -> Array:
    """<a, b> summed over all leaves of two pytrees of the same structure."""
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def tree_cosine(a, b, eps: float = 1e-12) -> Array:
    """cos(a, b) of two pytrees flattened into vectors."""
    return tree_dot(a, b) / jnp.sqrt(tree_dot(a, a) * tree_dot(b, b) + eps)
