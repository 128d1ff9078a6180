"""The GMRF prior on the task heads and its exact Omega-step (pure, jittable functions).

Used by the trainers of :mod:`mtl_tracing.victims.gmrf`, which re-exports this module's
public names.

After Wan & Vlaski, "Multitask learning with learned task relationships" (arXiv 2510.10570;
only the abstract is available, so this is the standard formulation built from it). The task
parameters W (T x p), row t = (beta_t, b_t) the head of task t (p = m + 1), carry a Gaussian
Markov random field prior with an unknown precision Omega (T x T, SPD), learned jointly with the
network:

    min_{theta, W, Omega > 0}  (1/T) [ sum_t L_t(theta, w_t) + (eta/2) tr(W^T Omega W)
                                       - (eta p/2) log det Omega + (eta p delta/2) tr Omega
                                       + (eta p rho/2) sum_{i != j} sqrt(S_ii S_jj) |Omega_ij| ]

with L_t task t's mean BCE (as Algorithm 3), ``eta`` the prior strength, ``delta`` = ``ridge``
a Wishart-like ridge (it keeps the problem bounded when T > p, where W W^T is singular),
``rho`` = ``l1`` the graphical-lasso penalty on the correlation scale, and
S = W W^T / (p nu) + delta I the task covariance of the heads *up to scale*:
nu = tr(W W^T / p) / T, the mean head second moment, is held fixed in the Omega-step (equivalently
the prior covariance Sigma = Omega^{-1} is constrained to tr Sigma ~ T (1 + delta), Zhang &
Yeung's trace constraint of MTRL). The constraint is needed because the shared encoder can trade
scale with the heads (h -> c h, beta -> beta / c): with a free scale the concentrated prior
(eta p / 2) log det(W W^T / p + delta I) pulls every head to zero (seen in development: the heads
collapse and Omega degenerates to I / delta, losing all relations).

Centred heads (``centre=True``). The heads share a common component (the mean of the cluster
centres, and whatever the encoder puts in every head), and the prior above shrinks it to zero
with the rest. The centred model writes W = 1 w0^T + V with a free, unpenalised mean head w0
and puts the GMRF on the deviations V: the objective above with W replaced by V = W - 1 w0^T
in the prior and in S. For fixed (W, Omega) the prior is minimised by the Omega-weighted mean
w0 = 1^T Omega W / 1^T Omega 1 (:func:`centre_heads`), so w0 is profiled out exactly: the
network step penalises (eta/2) tr(V^T Omega V) with that w0 (its gradient in W is the partial
one, w0 being a minimiser), and the Omega-step takes S from V computed with the previous
Omega (block-coordinate: a w0-step, then the Omega-step). ``centre=False`` (the default) is
the uncentred model, w0 = 0.

The exact Omega-step (:func:`omega_update`; :func:`omega_step` takes it at the end of every
epoch after the warm start):

- ``l1 = 0``: closed form Omega = S^{-1};
- ``l1 > 0``: the graphical lasso on the correlation matrix R = D^{-1/2} S D^{-1/2}
  (D = diag S), by ``admm_iters`` ADMM iterations (Boyd et al. 2011, Sec. 6.5), mapped back
  Omega = D^{-1/2} Theta D^{-1/2}. Substituting Theta shows this is the exact Omega-minimiser of
  the objective above (the sqrt(S_ii S_jj) weights make one rho work at any head scale).

SPD and conditioning. The ridge bounds Omega's eigenvalues by 1 / ``ridge`` and the closed
form's condition number by 1 + T / ``ridge`` (lambda_max(W W^T / (p nu)) <= T); the ADMM's
X-iterate is SPD by construction (eigenvalues (l + sqrt(l^2 + 4)) / 2 > 0). Finally every
update clips Omega's eigenvalues to [lambda_max / ``max_condition``, lambda_max], so Omega is
SPD with cond(Omega) <= ``max_condition`` whatever the heads are.

Notation (argument -> symbol): ``tasks`` T, ``embed_dim`` m, p = m + 1, ``eta`` eta,
``ridge`` delta, ``l1`` rho, ``max_condition`` kappa, ``centre`` (w0, V).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import Array

from mtl_tracing._validate import check_choice, check_finite_float, check_int, check_positive_float
from mtl_tracing.victims.optim import TrainConfig, steps_per_epoch

__all__ = [
    "RELATIONS",
    "GMRFConfig",
    "omega_update",
    "omega_step",
    "centre_heads",
    "partial_correlations",
    "support",
    "head_matrix",
    "with_heads",
    "metropolis_weights",
]

RELATIONS = ("learned", "independent", "consensus")


@dataclasses.dataclass(frozen=True)
class GMRFConfig:
    """The GMRF prior and its Omega-step (hashable; see the module docstring).

    ``eta`` > 0 prior strength; ``l1`` >= 0 graphical-lasso penalty (0: closed form);
    ``ridge`` > 0 the Wishart ridge delta (prior variance floor); ``max_condition`` > 1 the
    cap kappa on cond(Omega); ``admm_iters`` ADMM iterations of the graphical lasso;
    ``relations`` one of ``RELATIONS``; ``edge_tol`` the |partial correlation| above which an
    edge is reported (:func:`support`) and used by the decentralised combine; ``lr`` the
    decentralised agents' Adam learning rate; ``centre`` the centred model W = 1 w0^T + V with
    the prior on V (default ``False``: the uncentred model).
    """

    eta: float = 1.0
    l1: float = 0.05
    ridge: float = 0.1
    max_condition: float = 1e3
    admm_iters: int = 50
    relations: str = "learned"
    edge_tol: float = 0.05
    lr: float = 3e-3
    centre: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "eta", check_positive_float("eta", self.eta))
        l1 = check_finite_float("l1", self.l1)
        if l1 < 0:
            raise ValueError(f"l1 must be >= 0, got {self.l1!r}")
        set_(self, "l1", l1)
        set_(self, "ridge", check_positive_float("ridge", self.ridge))
        kappa = check_finite_float("max_condition", self.max_condition)
        if kappa <= 1:
            raise ValueError(f"max_condition must be > 1, got {self.max_condition!r}")
        set_(self, "max_condition", kappa)
        set_(self, "admm_iters", check_int("admm_iters", self.admm_iters, low=1))
        set_(self, "relations", check_choice("relations", self.relations, RELATIONS))
        tol = check_finite_float("edge_tol", self.edge_tol)
        if not 0 <= tol < 1:
            raise ValueError(f"edge_tol must be in [0, 1), got {self.edge_tol!r}")
        set_(self, "edge_tol", tol)
        set_(self, "lr", check_positive_float("lr", self.lr))
        if not isinstance(self.centre, bool):
            raise ValueError(f"centre must be a bool, got {self.centre!r}")

    def deviations(self, W: Array, omega: Array) -> Array:
        """The heads the prior sees: V = W - 1 w0^T (``centre``, :func:`centre_heads`) or W."""
        return centre_heads(W, omega) if self.centre else W

    def replace(self, **changes) -> GMRFConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------- Omega-step


def head_matrix(params: dict) -> Array:
    """W (..., T, p): each task's head kernel and bias, p = m + 1."""
    return jnp.concatenate([params["head_kernel"], params["head_bias"][..., None]], -1)


