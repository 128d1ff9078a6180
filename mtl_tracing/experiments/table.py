"""Percentile-threshold table (App. A.7, layout of Tables 1-2) on the default synthetic config.

Rows: attack x access {strong, weak}; columns: for the 50th/75th/90th percentile thresholds of
the pooled scores, (TPR, FPR) and balanced accuracy; plus the AUC with its task-bootstrap CI.
Files: ``table.json`` (rows, pipeline summary, metadata) and ``table.md`` (rendered by
:func:`plot` from the JSON, so it can be redrawn without re-running).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

from mtl_tracing import results
from mtl_tracing._validate import check_int
from mtl_tracing.experiments import pipeline as mc
from mtl_tracing.experiments.pipeline import PipelineConfig

__all__ = [
    "DEFAULT_CONFIG",
    "QUICK_CONFIG",
    "JSON_NAME",
    "MD_NAME",
    "run",
    "plot",
    "load",
    "render_markdown",
]

DEFAULT_CONFIG = mc.DEFAULT_CONFIG
QUICK_CONFIG = mc.QUICK_CONFIG
JSON_NAME = "table.json"
MD_NAME = "table.md"


def _rows(summary: dict) -> list[dict]:
    rows = []
    for name in mc.ATTACKS:
        for adv in mc.ADVERSARIES:
            s = summary["attacks"][name][adv]
            t = s["percentile_table"]
            rows.append(
                {
                    "attack": name,
                    "access": adv,
                    "auc": s["auc"],
                    "auc_ci": s["auc_ci"],
                    "percentiles": [
                        {
                            "percentile": t["percentile"][i],
                            "threshold": t["threshold"][i],
                            "tpr": t["tpr"][i],
                            "fpr": t["fpr"][i],
                            "balanced_accuracy": t["balanced_accuracy"][i],
                        }
                        for i in range(len(t["percentile"]))
                    ],
                }
            )
    return rows


def run(
    out_dir: str | os.PathLike,
    *,
    config: PipelineConfig = DEFAULT_CONFIG,
    seed: int = 0,
    progress: bool = True,
    dtype=None,
) -> Path:
    """Train R runs of ``config``, attack, write ``table.json`` (then :func:`plot` writes md)."""
    if not isinstance(config, PipelineConfig):
        raise ValueError(f"config must be a PipelineConfig, got {config!r}")
    seed = check_int("seed", seed, low=0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = mc.run_pipeline(jax.random.key(seed), config, dtype=dtype, progress=progress)
    payload = {
        "rows": _rows(res.summary),
        **res.summary,
        "metadata": results.run_metadata(config=config, seed=seed),
    }
    results.write_json(out / JSON_NAME, payload)
    return out


def load(out_dir: str | os.PathLike) -> dict:
    """The ``table.json`` payload of a finished run."""
    return mc.load(out_dir, JSON_NAME)[0]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render_markdown(payload: dict) -> str:
    """Tables 1-2 layout: rows attack x access, per percentile (TPR, FPR) and Acc."""
    rows = payload["rows"]
    pcts = [p["percentile"] for p in rows[0]["percentiles"]]
    cfg = payload["metadata"]["config"]
    d, a = cfg["data"], cfg["attack"]
    head = (
        "| Attack | Access | AUC (95% CI) | "
        + " | ".join(f"{p:g}th (TPR, FPR) | {p:g}th Acc." for p in pcts)
        + " |"
    )
    sep = "|" + "---|" * (3 + 2 * len(pcts))
    lines = [
        "(TPR, FPR) and balanced accuracy at black-box percentile thresholds "
        f"(synthetic MTL: T={d['tasks']}, d={d['dim']}, m={d['embed_dim']}, N={d['samples']}; "
        f"k={payload['k']['strong']} strong / {payload['k']['weak']} weak, "
        f"{a['trials']} trials, whiten={a['whiten']}, {cfg['runs']} runs; "
        f"held-out IN accuracy {payload['heldout_accuracy']['mean']:.3f})",
        "",
        head,
        sep,
    ]
    for r in rows:
        cells = [
            r["attack"].replace("_", " "),
            r["access"],
            f"{r['auc']:.3f} [{r['auc_ci'][0]:.3f}, {r['auc_ci'][1]:.3f}]",
        ]
        for p in r["percentiles"]:
            cells += [f"({_pct(p['tpr'])}, {_pct(p['fpr'])})", _pct(p["balanced_accuracy"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """(Re)write ``table.md`` from ``table.json`` (no training); returns ``[table.md]``."""
    path = Path(out_dir) / MD_NAME
    path.write_text(render_markdown(load(out_dir)))
    return [path]
