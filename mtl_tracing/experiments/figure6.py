"""Figure 6 (App. A.8): attack AUC on synthetic MTL data vs embedding dim, samples, tasks.

Three panels, one field varied at a time around a default config: ``embed_dim`` (m),
``samples`` (N, training samples per task) and ``tasks`` (T). Every grid point trains R runs
(App. A.8: 4) and runs both attacks (the paper plots the coordinate-wise variance attack; the
inner-product attack is included) for the strong and weak adversaries with k = 8 samples per
challenge (App. A.8; the base k is ``config.attack.strong_k`` / ``weak_k``) and 64 trials. When
N < k the strong challenge uses k = N (recorded as ``k`` and ``k_clamped`` in the cell).
Grid point (panel p, value v) uses key ``fold_in(key(seed), 100 p + v_idx)``; a grid point
equal to one computed earlier (the default appears in every panel) is reused.

Default training is 100 epochs (not 300) so the default grid runs in well under 15 minutes on a
2-core CPU; held-out accuracy is recorded per cell.

Files: ``figure6.json`` (every cell's summary, metadata), ``figure6.npz`` (per-run AUCs per
panel), ``figure6.png`` / ``.pdf`` from :func:`plot`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting, results
from mtl_tracing._validate import check_int
from mtl_tracing.experiments import checks, registry

__all__ = [
    "PANELS",
    "DEFAULT_CONFIG",  # noqa: F822 (built on first use by __getattr__)
    "DEFAULT_GRID",
    "QUICK_CONFIG",  # noqa: F822
    "QUICK_GRID",
    "JSON_NAME",
    "NPZ_NAME",
    "STEM",
    "OPTIONS",
    "QUICK",  # noqa: F822
    "run",
    "plot",
    "load",
    "headline",
    "check",
]

PANELS = ("embed_dim", "samples", "tasks")
DEFAULT_GRID = {"embed_dim": (4, 16, 64), "samples": (4, 16, 64), "tasks": (16, 64, 256)}
QUICK_GRID = {"embed_dim": (4, 8), "samples": (4, 8), "tasks": (8, 16)}
JSON_NAME = "figure6.json"
NPZ_NAME = "figure6.npz"
STEM = "figure6"
OPTIONS = ()


@functools.cache
def _constants() -> dict:
    from mtl_tracing.experiments import pipeline as mc

    default = mc.DEFAULT_CONFIG.replace(
        train=mc.DEFAULT_CONFIG.train.replace(epochs=100, warm_start_epochs=10)
    )
    return {
        "DEFAULT_CONFIG": default,
        "QUICK_CONFIG": mc.QUICK_CONFIG,
        # ``--quick``: the pipeline's tiny config on a 2-value grid per panel.
        "QUICK": {"config": mc.QUICK_CONFIG, "grid": QUICK_GRID},
    }


__getattr__ = registry.lazy_constants(_constants, ("DEFAULT_CONFIG", "QUICK_CONFIG", "QUICK"))
_LABELS = {
    "embed_dim": "embedding dimension $m$",
    "samples": "samples per task $N$",
    "tasks": "number of tasks $T$",
}


def _cell_config(base, field: str, value: int):
    data = base.data.replace(**{field: value})
    attack = base.attack.replace(
        strong_k=min(base.attack.strong_k, data.samples),
        weak_k=min(base.attack.weak_k, data.holdout),
    )
    train = base.train
    if train.task_batch > data.tasks:
        train = train.replace(task_batch=data.tasks)
    return base.replace(data=data, attack=attack, train=train)


def _check_grid(grid: dict) -> dict:
    if not isinstance(grid, dict) or set(grid) - set(PANELS) or not grid:
        raise ValueError(f"grid must map a subset of {PANELS} to values, got {grid!r}")
    out = {}
    for field, values in grid.items():
        low = 2 if field == "samples" else (2 if field == "tasks" else 1)
        vals = tuple(check_int(f"grid[{field!r}]", v, low=low) for v in values)
        if not vals:
            raise ValueError(f"grid[{field!r}] must not be empty, got {values!r}")
        out[field] = vals
    return out


def run(
    out_dir: str | os.PathLike,
    *,
    config=None,
    grid: dict | None = None,
    seed: int = 0,
    progress: bool = True,
    dtype=None,
) -> Path:
    """Train and attack every grid point; write ``figure6.json`` and ``figure6.npz``.

    Args:
      out_dir: output folder (created).
      config: the default point, a ``PipelineConfig`` (data, training, attack settings, R runs);
        default (None) :data:`DEFAULT_CONFIG` (100 epochs).
      grid: ``{field: values}`` for fields in ``PANELS`` (default ``DEFAULT_GRID``).
      seed: root seed; cells use ``fold_in`` keys.
      progress: tqdm bars over training epochs.
      dtype: float32 (default) or float64 (needs x64).
    """
    import jax

    from mtl_tracing.experiments import pipeline as mc
    from mtl_tracing.experiments.pipeline import PipelineConfig

    grid = _check_grid(DEFAULT_GRID if grid is None else grid)
    config, seed, out = mc.start_job(out_dir, config, _constants()["DEFAULT_CONFIG"], seed)
    root = jax.random.key(seed)
    done: dict[PipelineConfig, dict] = {}
    panels: dict = {}
    arrays: dict[str, np.ndarray] = {}
    for p, field in enumerate(grid):  # loop over figure panels and grid points (not trials)
        cells = []
        for v, value in enumerate(grid[field]):
            cfg = _cell_config(config, field, value)
            if cfg not in done:
                if progress:
                    print(f"[figure6] {field}={value}", flush=True)
                res = mc.run_pipeline(
                    jax.random.fold_in(root, 100 * p + v), cfg, dtype=dtype, progress=progress
                )
                done[cfg] = {
                    "field": field,
                    "value": value,
                    "data": cfg.data.to_dict(),
                    "k": res.summary["k"],
                    "k_clamped": cfg.attack != config.attack,
                    **{
                        k: res.summary[k] for k in ("attacks", "heldout_accuracy", "train_accuracy")
                    },
                }
            cells.append(done[cfg])
        panels[field] = {"values": list(grid[field]), "cells": cells}
        arrays[f"{field}_values"] = np.asarray(grid[field])
        for name in mc.ATTACKS:
            for adv in mc.ADVERSARIES:
                arrays[f"{field}_{name}_{adv}_auc"] = np.asarray(
                    [c["attacks"][name][adv]["auc_per_run"] for c in cells]
                )
    payload = {
        "panels": panels,
        "challenge": {"strong": config.attack.strong_k, "weak": config.attack.weak_k},
        "metadata": results.run_metadata(config=config, seed=seed, grid=grid),
    }
    return results.save_outputs(out, JSON_NAME, payload, NPZ_NAME, arrays)


#: ``load(out_dir) -> (json payload, npz arrays or None)`` of a finished run.
load = results.outputs_loader(JSON_NAME, NPZ_NAME)


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw Figure 6 from ``out_dir`` (no training): AUC (mean over runs, t-CI) vs each field.

    Rows: variance attack (the paper's Fig. 6), inner-product attack. Returns [png, pdf].
    """
    from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

    payload, _ = load(out_dir)
    panels = payload["panels"]
    runs = payload["metadata"]["config"]["runs"]
    colors = plotting.ADVERSARY_COLORS
    attacks = list(next(iter(panels.values()))["cells"][0]["attacks"])
    titles = {name: plotting.attack_style(name)[0] for name in attacks}
    with plotting.style():
        fig, axes = plotting.new_figure(len(panels), len(attacks), width=3.0, height=2.6)
        for col, (field, panel) in enumerate(panels.items()):
            xs = np.asarray(panel["values"], dtype=float)
            for row, name in enumerate(attacks):
                ax = axes[row][col]
                for adv in ADVERSARIES:
                    cells = [c["attacks"][name][adv] for c in panel["cells"]]
                    mean = np.array([c["auc_mean"] for c in cells])
                    # AUC lies in [0, 1]: clip the t-interval (wide for few runs) to it.
                    lo = np.clip([c["auc_ci_over_runs"][0] for c in cells], 0.0, 1.0)
                    hi = np.clip([c["auc_ci_over_runs"][1] for c in cells], 0.0, 1.0)
                    ax.errorbar(
                        xs,
                        mean,
                        yerr=[mean - lo, hi - mean],
                        color=colors[adv],
                        marker="o",
                        markersize=3,
                        capsize=2,
                        label=adv,
                    )
                ax.axhline(0.5, color="0.5", linestyle=":", linewidth=1.0, label="chance")
                if len(xs) > 1 and xs.min() > 0:
                    ax.set_xscale("log", base=2)
                ax.set_xticks(xs, [f"{int(x)}" for x in xs])
                ax.set(
                    xlabel=_LABELS[field],
                    ylabel="AUC",
                    ylim=(0.0, 1.02),
                    title=f"{titles[name]} vs {field}",
                )
                if row == 0 and col == 0:
                    ax.legend(loc="best")
        fig.suptitle(
            f"Ablations on synthetic data (App. A.8): mean AUC over {runs} runs, 95% t-interval"
        )
        return plotting.save_figure(fig, out_dir, STEM)


def _cells(payload: dict) -> list[tuple[str, dict]]:
    return [
        (f"{field}={v}", c["attacks"])
        for field, panel in payload["panels"].items()
        for v, c in zip(panel["values"], panel["cells"], strict=True)
    ]


def headline(payload: dict) -> str:
    """One line per grid point: mean AUC over runs of both attacks and adversaries."""
    lines = []
    for label, a in _cells(payload):
        lines.append(
            f"{label}: variance AUC strong {a['variance']['strong']['auc_mean']:.3f} "
            f"weak {a['variance']['weak']['auc_mean']:.3f}; inner product strong "
            f"{a['inner_product']['strong']['auc_mean']:.3f} "
            f"weak {a['inner_product']['weak']['auc_mean']:.3f}"
        )
    return "\n".join(lines)


def check(out_dir: str | os.PathLike) -> list[str]:
    """A missing file, or an AUC that is not a number in [0, 1] inside its own CI."""
    files = (JSON_NAME, NPZ_NAME, f"{STEM}.png", f"{STEM}.pdf")
    return checks.check_attack_output(out_dir, files, lambda out: _cells(load(out)[0]))
