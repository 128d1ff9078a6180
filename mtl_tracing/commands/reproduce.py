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
HELP = "Run the default figure set (for now Figure 7) into OUT/<figure>/."

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


#: Ordered registry of (name, job). The lead appends Figure 6, 3, 4, 5, tables and sweeps here.
JOBS: list[tuple[str, Job]] = [
    ("figure7", _figure7),
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
