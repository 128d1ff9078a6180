"""``mtl-tracing reproduce``: run the default jobs of the registry, each into ``OUT/<job>/``.

The jobs and their order come from :data:`mtl_tracing.experiments.registry.JOBS` (those with
``default=True``; ``--only`` may name any registered job); ``--quick`` runs each job's ``QUICK``
version. After each job its ``check`` runs on the written files. A failing job (an exception or
a failed check) is reported and the others still run; the exit status is 1 if any failed.

``--data-dir DIR`` adds the data jobs: the real-data job (``DIR/celeba`` ...) and the MAML jobs
(:data:`MAML_DATA_JOBS`) on ``DIR/mnist`` (or ``DIR/mnist-*``) and ``DIR/fashion-mnist``, each
into ``OUT/<job>_<source>/``; a missing folder is one line. The digits runs stay the default.
"""

from __future__ import annotations

import argparse
import time
import traceback
from pathlib import Path

from mtl_tracing.experiments import registry

NAME = "reproduce"
HELP = "Run the default figure set (Figures 3-7, Tables 1-2, three sweeps) into OUT/<job>/."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="./figures", help="output root (default ./figures)")
    parser.add_argument("--quick", action="store_true", help="small, fast versions of every job")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with celeba/, femnist/, stackoverflow/ (the real-data jobs: Tables 1-2, "
        "Figs 1-5) and/or mnist/ (or mnist-*/), fashion-mnist/ (the MAML jobs on that source, "
        "into OUT/<job>_<source>/; tens of minutes each on 2 CPU cores); skipped, with a "
        "one-line note, without it",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated job names to run (default: all, in order: "
        + ", ".join(registry.names(default_only=True))
        + ")",
    )


def _real_data(args: argparse.Namespace, root: Path, status: list) -> None:
    """The real-data jobs (registry ``real``): run with ``--data-dir``, else one line why not."""
    from mtl_tracing.experiments import real

    t0 = time.perf_counter()
    try:
        lines = real.reproduce_real(root, args.data_dir, quick=bool(args.quick))
    except Exception as err:  # one failing job must not hide the others
        traceback.print_exc()
        status.append(("real", False, time.perf_counter() - t0, f"{type(err).__name__}: {err}"))
        return
    for line in lines:
        print(f"[reproduce] {line}")
    if args.data_dir is not None:
        status.append(("real", True, time.perf_counter() - t0, str(root)))


def _selected(only: str | None) -> list[str]:
    if not only:
        return registry.names(default_only=True)
    wanted = [s.strip() for s in only.split(",") if s.strip()]
    known = registry.names()
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(f"--only must name jobs among {tuple(known)}, got {unknown!r}")
    return [n for n in known if n in wanted]  # registry order


#: The jobs that also run on MNIST / Fashion-MNIST when ``--data-dir`` holds them.
MAML_DATA_JOBS = ("maml_tables", "maml_noise", "maml_sensitivity")


def maml_data_runs(args, root: Path, selected: list[str]) -> list[tuple[str, Path, dict]]:
    """(job, out dir, options) of the MAML jobs on the IDX sources found under --data-dir."""
    names = [n for n in selected if n in MAML_DATA_JOBS]
    if args.data_dir is None or not names:
        return []
    from mtl_tracing.experiments.maml_common import find_source_dir

    runs = []
    for source in ("mnist", "fashion-mnist"):
        folder = find_source_dir(args.data_dir, source)
        if folder is None:
            print(f"[reproduce] MAML jobs on {source} skipped: no {source}/ in {args.data_dir}")
            continue
        for name in names:
            opts = {"source": source, "data_dir": str(folder)}
            runs.append((name, root / f"{name}_{source}", opts))
    return runs


def run(args: argparse.Namespace) -> int:
    root = Path(args.out)
    status: list[tuple[str, bool, float, str]] = []
    selected = _selected(args.only)
    runs = [(n, root / n, {}) for n in selected if n != "real"]
    for name, out_dir, opts in runs + maml_data_runs(args, root, selected):
        label = name if not opts else f"{name} ({opts['source']})"
        print(f"[reproduce] {label} -> {out_dir}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        try:
            paths = registry.run_job(name, out_dir, quick=bool(args.quick), **opts)
            problems = registry.get(name).load_module().check(out_dir)
        except Exception as err:  # one failing job must not hide the others
            traceback.print_exc()
            status.append((label, False, time.perf_counter() - t0, f"{type(err).__name__}: {err}"))
            continue
        for p in paths:
            print(f"[reproduce]   wrote {p}")
        for p in problems:
            print(f"[reproduce]   CHECK FAILED: {p}")
        info = f"check failed: {problems[0]}" if problems else str(out_dir)
        status.append((label, not problems, time.perf_counter() - t0, info))
    if args.only is None or "real" in selected:
        _real_data(args, root, status)
    print("[reproduce] summary:")
    for name, ok, secs, info in status:
        print(f"  {name:<24} {'ok' if ok else 'FAILED':<7} {secs:7.1f} s  {info}")
    failed = [name for name, ok, _, _ in status if not ok]
    if failed:
        print(f"[reproduce] {len(failed)} of {len(status)} job(s) failed: {', '.join(failed)}")
        return 1
    print(f"[reproduce] all {len(status)} job(s) done; outputs under {root}")
    return 0
