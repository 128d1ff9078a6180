"""Tables III-IV: the runtime of the support and query attacks on the paper's grid.

Grid: iterations 50/100/200 x data sizes 3/5/10/15/20 (the images reconstructed: a
``size``-way 1-shot set), 28x28 images, MAML's 4-block conv net (``--channels``, default 32),
one inner step, on the machine the job runs on. Per cell and attack, with the library's attack
(:func:`~mtl_tracing.attacks.gradient_inversion.invert_trials`; the iteration count is traced,
so one program per size, attack and batch): the *per-attack time* (one target per call, the
paper's setting) and the *vectorised throughput* (``--trials`` targets in one call, attacks
per second), both warm (compiled first, ``block_until_ready``), beside the paper's per-attack
seconds (PyTorch, one attack at a time, a dual-core PC with 8 GB). Images are uniform noise and
the victim untrained: the runtime does not depend on the data. Files: ``maml_runtime.json``,
``maml_runtime.npz``, ``maml_runtime.md`` and ``maml_runtime.png/.pdf``.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from mtl_tracing import plotting
from mtl_tracing._validate import check_int
from mtl_tracing.experiments import maml_common as mcom
from mtl_tracing.experiments.registry import Option
from mtl_tracing.options import int_list

STEM = "maml_runtime"
HELP = "MAML Tables III-IV: per-attack time and vectorised throughput on the paper's grid."
SIZES = (3, 5, 10, 15, 20)
ITERATIONS = (50, 100, 200)
#: The paper's Tables III (support) and IV (query): seconds per attack, {iterations: by size}.
PAPER = {
    "support": {
        50: (3.54, 4.05, 6.28, 7.16, 8.84),
        100: (7.26, 8.02, 11.29, 14.57, 17.45),
        200: (14.09, 15.93, 21.71, 29.71, 34.79),
    },
    "query": {
        50: (1.34, 1.64, 1.94, 2.4, 3.42),
        100: (2.56, 3.08, 3.86, 4.87, 5.79),
        200: (5.12, 6.04, 7.63, 9.22, 14.11),
    },
}
KINDS = ("support", "query")
OPTIONS = (
    Option("--sizes", int_list, "data sizes (default 3,5,10,15,20)"),
    Option("--iterations", int_list, "attack iterations (default 50,100,200)"),
    Option("--trials", int, "targets per vectorised call (default 8)"),
    Option("--channels", int, "conv filters (default 32)"),
    Option("--repeats", int, "timed single-target calls per cell (default 2)"),
)
QUICK = {"sizes": [3], "iterations": [5, 10], "trials": 2, "channels": 4, "repeats": 1}


def attack_inputs(size: int, trials: int, channels: int, seed: int = 0, image=28):
    """A ``size``-way 1-shot victim at 28x28 and ``trials`` random tasks: (model, params,
    grads (leaves (trials, ...)), support images, query images (trials, size, 28, 28, 1))."""
    import jax

    from mtl_tracing import flat_random
    from mtl_tracing.data.fewshot import FewShotTasks, task_labels
    from mtl_tracing.victims import maml

    model = maml.ModelConfig(image_shape=(image, image, 1), ways=size, channels=channels)
    key = jax.random.key(seed)
    params = maml.init_params(model, key)
    k_s, k_q, k_v = jax.random.split(jax.random.fold_in(key, 1), 3)
    shape = (trials, size, image, image, 1)
    sx, qx = flat_random.uniform(k_s, shape), flat_random.uniform(k_q, shape)
    labels = jax.numpy.broadcast_to(task_labels(size, 1), (trials, size))
    tasks = FewShotTasks(sx, labels, qx, labels, labels, labels, labels)
    grads = maml.task_gradients(model, params, tasks, k_v).grads
    return model, params, grads, sx, qx


def time_attack(model, params, grads, sx, qx, *, kind, iterations, n, trial_batch="auto"):
    """Seconds of one warm call attacking the first n targets for ``iterations`` steps."""
    import jax
    import jax.numpy as jnp

    from mtl_tracing.attacks import gradient_inversion as gi

    sub = jax.tree.map(lambda a: a[:n], grads)
    x0 = (qx if kind == "query" else sx)[:n, 0]
    kw = {"kind": kind, "shots": 1, "trial_batch": trial_batch}
    kw["query_x"] = qx[:n] if kind == "support" else None
    slots = jnp.zeros((n,), jnp.int32)
    key = jax.random.key(1)
    t = time.perf_counter()
    cfg = gi.AttackConfig(iterations=iterations)
    jax.block_until_ready(gi.invert_trials(model, params, sub, x0, slots, key, config=cfg, **kw))
    return time.perf_counter() - t


def run(
    out_dir,
    *,
    seed=0,
    progress=True,
    dtype=None,
    sizes=SIZES,
    iterations=ITERATIONS,
    trials=8,
    channels=32,
    repeats=2,
):
    import jax

    del dtype  # timings are float32, as the paper's
    seed = check_int("seed", seed, low=0)
    sizes = [check_int("sizes", s, low=2) for s in sizes]
    iterations = [check_int("iterations", i, low=1) for i in iterations]
    trials = check_int("trials", trials, low=1)
    channels = check_int("channels", channels, low=1)
    repeats = check_int("repeats", repeats, low=1)
    cells = [(s, k) for s in sizes for k in KINDS]
    if progress:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc="maml runtime", unit="cell")
    rows = []
    for size, kind in cells:
        inputs = attack_inputs(size, trials, channels, seed)
        t0 = time.perf_counter()
        for n in (1, trials):  # compile both programs (the iteration count is traced)
            time_attack(*inputs, kind=kind, iterations=1, n=n)
        compile_s = time.perf_counter() - t0
        for it in iterations:
            one = min(time_attack(*inputs, kind=kind, iterations=it, n=1) for _ in range(repeats))
            many = time_attack(*inputs, kind=kind, iterations=it, n=trials)
            paper = PAPER[kind].get(it)
            rows.append(
                {
                    "attack": kind,
                    "iterations": it,
                    "size": size,
                    "per_attack_s": one,
                    "vectorised_s_per_attack": many / trials,
                    "throughput_per_s": trials / many,
                    "paper_s": None
                    if paper is None or size not in SIZES
                    else paper[SIZES.index(size)],
                    "compile_s": compile_s,
                }
            )
    payload = {
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "devices": [str(d) for d in jax.devices()],
            "backend": jax.default_backend(),
        },
        "trials": trials,
        "channels": channels,
    }
    arrays = {"per_attack_s": np.array([r["per_attack_s"] for r in rows])}
    config = {"sizes": sizes, "iterations": iterations, "trials": trials, "channels": channels}
    mcom.write(out_dir, STEM, payload, arrays, config=config, seed=seed)


def load(out_dir):
    return mcom.load(out_dir, STEM)


def render_markdown(payload) -> str:
    rows = payload["rows"]
    sizes = sorted({r["size"] for r in rows})
    its = sorted({r["iterations"] for r in rows})
    m = payload["machine"]
    lines = [
        f"MAML attack runtimes on {m['processor'] or m['platform']} ({m['backend']}, "
        f"{', '.join(m['devices'])}), {payload['channels']}-filter 4-block conv net, 28x28. Cell: "
        f"ours per attack (s, one target per call) / ours vectorised ({payload['trials']} "
        "targets per call: attacks per second) (paper s per attack, dual-core PC).",
        "",
    ]
    for kind, table in zip(
        KINDS, ("Table III (support attack)", "Table IV (query attack)"), strict=True
    ):
        lines += [
            f"### {table}",
            "",
            "| iterations | " + " | ".join(f"size {s}" for s in sizes) + " |",
            "|---:|" + "---:|" * len(sizes),
        ]
        for it in its:
            cells = []
            for s in sizes:
                r = next(
                    r for r in rows if (r["attack"], r["iterations"], r["size"]) == (kind, it, s)
                )
                paper = "-" if r["paper_s"] is None else f"{r['paper_s']:g}"
                cells.append(f"{r['per_attack_s']:.3f} / {r['throughput_per_s']:.1f}/s ({paper})")
            lines.append(f"| {it} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def headline(payload) -> str:
    return render_markdown(payload)


def plot(out_dir) -> list[Path]:
    payload, _ = load(out_dir)
    out = Path(out_dir)
    md = out / f"{STEM}.md"
    md.write_text(render_markdown(payload))
    rows = payload["rows"]
    with plotting.style():
        fig, axes = plotting.new_figure(2, 1, width=3.0, height=2.5)
        for ax, kind in zip(axes[0], KINDS, strict=True):
            for it, color in zip(
                sorted({r["iterations"] for r in rows}),
                ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"),
                strict=False,
            ):
                pts = sorted(
                    (r for r in rows if r["attack"] == kind and r["iterations"] == it),
                    key=lambda r: r["size"],
                )
                x = [r["size"] for r in pts]
                ax.plot(
                    x, [r["per_attack_s"] for r in pts], "o-", color=color, label=f"ours, {it} it."
                )
                ax.plot(x, [r["vectorised_s_per_attack"] for r in pts], "x:", color=color)
                paper = [r["paper_s"] for r in pts]
                if any(p is not None for p in paper):
                    ax.plot(
                        x,
                        [np.nan if p is None else p for p in paper],
                        "s--",
                        mfc="none",
                        color=color,
                        label=f"paper, {it} it.",
                    )
            ax.set_yscale("log")
            ax.set(
                xlabel="data size (images reconstructed)",
                ylabel="seconds per attack",
                title=f"{kind} attack (x: vectorised)",
            )
            ax.legend(fontsize=5)
        paths = plotting.save_figure(fig, out, STEM)
    return [md, *paths]


def check(out_dir) -> list[str]:
    bad = mcom.check_files(out_dir, STEM, [STEM])
    if bad:
        return bad
    payload, _ = load(out_dir)
    for r in payload["rows"]:
        if not (r["per_attack_s"] > 0 and r["throughput_per_s"] > 0):
            bad.append(f"{r['attack']} size={r['size']} it={r['iterations']}: non-positive time")
    return bad


__all__ = [
    "STEM",
    "HELP",
    "OPTIONS",
    "QUICK",
    "PAPER",
    "SIZES",
    "ITERATIONS",
    "run",
    "load",
    "plot",
    "headline",
    "check",
    "attack_inputs",
    "time_attack",
]
