"""``mtl-tracing reproduce``: run the default jobs of the registry, each into ``OUT/<job>/``.

The jobs and their order come from :data:`mtl_tracing.experiments.registry.JOBS` (those with
``default=True``; ``--only`` may name any registered job, with hyphens or underscores);
``--quick`` runs each job's ``QUICK`` version. After each job its ``check`` runs on the written
files. A job that reads data from disk (``Job.needs_data_dir``: ``real``) runs through its
module's ``reproduce`` with ``--data-dir``, and is skipped with a one-line note without it. A
failing job (an exception or a failed check) is reported and the others still run; the exit
status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import time
import traceback
from pathlib import Path

from mtl_tracing.experiments import registry

NAME = "reproduce"
HELP = "Run the registry's default jobs (figures, tables, sweeps, studies) into OUT/<job>/."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="./figures", help="output root (default ./figures)")
    parser.add_argument("--quick", action="store_true", help="small, fast versions of every job")
    needs = ", ".join(j.name for j in registry.JOBS if j.needs_data_dir)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with celeba/, femnist/, stackoverflow/: also run the jobs on data from "
        f"disk ({needs}; skipped, with a one-line note, without it)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated job names to run (default: all, in order: "
        + ", ".join(registry.names(default_only=True))
        + ")",
    )


def _selected(only: str | None) -> list[str]:
    if not only:
        return registry.names(default_only=True)
    wanted = [s.strip().replace("-", "_") for s in only.split(",") if s.strip()]
    known = registry.names()
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValueError(f"--only must name jobs among {tuple(known)}, got {unknown!r}")
    return [n for n in known if n in wanted]  # registry order


def _run_one(job: registry.Job, args: argparse.Namespace, root: Path) -> tuple[list, str]:
    """Run one job; (printed lines, output folder), raising on failure. ``problems`` of the
    job's check come back as lines starting with ``CHECK FAILED``."""
    if job.needs_data_dir:
        lines = job.load_module().reproduce(root, args.data_dir, quick=bool(args.quick))
        return lines, str(root)
    out_dir = root / job.name
    paths = registry.run_job(job, out_dir, quick=bool(args.quick))
    problems = job.load_module().check(out_dir)
    lines = [f"  wrote {p}" for p in paths] + [f"  CHECK FAILED: {p}" for p in problems]
    return lines, str(out_dir)


def run(args: argparse.Namespace) -> int:
    root = Path(args.out)
    status: list[tuple[str, bool, float, str]] = []
    for name in _selected(args.only):
        job = registry.get(name)
        quick = " (quick)" if args.quick else ""
        where = root if job.needs_data_dir else root / name
        print(f"[reproduce] {name} -> {where}{quick}", flush=True)
        t0 = time.perf_counter()
        try:
            lines, out = _run_one(job, args, root)
        except Exception as err:  # one failing job must not hide the others
            traceback.print_exc()
            status.append((name, False, time.perf_counter() - t0, f"{type(err).__name__}: {err}"))
            continue
        for line in lines:
            print(f"[reproduce] {line}")
        if job.needs_data_dir and args.data_dir is None:
            continue  # skipped (its line says why): not a run
        failed = [x.split("CHECK FAILED: ", 1)[1] for x in lines if "CHECK FAILED: " in x]
        info = f"check failed: {failed[0]}" if failed else out
        status.append((name, not failed, time.perf_counter() - t0, info))
    print("[reproduce] summary:")
    for name, ok, secs, info in status:
        print(f"  {name:<24} {'ok' if ok else 'FAILED':<7} {secs:7.1f} s  {info}")
    failed = [name for name, ok, _, _ in status if not ok]
    if failed:
        print(f"[reproduce] {len(failed)} of {len(status)} job(s) failed: {', '.join(failed)}")
        return 1
    print(f"[reproduce] all {len(status)} job(s) done; outputs under {root}")
    return 0
