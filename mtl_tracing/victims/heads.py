"""Task-head losses of the real-data path: binary, softmax (C classes) and multi-label (C labels).

Every task i has a linear head on the embedding e = h_theta(x) (App. A.3). With C =
``head_outputs``:

- ``binary`` (C = 1): one logit <beta_i, e> + b_i, label y in {0, 1}, sigmoid cross-entropy
  (CelebA; Stack Overflow multiple problems). Labels y (T, n) float, logits (T, n).
- ``softmax``: C logits, label y in {0..C-1}, softmax cross-entropy (FEMNIST: 62-way character
  recognition per writer). Labels y (T, n) int, logits (T, n, C).
- ``multilabel``: C logits, labels y in {0, 1}^C, sigmoid cross-entropy averaged over the C
  labels (Stack Overflow personalisation: presence of each of 256 topics; a post can have
  several). Labels y (T, n, C) float, logits (T, n, C).

Accuracy: ``binary`` 0/1 accuracy of the logit's sign; ``softmax`` top-1; ``multilabel``
per-label (Hamming) accuracy, the mean over samples and labels of 1[sign(logit_c) = y_c] (with
256 sparse topics it is dominated by the true negatives; exact match is not reported).

:func:`probe_loss` is the linear probe of Sec. 6.5 (Fig. 3) for each kind: ``binary`` is
:func:`mtl_tracing.victims.mtl.probe_loss` (Newton); ``softmax`` and ``multilabel`` minimise the
same ridge-penalised objective by bound optimisation (Böhning 1992): the Hessian is bounded by
a fixed matrix, c (I_C - 11^T/C) kron X^T X + ridge I (c = 1/2, softmax) or c I_C kron X^T X +
ridge I (c = 1/4, multi-label), so each step multiplies the gradient by the inverse of one
(m + 1) x (m + 1) matrix computed once per task (no per-step solve: batched small solves are
slow on XLA:CPU), and the objective decreases monotonically (100 steps by default).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax import Array

from mtl_tracing._validate import check_choice

__all__ = ["HEAD_LOSSES", "check_head", "loss", "accuracy", "probe_loss"]

HEAD_LOSSES = ("binary", "softmax", "multilabel")


def check_head(head_loss: str, head_outputs: int) -> tuple[str, int]:
    """Validated ``(head_loss, head_outputs)``: C = 1 for binary, C >= 2 otherwise."""
    head_loss = check_choice("head_loss", head_loss, HEAD_LOSSES)
    if isinstance(head_outputs, bool) or not isinstance(head_outputs, int):
        raise ValueError(f"head_outputs must be an int, got {head_outputs!r}")
    if head_loss == "binary" and head_outputs != 1:
        raise ValueError(f"head_outputs must be 1 for binary heads, got {head_outputs}")
    if head_loss != "binary" and head_outputs < 2:
        raise ValueError(f"head_outputs must be >= 2 for {head_loss} heads, got {head_outputs}")
    return head_loss, head_outputs


def loss(kind: str, logits: Array, y: Array) -> Array:
    """Mean cross-entropy of ``kind`` (module docstring) over all samples (and labels)."""
    if kind == "softmax":
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y.astype(jnp.int32))
        return jnp.mean(ce)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y.astype(logits.dtype)))


def accuracy(kind: str, logits: Array, y: Array) -> Array:
    """Top-1 (softmax) or per-label 0/1 accuracy (binary, multi-label)."""
    if kind == "softmax":
        hit = jnp.argmax(logits, axis=-1) == y.astype(jnp.int32)
    else:
        hit = (logits > 0) == (y > 0.5)
    return jnp.mean(hit.astype(logits.dtype))


def _with_bias(e: Array) -> Array:
    return jnp.concatenate([e, jnp.ones(e.shape[:-1] + (1,), e.dtype)], -1)


def _bound_fit(X: Array, Y: Array, *, softmax: bool, ridge, steps: int) -> Array:
    """W (p, C) minimising sum_j CE(X_j W, Y_j) + ridge/2 ||W||^2 by bound optimisation."""
    c = 0.5 if softmax else 0.25
    p = X.shape[-1]
    eye = jnp.eye(p, dtype=X.dtype)
    chol = jax.scipy.linalg.cho_factor(c * X.T @ X + ridge * eye)
    inv = jax.scipy.linalg.cho_solve(chol, eye)  # (p, p), SPD: one matmul per step

    def step(W, _):
        Z = X @ W
        P = jax.nn.softmax(Z, axis=-1) if softmax else jax.nn.sigmoid(Z)
        G = X.T @ (P - Y) + ridge * W
        if softmax:  # along 1 (class space) the bound is ridge alone
            par = G.mean(axis=-1, keepdims=True)
            return W - inv @ (G - par) - par / ridge, None
        return W - inv @ G, None

    W, _ = jax.lax.scan(step, jnp.zeros((p, Y.shape[-1]), X.dtype), None, length=steps)
    return W


def probe_loss(
    kind: str, e_fit, y_fit, e_eval, y_eval, *, classes: int, ridge, newton_steps: int = 25,
    bound_steps: int = 100,
) -> Array:  # fmt: skip
    """Loss on the eval set of the linear probe (plus bias) fitted on the fit set.

    e_fit (n, m), e_eval (n', m); labels as :func:`loss` for one task. ``classes`` is C
    (unused for binary). Binary: ``newton_steps`` Newton steps; otherwise ``bound_steps``
    bound-optimisation steps (module docstring).
    """
    if kind == "binary":
        from mtl_tracing.victims.mtl import probe_loss as binary_probe

        return binary_probe(e_fit, y_fit, e_eval, y_eval, ridge=ridge, newton_steps=newton_steps)
    X = _with_bias(e_fit)
    if kind == "softmax":
        Y = jax.nn.one_hot(y_fit.astype(jnp.int32), classes, dtype=X.dtype)
    else:
        Y = y_fit.astype(X.dtype)
    W = _bound_fit(X, Y, softmax=kind == "softmax", ridge=ridge, steps=bound_steps)
    return loss(kind, _with_bias(e_eval) @ W, y_eval)
