"""Percentile-threshold table (App. A.7, layout of Tables 1-2) on the default synthetic config.

Rows: attack x access {strong, weak}; columns: for the 50th/75th/90th percentile thresholds of
the pooled scores, (TPR, FPR) and balanced accuracy; plus the AUC with its task-bootstrap CI.
Files: ``table.json`` (rows, pipeline summary, metadata) and ``table.md`` (rendered by
:func:`plot` from the JSON, so it can be redrawn without re-running).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from mtl_tracing import results
from mtl_tracing.experiments import checks, registry

__all__ = [
    "DEFAULT_CONFIG",  # noqa: F822 (built on first use by __getattr__)
    "QUICK_CONFIG",  # noqa: F822
    "JSON_NAME",
    "MD_NAME",
    "OPTIONS",
    "QUICK",  # noqa: F822
    "run",
    "plot",
    "load",
    "headline",
    "check",
    "render_markdown",
    "attack_rows",
]

JSON_NAME = "table.json"
MD_NAME = "table.md"
OPTIONS = ()


@functools.cache
def _constants() -> dict:
    from mtl_tracing.experiments import pipeline as mc

    # ``--quick``: the pipeline's tiny config.
    return {
        "DEFAULT_CONFIG": mc.DEFAULT_CONFIG,
        "QUICK_CONFIG": mc.QUICK_CONFIG,
        "QUICK": {"config": mc.QUICK_CONFIG},
    }


__getattr__ = registry.lazy_constants(_constants, ("DEFAULT_CONFIG", "QUICK_CONFIG", "QUICK"))


def attack_rows(attacks: dict, *, tpr_at_fpr: bool = False) -> list[dict]:
    """Table rows, attack-major then adversary, from ``summary["attacks"]`` of
    :func:`mtl_tracing.experiments.pipeline.summarize`: AUC with CI and the percentile table
    (threshold, TPR, FPR, balanced accuracy); ``tpr_at_fpr`` adds the (target FPR, TPR) pairs.
    Shared with :mod:`mtl_tracing.experiments.real`."""
    from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

    keys = ("percentile", "threshold", "tpr", "fpr", "balanced_accuracy")
    rows = []
    for name in attacks:
        for adv in ADVERSARIES:
            s = attacks[name][adv]
            t = s["percentile_table"]
            row = {"attack": name, "access": adv, "auc": s["auc"], "auc_ci": s["auc_ci"]}
            if tpr_at_fpr:
                row["tpr_at_fpr"] = [(r["target_fpr"], r["tpr"]) for r in s["tpr_at_fpr"]]
            row["percentiles"] = [{k: t[k][i] for k in keys} for i in range(len(t["percentile"]))]
            rows.append(row)
    return rows


def _rows(summary: dict) -> list[dict]:
    return attack_rows(summary["attacks"])


def _write(out: Path, res, config, seed: int) -> Path:
    """The table rows of a pipeline result: ``table.json``."""
    payload = {
        "rows": _rows(res.summary),
        **res.summary,
        "metadata": results.run_metadata(config=config, seed=seed),
    }
    results.write_json(out / JSON_NAME, payload)
    return out


run = registry.pipeline_job(
    _constants,
    _write,
    """Train R runs of ``config``, attack, write ``table.json`` (then :func:`plot` writes md).

    ``config`` is a ``PipelineConfig``, default (None) :data:`DEFAULT_CONFIG`.
    """,
)


#: ``load(out_dir) -> (json payload, npz arrays or None)`` of a finished run.
load = results.outputs_loader(JSON_NAME)


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
    path.write_text(render_markdown(load(out_dir)[0]))
    return [path]


def headline(payload: dict) -> str:
    """The rendered table (markdown)."""
    return render_markdown(payload).rstrip("\n")


def check(out_dir: str | os.PathLike) -> list[str]:
    """A missing file, or an AUC that is not a number in [0, 1] inside its own CI."""
    return checks.check_attack_output(
        out_dir, (JSON_NAME, MD_NAME), lambda out: [("default", load(out)[0]["attacks"])]
    )
