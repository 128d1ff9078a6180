"""Figure 7 (App. B): tracing attack on Gaussian multitask mean estimation, simulation vs theory.

``run`` plays G games (T IN tasks and T OUT tasks each, one call to :func:`game.simulate`),
pools the scores z = <mu_hat - mu_bar, mean(B) - mu_bar> over games and writes

- ``figure7.json``: per adversary (strong, weak; OUT is the negative class) the pooled AUC with
  a 95% CI from resampling games, TPR at 1% and 0.1% FPR (empirical + CI, and exact), the
  50/75/90 percentile-threshold table (empirical vs exact), the score moments (empirical vs
  exact vs paper; :func:`metrics.group_moments` over games), and :func:`results.run_metadata`;
- ``figure7.npz``: downsampled empirical ROC curves and histogram counts of z.

Beside z, the optimal (likelihood-ratio) statistic Lambda (:mod:`mtl_tracing.gaussian.optimal`):
per adversary ``lrt`` holds the same numbers for Lambda (AUC, TPR at FPR, percentile table,
IN and OUT moments; empirical with CIs and exact), from the same games (simulated with the
sampler's ``norms``: O(T d) more normals per game for the sufficient sampler; ``--no-lrt``
skips it). The plot adds Lambda's ROC (dotted: exact).

``plot`` redraws ``figure7.png`` / ``figure7.pdf`` from those two files only (the exact curves
come from :mod:`mtl_tracing.gaussian.theory`, which is closed-form; nothing is simulated).
``headline`` and ``check`` complete the job interface of :mod:`.registry` (``mtl-tracing
figure7``, ``reproduce``, ``simulations/figure7.py``).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import numpy as np

from mtl_tracing import results
from mtl_tracing._validate import check_int
from mtl_tracing.experiments import checks, registry
from mtl_tracing.experiments.registry import Option
from mtl_tracing.threat import IN_ADVERSARIES

__all__ = [
    "DEFAULT_CONFIG",  # noqa: F822 (built on first use by __getattr__)
    "PAPER_SETTING",
    "FPR_TARGETS",
    "PERCENTILES",
    "IN_ADVERSARIES",
    "JSON_NAME",
    "NPZ_NAME",
    "STEM",
    "OPTIONS",
    "QUICK",
    "run",
    "plot",
    "load",
    "headline",
    "check",
    "config_from_json",
    "exact_roc_points",
]

#: The paper's Figure 7 setting: T = 256, d = 256, N = 8, k = 4, sbar = s = 1, mu_bar = 0
#: (``DEFAULT_CONFIG`` is this :class:`GaussianGameConfig`, built on first use).
PAPER_SETTING = dict(tasks=256, dim=256, samples=8, challenge=4, task_std=1.0, sample_std=1.0)
FPR_TARGETS = (1e-2, 1e-3)
PERCENTILES = (50.0, 75.0, 90.0)
JSON_NAME = "figure7.json"
NPZ_NAME = "figure7.npz"
STEM = "figure7"

_ROC_POINTS = 600  # stored ROC points per adversary (log + linear FPR grids)
_HIST_BINS = 120
_BOOT_RESAMPLES = 200
_LEVEL = 0.95
_GAMES = 2000

# Job interface (registry): flag -> ``run`` keyword; game fields override the paper setting.
OPTIONS = (
    Option("--games", int, f"G, games (default {_GAMES})"),
    Option(
        "--sampler",
        str,
        "game sampler: 'sufficient' (fast, exact in law) or 'faithful' (default sufficient)",
        choices=("sufficient", "faithful"),
    ),
    Option("--tasks", int, "T, IN tasks in the release mu_hat (default: paper value)"),
    Option("--dim", int, "d, data dimension (default: paper value)"),
    Option("--samples", int, "N, training samples per task (default: paper value)"),
    Option("--challenge", int, "k, challenge batch size, k <= N (default: paper value)"),
    Option("--task-std", float, "sbar, std of task means (default: paper value)"),
    Option("--sample-std", float, "s, std of samples around their task mean (default: paper)"),
    Option(
        "--resamples",
        int,
        f"bootstrap resamples of games (default {_BOOT_RESAMPLES})",
        kwarg="num_resamples",
    ),
    Option("--no-lrt", bool, "skip the optimal statistic Lambda", kwarg="no_lrt"),
)
#: ``--quick``: the paper setting with 100 games.
QUICK = {"games": 100}
_CONFIG_FIELDS = ("tasks", "dim", "samples", "challenge", "task_std", "sample_std")


@functools.cache
def _constants() -> dict:
    from mtl_tracing.gaussian.config import GaussianGameConfig

    return {"DEFAULT_CONFIG": GaussianGameConfig(**PAPER_SETTING)}


__getattr__ = registry.lazy_constants(_constants, ("DEFAULT_CONFIG",))


# ----------------------------------------------------------------------------- helpers


def _downsample_roc(fpr: np.ndarray, tpr: np.ndarray, thr: np.ndarray, n_neg: int, points: int):
    """Keep the ROC vertices that are the last ones at or below a log+linear grid of FPRs.

    ROC arrays are non-decreasing in FPR and TPR, so the last vertex with fpr <= f carries the
    best TPR at FPR f: the stored curve is exactly the empirical one evaluated on the grid.
    """
    lo = max(1.0 / max(n_neg, 1), 1e-7)
    grid = np.concatenate(
        [np.geomspace(lo, 1.0, points // 2), np.linspace(0.0, 1.0, points - points // 2)]
    )
    idx = np.searchsorted(fpr, grid, side="right") - 1
    idx = np.unique(np.clip(np.concatenate([[0, len(fpr) - 1], idx]), 0, len(fpr) - 1))
    return fpr[idx], tpr[idx], thr[idx]


def _interval(iv) -> list[float]:
    return [float(iv.low), float(iv.high)]


def _moments(z, mean, var) -> dict:
    """Empirical moments of z (G, T) by :func:`metrics.group_moments` (games are the groups)
    beside the exact ``mean`` and ``var``."""
    from mtl_tracing.metrics import group_moments

    g = group_moments(z)
    return {
        "mean": {"empirical": g.mean, "se": g.mean_se, "exact": float(mean)},
        "var": {"empirical": g.var, "se": g.var_se, "exact": float(var)},
    }


def config_from_json(payload: dict):
    """Rebuild the :class:`GaussianGameConfig` stored in a results file's metadata."""
    from mtl_tracing.gaussian.config import GaussianGameConfig

    cfg = dict(payload["metadata"]["config"])
    if isinstance(cfg.get("mean"), list):
        cfg["mean"] = tuple(cfg["mean"])
    return GaussianGameConfig(**cfg)


