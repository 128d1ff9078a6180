"""``mtl-tracing reproduce``: run the default figure set, each job into ``OUT/<name>/``.

The jobs are an ordered registry :data:`JOBS` of ``(name, job)`` pairs, where
``job(out_dir: Path, quick: bool) -> list[Path]`` writes data and figures into ``out_dir`` and
returns the files it wants reported. Add a figure or table by appending to :data:`JOBS`.
A failing job is reported and the others still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable
from pathlib import Path

NAME = "reproduce"
HELP = "Run the default figure set (Figures 3-7, Tables 1-2, three sweeps) into OUT/<job>/."

Job = Callable[[Path, bool], list[Path]]

#: Figure 7 in ``--quick`` mode: paper config (None) with fewer games; the full run uses 2000.
FIGURE7_QUICK_GAMES = 100
FIGURE7_QUICK_CONFIG = None


def _figure7(out_dir: Path, quick: bool) -> list[Path]:
    from mtl_tracing.experiments import figure7

    kwargs = {}
    if quick:
        kwargs["games"] = FIGURE7_QUICK_GAMES
        if FIGURE7_QUICK_CONFIG is not None:
            kwargs["config"] = FIGURE7_QUICK_CONFIG
    figure7.run(out_dir, progress=True, **kwargs)
    return [out_dir / figure7.JSON_NAME, out_dir / figure7.NPZ_NAME, *figure7.plot(out_dir)]


def _mtl_job(module: str, **quick_kwargs) -> Job:
    """A synthetic-MTL job (App. A.8): default config, or its ``QUICK_*`` values if quick."""

    def job(out_dir: Path, quick: bool) -> list[Path]:
        import importlib

        mod = importlib.import_module(f"mtl_tracing.experiments.{module}")
        kwargs = {k: getattr(mod, v) for k, v in quick_kwargs.items()} if quick else {}
        mod.run(out_dir, progress=True, **kwargs)
        return mod.plot(out_dir)

    return job


def _sweep_job(name: str) -> Job:
    """A ready sweep of :mod:`mtl_tracing.experiments.sweeps`: ``small`` grid, or ``quick``."""

    def job(out_dir: Path, quick: bool) -> list[Path]:
        from mtl_tracing.experiments import sweeps

        sweeps.SWEEPS[name](out_dir, "quick" if quick else "small")
        return [out_dir / "sweep.npz", *sweeps.figures(out_dir)]

    return job


#: Ordered registry of (name, job): the default figure set. Figure 7 (Gaussian game) first,
#: then the synthetic-MTL figures and tables, then the three ready sweeps.
JOBS: list[tuple[str, Job]] = [
    ("figure7", _figure7),
    ("figure6", _mtl_job("figure6", config="QUICK_CONFIG", grid="QUICK_GRID")),
    ("figure3", _mtl_job("figure3", config="QUICK_CONFIG", checkpoints="QUICK_CHECKPOINTS")),
    ("figure45", _mtl_job("figure45", config="QUICK_CONFIG")),
    ("table", _mtl_job("table", config="QUICK_CONFIG")),
    *(
        (name, _sweep_job(name))
        for name in ("sweep_auc_tasks_dim", "sweep_strong_weak_gap", "sweep_membership_limit")
    ),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="./figures", help="output root (default ./figures)")
    parser.add_argument("--quick", action="store_true", help="small, fast versions of every job")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated job names to run (default: all, in order: "
        + ", ".join(n for n, _ in JOBS)
        + ")",
    )


def run(args: argparse.Namespace) -> int:
    root = Path(args.out)
    names = [n for n, _ in JOBS]
    selected = names
    if args.only:
        selected = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in selected if s not in names]
        if unknown:
            raise ValueError(f"--only must name jobs among {tuple(names)}, got {unknown!r}")
    status: list[tuple[str, bool, float, str]] = []
    for name, job in JOBS:
        if name not in selected:
            continue
        out_dir = root / name
        print(f"[reproduce] {name} -> {out_dir}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        try:
            paths = job(out_dir, bool(args.quick))
        except Exception as err:  # one failing job must not hide the others
            traceback.print_exc()
            status.append((name, False, time.perf_counter() - t0, f"{type(err).__name__}: {err}"))
            continue
        for p in paths:
            print(f"[reproduce]   wrote {p}")
        status.append((name, True, time.perf_counter() - t0, str(out_dir)))
    print("[reproduce] summary:")
    for name, ok, secs, info in status:
        print(f"  {name:<12} {'ok' if ok else 'FAILED':<7} {secs:7.1f} s  {info}")
    failed = [name for name, ok, _, _ in status if not ok]
    if failed:
        print(f"[reproduce] {len(failed)} of {len(status)} job(s) failed: {', '.join(failed)}")
        return 1
    print(f"[reproduce] all {len(status)} job(s) done; outputs under {root}")
    return 0
