"""Figs. 9-12 analogue: the four noise defences against the query and support attacks.

For each place (support data, adaptation gradient, query data, validation gradient) and each
sigma, the victim is meta-trained with that defence (the same shapes, so one compilation) and
attacked; the job records attack accuracy and AUC (with CIs) and the meta-test accuracy. The
"confident noise area" of a place and attack is the set of sigmas > 0 where the attack is near
chance (its accuracy CI reaches down to ``CHANCE_MARGIN`` above 1/2 or below) while utility
holds (meta-test accuracy >= the noiseless one minus ``UTILITY_DROP``). Setting keys:
sigma = 0 is setting 0, (place p, sigma j) is ``1 + 100 p + j``. Files: ``maml_noise.json``,
``maml_noise.npz``, ``maml_noise.png/.pdf`` (one panel per place and attack: attack accuracy in
red, meta-test accuracy in blue, the confident noise area in green).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing._validate import check_int, check_nonnegative
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
CHANCE_MARGIN = 0.55
UTILITY_DROP = 0.1
OPTIONS = (
    *mcom.source_option(),
    Option("--ways", int, "ways w (default 3)"),
    Option("--shots", int, "shots s (default 1)"),
    Option("--sigma-scale", float, "multiply every sigma grid by this (default 1)"),
)
QUICK = {"sigmas": {p: (s[-1],) for p, s in DEFAULT_SIGMAS.items()}, "quick_victim": True}


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
    quick_victim=False,
):
    import jax

    from mtl_tracing.victims import maml

    seed = check_int("seed", seed, low=0)
    scale = check_nonnegative("sigma_scale", sigma_scale)
    grids = {
        p: tuple(scale * check_nonnegative("sigma", v) for v in g)
        for p, g in (sigmas or DEFAULT_SIGMAS).items()
    }
    victim = mcom.QUICK_VICTIM if quick_victim else mcom.DEFAULT_VICTIM
    pools = mcom.load_pools(source, data_dir, seed, dtype)
    jobs = [("none", 0.0, 0)] + [
        (p, s, 1 + 100 * i + j)
        for i, p in enumerate(PLACES)
        for j, s in enumerate(grids.get(p, ()))
    ]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="maml noise", unit="setting")
    points, arrays = [], {}
    for place, sigma, c in jobs:
        res = mcom.run_setting(
            jax.random.fold_in(jax.random.key(seed), c),
            pools,
            ways=ways,
            shots=shots,
            victim=victim,
            noise=maml.noise_at(place, sigma),
            dtype=dtype,
        )
        e = str(victim.epochs)
        points.append(
            {
                "place": place,
                "sigma": sigma,
                "meta_test_accuracy": res["meta_test_accuracy"],
                **res["attacks"][e],
            }
        )
        arrays.update({f"{place}_{sigma:g}_{k}": v for k, v in res["scores"].items()})
    payload = {
        "source": source,
        "ways": ways,
        "shots": shots,
        "points": points,
        "areas": confident_areas(points),
        "criteria": {
            "attack_accuracy_ci_low_at_most": CHANCE_MARGIN,
            "utility_drop_at_most": UTILITY_DROP,
        },
    }
    config = {"source": source, "ways": ways, "shots": shots, "sigmas": grids, "victim": victim}
    mcom.write(out_dir, STEM, payload, arrays, config=config, seed=seed)


def _curve(points, place):
    base = [p for p in points if p["place"] == "none"]
    return base + sorted((p for p in points if p["place"] == place), key=lambda p: p["sigma"])


def confident_areas(points) -> dict:
    """{place: {kind: [sigmas in the confident noise area]}} (see the module docstring)."""
    clean = next(p for p in points if p["place"] == "none")["meta_test_accuracy"]
    out = {}
    for place in PLACES:
        out[place] = {}
        for kind in ("query", "support"):
            out[place][kind] = [
                p["sigma"]
                for p in _curve(points, place)[1:]  # sigma = 0 is no defence
                if p[kind]["accuracy_ci"][0] <= CHANCE_MARGIN
                and p["meta_test_accuracy"] >= clean - UTILITY_DROP
            ]
    return out


def load(out_dir):
    return mcom.load(out_dir, STEM)


def headline(payload) -> str:
    lines = [
        f"MAML noise defences ({payload['source']}, {payload['ways']}-way "
        f"{payload['shots']}-shot): sigma: attack acc. query/support, meta-test acc."
    ]
    for place in PLACES:
        cells = [
            f"{p['sigma']:g}: {p['query']['accuracy']:.2f}/{p['support']['accuracy']:.2f}, "
            f"{p['meta_test_accuracy']:.2f}"
            for p in _curve(payload["points"], place)
        ]
        area = payload["areas"][place]
        lines.append(
            f"{place:<10} "
            + " | ".join(cells)
            + f"  confident: query {area['query']} support {area['support']}"
        )
    return "\n".join(lines)


def plot(out_dir) -> list[Path]:
    payload, _ = load(out_dir)
    points = payload["points"]
    with plotting.style():
        fig, axes = plotting.new_figure(4, 2, width=2.6, height=2.3)
        for col, place in enumerate(PLACES):
            curve = _curve(points, place)
            sig = np.array([p["sigma"] for p in curve])
            xs = np.arange(sig.size)
            for row, kind in enumerate(("query", "support")):
                ax = axes[row, col]
                acc = np.array([p[kind]["accuracy"] for p in curve])
                ci = np.array([p[kind]["accuracy_ci"] for p in curve])
                util = np.array([p["meta_test_accuracy"] for p in curve])
                ax.errorbar(
                    xs,
                    acc,
                    yerr=[acc - ci[:, 0], ci[:, 1] - acc],
                    color="#c0392b",
                    marker="o",
                    label="attack acc.",
                )
                ax.plot(xs, util, color="#2471a3", marker="s", label="meta-test acc.")
                for s in payload["areas"][place][kind]:
                    i = int(np.flatnonzero(sig == s)[0])
                    ax.axvspan(i - 0.4, i + 0.4, color="#27ae60", alpha=0.2, lw=0)
                ax.axhline(0.5, color="0.5", ls=":", lw=1)
                ax.set_xticks(xs, [f"{s:g}" for s in sig])
                ax.set(ylim=(0, 1.02), xlabel="sigma", title=f"{kind} attack, noise: {place}")
                if col == 0:
                    ax.legend(loc="lower left")
        paths = plotting.save_figure(fig, out_dir, STEM)
    return paths


def check(out_dir) -> list[str]:
    def summaries(payload):
        for p in payload["points"]:
            for kind in ("query", "support"):
                yield f"{p['place']} sigma={p['sigma']} {kind}", p[kind]

    return mcom.check_job(out_dir, STEM, load, summaries)


__all__ = [
    "STEM",
    "HELP",
    "OPTIONS",
    "QUICK",
    "PLACES",
    "run",
    "load",
    "plot",
    "headline",
    "check",
    "confident_areas",
]
