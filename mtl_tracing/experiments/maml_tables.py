"""Tables I-II, Figs. 4-6: support and query attack accuracy, recall, precision over w x s.

Grid: ways 3/5/7 x shots 1/2/3 (the paper's), on the bundled digits by default, MNIST or
Fashion-MNIST with ``--source`` and ``--data-dir``. Setting c = (w, s) meta-trains its victim
until the meta-test accuracy plateaus and attacks the final meta-parameters (attacks tuned on
validation trials; both non-member modes). Files: ``maml_tables.json`` (rows with every metric,
CI, the tuned attack and the meta-test accuracy; metadata), ``maml_tables.npz`` (test scores,
Fig. 4 samples), and from :func:`plot`: ``maml_tables.md`` (ours beside the paper's Tables
I-II), ``maml_tables.png/.pdf`` (accuracy with CIs), ``maml_fig4.png/.pdf`` (x0 beside x* with
SSIMs, first setting) and ``maml_fig56.png/.pdf`` (Figs. 5-6: accuracy against ways at 1 shot
and against shots at the middle ways, meta-test accuracy drawn beside, the paper's table
values as open markers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing._validate import check_choice, check_int
from mtl_tracing.experiments import maml_common as mcom
from mtl_tracing.experiments.registry import Option
from mtl_tracing.options import int_list

STEM = "maml_tables"
HELP = "MAML Tables I-II (+ Figs. 4-6): attack accuracy, recall, precision over ways x shots."
OPTIONS = (
    *mcom.source_option(),
    Option("--ways", int_list, "comma-separated ways (default 3,5,7)"),
    Option("--shots", int_list, "comma-separated shots (default 1,2,3)"),
)
QUICK = {"ways": [3], "shots": [1], "quick": True}
KINDS = ("support", "query")  # Table I, Table II

#: The paper's Tables I (support) and II (query): {kind: {source: {(w, s): (accuracy, recall,
#: precision)}}}, transcribed from ``../shared/papers/maml-privacy-attacks.md``.
PAPER = {
    "support": {
        "mnist": {
            (3, 1): (0.79, 0.72, 0.84),
            (3, 2): (0.68, 0.74, 0.66),
            (3, 3): (0.61, 0.54, 0.63),
            (5, 1): (0.91, 0.98, 0.86),
            (5, 2): (0.69, 0.96, 0.62),
            (5, 3): (0.61, 0.86, 0.57),
            (7, 1): (0.71, 0.96, 0.64),
            (7, 2): (0.56, 0.66, 0.55),
            (7, 3): (0.51, 0.66, 0.51),
        },
        "fashion-mnist": {
            (3, 1): (0.79, 0.62, 0.94),
            (3, 2): (0.7, 0.52, 0.81),
            (3, 3): (0.59, 0.26, 0.76),
            (5, 1): (0.7, 0.48, 0.86),
            (5, 2): (0.61, 0.26, 0.87),
            (5, 3): (0.58, 0.16, 1.0),
            (7, 1): (0.73, 0.5, 0.93),
            (7, 2): (0.59, 0.2, 0.91),
            (7, 3): (0.58, 0.24, 0.75),
        },
    },
    "query": {
        "mnist": {
            (3, 1): (0.92, 0.98, 0.88),
            (3, 2): (0.71, 0.52, 0.84),
            (3, 3): (0.59, 0.24, 0.80),
            (5, 1): (0.95, 0.98, 0.92),
            (5, 2): (0.69, 0.46, 0.85),
            (5, 3): (0.69, 0.38, 1.0),
            (7, 1): (0.93, 1.0, 0.88),
            (7, 2): (0.74, 0.52, 0.93),
            (7, 3): (0.67, 0.36, 0.95),
        },
        "fashion-mnist": {
            (3, 1): (0.78, 0.96, 0.71),
            (3, 2): (0.73, 0.66, 0.77),
            (3, 3): (0.62, 0.36, 0.75),
            (5, 1): (0.87, 1.0, 0.79),
            (5, 2): (0.7, 0.54, 0.79),
            (5, 3): (0.69, 0.44, 0.87),
            (7, 1): (0.82, 0.96, 0.75),
            (7, 2): (0.67, 0.44, 0.81),
            (7, 3): (0.7, 0.46, 0.88),
        },
    },
}


def paper_source(source: str) -> str:
    """The paper's dataset to print beside ``source`` (MNIST for the digits: no paper numbers)."""
    return "fashion-mnist" if source == "fashion-mnist" else "mnist"


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
    nonmember="any-class",
    quick=False,
):
    import jax

    seed = check_int("seed", seed, low=0)
    check_choice("nonmember", nonmember, ("any-class", "same-class"))
    ways = [check_int("ways", w, low=2) for w in ways]
    shots = [check_int("shots", s, low=1) for s in shots]
    victim = mcom.settings_for(source, quick, trials=trials)
    layout = _layout(ways, shots) if victim.pad else None
    pools = mcom.load_pools(source, data_dir, seed, dtype)
    rows, arrays = [], {}
    grid = [(w, s) for w in ways for s in shots]
    it = grid
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(grid, desc=f"maml tables ({source})", unit="setting")
    for c, (w, s) in enumerate(it):
        res = mcom.run_setting(
            jax.random.fold_in(jax.random.key(seed), c),
            pools,
            ways=w,
            shots=s,
            victim=victim,
            layout=layout,
            dtype=dtype,
        )
        e = str(res["epochs_trained"])
        rows.append(
            {
                "ways": w,
                "shots": s,
                "meta_test_accuracy": res["meta_test_accuracy"],
                "meta_test_history": res["history"],
                "epochs_trained": res["epochs_trained"],
                "plateaued": res["plateaued"],
                "seconds": res["seconds"],
                **res["attacks"][e],
            }
        )
        pre = f"w{w}_s{s}_"
        arrays.update({pre + k.replace(f"_e{e}_", "_"): v for k, v in res["arrays"].items()})
    config = {
        "source": source,
        "ways": ways,
        "shots": shots,
        "layout": layout,
        "victim": victim.to_dict(),
    }
    payload = {"source": source, "primary": nonmember, "layout": layout, "rows": rows}
    mcom.write(out_dir, STEM, payload, arrays, config=config, seed=seed)