def with_heads(params: dict, W: Array) -> dict:
    """``params`` with its heads replaced by W (..., T, p)."""
    return {**params, "head_kernel": W[..., :-1], "head_bias": W[..., -1]}


def _symmetric(a: Array) -> Array:
    """(A + A^T) / 2: exactly symmetric, whatever order a backend rounds A's entries in."""
    return 0.5 * (a + a.T)


def _clip_condition(omega: Array, kappa: float) -> Array:
    lam, Q = jnp.linalg.eigh(_symmetric(omega))
    lam = jnp.clip(lam, lam[-1] / kappa, lam[-1])
    return _symmetric((Q * lam) @ Q.T)


def _glasso_admm(R: Array, rho: float, iters: int) -> Array:
    """ADMM for min tr(Theta R) - log det Theta + rho sum_{i != j} |Theta_ij|; SPD X-iterate."""
    T = R.shape[0]
    off = 1.0 - jnp.eye(T, dtype=R.dtype)

    def body(_, carry):
        _, Z, U = carry
        lam, Q = jnp.linalg.eigh(Z - U - R)  # ADMM penalty 1
        X = (Q * (0.5 * (lam + jnp.sqrt(lam**2 + 4.0)))) @ Q.T
        V = X + U
        Z = jnp.where(off > 0, jnp.sign(V) * jnp.maximum(jnp.abs(V) - rho, 0.0), V)
        return X, Z, U + X - Z

    eye = jnp.eye(T, dtype=R.dtype)
    X, _, _ = jax.lax.fori_loop(0, iters, body, (eye, eye, jnp.zeros_like(R)))
    return X


