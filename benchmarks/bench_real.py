"""Benchmark: ``mtl-tracing real`` per stage, on fabricated files of the paper's shapes.

Each cell writes a fabricated dataset in the real on-disk format
(:mod:`mtl_tracing.data.fixtures`: CelebA JPEGs of 178 x 218, LEAF JSON shards, TFF's SQLite)
at the paper's task counts and samples per task (App. A.5-A.6, the job's defaults in
``experiments.real.PAPER``; the default encoders and image size), then times, in one process:

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
printed. Writing the fixtures is timed too but is not part of the pipeline.

Run: ``python benchmarks/bench_real.py [--cells so-personalization,femnist,...] [--epochs 2]
[--workdir DIR] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from mtl_tracing.data import fixtures
from mtl_tracing.experiments import real

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

WRITERS = {
    "celeba": fixtures.write_celeba,
    "femnist": fixtures.write_femnist,
    "stackoverflow": fixtures.write_stackoverflow,
}


def _median(v):
    v = sorted(v)
    return v[len(v) // 2]


def bench_cell(name: str, work: Path, epochs: int) -> dict:
    dataset, setting, fx, measured, note = CELLS[name]
    root = work / name / "data"
    t0 = time.perf_counter()
    WRITERS[dataset](root, **fx)
    t_write = time.perf_counter() - t0
    cache = work / name / "cache"
    paper = real.config_for(dataset, setting)
    cfg = real.config_for(dataset, setting, **measured)
    load = dict(features=None, cache_dir=cache, seed=0, progress=False)
    t0 = time.perf_counter()
    real.load_data(dataset, setting, root, paper, **load)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    real.load_data(dataset, setting, root, paper, **load)
    t_hit = time.perf_counter() - t0
    timings: dict = {}
    out = work / name / "out"
    real.run(out, dataset=dataset, setting=setting, data_dir=root, cache_dir=cache,
             progress=False, timings=timings, epochs=epochs, checkpoints=epochs,
             **measured)  # fmt: skip
    t0 = time.perf_counter()
    real.plot(out)
    t_plot = time.perf_counter() - t0
    tr, ev = timings["train"], timings["evaluate"]
    epoch, evaluation = _median(tr[1:]), _median(ev[1:])

    def steps(c):
        return c["runs"] * -(-c["tasks"] // min(c["task_batch"], c["tasks"]))

    def pooled(c):
        return c["runs"] * c["tasks"] * (c["samples"] + c["heldout"])

    runs_scale = steps(paper) / steps(cfg)
    eval_scale = pooled(paper) / pooled(cfg)
    est = (
        t_cold
        + (tr[0] - epoch)
        + paper["epochs"] * epoch * runs_scale
        + (ev[0] - evaluation)
        + paper["checkpoints"] * evaluation * eval_scale
        + timings["final"] * eval_scale
        + t_plot
    )
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
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells")
    p.add_argument("--epochs", type=int, default=2, help="epochs measured (>= 2)")
    p.add_argument("--workdir", default=None, help="keep the files here (default: a temp dir)")
    p.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = p.parse_args()
    import jax

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
            row = bench_cell(name, work, max(2, args.epochs))
            rows.append(row)
            cells = " | ".join(f"{row[c]:.2f}" for c in cols)
            print(f"| {name} | {cells} | {row['runs_scale']:g}, {row['eval_scale']:.3g} |",
                  flush=True)  # fmt: skip
            if args.workdir is None:
                shutil.rmtree(work / name, ignore_errors=True)
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