def load(out_dir: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(json payload, npz arrays)`` of a finished run; ``FileNotFoundError`` if missing."""
    out = Path(out_dir)
    for name in (JSON_NAME, NPZ_NAME):
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out / name} not found: run figure7 into {out} first")
    with np.load(out / NPZ_NAME) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return results.read_json(out / JSON_NAME), arrays


# ----------------------------------------------------------------------------- run


def _lrt_scores(config, sc, nm) -> dict:
    """``{adversary: (Lambda_IN, Lambda_OUT)}``, (G, T), computed in float64 from the scores
    ``sc`` and norms ``nm`` and returned in the scores' dtype (the bootstrap program of z
    serves them: same shapes and dtype)."""
    from mtl_tracing import gaussian

    dt = np.asarray(sc.out).dtype
    a2 = np.asarray(nm.alpha_sq, np.float64)[:, None]
    out = {}
    for i, adv in enumerate(IN_ADVERSARIES):
        abc = gaussian.lrt_second_order(config, adv)
        z_in, sq_in = (np.asarray(x, np.float64) for x in (sc[i], nm[1 + i]))
        z_out, sq_out = (np.asarray(x, np.float64) for x in (sc.out, nm.out_sq))
        out[adv] = (
            gaussian.lrt_statistic(z_in, a2, sq_in, *abc).astype(dt),
            gaussian.lrt_statistic(z_out, a2, sq_out, *abc).astype(dt),
        )
    return out


def _theory(config, adversary: str, statistic: str) -> dict:
    """The exact numbers of ``statistic`` ("z" or "lrt", the optimal Lambda) for one adversary."""
    from mtl_tracing import gaussian

    if statistic == "z":
        mom = gaussian.moments(config)[adversary]
        return {
            "auc": gaussian.exact_auc(config, adversary),
            "normal_auc": gaussian.normal_auc(config, adversary),
            "tpr": [gaussian.exact_tpr_at_fpr(config, adversary, t) for t in FPR_TARGETS],
            "normal_tpr": [gaussian.normal_tpr_at_fpr(config, adversary, t) for t in FPR_TARGETS],
            "percentiles": gaussian.exact_percentile_table(config, adversary, PERCENTILES),
            "moments": (mom.mean, mom.var),
            "paper": {"paper_mean": float(mom.paper_mean), "paper_var": float(mom.paper_var)},
        }
    t, n, k, sb, s = gaussian.config_args(config)
    cols = [
        gaussian.roc_theory(t, n, config.dim, k, sb, s, adversary, f, statistic="lrt")
        for f in FPR_TARGETS
    ]
    mom = gaussian.lrt_moments(config, adversary)
    return {
        "auc": gaussian.lrt_auc(config, adversary),
        "normal_auc": float(cols[0]["normal_auc"]),
        "tpr": [gaussian.lrt_tpr_at_fpr(config, adversary, f) for f in FPR_TARGETS],
        "normal_tpr": [float(c["normal_tpr"]) for c in cols],
        "percentiles": gaussian.lrt_percentile_table(config, adversary, PERCENTILES),
        "moments": mom["in"],
        "out_moments": mom["out"],
    }


def _adversary_summary(key, s_in, s_out, num_resamples, theory) -> tuple[dict, dict]:
    """Numbers (JSON) and arrays (npz) for one IN adversary against OUT; s_* of shape (G, T);
    ``theory`` from :func:`_theory`. Array names get the caller's prefix."""
    from mtl_tracing import metrics

    # One paired game bootstrap for the AUC and every TPR target: one sort, shared replicates.
    stats = (metrics.auc, *(metrics.TprAtFprStatistic(t) for t in FPR_TARGETS))
    auc_ci, *tpr_cis = metrics.grouped_bootstrap(
        key, stats, s_in, s_out, num_resamples=num_resamples, level=_LEVEL, paired=True
    )
    auc = float(auc_ci.estimate)
    roc = metrics.roc_curve(s_in, s_out)  # one sort for the curve and the TPR points
    points = metrics.tpr_at_fpr_from_roc(roc, FPR_TARGETS)
    tprs = []
    for j, (target, ci) in enumerate(zip(FPR_TARGETS, tpr_cis, strict=True)):
        tprs.append(
            {
                "target_fpr": target,
                "empirical": float(points.tpr[j]),
                "ci": _interval(ci),
                "se": float(ci.std),
                "realised_fpr": float(points.fpr[j]),
                "threshold": float(points.threshold[j]),
                "exact": float(theory["tpr"][j]),
                "normal_approx": float(theory["normal_tpr"][j]),
            }
        )
    emp = metrics.percentile_table(s_in, s_out, PERCENTILES)
    exact_table = theory["percentiles"]
    table = {
        "empirical": {
            "percentile": np.asarray(emp.percentile).tolist(),
            "threshold": np.asarray(emp.threshold).tolist(),
            "tpr": np.asarray(emp.tpr).tolist(),
            "fpr": np.asarray(emp.fpr).tolist(),
            "balanced_accuracy": np.asarray(emp.balanced_accuracy).tolist(),
        },
        "exact": results.to_jsonable(exact_table),
    }
    summary = {
        "auc": {
            "empirical": auc,
            "ci": _interval(auc_ci),
            "se": float(auc_ci.std),
            "exact": float(theory["auc"]),
            "normal_approx": float(theory["normal_auc"]),
        },
        "tpr_at_fpr": tprs,
        "percentiles": table,
        "moments": {**_moments(s_in, *theory["moments"]), **theory.get("paper", {})},
    }
    if "out_moments" in theory:  # Lambda's OUT law depends on the adversary
        summary["out_moments"] = _moments(s_out, *theory["out_moments"])
    fpr, tpr, thr = (np.asarray(a, dtype=np.float64) for a in (roc.fpr, roc.tpr, roc.thresholds))
    fpr, tpr, thr = _downsample_roc(fpr, tpr, thr, int(np.size(s_out)), _ROC_POINTS)
    return summary, {"roc_fpr": fpr, "roc_tpr": tpr, "roc_thr": thr}


