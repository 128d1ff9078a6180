"""Multitask learning with learned task relationships: trainers with a GMRF prior on the heads.

After Wan & Vlaski, "Multitask learning with learned task relationships" (arXiv 2510.10570).
The heads W (T x p) carry a Gaussian Markov random field prior with a precision Omega (T x T,
SPD) learned jointly with the network; the objective, the centred model (``centre=True``:
the prior on V = W - 1 w0^T) and the exact Omega-step (closed form or graphical lasso by
ADMM; SPD with cond <= ``max_condition``) are in :mod:`mtl_tracing.victims.gmrf_prior`,
whose public names are re-exported here.

Training alternates (:class:`GMRFTrainer`): optimiser steps on (theta, W) with Omega fixed
(Algorithm 3's optimiser; the prior enters the minibatch loss as (eta / (2T)) tr(W^T Omega W),
whose expectation over minibatches matches the objective), and, at the end of every epoch after
the warm start (Omega = I before), the exact Omega-step (:func:`omega_update`).

Baselines in the same trainer (``relations``): ``"learned"`` (the above), ``"independent"``
(Omega restricted to be diagonal, Omega = diag(S)^{-1}: no task relationships; with
``centre=True`` it still shrinks every head towards the shared mean head w0, i.e.
mean-regularised MTL, so only ``centre=False`` makes the heads independent) and
``"consensus"`` (all heads equal: after every step the heads are replaced by their mean, the
full-consensus solution of federated averaging).

Decentralised form (:class:`DecentralizedGMRFTrainer`), simulated on one machine: agent t
keeps its own encoder theta_t and head w_t and, every step, adapts then combines
(adapt-then-combine, ATC):

- adapt: one Adam step of each agent on its own loss L_t (vmapped over agents);
- combine, heads: W <- (I - s Omega) Psi with s = min(lr * eta, 1 / lambda_max(Omega)), the
  gradient step of the GMRF term; agent t only needs the heads of its neighbours
  {l : Omega_tl != 0}, and the eigenvalues of I - s Omega lie in [0, 1) (stable); centred
  (``centre``): W <- Psi - s Omega V(Psi), V(Psi) = Psi - 1 w0^T as above;
- combine, encoders: theta <- C theta with C the Metropolis weights (doubly stochastic) of the
  graph "learned edges (|partial correlation| > ``edge_tol``) plus a ring", the ring keeping
  the graph connected so the shared representation reaches consensus;
- Omega is re-estimated from the heads at the end of each epoch after the warm start (computed
  centrally in this simulation; in a network each agent would estimate its own row).

``embed`` of the decentralised trainer is the encoder of the agents' average parameters (the
network centroid), which the combine steps drive the agents towards.

Notation (argument -> symbol): ``tasks`` T, ``embed_dim`` m, p = m + 1, ``eta`` eta,
``ridge`` delta, ``l1`` rho, ``max_condition`` kappa, ``centre`` (w0, V).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax import Array

from mtl_tracing.data.base import MultitaskData
from mtl_tracing.victims.gmrf_prior import (
    RELATIONS,
    GMRFConfig,
    centre_heads,
    head_matrix,
    metropolis_weights,
    omega_step,
    omega_update,
    partial_correlations,
    support,
    with_heads,
)
from mtl_tracing.victims.model import MultitaskModel, embed_fn, split_params
from mtl_tracing.victims.mtl import (
    MTLState,
    MTLTrainerBase,
    accuracy,
    batch_bce,
    bce,
    model_graphdef,
    steps_per_epoch,
)

__all__ = [
    "RELATIONS",
    "GMRFConfig",
    "GMRFState",
    "GMRFTrainer",
    "DecentralizedGMRFTrainer",
    "DecentralizedState",
    "make_trainer",
    "omega_update",
    "centre_heads",
    "partial_correlations",
    "support",
    "head_matrix",
    "metropolis_weights",
]


# --------------------------------------------------------------------------- centralised form


class GMRFState(NamedTuple):
    """State of one run of :class:`GMRFTrainer`."""

    params: dict  # as Algorithm 3: encoder theta, heads (T, m), (T,)
    opt_state: Any  # optax state of ``make_optimizer``
    omega: Array  # (T, T) SPD precision of the GMRF prior
    count: Array  # () int32, optimiser steps taken


@dataclasses.dataclass(frozen=True)
class GMRFTrainer(MTLTrainerBase):
    """Algorithm 3's network and optimiser with a learned GMRF prior on the heads.

    Objective and alternation in the module docstring. ``batches``, ``evaluate`` and ``embed``
    are Algorithm 3's (:class:`~mtl_tracing.victims.mtl.MTLTrainer`); ``step`` adds the prior
    to the minibatch loss, ties the heads (``"consensus"``), and at the last step of every epoch
    after ``config.warm_start_epochs`` takes the Omega-step. ``evaluate`` also records
    ``omega_condition`` (cond(Omega)).
    """

    gmrf: GMRFConfig = dataclasses.field(default_factory=GMRFConfig)

    def init(self, key: Array, data: MultitaskData) -> GMRFState:
        base = self.base.init(key, data)
        params = base.params
        if self.gmrf.relations == "consensus":
            params = _tie(params)
        T = data.x.shape[0]
        omega = jnp.eye(T, dtype=data.x.dtype)
        return GMRFState(params, base.opt_state, omega, jnp.zeros((), jnp.int32))

    def batches(self, key: Array, data: MultitaskData) -> dict:
        return self.base.batches(key, data)

    def step(self, state: GMRFState, key: Array, batch: dict) -> tuple[GMRFState, dict]:
        del key
        T = state.omega.shape[0]
        graphdef = self.graphdef_for(batch["x"], T)
        eta = self.gmrf.eta

        def loss_fn(p):
            data_loss = batch_bce(graphdef, p, batch)
            W = self.gmrf.deviations(head_matrix(p), state.omega)
            prior = 0.5 * eta / T * jnp.sum(W * (state.omega @ W))
            return data_loss + prior, data_loss

        params, opt_state, (_, data_loss) = self.optimizer_step(
            state.params, state.opt_state, loss_fn, tasks=T, has_aux=True
        )
        if self.gmrf.relations == "consensus":
            params = _tie(params)
        count = state.count + 1
        omega = omega_step(self.gmrf, self.config, count, head_matrix(params), state.omega)
        return GMRFState(params, opt_state, omega, count), {"loss": data_loss}

    def evaluate(self, state: GMRFState, data: MultitaskData) -> dict:
        out = self.base.evaluate(MTLState(state.params, None), data)
        lam = jnp.linalg.eigvalsh(state.omega)
        return {**out, "omega_condition": lam[-1] / lam[0]}

    def embed(self, state: GMRFState, x: Array) -> Array:
        return self.base.embed(MTLState(state.params, None), x)


def make_trainer(
    config, embed_dim: int, *, tasks: int, eta: float = 0.3, l1: float = 0.1
) -> GMRFTrainer:
    """The trainer registry's ``gmrf``: :class:`GMRFTrainer` with ``GMRFConfig(eta, l1)``."""
    del tasks
    return GMRFTrainer(config, embed_dim, GMRFConfig(eta=eta, l1=l1))


