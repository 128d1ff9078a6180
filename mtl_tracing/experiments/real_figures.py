"""Tables 1-2 and Figures 1-5 of the real-data experiment (:mod:`.real`), drawn from a run's
data alone: ``table.md``, ``figure1_roc`` (``figure2_roc`` for the problems setting),
``figure3``, ``figure4``, ``figure5`` (PNG + PDF). One panel or table per attack of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing.data import registry as datasets
from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

__all__ = ["title_of", "render_markdown", "draw"]


def title_of(payload: dict) -> str:
    """The data set's title (``"Stack Overflow"``) of a run's payload."""
    return datasets.get(payload["dataset"]).title


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _heads(d: dict) -> str:
    kind, c = d.get("head_loss", "binary"), d.get("head_outputs", 1)
    return {"binary": "binary", "softmax": f"{c}-way softmax (top-1 accuracy)"}.get(
        kind, f"{c}-label multi-label (per-label accuracy)"
    )


def render_markdown(payload: dict) -> str:
    """Tables 1-2 layout: per attack, rows Dataset x Access, (TPR, FPR) and Acc. per percentile."""
    fig = "Fig 1" if payload["setting"] == "personalization" else "Fig 2"
    table = "Table 1" if payload["setting"] == "personalization" else "Table 2"
    d, cfg = payload["data"], payload["metadata"]["config"]
    lines = [
        f"{table} layout: (TPR, FPR) and balanced accuracy at black-box percentile thresholds "
        f"({payload['setting']}; {title_of(payload)}: T = {d['tasks_in']} IN + "
        f"{d['tasks_out']} OUT tasks, N = {d['samples']}, H = {d['heldout']}; k = "
        f"{payload['k']['strong']} strong / {payload['k']['weak']} weak, {cfg['trials']} "
        f"trials, {cfg['runs']} run(s), {payload['encoder']}, {_heads(d)} heads; held-out IN "
        f"accuracy {payload['heldout_accuracy']['mean']:.3f})",
        "",
    ]
    rows = payload["rows"]
    pcts = [p["percentile"] for p in rows[0]["percentiles"]]
    for name in payload["attacks"]:
        lines += [
            f"**{name.replace('_', ' ')} attack**",
            "",
            "| Dataset | Access | AUC (95% CI) | "
            + " | ".join(f"{p:g}th (TPR, FPR) | {p:g}th Acc." for p in pcts)
            + " |",
            "|" + "---|" * (3 + 2 * len(pcts)),
        ]
        for r in (r for r in rows if r["attack"] == name):
            cells = [
                f"{title_of(payload)} ({fig})",
                r["access"].capitalize(),
                f"{r['auc']:.3f} [{r['auc_ci'][0]:.3f}, {r['auc_ci'][1]:.3f}]",
            ]
            for p in r["percentiles"]:
                cells += [f"({_pct(p['tpr'])}, {_pct(p['fpr'])})", _pct(p["balanced_accuracy"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def draw(out_dir: str | os.PathLike, payload: dict, arr: dict) -> list[Path]:
    """Write table.md and Figures 1/2 (ROC), 3, 4, 5 into ``out_dir`` from a run's data."""
    out = Path(out_dir)
    attacks = list(payload["attacks"])
    paths = [out / "table.md"]
    paths[0].write_text(render_markdown(payload))
    c = plotting.ADVERSARY_COLORS
    title = f"{title_of(payload)}, {payload['setting']}"
    stem = "figure1_roc" if payload["setting"] == "personalization" else "figure2_roc"
    with plotting.style():
        fig, axes = plotting.new_figure(len(attacks), 1, width=3.2, height=3.0)
        for ax, name in zip(axes[0], attacks, strict=True):
            for adv in ADVERSARIES:
                a = payload["attacks"][name][adv]["auc"]
                fpr, tpr = arr[f"roc_{name}_{adv}_fpr"], arr[f"roc_{name}_{adv}_tpr"]
                ax.plot(fpr, tpr, color=c[adv], label=f"{adv} (AUC {a:.3f})")
            n_out = arr[f"{name}_strong_out"].size
            plotting.chance_line(ax, log=True, lo=1.0 / max(n_out, 10))
            ax.set(xscale="log", yscale="log", xlabel="FPR", ylabel="TPR")
            ax.set(title=name.replace("_", " "))
            ax.legend(loc="lower right")
        fig.suptitle(f"ROC of the task-inference attacks ({title})")
        paths += plotting.save_figure(fig, out, stem)

        fig, axes = plotting.new_figure(2, 1, width=3.2, height=2.8)
        for ax, adv in zip(axes[0], ADVERSARIES, strict=True):
            g = arr[f"gap_{adv}_gap"]  # (C, R)
            for name in attacks:
                ls = plotting.attack_style(name)[1]
                auc = arr[f"{name}_{adv}_auc"]
                ax.plot(g.mean(1), auc.mean(1), ls, marker="o", markersize=3, color=c[adv],
                        label=name.replace("_", " "))  # fmt: skip
            ax.axhline(0.5, color="0.5", linestyle=":", linewidth=1.0)
            ax.set(xlabel=f"{adv} generalization gap (OUT probe loss - "
                   f"{'train' if adv == 'strong' else 'IN fresh'} loss)", ylabel="AUC",
                   title=f"{adv} adversary")  # fmt: skip
            ax.legend(loc="best")
        fig.suptitle(f"AUC vs generalization gap along training ({title}; cf. Fig. 3)")
        paths += plotting.save_figure(fig, out, "figure3")

        fig, axes = plotting.new_figure(2, 1, width=3.2, height=2.8)
        for ax, adv in zip(axes[0], ADVERSARIES, strict=True):
            vin, vout = (
                arr[f"raw_variance_{adv}_in"].ravel(),
                arr[f"raw_variance_{adv}_out"].ravel(),
            )
            edges = np.histogram_bin_edges(np.concatenate([vin, vout]), bins=40)
            ax.hist(vout, edges, density=True, color=c["out"], alpha=0.4, label="OUT")
            ax.hist(vin, edges, density=True, histtype="step", color=c[adv], label=f"{adv} IN")
            ax.set(xlabel="coordinate-wise variance statistic (raw)", ylabel="density", title=adv)
            ax.legend(loc="best")
        fig.suptitle(f"Variance statistic, IN vs OUT ({title}; cf. Fig. 4)")
        paths += plotting.save_figure(fig, out, "figure4")

        fig, axes = plotting.new_figure(2, 1, width=3.2, height=2.8)
        for ax, kind in zip(axes[0], ("inner", "cosine"), strict=True):
            v = arr[f"heads_{kind}"].ravel()
            ax.hist(v, bins=40, density=True, color=c["strong"], alpha=0.6)
            ax.axvline(0.0, color="0.3", linestyle=":", linewidth=1.0)
            ax.set(xlabel=f"{kind} of task heads, pairs i < j", ylabel="density",
                   title=f"mean {v.mean():.3g}, std {v.std():.3g}")  # fmt: skip
        fig.suptitle(f"Task-specific layer similarity ({title}; cf. Fig. 5)")
        paths += plotting.save_figure(fig, out, "figure5")
    return paths
