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

The per-adversary numbers (empirical against exact) are :mod:`.figure7_summary`'s. ``plot``
redraws ``figure7.png`` / ``figure7.pdf`` from those two files only (:mod:`.figure7_figure`;
the exact curves come from the closed-form theory of :mod:`mtl_tracing.gaussian`: nothing is
simulated). ``headline`` and ``check`` complete the job interface of :mod:`.registry`
(``mtl-tracing figure7``, ``reproduce``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from mtl_tracing import results
from mtl_tracing._validate import check_int
from mtl_tracing.experiments import checks, figure7_figure, registry
from mtl_tracing.experiments.figure7_figure import config_from_json, exact_roc_points
from mtl_tracing.experiments.figure7_summary import (
    FPR_TARGETS,
    PERCENTILES,
    adversary_summary,
    lrt_scores,
    moments_block,
    theory,
)
from mtl_tracing.experiments.registry import Option
from mtl_tracing.gaussian.config import GaussianGameConfig
from mtl_tracing.threat import IN_ADVERSARIES

__all__ = [
    "DEFAULT_CONFIG",
    "PAPER_SETTING",
    "FPR_TARGETS",
    "PERCENTILES",
    "IN_ADVERSARIES",
    "JSON_NAME",
    "NPZ_NAME",
    "STEM",
    "config_from_json",
    "exact_roc_points",
    *registry.JOB_INTERFACE,
]

#: The paper's Figure 7 setting: T = 256, d = 256, N = 8, k = 4, sbar = s = 1, mu_bar = 0
#: (``DEFAULT_CONFIG`` is this :class:`GaussianGameConfig`, its defaults).
PAPER_SETTING = dict(tasks=256, dim=256, samples=8, challenge=4, task_std=1.0, sample_std=1.0)
JSON_NAME = "figure7.json"
NPZ_NAME = "figure7.npz"
STEM = "figure7"

_HIST_BINS = 120
_BOOT_RESAMPLES = 200
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


DEFAULT_CONFIG = GaussianGameConfig(**PAPER_SETTING)


# ----------------------------------------------------------------------------- helpers


load = results.outputs_loader(JSON_NAME, NPZ_NAME)


# ----------------------------------------------------------------------------- run


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

    config = DEFAULT_CONFIG if config is None else config
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
        adv_summary, adv_arrays = adversary_summary(
            jax.random.fold_in(k_boot, i), s_in, s_out, num_resamples, theory(config, adv, "z")
        )
        timings[f"metrics_{adv}"] = time.perf_counter() - t0
        summary["adversaries"][adv] = adv_summary
        arrays.update({f"{name}_{adv}": v for name, v in adv_arrays.items()})
    if norms is not None:
        t0 = time.perf_counter()
        lam = lrt_scores(config, scores, norms)
        for i, adv in enumerate(IN_ADVERSARIES):
            lrt, lrt_arrays = adversary_summary(
                jax.random.fold_in(k_boot, 2 + i), *lam[adv], num_resamples,
                theory(config, adv, "lrt"),
            )  # fmt: skip
            summary["adversaries"][adv]["lrt"] = lrt
            arrays.update({f"{name}_{adv}_lrt": v for name, v in lrt_arrays.items()})
        timings["lrt"] = time.perf_counter() - t0

    out_mom = gaussian.moments(config)["out"]
    out_np = np.asarray(s_out, dtype=np.float64)
    summary["out_moments"] = {
        **moments_block(out_np, out_mom.mean, out_mom.var),
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
    return results.save_outputs(out, JSON_NAME, summary, NPZ_NAME, arrays)


# ----------------------------------------------------------------------------- plot


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw Figure 7 from ``out_dir`` (no simulation): (a) ROC, (b) log-log ROC, (c) z
    histograms (:func:`.figure7_figure.draw`). Returns ``[figure7.png, figure7.pdf]``."""
    payload, arrays = load(out_dir)
    return figure7_figure.draw(payload, arrays, out_dir, STEM)


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