_HEADS = ("head_kernel", "head_bias")


def _map_encoder(fn, params: dict) -> dict:
    """Apply ``fn`` to every encoder leaf (not the heads)."""
    return {k: (v if k in _HEADS else jax.tree.map(fn, v)) for k, v in params.items()}


def _tie(params: dict) -> dict:
    W = head_matrix(params)
    return with_heads(params, jnp.broadcast_to(W.mean(0), W.shape))


# ------------------------------------------------------------------------- decentralised form


class DecentralizedState(NamedTuple):
    """State of one run of :class:`DecentralizedGMRFTrainer` (agent axis T first)."""

    params: dict  # encoder leaves (T, ...), one copy per agent; heads (T, m), (T,)
    opt_state: Any  # Adam state, same structure
    omega: Array  # (T, T)
    count: Array  # () int32


@dataclasses.dataclass(frozen=True)
class DecentralizedGMRFTrainer(MTLTrainerBase):
    """Adapt-then-combine GMRF multitask learning, T agents simulated on one machine.

    See the module docstring. One step = every agent adapts on all its N samples, then the
    network combines; ``batches`` gives ``steps_per_epoch(T, task_batch)`` steps per epoch so
    an epoch has as many steps as Algorithm 3's. ``embed`` uses the agents' mean encoder.
    """

    gmrf: GMRFConfig = dataclasses.field(default_factory=GMRFConfig)

    def _graphdef(self, d: int, dtype):
        return model_graphdef(d, self.embed_dim, 1, self.config.hidden, dtype)

    def init(self, key: Array, data: MultitaskData) -> DecentralizedState:
        T, _, d = data.x.shape
        model = MultitaskModel(
            d, self.embed_dim, T, self.config.hidden, rngs=nnx.Rngs(params=key),
            param_dtype=data.x.dtype,
        )  # fmt: skip
        params = split_params(model)[1]
        # Every agent starts from the same encoder (a common seed), with its own head.
        params = _map_encoder(lambda v: jnp.asarray(jnp.broadcast_to(v, (T, *v.shape))), params)
        opt_state = optax.adam(self.gmrf.lr).init(params)
        omega = jnp.eye(T, dtype=data.x.dtype)
        return DecentralizedState(params, opt_state, omega, jnp.zeros((), jnp.int32))

    def batches(self, key: Array, data: MultitaskData) -> dict:
        del key
        steps = steps_per_epoch(data.x.shape[0], self.config.task_batch)
        return {"x": jnp.broadcast_to(data.x, (steps, *data.x.shape)),
                "y": jnp.broadcast_to(data.y, (steps, *data.y.shape))}  # fmt: skip

    def _agent_loss(self, graphdef):
        def loss(p, x, y):  # one agent: p with a single head, x (N, d), y (N,)
            p1 = {**p, "head_kernel": p["head_kernel"][None], "head_bias": p["head_bias"][None]}
            return bce(nnx.merge(graphdef, p1)(x[None])[0], y)

        return loss

    def step(self, state: DecentralizedState, key: Array, batch: dict):
        del key
        x, y = batch["x"], batch["y"]
        T = x.shape[0]
        loss = self._agent_loss(self._graphdef(x.shape[-1], x.dtype))
        # adapt: each agent's own gradient (vmapped over agents), one Adam step
        losses, grads = jax.vmap(jax.value_and_grad(loss))(state.params, x, y)
        tx = optax.adam(self.gmrf.lr)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        psi = optax.apply_updates(state.params, updates)
        # combine: heads by the GMRF gradient step, encoders by Metropolis weights
        omega = state.omega
        lam_max = jnp.linalg.eigvalsh(omega)[-1]
        s = jnp.minimum(self.gmrf.lr * self.gmrf.eta, 1.0 / lam_max)
        A = jnp.eye(T, dtype=omega.dtype) - s * omega
        Psi = head_matrix(psi)
        W = Psi - s * omega @ self.gmrf.deviations(Psi, omega) if self.gmrf.centre else A @ Psi
        ring = jnp.roll(jnp.eye(T, dtype=bool), 1, axis=1)
        adjacency = support(omega, self.gmrf.edge_tol) | ring | ring.T
        C = metropolis_weights(adjacency).astype(x.dtype)
        params = with_heads(_map_encoder(lambda v: jnp.tensordot(C, v, axes=1), psi), W)
        count = state.count + 1
        omega = omega_step(self.gmrf, self.config, count, W, omega)
        return DecentralizedState(params, opt_state, omega, count), {"loss": losses.mean()}

    def _centroid(self, params: dict) -> dict:
        return _map_encoder(lambda v: v.mean(0), params)

    def logits(self, state: DecentralizedState, x: Array) -> Array:
        """Each agent's logits on its own task's samples: x (T, n, d) -> (T, n)."""
        graphdef = self._graphdef(x.shape[-1], x.dtype)

        def one(p, x):
            p1 = {**p, "head_kernel": p["head_kernel"][None], "head_bias": p["head_bias"][None]}
            return nnx.merge(graphdef, p1)(x[None])[0]

        return jax.vmap(one)(state.params, x)

    def evaluate(self, state: DecentralizedState, data: MultitaskData) -> dict:
        lt = self.logits(state, data.x)
        lh = self.logits(state, data.x_heldout)
        enc = [v for k, v in state.params.items() if k not in _HEADS]
        spread = sum(jnp.sum(jnp.var(v, axis=0)) for v in jax.tree.leaves(enc))
        return {
            "train_loss": bce(lt, data.y),
            "train_accuracy": accuracy(lt, data.y),
            "heldout_loss": bce(lh, data.y_heldout),
            "heldout_accuracy": accuracy(lh, data.y_heldout),
            "encoder_disagreement": spread,
        }

    def embed(self, state: DecentralizedState, x: Array) -> Array:
        graphdef = self._graphdef(x.shape[-1], x.dtype)
        return embed_fn(graphdef, self._centroid(state.params), x)