def run(
    out_dir: str | os.PathLike,
    *,
    config=None,
    games: int = _GAMES,
    seed: int = 0,
    sampler: str = "sufficient",
    progress: bool = True,
    dtype=None,
    num_resamples: int = _BOOT_RESAMPLES,
    no_lrt: bool = False,
    **overrides,
) -> Path:
    """Simulate ``games`` games of ``config`` and write ``figure7.json`` + ``figure7.npz``.

    Args:
      out_dir: output folder (created).
      config: the game (T, N, d, k, sbar, s, mu_bar), a :class:`GaussianGameConfig`; default
        (None) is the paper's Figure 7 setting, :data:`DEFAULT_CONFIG`.
      games: G >= 2 independent games; each yields T scores per class (pooled: G*T per class).
      seed: seed of ``jax.random.key``; the simulation and the bootstrap use split keys.
      sampler: passed to :func:`game.simulate` (``"sufficient"`` or ``"faithful"``).
      progress: tqdm progress bar on the simulation.
      dtype: score dtype (float32 default; float64 needs ``jax_enable_x64``).
      num_resamples: bootstrap resamples of games for the CIs.
      no_lrt: skip the optimal statistic Lambda (its ``norms`` cost the sufficient sampler
        O(T d) normals per game).
      overrides: config fields to replace (``tasks``, ``dim``, ``samples``, ``challenge``,
        ``task_std``, ``sample_std``: the command's flags); None values are ignored.

    Returns:
      ``out_dir`` as a :class:`Path`.
    """
    import jax
    import jax.numpy as jnp

    from mtl_tracing import gaussian
    from mtl_tracing.gaussian import game
    from mtl_tracing.gaussian.config import GaussianGameConfig

    config = _constants()["DEFAULT_CONFIG"] if config is None else config
    if not isinstance(config, GaussianGameConfig):
        raise ValueError(f"config must be a GaussianGameConfig, got {config!r}")
    unknown = set(overrides) - set(_CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"overrides must be among {_CONFIG_FIELDS}, got {sorted(unknown)}")
    config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    games = check_int("games", games, low=2)
    seed = check_int("seed", seed, low=0)
    num_resamples = check_int("num_resamples", num_resamples, low=2)
    out = registry.check_out_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    k_sim, k_boot = jax.random.split(jax.random.key(seed))
    t0 = time.perf_counter()
    scores = game.simulate(
        k_sim, config, games=games, sampler=sampler, dtype=dtype, progress=progress,
        norms=not no_lrt,
    )  # fmt: skip
    jax.block_until_ready(scores)
    scores, norms = (scores, None) if no_lrt else scores
    timings = {"simulate": time.perf_counter() - t0}
    s_out = scores.out
    summary: dict = {"games": games, "scores_per_class": games * config.tasks, "adversaries": {}}
    arrays: dict[str, np.ndarray] = {}
    for i, adv in enumerate(IN_ADVERSARIES):
        s_in = getattr(scores, f"{adv}_in")
        t0 = time.perf_counter()
        adv_summary, adv_arrays = _adversary_summary(
            jax.random.fold_in(k_boot, i), s_in, s_out, num_resamples, _theory(config, adv, "z")
        )
        timings[f"metrics_{adv}"] = time.perf_counter() - t0
        summary["adversaries"][adv] = adv_summary
        arrays.update({f"{name}_{adv}": v for name, v in adv_arrays.items()})
    if norms is not None:
        t0 = time.perf_counter()
        lam = _lrt_scores(config, scores, norms)
        for i, adv in enumerate(IN_ADVERSARIES):
            lrt, lrt_arrays = _adversary_summary(
                jax.random.fold_in(k_boot, 2 + i), *lam[adv], num_resamples,
                _theory(config, adv, "lrt"),
            )  # fmt: skip
            summary["adversaries"][adv]["lrt"] = lrt
            arrays.update({f"{name}_{adv}_lrt": v for name, v in lrt_arrays.items()})
        timings["lrt"] = time.perf_counter() - t0

    out_mom = gaussian.moments(config)["out"]
    out_np = np.asarray(s_out, dtype=np.float64)
    summary["out_moments"] = {
        **_moments(out_np, out_mom.mean, out_mom.var),
        "paper_var": float(out_mom.paper_var),
    }

    # Histogram counts on one set of bins for the three classes (small file, exact redraw).
    pooled = {
        "strong_in": np.asarray(scores.strong_in, np.float64).ravel(),
        "weak_in": np.asarray(scores.weak_in, np.float64).ravel(),
        "out": out_np.ravel(),
    }
    lo = min(float(v.min()) for v in pooled.values())
    hi = max(float(v.max()) for v in pooled.values())
    if hi <= lo:  # degenerate tiny runs
        hi = lo + 1.0
    edges = np.linspace(lo, hi, _HIST_BINS + 1)
    arrays["hist_edges"] = edges
    for name, values in pooled.items():
        arrays[f"hist_{name}"] = np.histogram(values, bins=edges)[0].astype(np.int64)

    summary["dtype"] = str(jnp.asarray(s_out).dtype)
    summary["timings_s"] = timings  # wall seconds, compilation included
    summary["metadata"] = results.run_metadata(
        config=config, seed=seed, games=games, sampler=sampler, num_resamples=num_resamples
    )
    np.savez_compressed(out / NPZ_NAME, **arrays)
    results.write_json(out / JSON_NAME, summary)
    return out