def _layout(ways, shots):
    return (max(mcom.LAYOUT[0], *ways), max(mcom.LAYOUT[1], *shots))


def load(out_dir):
    return mcom.load(out_dir, STEM)


def _fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def render_markdown(payload) -> str:
    """Ours beside the paper's Tables I (support) and II (query)."""
    src = payload["source"]
    ref = paper_source(src)
    lines = [
        f"MAML membership inference on {src}: ours beside the paper's Tables I-II "
        f"({ref}{', the nearest paper data' if src == 'digits' else ''}). Ours: test trials, "
        "threshold and attack hyperparameters (lr, TV weight alpha, iterations) chosen on "
        "disjoint validation trials; 95% CIs from resampling test trials. Non-members: "
        "any-class = drawn from the data distribution (the paper's game), same-class = the "
        "member's class (stricter). Meta-test acc. = the victim's utility after training to a "
        "plateau (epochs in brackets; 'cap': stopped at the epoch cap before a plateau).",
        "",
    ]
    for kind, table in zip(
        KINDS, ("Table I (support attack)", "Table II (query attack)"), strict=True
    ):
        lines += [
            f"### {table}",
            "",
            "| Ways | Shots | paper acc. | paper rec. | paper prec. | ours acc. (any-class) "
            "| rec. | prec. | AUC | ours acc. (same-class) | AUC (same) | meta-test acc. "
            "| tuned lr / alpha / it. |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in payload["rows"]:
            p = PAPER[kind][ref].get((r["ways"], r["shots"]), (None, None, None))
            a, s = r[kind]["any-class"], r[kind]["same-class"]
            ch = a["chosen"]
            lines.append(
                f"| {r['ways']} | {r['shots']} | {_fmt(p[0])} | {_fmt(p[1])} | {_fmt(p[2])} | "
                f"{a['accuracy']:.2f} [{a['accuracy_ci'][0]:.2f}, {a['accuracy_ci'][1]:.2f}] | "
                f"{a['recall']:.2f} | {_fmt(a['precision'])} | {a['auc']:.2f} | "
                f"{s['accuracy']:.2f} [{s['accuracy_ci'][0]:.2f}, {s['accuracy_ci'][1]:.2f}] | "
                f"{s['auc']:.2f} | {r['meta_test_accuracy']:.2f} ({r['epochs_trained']}"
                f"{'' if r.get('plateaued', True) else ', cap'}) | "
                f"{ch['lr']:g} / {ch['alpha']:g} / {ch['iterations']} |"
            )
        lines.append("")
    return "\n".join(lines)


def headline(payload) -> str:
    return render_markdown(payload)


def _acc(r, kind, mode):
    s = r[kind][mode]
    return s["accuracy"], s["accuracy_ci"]


def plot(out_dir) -> list[Path]:
    payload, arrays = load(out_dir)
    out = Path(out_dir)
    md = out / f"{STEM}.md"
    md.write_text(render_markdown(payload))
    rows = payload["rows"]
    mode = payload.get("primary", "any-class")
    ref = paper_source(payload["source"])
    paths = [md]
    with plotting.style():
        fig, axes = plotting.new_figure(2, 1, width=3.8, height=2.9)
        for ax, kind in zip(axes[0], KINDS, strict=True):
            labels = [f"{r['ways']}w{r['shots']}s" for r in rows]
            x = np.arange(len(rows))
            for off, m, color in ((-0.2, "any-class", "#c0392b"), (0.2, "same-class", "#e59866")):
                acc = np.array([_acc(r, kind, m)[0] for r in rows])
                ci = np.array([_acc(r, kind, m)[1] for r in rows])
                ax.bar(x + off, acc, width=0.4, color=color, alpha=0.85, label=f"ours, {m}")
                ax.errorbar(
                    x + off, acc, yerr=[acc - ci[:, 0], ci[:, 1] - acc], fmt="none", color="k"
                )
            paper = [PAPER[kind][ref].get((r["ways"], r["shots"]), (np.nan,))[0] for r in rows]
            ax.plot(x, paper, "kD", mfc="none", label=f"paper ({ref})")
            ax.plot(
                x,
                [r["meta_test_accuracy"] for r in rows],
                "s",
                color="#2471a3",
                label="meta-test acc.",
            )
            ax.axhline(0.5, color="0.5", ls=":", lw=1)
            ax.set_xticks(x, labels, rotation=60)
            ax.set(
                ylim=(0, 1.05),
                ylabel="accuracy",
                xlabel="setting (ways, shots)",
                title=f"{kind} attack ({payload['source']})",
            )
        axes[0, 0].legend(loc="lower left", fontsize=6)
        paths += plotting.save_figure(fig, out, STEM)
        paths += _plot_fig4(payload, arrays, out)
        paths += _plot_fig56(payload, out, mode, ref)
    return paths


def _plot_fig4(payload, arrays, out) -> list[Path]:
    """x0 beside x* with SSIM for the first setting: members and any-class non-members."""
    r = payload["rows"][0]
    pre = f"w{r['ways']}_s{r['shots']}_"
    n = min(3, arrays[pre + "query_x0"].shape[1])
    fig, axes = plotting.new_figure(2 * n, 4, width=0.95, height=1.05)
    for row, (kind, t, who) in enumerate(
        [(k, t, w) for k in ("query", "support") for t, w in ((0, "member"), (1, "non-member"))]
    ):
        x0, xs = arrays[pre + f"{kind}_x0"][t], arrays[pre + f"{kind}_xstar"][t]
        scores = arrays[pre + f"{kind}_scores"][t]
        for j in range(n):
            for col, img, title in (
                (2 * j, x0[j], f"{kind} {who}\nx0"),
                (2 * j + 1, xs[j], f"x*, SSIM {scores[j]:.2f}"),
            ):
                ax = axes[row, col]
                ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
                ax.set_title(title, fontsize=5)
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle(
        f"Fig. 4 analogue ({payload['source']}, {r['ways']}-way {r['shots']}-shot): "
        "attack input x0 and output x*",
        fontsize=7,
    )
    return plotting.save_figure(fig, out, "maml_fig4")


def _plot_fig56(payload, out, mode, ref) -> list[Path]:
    rows = payload["rows"]
    ways = sorted({r["ways"] for r in rows})
    shots = sorted({r["shots"] for r in rows})
    mid = ways[len(ways) // 2]
    panels = [
        ("ways", [r for r in rows if r["shots"] == shots[0]], f"ways w ({shots[0]} shot)"),
        ("shots", [r for r in rows if r["ways"] == mid], f"shots s ({mid}-way)"),
    ]
    colors = {"query": "#c0392b", "support": "#8e44ad"}
    fig, axes = plotting.new_figure(2, 1, width=2.9, height=2.5)
    for ax, (key, pts, xlabel) in zip(axes[0], panels, strict=True):
        if not pts:
            continue
        x = np.array([p[key] for p in pts])
        for kind in ("query", "support"):
            acc = np.array([_acc(p, kind, mode)[0] for p in pts])
            ci = np.array([_acc(p, kind, mode)[1] for p in pts])
            ax.errorbar(
                x,
                acc,
                yerr=[acc - ci[:, 0], ci[:, 1] - acc],
                marker="o",
                color=colors[kind],
                capsize=2,
                label=f"{kind} attack",
            )
            paper = [PAPER[kind][ref].get((p["ways"], p["shots"]), (np.nan,))[0] for p in pts]
            ax.plot(
                x,
                paper,
                "D",
                mfc="none",
                color=colors[kind],
                ls="--",
                lw=0.8,
                label=f"{kind}, paper ({ref})",
            )
        ax.plot(
            x, [p["meta_test_accuracy"] for p in pts], "s-", color="#2471a3", label="meta-test acc."
        )
        ax.axhline(0.5, color="0.5", ls=":", lw=1)
        ax.set(ylim=(0.3, 1.02), xlabel=xlabel, ylabel=f"accuracy ({mode} non-members)")
        ax.set_xticks(x)
    axes[0, 0].set_title("Fig. 5: against ways")
    axes[0, 1].set_title("Fig. 6: against shots")
    axes[0, 0].legend(loc="lower left", fontsize=5)
    return plotting.save_figure(fig, out, "maml_fig56")


def check(out_dir) -> list[str]:
    def summaries(payload):
        for r in payload["rows"]:
            for kind, mode, s in mcom.attack_rows(r, KINDS):
                yield f"w={r['ways']} s={r['shots']} {kind} {mode}", s

    return mcom.check_job(out_dir, STEM, load, summaries, [STEM, "maml_fig4", "maml_fig56"])


__all__ = [
    "STEM",
    "HELP",
    "OPTIONS",
    "QUICK",
    "PAPER",
    "run",
    "load",
    "plot",
    "headline",
    "check",
    "render_markdown",
]
