"""A small Gaussian moment engine (sympy) and the per-coordinate block model of Sec. 4 / App. B.

A :class:`LinearForm` is ``const + sum_b coef[b] * Z_b`` where the ``Z_b`` are independent
standard normals named by strings ("blocks"). Expectations of products of linear forms are computed
exactly by Isserlis/Wick: expand each factor into its constant and centred parts, and for the
centred parts sum over all perfect pairings of the product of pairwise covariances
``Cov(L, M) = sum_b L.coef[b] * M.coef[b]``.

The block model (one coordinate; the d coordinates are i.i.d., see README) writes every quantity
of the game as a linear form in eight independent standard normal blocks, each one the exactly
rescaled sum of a group of the model's primitive normals (sum of m i.i.d. N(0,1) = sqrt(m) Z):

=========  ====================================================  ======================
block      group of primitive normals                            aggregate
=========  ====================================================  ======================
``G``      target task's mean noise g_tau                        g_tau = G
``SB``     target's samples in the challenge batch B (k)         sum eps = sqrt(k) SB
``SR``     target's other training samples (N - k)               sum eps = sqrt(N-k) SR
``OT``     other T - 1 IN tasks' mean noises                     sum g = sqrt(T-1) OT
``OE``     other tasks' sample noises ((T - 1) N)                sum eps = sqrt((T-1)N) OE
``W``      fresh samples of the target task (weak batch, k)      sum eps = sqrt(k) W
``GO``     OUT task's mean noise                                 g_out = GO
``EO``     OUT task's sample noises (k)                          sum eps = sqrt(k) EO
=========  ====================================================  ======================
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping

import sympy as sp

__all__ = [
    "LinearForm",
    "expect",
    "cov",
    "var",
    "SYMBOLS",
    "BLOCKS",
    "GameForms",
    "game_forms",
]


@dataclasses.dataclass(frozen=True)
class LinearForm:
    """``const + sum_b coef[b] * Z_b`` with independent standard normal blocks ``Z_b``."""

    coef: Mapping[str, sp.Expr]
    const: sp.Expr = sp.Integer(0)

    def __post_init__(self) -> None:
        if not isinstance(self.coef, Mapping):
            raise ValueError(f"coef must be a mapping block -> coefficient, got {self.coef!r}")

    def __add__(self, other: LinearForm | sp.Expr | int) -> LinearForm:
        if not isinstance(other, LinearForm):
            return LinearForm(dict(self.coef), self.const + sp.sympify(other))
        coef = dict(self.coef)
        for b, a in other.coef.items():
            coef[b] = coef.get(b, sp.Integer(0)) + a
        return LinearForm(coef, self.const + other.const)

    __radd__ = __add__

    def __neg__(self) -> LinearForm:
        return self * -1

    def __sub__(self, other: LinearForm | sp.Expr | int) -> LinearForm:
        return self + (-other if isinstance(other, LinearForm) else -sp.sympify(other))

    def __mul__(self, scalar: sp.Expr | int) -> LinearForm:
        if isinstance(scalar, LinearForm):
            raise ValueError("a product of linear forms is not linear; use expect([...])")
        s = sp.sympify(scalar)
        return LinearForm({b: s * a for b, a in self.coef.items()}, s * self.const)

    __rmul__ = __mul__

    def centred(self) -> LinearForm:
        return LinearForm(dict(self.coef), sp.Integer(0))


def cov(x: LinearForm, y: LinearForm) -> sp.Expr:
    """Cov(x, y) = sum_b x_b y_b (blocks are independent, unit variance)."""
    return sp.Add(*[a * y.coef[b] for b, a in x.coef.items() if b in y.coef])


def var(x: LinearForm) -> sp.Expr:
    return cov(x, x)


def _centred_moment(forms: list[LinearForm]) -> sp.Expr:
    """E[prod L_m] for centred jointly normal L_m: sum over perfect pairings (Isserlis)."""
    if not forms:
        return sp.Integer(1)
    if len(forms) % 2:
        return sp.Integer(0)
    first, rest = forms[0], forms[1:]
    total = sp.Integer(0)
    for j, partner in enumerate(rest):
        total += cov(first, partner) * _centred_moment(rest[:j] + rest[j + 1 :])
    return total


def expect(forms: list[LinearForm]) -> sp.Expr:
    """E[prod_m (c_m + L_m)] = sum_S prod_{m not in S} c_m * E[prod_{m in S} L_m] (S: subsets)."""
    if not all(isinstance(f, LinearForm) for f in forms):
        raise ValueError(f"forms must be LinearForm instances, got {[type(f) for f in forms]}")
    n = len(forms)
    total = sp.Integer(0)
    for mask in itertools.product((False, True), repeat=n):
        consts = sp.Mul(*[f.const for f, m in zip(forms, mask, strict=True) if not m])
        if consts == 0:
            continue
        total += consts * _centred_moment(
            [f.centred() for f, m in zip(forms, mask, strict=True) if m]
        )
    return sp.expand(total)


# Paper symbols: T, N, k, d positive integers; sbar, s positive; mu_bar real.
T, N, k, d = sp.symbols("T N k d", positive=True, integer=True)
sbar, s = sp.symbols("sbar s", positive=True)
mu_bar = sp.Symbol("mu_bar", real=True)
SYMBOLS = {"T": T, "N": N, "k": k, "d": d, "sbar": sbar, "s": s, "mu_bar": mu_bar}
BLOCKS = ("G", "SB", "SR", "OT", "OE", "W", "GO", "EO")


@dataclasses.dataclass(frozen=True)
class GameForms:
    """Per-coordinate linear forms of the game (raw, i.e. including mu_bar)."""

    mu_hat: LinearForm  # released multitask mean (one coordinate)
    mu_hat_target: LinearForm  # (1/(TN)) sum_j X_{tau,j}: the target task's part of mu_hat
    mu_hat_others: LinearForm  # (1/(TN)) sum_{i != tau} sum_j X_{i,j}
    batch: dict[str, LinearForm]  # adversary -> mean(B): "strong", "weak", "out"
    mu_tau: LinearForm  # the target task's mean mu_tau


def game_forms(suffix: str = "") -> GameForms:
    """Build the block representation; ``suffix`` renames blocks (e.g. per coordinate)."""

    def z(name: str) -> LinearForm:
        return LinearForm({name + suffix: sp.Integer(1)})

    target = (
        mu_bar * sp.Integer(1) * N
        + z("G") * (N * sbar)
        + z("SB") * (s * sp.sqrt(k))
        + z("SR") * (s * sp.sqrt(N - k))
    ) * (1 / (T * N))
    others = (
        (T - 1) * N * mu_bar
        + z("OT") * (N * sbar * sp.sqrt(T - 1))
        + z("OE") * (s * sp.sqrt((T - 1) * N))
    ) * (1 / (T * N))
    strong = z("G") * sbar + z("SB") * (s / sp.sqrt(k)) + mu_bar
    weak = z("G") * sbar + z("W") * (s / sp.sqrt(k)) + mu_bar
    out = z("GO") * sbar + z("EO") * (s / sp.sqrt(k)) + mu_bar
    return GameForms(
        mu_hat=target + others,
        mu_hat_target=target,
        mu_hat_others=others,
        batch={"strong": strong, "weak": weak, "out": out},
        mu_tau=z("G") * sbar + mu_bar,
    )
