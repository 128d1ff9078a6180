"""Profile: the real-data trainer's training step and evaluation at the paper's shapes, per variant.

For each cell (the shapes of the data set registry's paper set-ups: T IN tasks of N samples and H
held-out samples, the task minibatch B, the per-step sample batch S, the default encoders and
heads; random inputs of those shapes in memory, no files) and each variant (``--variants
conv=auto,loop_safe,xla dtype=float32,bfloat16``, the product; ``auto`` resolved on this
backend, duplicates measured once), this compiles and times, best of ``--repeats``:

- ``epoch``: one epoch as training runs it (``trainer.epoch_fn(..., evaluate=False)``: the
  epoch's batches, then ``lax.scan`` over its ceil(T / B) steps), and per step;
- ``eval``: ``trainer.evaluate`` (train / held-out loss and accuracy of the T IN tasks: a
  forward pass over T (N + H) samples), what the job runs at each checkpoint;
- ``--plain``: also the step jitted on its own (one minibatch), to compare with the step in the
  scan (XLA:CPU's slow in-loop convolution gradient, see ``bench_conv_scan.py``).

It prints compile seconds, milliseconds, XLA's count of FLOPs per step (the lowered step's
``cost_analysis``) and the rate that gives, and with ``--trace DIR`` writes one
``jax.profiler`` trace per (cell, variant) under DIR (view in TensorBoard's profile plugin or
Perfetto: kernel names and times per step).

Run (GPU, < 2 min): ``python benchmarks/profile_real_step.py --cells femnist,so-personalization
--variants conv=loop_safe,xla dtype=float32,bfloat16 [--trace DIR]``; on a CPU ``--small``
(tiny shapes, a smoke test of the script).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
from _timing import best_time
from bench_real import AXES, parse_variants

from mtl_tracing.experiments import real, real_setup

#: cell -> (dataset, setting, feature shape F (None: from the config), head_loss, head_outputs)
CELLS = {
    "femnist": ("femnist", "personalization", (28, 28, 1), "softmax", 62),
    "so-personalization": ("stackoverflow", "personalization", None, "multilabel", 256),
    "so-problems": ("stackoverflow", "problems", None, "binary", 1),
    "celeba-personalization": ("celeba", "personalization", None, "binary", 1),
    "celeba-problems": ("celeba", "problems", None, "binary", 1),
}

#: ``--small``: tiny shapes (a smoke test on a CPU).
SMALL = dict(
    tasks=4, samples=8, heldout=4, sample_batch=4, task_batch=2, widths="8", hidden=32,
    hash_dim=64, image_size=8, embed_dim=4, runs=1,
)  # fmt: skip


def fake_data(dataset: str, cfg: dict, shape, head_loss: str, head_outputs: int, seed=0):
    """Random ``MultitaskData`` of the cell's shapes (the loaders' dtypes and label forms)."""
    from mtl_tracing.data.base import MultitaskData

    if shape is None:
        shape = (
            (cfg["hash_dim"],)
            if dataset == "stackoverflow"
            else (cfg["image_size"], cfg["image_size"], 3)
        )
    rng = np.random.default_rng(seed)
    T, N, H = cfg["tasks"], cfg["samples"], cfg["heldout"]

    def xs(n):
        return rng.random((T, n, *shape), dtype=np.float32)

    def ys(n):
        if head_loss == "softmax":
            return rng.integers(0, head_outputs, (T, n)).astype(np.int32)
        if head_loss == "multilabel":
            return (rng.random((T, n, head_outputs)) < 0.05).astype(np.float32)
        return (rng.random((T, n)) < 0.5).astype(np.float32)

    x, y, xh, yh = xs(N), ys(N), xs(H), ys(H)
    info = {"head_loss": head_loss, "head_outputs": head_outputs}
    return MultitaskData(x, y, x, y, xh, yh, xh, yh, info)


def _flops(lowered) -> float:
    ca = lowered.cost_analysis()
    ca = ca[0] if isinstance(ca, list | tuple) else ca
    return float((ca or {}).get("flops", float("nan")))


def profile(dataset, cfg, data, *, repeats: int, plain: bool, trace: Path | None) -> dict:
    import jax

    from mtl_tracing.victims.trainer import epoch_fn

    trainer, _, sharded = real_setup.training_setup(dataset, cfg, data)
    d = sharded._replace(x_out=None, y_out=None, x_out_heldout=None, y_out_heldout=None)
    key = jax.random.key(0)
    state = jax.jit(trainer.init)(key, d)

    def epoch(s, k, e, d):
        return epoch_fn(trainer, d, evaluate=False)(s, k, e)[0]

    epoch_j, eval_j = jax.jit(epoch), jax.jit(trainer.evaluate)
    batch = jax.tree.map(lambda a: a[0], jax.jit(trainer.batches)(key, d))
    step_j = jax.jit(trainer.step)
    lowered_step = step_j.lower(state, key, batch)
    row = {"gflop_step": _flops(lowered_step) / 1e9}
    e0 = np.int32(0)
    t0 = time.perf_counter()
    epoch_c = epoch_j.lower(state, key, e0, d).compile()
    row["compile_epoch_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    eval_c = eval_j.lower(state, d).compile()
    row["compile_eval_s"] = time.perf_counter() - t0
    steps = -(-cfg["tasks"] // min(cfg["task_batch"], cfg["tasks"]))
    row["epoch_ms"] = 1e3 * best_time(lambda: epoch_c(state, key, e0, d), repeats)
    row["step_in_scan_ms"] = row["epoch_ms"] / steps
    row["eval_ms"] = 1e3 * best_time(lambda: eval_c(state, d), repeats)
    row["tflops_in_scan"] = row["gflop_step"] / row["step_in_scan_ms"]  # GFLOP / ms = TFLOP/s
    if plain:
        t0 = time.perf_counter()
        step_c = lowered_step.compile()
        row["compile_step_s"] = time.perf_counter() - t0
        row["step_ms"] = 1e3 * best_time(lambda: step_c(state, key, batch), repeats)
    if trace is not None:
        trace.mkdir(parents=True, exist_ok=True)
        with jax.profiler.trace(str(trace)):
            jax.block_until_ready(epoch_c(state, key, e0, d))
            jax.block_until_ready(eval_c(state, d))
            if plain:
                for _ in range(3):
                    jax.block_until_ready(step_c(state, key, batch))
    row["steps_per_epoch"] = steps
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="femnist,so-personalization", help="comma-separated")
    p.add_argument("--variants", nargs="*", default=["conv=auto", "dtype=float32"],
                   metavar="AXIS=V1,V2", help=f"axes {tuple(AXES)}: conv=auto,loop_safe,xla "
                   "dtype=float32,bfloat16 (the product)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--plain", action="store_true", help="also time the step jitted on its own")
    p.add_argument("--trace", default=None, help="write jax.profiler traces under this folder")
    p.add_argument("--tasks", type=int, default=None, help="T (default: the paper's)")
    p.add_argument("--small", action="store_true", help="tiny shapes: a smoke test on a CPU")
    args = p.parse_args()
    variants = parse_variants(args.variants)
    import jax
    from bench_real import _label

    print(f"# {os.cpu_count()} CPUs, jax {jax.__version__}, {jax.devices()[0].platform} "
          f"({jax.devices()[0].device_kind}), {len(jax.devices())} device(s)")  # fmt: skip
    cols = ("gflop_step", "compile_epoch_s", "epoch_ms", "step_in_scan_ms", "tflops_in_scan",
            "compile_eval_s", "eval_ms")  # fmt: skip
    extra = ("compile_step_s", "step_ms") if args.plain else ()
    print("| cell (T, B x S) | variant | " + " | ".join(cols + extra) + " |")
    print("|---" * (2 + len(cols) + len(extra)) + "|")
    for name in args.cells.split(","):
        dataset, setting, shape, head_loss, c = CELLS[name]
        over = dict(SMALL) if args.small else {}
        if args.tasks is not None:
            over["tasks"] = args.tasks
        cfg = real.config_for(dataset, setting, **over)
        data = fake_data(dataset, cfg, shape, head_loss, c)
        seen = set()
        for v in variants:
            vcfg = {**cfg, **v}
            label, key = _label(dataset, vcfg)
            if key in seen:
                continue
            seen.add(key)
            folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{name}-{label}")
            tr = None if args.trace is None else Path(args.trace) / folder
            row = profile(dataset, vcfg, data, repeats=args.repeats, plain=args.plain, trace=tr)
            s = min(cfg["sample_batch"] or cfg["samples"], cfg["samples"])
            b = min(cfg["task_batch"], cfg["tasks"])
            cells = " | ".join(f"{row[k]:.3g}" for k in cols + extra)
            print(f"| {name} ({cfg['tasks']}, {b} x {s}) | {label} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
