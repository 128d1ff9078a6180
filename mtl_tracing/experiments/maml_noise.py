"""Figs. 9-12: the four noise defences against the query and support attacks.

For each place (support data, adaptation gradient, query data, validation gradient) and each
sigma, the victim is meta-trained with that defence until its meta-test accuracy plateaus and
attacked (attack re-tuned on validation trials: the adversary adapts to the defence). Every
point uses the same keys (common random numbers): the same training tasks, initialisation,
game trials, targets and attack starts; only the defence differs. So the test trials are
paired across sigmas.

**Confident noise area** (the paper: "where the attack accuracy has decreased while the
learning accuracy remains acceptable"): sigma > 0 is in it for an attack when

1. the attack accuracy is *significantly below its sigma = 0 value*: a one-sided paired
   sign-flip (permutation) test on the per-trial accuracy differences a_i(sigma) - a_i(0)
   (a_i = mean correctness of trial i's member and non-member at that point's threshold),
   p < ``LEVEL`` (0.05), with the mean difference < 0; and
2. the utility holds: meta-test accuracy >= its sigma = 0 value - ``UTILITY_MARGIN`` (0.05).

Files: ``maml_noise.json`` (points: sigma, meta-test accuracy, both attacks x both non-member
modes with CIs, per-trial accuracies, the tuned attack; the areas with p-values),
``maml_noise.npz`` (test scores), ``maml_noise.png/.pdf``: one panel per place (columns) and
attack (rows): attack accuracy (red, any-class; orange dashed, same-class), meta-test accuracy
(blue), the confident noise area in green.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing._validate import check_choice, check_int, check_nonnegative
from mtl_tracing.experiments import maml_common as mcom
from mtl_tracing.experiments.registry import Option

STEM = "maml_noise"
HELP = "MAML Figs. 9-12: attack and meta-test accuracy against noise at four places."
PLACES = ("support", "adaptation", "query", "validation")
#: sigma grids per place: pixels live in [0, 1]; gradient entries are ~1e-2.
DEFAULT_SIGMAS = {
    "support": (0.1, 0.3, 1.0),
    "adaptation": (0.01, 0.1, 1.0),
    "query": (0.1, 0.3, 1.0),
    "validation": (0.001, 0.01, 0.1),
}
LEVEL = 0.05
UTILITY_MARGIN = 0.05
FLIPS = 20000  # sign-flip resamples of the paired test (Monte Carlo error of p ~ 0.0015)
OPTIONS = (
    *mcom.source_option(),
    Option("--ways", int, "ways w (default 3)"),
    Option("--shots", int, "shots s (default 1)"),
    Option("--sigma-scale", float, "multiply every sigma grid by this (default 1)"),
)
QUICK = {"sigmas": {p: (s[-1],) for p, s in DEFAULT_SIGMAS.items()}, "quick": True}


def run(
    out_dir,
    *,
    seed=0,
    progress=True,
    dtype=None,
    source="digits",
    data_dir=None,
    ways=3,
    shots=1,
    sigmas=None,
    sigma_scale=1.0,
    trials=None,
    nonmember="any-class",
    quick=False,
):
    import jax

    from mtl_tracing.victims import maml

    seed = check_int("seed", seed, low=0)
    check_choice("nonmember", nonmember, ("any-class", "same-class"))
    scale = check_nonnegative("sigma_scale", sigma_scale)
    grids = {
        p: tuple(scale * check_nonnegative("sigma", v) for v in g)
        for p, g in (sigmas or DEFAULT_SIGMAS).items()
    }
    victim = mcom.settings_for(source, quick, trials=trials)
    layout = None  # one shape: the padded layout would only cost arithmetic (3-5x at 3 x 1)
    pools = mcom.load_pools(source, data_dir, seed, dtype)
    jobs = [("none", 0.0)] + [(p, s) for p in PLACES for s in grids.get(p, ())]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc=f"maml noise ({source})", unit="setting")
    key = jax.random.fold_in(jax.random.key(seed), 0)  # one key for every point: paired
    points, arrays = [], {}
    for place, sigma in jobs:
        res = mcom.run_setting(
            key,
            pools,
            ways=ways,
            shots=shots,
            victim=victim,
            noise=maml.noise_at(place, sigma),
            layout=layout,
            dtype=dtype,
        )
        e = str(res["epochs_trained"])
        attacks = res["attacks"][e]
        for kind, by_mode in attacks.items():
            scores = res["arrays"][f"{kind}_e{e}_scores"]
            for j, s in enumerate(by_mode.values(), start=1):
                s["trial_accuracy"] = trial_accuracy(scores[0], scores[j], s["threshold"])
            arrays[f"{place}_{sigma:g}_{kind}_scores"] = scores
        points.append(
            {
                "place": place,
                "sigma": sigma,
                "meta_test_accuracy": res["meta_test_accuracy"],
                "epochs_trained": res["epochs_trained"],
                **attacks,
            }
        )
    payload = {
        "source": source,
        "ways": ways,
        "shots": shots,
        "primary": nonmember,
        "points": points,
        "areas": confident_areas(points),
        "criteria": {
            "test": "one-sided paired sign-flip test on per-trial accuracy differences vs "
            "sigma = 0 (same trials), p < level, mean difference < 0",
            "level": LEVEL,
            "utility_margin": UTILITY_MARGIN,
        },
    }
    config = {
        "source": source,
        "ways": ways,
        "shots": shots,
        "sigmas": grids,
        "layout": layout,
        "victim": victim.to_dict(),
    }
    mcom.write(out_dir, STEM, payload, arrays, config=config, seed=seed)


def trial_accuracy(scores_in, scores_out, threshold: float) -> list[float]:
    """Per trial: (1[member scored > d] + 1[non-member scored <= d]) / 2."""
    s_in, s_out = np.asarray(scores_in, float), np.asarray(scores_out, float)
    return (((s_in > threshold).astype(float) + (s_out <= threshold)) / 2).tolist()


def paired_decrease_pvalue(base, other, *, flips: int = FLIPS, seed: int = 0) -> float:
    """One-sided p-value that ``other`` is below ``base`` (paired per-trial accuracies (n,)):
    P(sum of randomly sign-flipped differences <= the observed sum), (1 + count) / (1 + flips).
    Under "no change" each difference is as likely with either sign (the paired design)."""
    base, other = np.asarray(base, float), np.asarray(other, float)
    if base.ndim != 1 or base.shape != other.shape:
        raise ValueError(
            f"base and other must be (n,) of one length, got {base.shape} and {other.shape}"
        )
    d = other - base
    observed = d.sum()
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(flips, d.size))
    return float((1 + np.sum(signs @ d <= observed + 1e-12)) / (1 + flips))


def confident_areas(points, *, level=LEVEL, margin=UTILITY_MARGIN) -> dict:
    """{mode: {place: {kind: [{sigma, delta, p_value, utility_drop, confident}]}}}; sigma = 0
    (place "none") is the reference (see the module docstring)."""
    base = next(p for p in points if p["place"] == "none")
    out = {}
    for mode in ("any-class", "same-class"):
        out[mode] = {}
        for place in PLACES:
            out[mode][place] = {}
            for kind in ("query", "support"):
                if mode not in base.get(kind, {}):
                    continue
                ref = base[kind][mode]
                rows = []
                for p in _curve(points, place)[1:]:
                    s = p[kind][mode]
                    delta = s["accuracy"] - ref["accuracy"]
                    pval = paired_decrease_pvalue(ref["trial_accuracy"], s["trial_accuracy"])
                    drop = base["meta_test_accuracy"] - p["meta_test_accuracy"]
                    ok = bool(delta < 0 and pval < level and drop <= margin)
                    rows.append(
                        {
                            "sigma": p["sigma"],
                            "delta": delta,
                            "p_value": pval,
                            "utility_drop": drop,
                            "confident": ok,
                        }
                    )
                out[mode][place][kind] = rows
    return out


def confident_sigmas(areas, mode, place, kind) -> list[float]:
    return [r["sigma"] for r in areas[mode][place].get(kind, []) if r["confident"]]


def _curve(points, place):
    base = [p for p in points if p["place"] == "none"]
    return base + sorted((p for p in points if p["place"] == place), key=lambda p: p["sigma"])


def load(out_dir):
    return mcom.load(out_dir, STEM)


def headline(payload) -> str:
    mode = payload.get("primary", "any-class")
    lines = [
        f"MAML noise defences ({payload['source']}, {payload['ways']}-way "
        f"{payload['shots']}-shot, {mode} non-members): sigma: attack acc. query/support, "
        "meta-test acc.; confident sigmas (paired test, p < "
        f"{payload['criteria']['level']}, utility drop <= "
        f"{payload['criteria']['utility_margin']})"
    ]
    for place in PLACES:
        cells = [
            f"{p['sigma']:g}: {p['query'][mode]['accuracy']:.2f}/"
            f"{p['support'][mode]['accuracy']:.2f}, {p['meta_test_accuracy']:.2f}"
            for p in _curve(payload["points"], place)
        ]
        a = payload["areas"]
        lines.append(
            f"{place:<10} "
            + " | ".join(cells)
            + f"  confident: query {confident_sigmas(a, mode, place, 'query')} support "
            f"{confident_sigmas(a, mode, place, 'support')}"
        )
    return "\n".join(lines)


def plot(out_dir) -> list[Path]:
    payload, _ = load(out_dir)
    points = payload["points"]
    mode = payload.get("primary", "any-class")
    other = "same-class" if mode == "any-class" else "any-class"
    with plotting.style():
        fig, axes = plotting.new_figure(4, 2, width=2.6, height=2.3)
        for col, place in enumerate(PLACES):
            curve = _curve(points, place)
            sig = np.array([p["sigma"] for p in curve])
            xs = np.arange(sig.size)
            util = np.array([p["meta_test_accuracy"] for p in curve])
            for row, kind in enumerate(("query", "support")):
                ax = axes[row, col]
                acc = np.array([p[kind][mode]["accuracy"] for p in curve])
                ci = np.array([p[kind][mode]["accuracy_ci"] for p in curve])
                ax.errorbar(
                    xs,
                    acc,
                    yerr=[acc - ci[:, 0], ci[:, 1] - acc],
                    color="#c0392b",
                    marker="o",
                    capsize=2,
                    label=f"attack acc. ({mode})",
                )
                ax.plot(
                    xs,
                    [p[kind][other]["accuracy"] for p in curve],
                    color="#e59866",
                    ls="--",
                    marker=".",
                    label=f"attack acc. ({other})",
                )
                ax.plot(xs, util, color="#2471a3", marker="s", label="meta-test acc.")
                for s in confident_sigmas(payload["areas"], mode, place, kind):
                    i = int(np.flatnonzero(sig == s)[0])
                    ax.axvspan(i - 0.4, i + 0.4, color="#27ae60", alpha=0.25, lw=0)
                ax.axhline(0.5, color="0.5", ls=":", lw=1)
                ax.set_xticks(xs, [f"{s:g}" for s in sig])
                ax.set(
                    ylim=(0, 1.02),
                    xlabel=f"noise sigma ({place})",
                    ylabel="accuracy",
                    title=f"{kind} attack, noise on {place}",
                )
                if col == 0 and row == 0:
                    ax.legend(loc="lower left", fontsize=5)
        fig.suptitle(
            f"{payload['source']}, {payload['ways']}-way {payload['shots']}-shot: green = "
            "confident noise area (attack significantly below sigma = 0, paired test; "
            f"utility drop <= {payload['criteria']['utility_margin']})",
            fontsize=7,
        )
        paths = plotting.save_figure(fig, out_dir, STEM)
    return paths


def check(out_dir) -> list[str]:
    def summaries(payload):
        for p in payload["points"]:
            for kind, mode, s in mcom.attack_rows(p):
                yield f"{p['place']} sigma={p['sigma']} {kind} {mode}", s

    return mcom.check_job(out_dir, STEM, load, summaries)


__all__ = [
    "STEM",
    "HELP",
    "OPTIONS",
    "QUICK",
    "PLACES",
    "LEVEL",
    "UTILITY_MARGIN",
    "run",
    "load",
    "plot",
    "headline",
    "check",
    "trial_accuracy",
    "paired_decrease_pvalue",
    "confident_areas",
    "confident_sigmas",
]