# ----------------------------------------------------------------------------- plot


def exact_roc_points(config, *, lo: float = 5e-5, points: int = 160):
    """Points of the exact (marginal) ROC of z; see :func:`.figure7_figure.exact_roc_points`."""
    from mtl_tracing.experiments.figure7_figure import exact_roc_points as points_

    return points_(config, lo=lo, points=points)


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw Figure 7 from ``out_dir`` (no simulation): (a) ROC, (b) log-log ROC, (c) z
    histograms (:func:`.figure7_figure.draw`). Returns ``[figure7.png, figure7.pdf]``."""
    from mtl_tracing.experiments.figure7_figure import draw

    return draw(out_dir)


# ----------------------------------------------------------------------------- headline, check


def _fmt_ci(entry: dict) -> str:
    lo, hi = entry["ci"]
    return f"{entry['empirical']:.4f} [{lo:.4f}, {hi:.4f}]"


def headline(payload: dict) -> str:
    """Short text table of the headline numbers of a ``figure7.json`` payload (z, then the
    optimal statistic Lambda as ``<adversary> opt``)."""
    head = f"{'adversary':<10} {'AUC (95% CI)':<26} {'exact':>7}"
    first = next(iter(payload["adversaries"].values()))
    tpr_heads = [f"TPR@{t['target_fpr']:g} (CI) / exact" for t in first["tpr_at_fpr"]]
    lines = [head + "  " + "  ".join(f"{h:<36}" for h in tpr_heads)]
    rows = [(adv, s) for adv, s in payload["adversaries"].items()]
    rows += [(f"{adv} opt", s["lrt"]) for adv, s in payload["adversaries"].items() if "lrt" in s]
    for name, s in rows:
        row = f"{name:<10} {_fmt_ci(s['auc']):<26} {s['auc']['exact']:>7.4f}"
        for t in s["tpr_at_fpr"]:
            cell = f"{_fmt_ci(t)} / {t['exact']:.4f}"
            row += f"  {cell:<36}"
        lines.append(row)
    return "\n".join(lines)


def check(out_dir: str | os.PathLike) -> list[str]:
    """Problems in a finished run: a missing file, or a simulated AUC more than
    :data:`checks.Z` bootstrap SEs from the exact AUC."""
    names = (JSON_NAME, NPZ_NAME, f"{STEM}.png", f"{STEM}.pdf")
    problems = checks.missing_files(out_dir, names)
    if problems:
        return problems
    payload, _ = load(out_dir)
    for adv, s in payload["adversaries"].items():
        for name, entry in ((adv, s), (f"{adv} (optimal)", s.get("lrt"))):
            if entry is not None:
                a = entry["auc"]
                problems += checks.auc_near_exact(name, a["empirical"], a["exact"], a["se"])
    return problems
