"""Figs. 7-8: attack accuracy against the training epoch at which g_i is observed.

One victim (``ways``-way ``shots``-shot, default 5-way 1-shot) is meta-trained until its
meta-test accuracy plateaus, keeping omega after every epoch; the query and support attacks
(re-tuned at each epoch on validation trials) are played at epochs from 0 (untrained) to the
last (trained): 0, 1, 2, 4, ... by default. The same game trials at every epoch (paired). The
meta-test accuracy of every epoch is drawn on the same axis. (Figs. 5-6, accuracy against ways
and shots, are slices of the Tables I-II grid and are drawn by ``maml_tables``.) Files:
``maml_sensitivity.json``, ``.npz`` and ``maml_sensitivity.png/.pdf``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing._validate import check_choice, check_int
from mtl_tracing.experiments import maml_common as mcom
from mtl_tracing.experiments.registry import Option
from mtl_tracing.options import int_list

STEM = "maml_sensitivity"
HELP = "MAML Figs. 7-8: attack accuracy against the epoch at which the gradient is observed."
OPTIONS = (
    *mcom.source_option(),
    Option("--ways", int, "ways w (default 5)"),
    Option("--shots", int, "shots s (default 1)"),
    Option("--epochs", int_list, "observed epochs (default: 0, 1, 2, 4, ... and the last)"),
)
QUICK = {"ways": 3, "quick": True}


def run(
    out_dir,
    *,
    seed=0,
    progress=True,
    dtype=None,
    source="digits",
    data_dir=None,
    ways=5,
    shots=1,
    epochs=None,
    trials=None,
    nonmember="any-class",
    quick=False,
):
    import jax

    seed = check_int("seed", seed, low=0)
    check_choice("nonmember", nonmember, ("any-class", "same-class"))
    ways, shots = check_int("ways", ways, low=2), check_int("shots", shots, low=1)
    observe = "auto" if epochs is None else [check_int("epochs", e, low=0) for e in epochs]
    victim = mcom.settings_for(source, quick, trials=trials)
    layout = None  # one shape: the padded layout would only cost arithmetic (3-5x at 3 x 1)
    pools = mcom.load_pools(source, data_dir, seed, dtype)
    res = mcom.run_setting(
        jax.random.fold_in(jax.random.key(seed), 200),
        pools,
        ways=ways,
        shots=shots,
        victim=victim,
        observe=observe,
        layout=layout,
        dtype=dtype,
        progress=progress,
    )
    points = [
        {"epoch": e, "meta_test_accuracy": res["history"][e], **res["attacks"][str(e)]}
        for e in res["observed"]
    ]
    payload = {
        "source": source,
        "ways": ways,
        "shots": shots,
        "primary": nonmember,
        "history": res["history"],
        "epochs_trained": res["epochs_trained"],
        "plateaued": res["plateaued"],
        "points": points,
    }
    config = {
        "source": source,
        "ways": ways,
        "shots": shots,
        "epochs": epochs,
        "layout": layout,
        "victim": victim.to_dict(),
    }
    arrays = {k: v for k, v in res["arrays"].items() if k.endswith("_scores")}
    mcom.write(out_dir, STEM, payload, arrays, config=config, seed=seed)


def load(out_dir):
    return mcom.load(out_dir, STEM)


def headline(payload) -> str:
    mode = payload.get("primary", "any-class")
    cells = [
        f"{p['epoch']}: {p['query'][mode]['accuracy']:.2f}/{p['support'][mode]['accuracy']:.2f}"
        f" ({p['meta_test_accuracy']:.2f})"
        for p in payload["points"]
    ]
    return (
        f"MAML attack against the observed epoch ({payload['source']}, {payload['ways']}-way "
        f"{payload['shots']}-shot, {mode} non-members; trained {payload['epochs_trained']} "
        "epochs, to a plateau): epoch: accuracy query/support (meta-test accuracy)\n"
        + " | ".join(cells)
    )


def plot(out_dir) -> list[Path]:
    payload, _ = load(out_dir)
    mode = payload.get("primary", "any-class")
    other = "same-class" if mode == "any-class" else "any-class"
    colors = {"query": "#c0392b", "support": "#8e44ad"}
    pts = payload["points"]
    x = np.array([p["epoch"] for p in pts])
    with plotting.style():
        fig, axes = plotting.new_figure(2, 1, width=3.4, height=2.6)
        for ax, kind, fig_no in zip(axes[0], ("query", "support"), (7, 8), strict=True):
            acc = np.array([p[kind][mode]["accuracy"] for p in pts])
            ci = np.array([p[kind][mode]["accuracy_ci"] for p in pts])
            ax.errorbar(
                x,
                acc,
                yerr=[acc - ci[:, 0], ci[:, 1] - acc],
                marker="o",
                color=colors[kind],
                capsize=2,
                label=f"{kind} attack ({mode})",
            )
            ax.plot(
                x,
                [p[kind][other]["accuracy"] for p in pts],
                ls="--",
                marker=".",
                color=colors[kind],
                alpha=0.6,
                label=f"{kind} attack ({other})",
            )
            hist = np.asarray(payload["history"])
            ax.plot(np.arange(hist.size), hist, color="#2471a3", lw=1.2, label="meta-test acc.")
            ax.axhline(0.5, color="0.5", ls=":", lw=1)
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xticks(x, _tick_labels(x))
            ax.set(
                ylim=(0.0, 1.02),
                xlabel="meta-training epoch (0 = untrained)",
                ylabel="accuracy",
                title=f"Fig. {fig_no}: {kind} attack ({payload['source']})",
            )
            ax.legend(loc="lower left", fontsize=5)
        return plotting.save_figure(fig, out_dir, STEM)


def _tick_labels(x) -> list[str]:
    """Epoch labels, blank where a tick sits too close to the next one on the symlog axis."""
    pos = np.log1p(np.asarray(x, float))
    keep = np.r_[np.diff(pos) > 0.2, True]
    return [str(e) if k else "" for e, k in zip(x, keep, strict=True)]


def check(out_dir) -> list[str]:
    extra = []

    def summaries(payload):
        if not payload["points"]:
            extra.append("no observed epoch")
        for p in payload["points"]:
            for kind, mode, s in mcom.attack_rows(p):
                yield f"epoch={p['epoch']} {kind} {mode}", s

    return mcom.check_job(out_dir, STEM, load, summaries) + extra


__all__ = ["STEM", "HELP", "OPTIONS", "QUICK", "run", "load", "plot", "headline", "check"]
