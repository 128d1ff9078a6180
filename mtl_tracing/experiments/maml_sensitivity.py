"""Figs. 5-8 analogue: attack accuracy against ways, shots and the epoch the gradient is seen.

Three panels, each with the query and the support attack: ways (shots 1), shots (at
``base_ways``) and the training epoch at which the meta-learner observes g_i (one training run,
attacked at each checkpoint; epoch 0 is the untrained model). A setting equal to one computed
earlier (``base_ways``-way 1-shot appears in two panels) is reused. Setting keys:
``fold_in(key(seed), c)`` with c = 100 panel + index. Files: ``maml_sensitivity.json``,
``.npz`` and ``maml_sensitivity.png/.pdf``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing._validate import check_int
from mtl_tracing.commands._common import int_list
from mtl_tracing.experiments import maml_common as mcom
from mtl_tracing.experiments.registry import Option

STEM = "maml_sensitivity"
HELP = "MAML Figs. 5-8: attack accuracy against ways, shots and the observed epoch."
PANELS = ("ways", "shots", "epoch")
OPTIONS = (
    *mcom.source_option(),
    Option("--ways", int_list, "ways of the ways panel (default 3,5,7)"),
    Option("--shots", int_list, "shots of the shots panel (default 1,2,3)"),
    Option("--epochs", int_list, "observed epochs of the epoch panel (default 0,1,2,4)"),
)
QUICK = {"ways": [3], "shots": [1], "epochs": [0, 1], "base_ways": 3, "quick_victim": True}


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
    epochs=(0, 1, 2, 4),
    base_ways=5,
    quick_victim=False,
):
    import dataclasses

    import jax

    seed = check_int("seed", seed, low=0)
    epochs = sorted({check_int("epochs", e, low=0) for e in epochs})
    victim = mcom.QUICK_VICTIM if quick_victim else mcom.DEFAULT_VICTIM
    pools = mcom.load_pools(source, data_dir, seed, dtype)
    key = jax.random.key(seed)
    cache: dict = {}
    panels = {"ways": [], "shots": [], "epoch": []}
    arrays = {}

    def setting(c, w, s):
        if (w, s) not in cache:
            cache[(w, s)] = mcom.run_setting(
                jax.random.fold_in(key, c), pools, ways=w, shots=s, victim=victim, dtype=dtype
            )
        return cache[(w, s)]

    todo = [("ways", i, w, 1) for i, w in enumerate(ways)]
    todo += [("shots", i, base_ways, s) for i, s in enumerate(shots)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo) + 1, desc="maml sensitivity", unit="setting")
    e_last = str(victim.epochs)
    for panel, i, w, s in todo:
        res = setting(100 * PANELS.index(panel) + i, w, s)
        value = w if panel == "ways" else s
        panels[panel].append(
            {
                "value": value,
                "ways": w,
                "shots": s,
                "meta_test_accuracy": res["meta_test_accuracy"],
                **res["attacks"][e_last],
            }
        )
        arrays.update({f"{panel}_{value}_{k}": v for k, v in res["scores"].items()})
        if bar is not None:
            bar.update()
    long = dataclasses.replace(victim, epochs=max(epochs))
    res = mcom.run_setting(
        jax.random.fold_in(key, 200),
        pools,
        ways=base_ways,
        shots=1,
        victim=long,
        epochs_observed=epochs,
        dtype=dtype,
    )
    for e in epochs:
        panels["epoch"].append(
            {
                "value": e,
                "ways": base_ways,
                "shots": 1,
                "meta_test_accuracy": res["history"][e],
                **res["attacks"][str(e)],
            }
        )
    arrays.update({f"epoch_{k}": v for k, v in res["scores"].items()})
    if bar is not None:
        bar.update()
        bar.close()
    config = {
        "source": source,
        "ways": list(ways),
        "shots": list(shots),
        "epochs": epochs,
        "base_ways": base_ways,
        "victim": victim,
    }
    mcom.write(
        out_dir, STEM, {"source": source, "panels": panels}, arrays, config=config, seed=seed
    )


def load(out_dir):
    return mcom.load(out_dir, STEM)


def headline(payload) -> str:
    lines = [f"MAML attack sensitivity ({payload['source']}): value: accuracy query/support"]
    for panel in PANELS:
        cells = [
            f"{p['value']}: {p['query']['accuracy']:.2f}/{p['support']['accuracy']:.2f}"
            for p in payload["panels"][panel]
        ]
        lines.append(f"{panel:<6} " + " | ".join(cells))
    return "\n".join(lines)


def plot(out_dir) -> list[Path]:
    payload, _ = load(out_dir)
    xlabels = {"ways": "ways w (1 shot)", "shots": "shots s", "epoch": "observed epoch"}
    colors = {"query": "#c0392b", "support": "#2471a3"}
    with plotting.style():
        fig, axes = plotting.new_figure(3, 1, width=2.8, height=2.5)
        for ax, panel in zip(axes[0], PANELS, strict=True):
            pts = payload["panels"][panel]
            x = np.array([p["value"] for p in pts])
            for kind in ("query", "support"):
                acc = np.array([p[kind]["accuracy"] for p in pts])
                ci = np.array([p[kind]["accuracy_ci"] for p in pts])
                ax.errorbar(
                    x,
                    acc,
                    yerr=[acc - ci[:, 0], ci[:, 1] - acc],
                    marker="o",
                    color=colors[kind],
                    label=f"{kind} attack",
                    capsize=2,
                )
            ax.axhline(0.5, color="0.5", ls=":", lw=1)
            ax.set(ylim=(0.3, 1.02), xlabel=xlabels[panel], ylabel="attack accuracy")
            ax.set_xticks(x)
        axes[0, 0].legend(loc="lower left")
        return plotting.save_figure(fig, out_dir, STEM)


def check(out_dir) -> list[str]:
    empty = []

    def summaries(payload):
        for panel in PANELS:
            if not payload["panels"][panel]:
                empty.append(f"panel {panel} is empty")
            for p in payload["panels"][panel]:
                for kind in ("query", "support"):
                    yield f"{panel}={p['value']} {kind}", p[kind]

    return mcom.check_job(out_dir, STEM, load, summaries) + empty


__all__ = ["STEM", "HELP", "OPTIONS", "QUICK", "PANELS", "run", "load", "plot", "headline", "check"]