def omega_update(W: Array, config: GMRFConfig) -> Array:
    """The exact Omega-step for heads W (T, p): SPD (T, T) with cond <= ``max_condition``.

    ``relations="learned"``: S^{-1} (``l1 = 0``) or the correlation-scale graphical lasso;
    ``"independent"``: diag(S)^{-1}; ``"consensus"``: the identity (unused: heads are tied).
    Pure and jittable (``config`` static). Dtype follows W. Its matrix products run at full
    precision (``precision=HIGHEST``: an inverse and eigen-decompositions of a Gram matrix
    amplify TF32's 1e-3 rounding, which made Omega 0.3% asymmetric on a GPU) and Omega is
    symmetrised explicitly.
    """
    with jax.default_matmul_precision("highest"):
        return _omega_update(W, config)


def _omega_update(W: Array, config: GMRFConfig) -> Array:
    T, p = W.shape
    dtype = W.dtype
    if config.relations == "consensus":
        return jnp.eye(T, dtype=dtype)
    gram = _symmetric(W @ W.T) / p
    scale = jnp.trace(gram) / T + jnp.finfo(dtype).tiny  # nu: mean head second moment
    S = gram / scale + config.ridge * jnp.eye(T, dtype=dtype)
    dS = jnp.diag(S)
    if config.relations == "independent":
        return jnp.diag(1.0 / dS)
    if config.l1 == 0:
        omega = _symmetric(jnp.linalg.inv(S))
    else:
        inv_sd = jax.lax.rsqrt(dS)
        R = S * inv_sd[:, None] * inv_sd[None, :]
        theta = _glasso_admm(R, jnp.asarray(config.l1, dtype), config.admm_iters)
        omega = theta * inv_sd[:, None] * inv_sd[None, :]
    return _clip_condition(omega, config.max_condition)


def centre_heads(W: Array, omega: Array) -> Array:
    """V = W - 1 w0^T with w0 = 1^T Omega W / 1^T Omega 1, the exact minimiser over w0."""
    o1 = omega.sum(0)
    return W - (o1 @ W / o1.sum())[None]


def partial_correlations(omega: Array) -> Array:
    """-Omega_ij / sqrt(Omega_ii Omega_jj) off the diagonal, 0 on it: (..., T, T)."""
    d = jax.lax.rsqrt(jnp.diagonal(omega, axis1=-2, axis2=-1))
    rho = -omega * d[..., :, None] * d[..., None, :]
    return rho * (1.0 - jnp.eye(omega.shape[-1], dtype=omega.dtype))


def support(omega: Array, tol: float) -> Array:
    """Off-diagonal edges of Omega: |partial correlation| > tol, bool (..., T, T)."""
    return jnp.abs(partial_correlations(omega)) > tol


def metropolis_weights(adjacency: Array) -> Array:
    """Doubly stochastic Metropolis combination matrix of a symmetric 0/1 adjacency (T, T)."""
    A = adjacency.astype(jnp.float32) * (1.0 - jnp.eye(adjacency.shape[-1]))
    deg = A.sum(-1)
    C = A / (1.0 + jnp.maximum(deg[:, None], deg[None, :]))
    return C + jnp.diag(1.0 - C.sum(-1))


def omega_step(gmrf: GMRFConfig, config: TrainConfig, count: Array, W: Array, omega: Array):
    """Omega after optimiser step ``count`` (1-based) on heads W (T, p): the Omega-step of the
    deviations of W (:meth:`GMRFConfig.deviations`) at the last step of every epoch after
    ``config.warm_start_epochs``, else ``omega`` unchanged (``lax.cond``)."""
    spe = steps_per_epoch(W.shape[0], config.task_batch)
    due = (count % spe == 0) & (count >= config.warm_start_epochs * spe)
    return jax.lax.cond(
        due,
        lambda W: omega_update(gmrf.deviations(W, omega), gmrf).astype(W.dtype),
        lambda W: omega,
        W,
    )
