"""Benchmark: ``mtl-tracing real`` per stage, on fabricated files of the paper's shapes.

Each cell writes a fabricated dataset in the real on-disk format
(:mod:`mtl_tracing.data.fixtures`: CelebA JPEGs of 178 x 218, LEAF JSON shards, TFF's SQLite)
at the paper's task counts and samples per task (App. A.5-A.6, the job's defaults in
the data set registry's ``paper`` set-ups, :mod:`mtl_tracing.data.registry`; the default
encoders and image size), then times, in one process:

- ``decode``: the loader at the paper's size, cold (reads and decodes the selected samples,
  writes the ``.npz`` cache); ``cache hit``: the same call again (reads the cache);
- ``real.run`` for ``--epochs`` epochs with a checkpoint after each (``timings``), at the
  paper's size or, for the image cells, with fewer tasks (and samples / runs; the cell's
  ``measured`` overrides) so that a cell fits in minutes on 2 CPU cores: the first
  training segment (compilation + one epoch), then one epoch; the first evaluation (both
  attacks, metrics with the task bootstrap, generalization gaps; compilation + one), then one;
  the final stage (Figs. 4-5 statistics, ``real.json``/``real.npz``); then ``real.plot``
  (``table.md`` and the five figures).

The full default run (200 epochs, 5 checkpoints, the paper's R) does not fit in a benchmark on
2 CPU cores; it is extrapolated as decode + train compile + epochs x epoch x s_train + eval
compile + checkpoints x evaluation x s_eval + final x s_eval + plot, where s_train = (R x
steps per epoch) / (the same measured) (a step is task_batch tasks of min(N, sample_batch)
samples, so it does not depend on T or N) and s_eval = (R x (T + T_out) x (N + H)) / (the same
measured) (evaluation embeds every pooled sample a fixed number of times). Both scales are
printed. Writing the fixtures is timed too but is not part of the pipeline. Every training
segment after the first must reuse the first one's compiled program (segments of equal length);
the segment programs compiled during the later segments are counted (``recompiles``; 0).

Variants (``--variants conv=auto,loop_safe,xla dtype=float32,bfloat16``, the product of the axes
given): after the pipeline, the training alone is timed per variant on the same data, as
``trainer.fit_checkpoints`` runs it for the job (``--variant-segments`` segments of ``--variant-
epochs`` epochs; the first includes compilation, the median of the others gives the epoch), with
the per-step time and the default run re-estimated with the variant's compile and epoch. Axes:
``conv`` (the ResNet's convolution, ``ResNetSpec.conv``; ignored by the MLP cells) and ``dtype``
(``EncoderMTLTrainer.compute_dtype``). ``auto`` is resolved on the running backend and variants
that resolve to the same choice are measured once.

``--small`` replaces every size by a tiny one (fixture files and run) so the whole script runs
on a CPU in a minute or two: a smoke test of the script, not a measurement.

Run: ``python benchmarks/bench_real.py [--cells so-personalization,femnist,...] [--epochs 2]
[--variants conv=auto,loop_safe,xla dtype=float32,bfloat16] [--small] [--workdir DIR]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from mtl_tracing.data import fixtures
from mtl_tracing.data import registry as datasets
from mtl_tracing.experiments import real, real_setup

#: cell -> (dataset, setting, fixture writer kwargs, measured overrides, note)
CELLS = {
    "so-personalization": (
        "stackoverflow", "personalization",
        dict(users=256, per_user=48, tags=[f"tag{i}" for i in range(400)], tags_per_post=(1, 6),
             words=5000, body_words=100),
        {}, "256 users x 48 posts (>= the 48 the filter needs), 400 tags, 100-word posts",
    ),
    "so-problems": (
        "stackoverflow", "problems",
        dict(users=400, per_user=100, tags=[f"tag{i}" for i in range(150)], tags_per_post=(2, 5),
             words=5000, body_words=100),
        {}, "40k posts scanned (the full train split has ~1.4e8), 150 tags",
    ),
    "femnist": (
        "femnist", "personalization", dict(users=256, per_user=144, shards=4), dict(tasks=32),
        "256 writers x 144 images, 4 JSON shards; run measured with T = 32 (paper 128)",
    ),
    "celeba-personalization": (
        "celeba", "personalization",
        dict(people=512, per_person=30, size=(178, 218)), dict(tasks=32),
        "512 identities x 30 JPEGs of 178 x 218; run measured with T = 32 (paper 256)",
    ),
    "celeba-problems": (
        "celeba", "problems",
        dict(people=400, per_person=25, size=(178, 218), attributes=fixtures.CELEBA_ATTRIBUTES),
        dict(runs=1, tasks=8, samples=64, heldout=64),
        "10k JPEGs, 40 attributes; run measured with R = 1, T = 8, N = H = 64 (paper 8, 20, "
        "1024, 64)",
    ),
}  # fmt: skip

#: ``--small``: the run's sizes (the tests' tiny end-to-end runs); fixtures at the writers'
#: defaults.
SMALL = dict(
    tasks=3, samples=4, heldout=4, trials=8, image_size=8, runs=1, embed_dim=4, task_batch=3,
    widths="4", hidden=16, hash_dim=32, strong_k=4, weak_k=4, sample_batch=3, num_resamples=50,
)  # fmt: skip

#: ``--variants`` axes: name -> (config key of ``experiments.real``, {value: config value});
#: float32 is the default (None: the parameters' dtype), so it shares the pipeline's programs.
AXES = {
    "conv": ("conv", {"auto": "auto", "loop_safe": "loop_safe", "xla": "xla"}),
    "dtype": ("compute_dtype", {"float32": None, "bfloat16": "bfloat16"}),
}

WRITERS = {
    "celeba": fixtures.write_celeba,
    "femnist": fixtures.write_femnist,
    "stackoverflow": fixtures.write_stackoverflow,
}


class _Compiles:
    """Counts XLA compilations (``jax.monitoring``'s backend-compile events): all, and those of
    the training segment program (``count``)."""

    def __init__(self):
        import jax.monitoring as mon

        self.count, self.programs = 0, 0
        mon.register_event_duration_secs_listener(self._on)

    def _on(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.programs += 1
            self.count += "_fit_segment" in str(kwargs.get("fun_name", "_fit_segment"))


COMPILES: _Compiles | None = None


def parse_variants(tokens: list[str]) -> list[dict]:
    """``["conv=auto,xla", "dtype=float32"]`` -> the product, as config overrides (none for
    no tokens)."""
    if not tokens:
        return []
    axes = []
    for tok in tokens:
        name, _, values = tok.partition("=")
        if name not in AXES or not values:
            raise SystemExit(f"--variants: expected AXIS=v1,v2 with AXIS in {tuple(AXES)}: {tok!r}")
        key, allowed = AXES[name]
        vals = values.split(",")
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise SystemExit(f"--variants: {name} must be in {tuple(allowed)}, got {bad}")
        axes.append([(key, allowed[v]) for v in vals])
    return [dict(c) for c in itertools.product(*axes)]


def _label(dataset: str, cfg: dict) -> tuple[str, tuple]:
    """(printed label, resolved key) of a variant config: conv only matters for images."""
    from mtl_tracing.victims.encoders import resolve_conv

    dtype = cfg["compute_dtype"] or "float32"
    if dataset == "stackoverflow":
        return f"dtype={dtype}", ("-", dtype)
    conv = resolve_conv(cfg["conv"])
    shown = conv if cfg["conv"] == conv else f"{cfg['conv']}({conv})"
    return f"conv={shown} dtype={dtype}", (conv, dtype)


def time_training(dataset: str, cfg: dict, data, *, epochs: int, segments: int) -> dict:
    """The training alone at ``cfg``: ``segments`` segments of ``epochs`` epochs (compiles:
    of the segment program)."""
    import jax

    from mtl_tracing.victims.trainer import fit_checkpoints

    trainer, _, sharded = real_setup.training_setup(dataset, cfg, data)
    in_part = sharded._replace(x_out=None, y_out=None, x_out_heldout=None, y_out_heldout=None)
    cps = tuple(epochs * (i + 1) for i in range(segments))
    config = trainer.config.replace(epochs=max(cps[-1], trainer.config.epochs))
    trainer = dataclasses.replace(trainer, config=config)  # room for every segment
    times, compiles = [], []
    t0, c0 = time.perf_counter(), COMPILES.count
    run = fit_checkpoints(trainer, jax.random.key(0), in_part, runs=cfg["runs"], checkpoints=cps)
    for _, states, _ in run:
        jax.block_until_ready(states)
        now = time.perf_counter()
        times.append(now - t0)
        compiles.append(COMPILES.count - c0)
        t0, c0 = now, COMPILES.count
    epoch = statistics.median(times[1:]) / epochs
    steps = cfg["runs"] * -(-cfg["tasks"] // min(cfg["task_batch"], cfg["tasks"]))
    return {
        "first_segment_s": times[0],
        "first_segment_compiles": compiles[0],
        "epoch_s": epoch,
        "step_ms": 1e3 * epoch / steps,
        "recompiles": sum(compiles[1:]),
        "segments_s": times,
    }


def bench_cell(
    name: str, work: Path, epochs: int, *, small: bool = False, variants=(),
    variant_epochs: int = 1, variant_segments: int = 4,
) -> dict:  # fmt: skip
    dataset, setting, fx, measured, note = CELLS[name]
    if small:
        fx, measured, note = {}, dict(SMALL), "--small: tiny fixtures and run (smoke test)"
    root = work / name / "data"
    t0 = time.perf_counter()
    WRITERS[dataset](root, **fx)
    t_write = time.perf_counter() - t0
    cache = work / name / "cache"
    paper = real.config_for(dataset, setting)
    cfg = real.config_for(dataset, setting, **measured)
    load = dict(setting=setting, features_dir=None, cache_dir=cache, seed=0, progress=False)
    decode = cfg if small else paper  # the small fixtures hold too few tasks for the paper's
    t0 = time.perf_counter()
    datasets.load(dataset, root, decode, **load)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    datasets.load(dataset, root, decode, **load)
    t_hit = time.perf_counter() - t0
    timings: dict = {}
    out = work / name / "out"
    c0 = COMPILES.programs
    real.run(out, dataset=dataset, setting=setting, data_dir=root, cache_dir=cache,
             progress=False, timings=timings, epochs=epochs, checkpoints=epochs,
             **measured)  # fmt: skip
    t0 = time.perf_counter()
    real.plot(out)
    t_plot = time.perf_counter() - t0
    tr, ev = timings["train"], timings["evaluate"]
    epoch, evaluation = statistics.median(tr[1:]), statistics.median(ev[1:])

    def steps(c):
        return c["runs"] * -(-c["tasks"] // min(c["task_batch"], c["tasks"]))

    def pooled(c):
        return c["runs"] * c["tasks"] * (c["samples"] + c["heldout"])

    runs_scale = steps(paper) / steps(cfg)
    eval_scale = pooled(paper) / pooled(cfg)
    train_compile = tr[0] - epoch
    fixed = (
        t_cold
        + (ev[0] - evaluation)
        + paper["checkpoints"] * evaluation * eval_scale
        + timings["final"] * eval_scale
        + t_plot
    )
    est = fixed + train_compile + paper["epochs"] * epoch * runs_scale
    pipeline_compiles = COMPILES.programs - c0
    rows, seen = [], {}
    if variants:
        data = datasets.load(dataset, root, cfg, **load)
    for v in variants:
        vcfg = {**cfg, **v}
        label, key = _label(dataset, vcfg)
        if key in seen:
            continue
        t = time_training(dataset, vcfg, data, epochs=variant_epochs, segments=variant_segments)
        compile_v = (
            t["first_segment_s"] - variant_epochs * t["epoch_s"]
            if t["first_segment_compiles"]
            else train_compile
        )
        t["estimated_default_run_s"] = (
            fixed + compile_v + paper["epochs"] * t["epoch_s"] * runs_scale
        )
        seen[key] = label
        rows.append({"variant": label, **t})
    return {
        "cell": name,
        "note": note,
        "write_fixtures_s": t_write,
        "decode_cold_s": t_cold,
        "cache_hit_s": t_hit,
        "run_load_s": timings["load"],
        "train_first_segment_s": tr[0],
        "epoch_s": epoch,
        "evaluate_first_s": ev[0],
        "evaluate_s": evaluation,
        "final_s": timings["final"],
        "plot_s": t_plot,
        "runs_scale": runs_scale,
        "eval_scale": eval_scale,
        "paper_epochs": paper["epochs"],
        "paper_checkpoints": paper["checkpoints"],
        "estimated_default_run_s": est,
        "train_segments_s": tr,
        "pipeline_compiles": pipeline_compiles,
        "variants": rows,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells")
    p.add_argument("--epochs", type=int, default=2, help="epochs measured (>= 2)")
    p.add_argument("--workdir", default=None, help="keep the files here (default: a temp dir)")
    p.add_argument("--json", default=None, help="write the rows to this JSON file")
    p.add_argument("--variants", nargs="*", default=[], metavar="AXIS=V1,V2",
                   help="time the training per variant: conv=auto,loop_safe,xla "
                   "dtype=float32,bfloat16 (the product of the axes)")  # fmt: skip
    p.add_argument("--variant-epochs", type=int, default=1, help="epochs per timed segment")
    p.add_argument("--variant-segments", type=int, default=4, help="timed segments (>= 2)")
    p.add_argument("--small", action="store_true", help="tiny sizes: a smoke test on a CPU")
    args = p.parse_args()
    variants = parse_variants(args.variants)
    import jax

    global COMPILES
    COMPILES = _Compiles()
    print(f"# {platform.processor() or platform.machine()}, jax {jax.__version__}, "
          f"{jax.devices()[0].platform}, {len(jax.devices())} device(s)")  # fmt: skip
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_real_"))
    rows = []
    cols = ("write_fixtures_s", "decode_cold_s", "cache_hit_s", "train_first_segment_s",
            "epoch_s", "evaluate_first_s", "evaluate_s", "final_s", "plot_s",
            "estimated_default_run_s")  # fmt: skip
    print("| cell | " + " | ".join(cols) + " | s_train, s_eval |")
    try:
        for name in args.cells.split(","):
            row = bench_cell(
                name, work, max(2, args.epochs), small=args.small, variants=variants,
                variant_epochs=max(1, args.variant_epochs),
                variant_segments=max(2, args.variant_segments),
            )  # fmt: skip
            rows.append(row)
            cells = " | ".join(f"{row[c]:.2f}" for c in cols)
            print(f"| {name} | {cells} | {row['runs_scale']:g}, {row['eval_scale']:.3g} |",
                  flush=True)  # fmt: skip
            if args.workdir is None:
                shutil.rmtree(work / name, ignore_errors=True)
        if variants:
            print()
            print("| cell | variant | 1st segment s (compiles) | epoch s | step ms | recompiles "
                  "| estimated default run |")  # fmt: skip
            print("|---|---|---|---|---|---|---|")
            for row in rows:
                for v in row["variants"]:
                    est = v["estimated_default_run_s"]
                    print(f"| {row['cell']} | {v['variant']} | {v['first_segment_s']:.2f} "
                          f"({v['first_segment_compiles']}) | {v['epoch_s']:.4f} | "
                          f"{v['step_ms']:.2f} | {v['recompiles']} | {est:.0f} s "
                          f"({est / 60:.1f} min) |", flush=True)  # fmt: skip
        for row in rows:
            segs = ", ".join(f"{t:.3f}" for t in row["train_segments_s"])
            print(f"# {row['cell']}: training segments [{segs}] s; programs compiled by the "
                  f"pipeline {row['pipeline_compiles']}")  # fmt: skip
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
