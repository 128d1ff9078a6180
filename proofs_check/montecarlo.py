"""Monte Carlo checks of the claims about expectations, from the raw model (seeded NumPy).

The simulator draws every task mean and every sample (no block aggregation), so it checks the
symbolic engine's aggregation too. Games are independent; each game yields one score per
adversary for the target task tau = 0, so the G scores of an adversary are i.i.d.

Tolerance: accept when |estimate - exact| <= Z_ACCEPT * se, se from the samples (CLT). For one
check the two-sided failure probability is 2 (1 - Phi(4.5)) ~ 6.8e-6; over the < 100 checks of a
run the family-wise probability is < 7e-4 (union bound). Power: at the same sample size, named
neighbouring wrong formulas must give |estimate - wrong| > Z_ACCEPT * se.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from proofs_check.records import Check

__all__ = [
    "Z_ACCEPT",
    "Point",
    "FAST_POINTS",
    "HEAVY_POINTS",
    "simulate_scores",
    "mean_and_se",
    "var_and_se",
    "ratio_and_se",
    "exact_values",
    "monte_carlo_checks",
]

Z_ACCEPT = 4.5


@dataclasses.dataclass(frozen=True)
class Point:
    """One parameter point (paper symbols: T, N, d, k, sbar, s, mu_bar)."""

    T: int
    N: int
    d: int
    k: int
    sbar: float
    s: float
    mu_bar: float = 0.0

    def __post_init__(self) -> None:
        for name in ("T", "N", "d", "k"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.k > self.N:
            raise ValueError(f"k must be <= N = {self.N}, got {self.k}")
        for name in ("sbar", "s"):
            v = getattr(self, name)
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive finite float, got {v!r}")
        if not np.isfinite(self.mu_bar):
            raise ValueError(f"mu_bar must be finite, got {self.mu_bar!r}")


# T = 1, k = N is where Var_IN / Var_OUT = 2 (strong): the paper's "~" and a 3 c^2 are rejected.
FAST_POINTS = (
    Point(T=1, N=3, d=2, k=3, sbar=1.0, s=1.0, mu_bar=0.5),
    Point(T=2, N=4, d=3, k=2, sbar=0.5, s=1.5, mu_bar=-1.0),
    Point(T=4, N=2, d=2, k=1, sbar=1.0, s=0.7, mu_bar=0.0),
)
HEAVY_POINTS = FAST_POINTS + (
    Point(T=1, N=1, d=1, k=1, sbar=0.3, s=2.0, mu_bar=2.0),
    Point(T=3, N=5, d=4, k=5, sbar=1.2, s=0.5, mu_bar=0.0),
    Point(T=8, N=3, d=2, k=2, sbar=2.0, s=1.0, mu_bar=1.0),
)


def simulate_scores(rng: np.random.Generator, p: Point, games: int) -> dict[str, np.ndarray]:
    """Raw-model draws: z per adversary, shape (games,), and alpha = mu_hat - mu_bar, (games, d)."""
    if games < 2:
        raise ValueError(f"games must be >= 2, got {games}")
    mu = p.mu_bar + p.sbar * rng.standard_normal((games, p.T, p.d))  # task means mu_i
    x = mu[:, :, None, :] + p.s * rng.standard_normal((games, p.T, p.N, p.d))  # X_ij
    mu_hat = x.mean(axis=(1, 2))  # (games, d)
    # strong: k of the target's N samples, uniformly without replacement
    idx = np.argsort(rng.random((games, p.N)), axis=1)[:, : p.k]
    strong = np.take_along_axis(x[:, 0], idx[:, :, None], axis=1).mean(axis=1)
    weak = mu[:, 0] + p.s * rng.standard_normal((games, p.k, p.d)).mean(axis=1)
    mu_out = p.mu_bar + p.sbar * rng.standard_normal((games, p.d))
    out = mu_out + p.s * rng.standard_normal((games, p.k, p.d)).mean(axis=1)
    alpha = mu_hat - p.mu_bar
    z = {
        name: np.sum(alpha * (b - p.mu_bar), axis=1)
        for name, b in (("strong", strong), ("weak", weak), ("out", out))
    }
    z["alpha"] = alpha
    z["beta_strong"] = strong - p.mu_bar
    return z


def mean_and_se(x: np.ndarray) -> tuple[float, float]:
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(x.size))


def var_and_se(x: np.ndarray) -> tuple[float, float]:
    """Sample variance and its delta-method SE sqrt(Var[(x - xbar)^2] / n)."""
    u = (x - x.mean()) ** 2
    return float(np.var(x, ddof=1)), float(np.std(u, ddof=1) / np.sqrt(x.size))


def ratio_and_se(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Var x / Var y for paired (correlated) samples, delta-method SE."""
    vx, vy = np.var(x), np.var(y)
    r = vx / vy
    infl = ((x - x.mean()) ** 2 - vx - r * ((y - y.mean()) ** 2 - vy)) / vy
    return float(r), float(np.std(infl, ddof=1) / np.sqrt(x.size))


def exact_values(p: Point) -> dict[str, float]:
    """Exact per-adversary A, B, c and the moments of z, plus wrong neighbours (float64)."""
    A = (p.sbar**2 + p.s**2 / p.N) / p.T
    B = p.sbar**2 + p.s**2 / p.k
    c = {"strong": A, "weak": p.sbar**2 / p.T, "out": 0.0}
    return {"A": A, "B": B, **{f"c_{a}": v for a, v in c.items()}}


