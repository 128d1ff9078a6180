"""Tables I-II analogue: support and query attack accuracy, recall, precision over w x s.

Grid: ways 3/5/7 x shots 1/2/3 (paper's), on the bundled digits by default, MNIST or
Fashion-MNIST with ``--source`` and ``--data-dir``. Setting c = (w, s) trains the victim for
``epochs`` and attacks the meta-parameters after training. Files: ``maml_tables.json``
(rows with every metric and CI, metadata), ``maml_tables.npz`` (test scores),
``maml_tables.md`` and ``maml_tables.png/.pdf`` (accuracy with CIs) from :func:`plot`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing._validate import check_int
from mtl_tracing.commands._common import int_list
from mtl_tracing.experiments import maml_common as mcom
from mtl_tracing.experiments.registry import Option

STEM = "maml_tables"
HELP = "MAML Tables I-II: support/query attack accuracy, recall, precision over ways x shots."
OPTIONS = (
    *mcom.source_option(),
    Option("--ways", int_list, "comma-separated ways (default 3,5,7)"),
    Option("--shots", int_list, "comma-separated shots (default 1,2,3)"),
    Option("--trials", int, "trials per game split (default 32)"),
)
QUICK = {"ways": [3], "shots": [1], "quick_victim": True}


def run(
    out_dir,
    *,
    seed=0,
    progress=True,
    dtype=None,
    source="digits",
    data_dir=None,
    ways=(3, 5, 7),
    shots=(1, 2, 3),
    trials=None,
    quick_victim=False,
):
    import jax

    seed = check_int("seed", seed, low=0)
    ways = [check_int("ways", w, low=2) for w in ways]
    shots = [check_int("shots", s, low=1) for s in shots]
    victim = mcom.QUICK_VICTIM if quick_victim else mcom.DEFAULT_VICTIM
    if trials is not None:
        victim = dataclasses.replace(victim, trials=check_int("trials", trials, low=2))
    pools = mcom.load_pools(source, data_dir, seed, dtype)
    rows, arrays = [], {}
    grid = [(w, s) for w in ways for s in shots]
    it = grid
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(grid, desc="maml tables", unit="setting")
    for c, (w, s) in enumerate(it):
        res = mcom.run_setting(
            jax.random.fold_in(jax.random.key(seed), c),
            pools,
            ways=w,
            shots=s,
            victim=victim,
            dtype=dtype,
        )
        e = str(victim.epochs)
        rows.append(
            {
                "ways": w,
                "shots": s,
                "meta_test_accuracy": res["meta_test_accuracy"],
                "seconds": res["seconds"],
                **{k: res["attacks"][e][k] for k in ("support", "query")},
            }
        )
        arrays.update({f"w{w}_s{s}_{k}": v for k, v in res["scores"].items()})
    config = {"source": source, "ways": ways, "shots": shots, "victim": victim}
    mcom.write(out_dir, STEM, {"source": source, "rows": rows}, arrays, config=config, seed=seed)


def load(out_dir):
    return mcom.load(out_dir, STEM)


def render_markdown(payload) -> str:
    lines = [
        f"MAML membership inference on {payload['source']} (test trials; threshold from the "
        "validation trials; AUC with a 95% CI from resampling trials)",
        "",
        "| Ways | Shots | Meta-test acc. | Attack | Accuracy | Recall | Precision | AUC (95% CI) "
        "| TPR@1%FPR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        for kind in ("support", "query"):
            s = r[kind]
            prec = "-" if s["precision"] is None else f"{s['precision']:.2f}"
            lines.append(
                f"| {r['ways']} | {r['shots']} | {r['meta_test_accuracy']:.2f} | {kind} | "
                f"{s['accuracy']:.2f} | {s['recall']:.2f} | {prec} | {s['auc']:.2f} "
                f"[{s['auc_ci'][0]:.2f}, {s['auc_ci'][1]:.2f}] | {s['tpr_at_1pct_fpr']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def headline(payload) -> str:
    return render_markdown(payload)


def plot(out_dir) -> list[Path]:
    payload, _ = load(out_dir)
    out = Path(out_dir)
    md = out / f"{STEM}.md"
    md.write_text(render_markdown(payload))
    rows = payload["rows"]
    with plotting.style():
        fig, axes = plotting.new_figure(2, 1, width=3.6, height=2.8)
        for ax, kind in zip(axes[0], ("support", "query"), strict=True):
            labels = [f"{r['ways']}w{r['shots']}s" for r in rows]
            acc = np.array([r[kind]["accuracy"] for r in rows])
            ci = np.array([r[kind]["accuracy_ci"] for r in rows])
            x = np.arange(len(rows))
            ax.bar(x, acc, color="#c0392b", alpha=0.8)
            ax.errorbar(x, acc, yerr=[acc - ci[:, 0], ci[:, 1] - acc], fmt="none", color="k")
            ax.axhline(0.5, color="0.5", ls=":", lw=1)
            ax.set_xticks(x, labels, rotation=60)
            ax.set(ylim=(0, 1), ylabel="attack accuracy", title=f"{kind} attack")
        paths = plotting.save_figure(fig, out, STEM)
    return [md, *paths]


def check(out_dir) -> list[str]:
    def summaries(payload):
        for r in payload["rows"]:
            for kind in ("support", "query"):
                yield f"w={r['ways']} s={r['shots']} {kind}", r[kind]

    return mcom.check_job(out_dir, STEM, load, summaries)


__all__ = ["STEM", "HELP", "OPTIONS", "QUICK", "run", "load", "plot", "headline", "check"]
