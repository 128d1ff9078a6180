"""Figure 3 (Sec. 6.5) on synthetic MTL: attack AUC vs generalization gaps along training.

For each checkpoint epoch e the R runs are trained for e epochs with the *same* key, so the
checkpoint is exactly the first e epochs of the longest run (per-epoch permutations use
``fold_in(key, epoch)`` and the warm start is clipped to min(warm_start_epochs, e)); then both
attacks are evaluated for both adversaries and ``train.generalization_gaps`` gives the losses:

- strong gap = probe loss on OUT tasks - training loss (Fig. 3a's "train vs OUT validation"),
- weak gap = probe loss on OUT tasks - loss on fresh samples of IN tasks (Fig. 3b).

(``train.train`` returns final parameters only, so checkpoints are re-trained; the cost is the
sum of the checkpoint epochs plus one compile per checkpoint.)

Files: ``figure3.json`` (per checkpoint: AUC summaries and gaps), ``figure3.npz`` (per-run
AUCs and gaps, and the longest run's per-epoch loss history), ``figure3.png`` / ``.pdf``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from mtl_tracing import plotting, results
from mtl_tracing._validate import check_int
from mtl_tracing.experiments import checks, registry
from mtl_tracing.options import Option, int_list

__all__ = [
    "DEFAULT_CONFIG",  # noqa: F822 (built on first use by __getattr__)
    "DEFAULT_CHECKPOINTS",
    "QUICK_CONFIG",  # noqa: F822
    "QUICK_CHECKPOINTS",
    "GAP_FIELDS",  # noqa: F822
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

DEFAULT_CHECKPOINTS = (10, 25, 50, 100, 200, 300)
QUICK_CHECKPOINTS = (10, 20)
JSON_NAME = "figure3.json"
NPZ_NAME = "figure3.npz"
STEM = "figure3"
OPTIONS = (
    Option(
        "--checkpoints",
        int_list,
        "comma-separated epochs, increasing (default "
        + ",".join(map(str, DEFAULT_CHECKPOINTS))
        + f"; quick {','.join(map(str, QUICK_CHECKPOINTS))})",
    ),
)


@functools.cache
def _constants() -> dict:
    from mtl_tracing.experiments import pipeline as mc
    from mtl_tracing.victims import mtl as train

    return {
        "DEFAULT_CONFIG": mc.DEFAULT_CONFIG,
        "QUICK_CONFIG": mc.QUICK_CONFIG,
        "GAP_FIELDS": train.GeneralizationGaps._fields,
        # ``--quick``: the pipeline's tiny config, two checkpoints.
        "QUICK": {"config": mc.QUICK_CONFIG, "checkpoints": QUICK_CHECKPOINTS},
    }


__getattr__ = registry.lazy_constants(
    _constants, ("DEFAULT_CONFIG", "QUICK_CONFIG", "GAP_FIELDS", "QUICK")
)


def _checkpoint_config(config, epochs: int):
    t = config.train
    return config.replace(
        train=t.replace(epochs=epochs, warm_start_epochs=min(t.warm_start_epochs, epochs))
    )


def run(
    out_dir: str | os.PathLike,
    *,
    config=None,
    checkpoints: tuple[int, ...] = DEFAULT_CHECKPOINTS,
    seed: int = 0,
    progress: bool = True,
    dtype=None,
) -> Path:
    """Evaluate attacks and generalization gaps at each checkpoint epoch; write json + npz.

    Args:
      out_dir: output folder (created).
      config: a ``PipelineConfig``: data, training (``config.train.epochs`` is ignored: the
        checkpoints set it), attack settings and R runs; default (None) ``DEFAULT_CONFIG``.
      checkpoints: strictly increasing epochs >= 1.
      seed: one key for every checkpoint (so checkpoints are prefixes of one training run).
      progress, dtype: as in :func:`pipeline.run_pipeline`.
    """
    import jax

    from mtl_tracing.experiments import pipeline as mc
    from mtl_tracing.victims import mtl as train

    gap_fields = _constants()["GAP_FIELDS"]
    cps = tuple(check_int("checkpoints", e, low=1) for e in checkpoints)
    if not cps or any(b <= a for a, b in zip(cps, cps[1:], strict=False)):
        raise ValueError(
            f"checkpoints must be non-empty and strictly increasing, got {checkpoints!r}"
        )
    config, seed, out = mc.start_job(out_dir, config, _constants()["DEFAULT_CONFIG"], seed)
    key = jax.random.key(seed)
    rows, arrays = [], {"epochs": np.asarray(cps)}
    per_run = {f"{n}_{a}_auc": [] for n in mc.ATTACKS for a in mc.ADVERSARIES}
    per_run.update({f"gap_{f}": [] for f in gap_fields})
    res = None
    for e in cps:  # loop over checkpoints (figure points), not trials
        if progress:
            print(f"[figure3] checkpoint {e} epochs", flush=True)
        res = mc.run_pipeline(key, _checkpoint_config(config, e), dtype=dtype, progress=progress)
        gaps = train.generalization_gaps(res.trained, res.data)
        gap_row = {}
        for f in gap_fields:
            v = np.asarray(getattr(gaps, f), dtype=np.float64)
            per_run[f"gap_{f}"].append(v)
            gap_row[f] = {"per_run": v.tolist(), "mean": float(v.mean())}
        for n in mc.ATTACKS:
            for a in mc.ADVERSARIES:
                per_run[f"{n}_{a}_auc"].append(res.summary["attacks"][n][a]["auc_per_run"])
        rows.append(
            {
                "epochs": e,
                "gaps": gap_row,
                **{k: res.summary[k] for k in ("attacks", "heldout_accuracy", "train_accuracy")},
            }
        )
    arrays.update({k: np.asarray(v) for k, v in per_run.items()})
    hist = res.trained.history  # longest checkpoint: per-epoch curves (R, epochs)
    for f in hist._fields:
        arrays[f"history_{f}"] = np.asarray(getattr(hist, f), dtype=np.float64)
    payload = {
        "checkpoints": rows,
        "metadata": results.run_metadata(config=config, seed=seed, checkpoints=cps),
    }
    return results.save_outputs(out, JSON_NAME, payload, NPZ_NAME, arrays)


#: ``load(out_dir) -> (json payload, npz arrays or None)`` of a finished run.
load = results.outputs_loader(JSON_NAME, NPZ_NAME)


def plot(out_dir: str | os.PathLike) -> list[Path]:
    """Redraw Figure 3 from ``out_dir``: (a) strong AUC vs strong gap, (b) weak AUC vs weak gap,
    (c) AUC vs epoch, (d) losses vs epoch. Inner product solid, variance dashed; small dots are
    runs, lines join the run means in epoch order. Returns [png, pdf]."""
    from mtl_tracing.threat import IN_ADVERSARIES as ADVERSARIES

    payload, arr = load(out_dir)
    epochs = arr["epochs"]
    colors = plotting.ADVERSARY_COLORS
    attacks = list(payload["checkpoints"][0]["attacks"])
    styles = {name: plotting.attack_style(name)[1] for name in attacks}
    with plotting.style():
        fig, axes = plotting.new_figure(4, 1, width=3.0, height=2.7)
        ax_s, ax_w, ax_e, ax_l = axes[0]
        for ax, adv, gap, xlabel in (
            (ax_s, "strong", "strong_gap", "gap: OUT probe loss - train loss"),
            (ax_w, "weak", "weak_gap", "gap: OUT probe loss - IN fresh loss"),
        ):
            g = arr[f"gap_{gap}"]  # (C, R)
            for name in attacks:
                auc = arr[f"{name}_{adv}_auc"]
                ax.plot(g.ravel(), auc.ravel(), ".", color=colors[adv], alpha=0.35, markersize=3)
                ax.plot(
                    g.mean(1),
                    auc.mean(1),
                    styles[name],
                    marker="o",
                    markersize=3,
                    color=colors[adv],
                    label=name.replace("_", " "),
                )
            ax.axhline(0.5, color="0.5", linestyle=":", linewidth=1.0, label="chance")
            ax.set(
                xlabel=xlabel,
                ylabel="AUC",
                title=f"({'a' if adv == 'strong' else 'b'}) {adv} adversary",
            )
            ax.legend(loc="best")
        for name in attacks:
            for adv in ADVERSARIES:
                auc = arr[f"{name}_{adv}_auc"]
                ax_e.plot(
                    epochs,
                    auc.mean(1),
                    styles[name],
                    marker="o",
                    markersize=3,
                    color=colors[adv],
                    label=f"{adv}, {name.replace('_', ' ')}",
                )
        ax_e.axhline(0.5, color="0.5", linestyle=":", linewidth=1.0)
        ax_e.set(xlabel="epochs", ylabel="AUC (mean over runs)", title="(c) AUC vs training")
        ax_e.legend(loc="best")
        for f, lab in (
            ("train_loss", "train (IN)"),
            ("probe_in_loss", "probe, IN fresh"),
            ("heldout_loss", "heads, IN fresh"),
            ("probe_out_loss", "probe, OUT"),
        ):
            ax_l.plot(epochs, arr[f"gap_{f}"].mean(1), marker="o", markersize=3, label=lab)
        ax_l.set(xlabel="epochs", ylabel="BCE loss", title="(d) losses at the checkpoints")
        ax_l.legend(loc="best")
        fig.suptitle("Attack AUC vs generalization gaps on synthetic MTL (cf. Sec. 6.5, Fig. 3)")
        return plotting.save_figure(fig, out_dir, STEM)


def headline(payload: dict) -> str:
    """One line per checkpoint: inner-product AUCs and the two generalization gaps."""
    lines = []
    for row in payload["checkpoints"]:
        ip, g = row["attacks"]["inner_product"], row["gaps"]
        lines.append(
            f"epoch {row['epochs']}: inner product AUC strong {ip['strong']['auc']:.3f} "
            f"weak {ip['weak']['auc']:.3f}; strong gap {g['strong_gap']['mean']:.3f} "
            f"weak gap {g['weak_gap']['mean']:.3f}"
        )
    return "\n".join(lines)


def check(out_dir: str | os.PathLike) -> list[str]:
    """A missing file, or an AUC that is not a number in [0, 1] inside its own CI."""
    files = (JSON_NAME, NPZ_NAME, f"{STEM}.png", f"{STEM}.pdf")
    return checks.check_attack_output(
        out_dir,
        files,
        lambda out: [(f"epoch {r['epochs']}", r["attacks"]) for r in load(out)[0]["checkpoints"]],
    )