def _judge(est: float, se: float, exact: float, reject: Mapping[str, float]) -> tuple[bool, str]:
    if not (np.isfinite(est) and np.isfinite(se) and se > 0):
        return False, f"non-finite estimate {est} +- {se}"
    accept = abs(est - exact) <= Z_ACCEPT * se
    rejected = {n: abs(est - v) > Z_ACCEPT * se for n, v in reject.items()}
    note = f"|est-exact|/se = {abs(est - exact) / se:.2f}"
    if reject:
        note += "; rejects " + ", ".join(
            f"{n} ({abs(est - v) / se:.1f} se)" + ("" if ok else " NOT REJECTED")
            for (n, v), ok in zip(reject.items(), rejected.values(), strict=True)
        )
    return accept and all(rejected.values()), note


def monte_carlo_checks(*, seed: int, heavy: bool = False) -> list[Check]:
    """Check E z, Var z, Var_IN/Var_OUT and Cov(mu_hat) at each point; power in the same rows."""
    points = HEAVY_POINTS if heavy else FAST_POINTS
    games = 200_000 if heavy else 40_000
    rows = []
    root = np.random.SeedSequence(seed)
    for i, (p, ss) in enumerate(zip(points, root.spawn(len(points)), strict=True)):
        z = simulate_scores(np.random.default_rng(ss), p, games)
        ex = exact_values(p)
        A, B, d = ex["A"], ex["B"], p.d
        tag = f"T={p.T},N={p.N},d={p.d},k={p.k},sbar={p.sbar},s={p.s},mu={p.mu_bar}"
        first = i == 0  # T = 1, k = N: designated power point

        def row(
            id_,
            statement,
            paper,
            exact,
            est_se,
            reject,
            verdict="exact",
            loc="Thm 4.1-4.3",
            _i=i,
            _tag=tag,
        ):
            ok, note = _judge(*est_se, exact, reject)
            rows.append(
                Check(
                    id=f"MC{_i}.{id_}",
                    location=loc,
                    statement=f"{statement} @ {_tag}",
                    paper=f"{paper:.5g}",
                    exact=f"{exact:.5g}",
                    verdict=verdict,
                    passed=ok,
                    method="monte carlo",
                    mc=f"{est_se[0]:.5g} +- {est_se[1]:.2g}",
                    note=note,
                )
            )

        alpha = z["alpha"].ravel()  # coordinates i.i.d.: pooled over games and coordinates
        row(
            "cov",
            "Var(mu_hat)_ii",
            A,
            A,
            var_and_se(z["alpha"][:, 0]),
            {"sbar^2/T (no s^2/(NT))": p.sbar**2 / p.T},
            loc="Sec. 4",
        )
        row("Emu", "E[mu_hat] - mu_bar", 0.0, 0.0, mean_and_se(alpha), {}, loc="Sec. 4")
        paper_mean = {"strong": d * A, "weak": d * p.sbar**2 / p.T, "out": 0.0}
        wrong_mean = {
            "strong": {"missing s^2/N": d * p.sbar**2 / p.T},
            "weak": {"strong's s^2/(NT) added": d * A},
            "out": {},
        }
        for adv in ("strong", "weak", "out"):
            c = ex[f"c_{adv}"]
            row(
                f"E{adv}",
                f"E z ({adv})",
                paper_mean[adv],
                d * c,
                mean_and_se(z[adv]),
                wrong_mean[adv],
            )
            exact_var = d * (A * B + c**2)
            reject = {}
            if first and adv == "strong":
                reject = {
                    "Var_IN = Var_OUT (paper's ~)": d * A * B,
                    "3 c^2 instead of c^2": d * (A * B + 3 * c**2),
                }
            elif adv == "out":
                reject = {
                    "missing sbar^2 s^2 term": d
                    * (A * B - (p.sbar**2 * p.s**2) * (p.k + p.N) / (p.k * p.N * p.T))
                }
            verdict = "exact" if adv == "out" else "approximate"
            row(
                f"V{adv}",
                f"Var z ({adv}); paper: d A B"
                + (f", error d c^2 = {d * c**2:.3g}" if adv != "out" else ""),
                d * A * B,
                exact_var,
                var_and_se(z[adv]),
                reject,
                verdict=verdict,
            )
        for adv in ("strong", "weak"):
            c = ex[f"c_{adv}"]
            reject = (
                {"ratio 1 (Var_IN = Var_OUT)": 1.0, "ratio 3 (paper bound)": 3.0}
                if (first and adv == "strong")
                else {"ratio 3 (paper bound)": 3.0}
            )
            row(
                f"R{adv}",
                f"Var z_IN/Var z_OUT ({adv}) = 1 + rho^2 <= 2",
                3.0,
                1 + c**2 / (A * B),
                ratio_and_se(z[adv], z["out"]),
                reject,
                verdict="bound",
            )
        # C-S step of Thm 4.3: E[a^2 b^2] = AB + 2c^2 (Isserlis), below sqrt(E a^4 E b^4) = 3AB.
        c = ex["c_strong"]
        a2b2 = (z["alpha"] * z["beta_strong"]).ravel() ** 2  # coordinates i.i.d., independent
        row(
            "CS",
            "E[alpha_i^2 beta_i^2] (strong) = AB + 2c^2 <= 3AB",
            3 * A * B,
            A * B + 2 * c**2,
            mean_and_se(a2b2),
            # at T = 1, k = N (point 0) alpha = beta and C-S is tight, so power is shown at point 1
            {"3AB (C-S as equality)": 3 * A * B, "AB (independence)": A * B} if i == 1 else {},
            verdict="bound",
            loc="B.2 Thm 4.3 proof",
        )
    return rows
