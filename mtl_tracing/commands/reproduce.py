"""``mtl-tracing reproduce``: run the default jobs of the registry, each into ``OUT/<job>/``.

The jobs and their order come from :data:`mtl_tracing.experiments.registry.JOBS` (those with
``default=True``; ``--only`` may name any registered job, with hyphens or underscores);
``--quick`` runs each job's ``QUICK`` version. After each job its ``check`` runs on the written
files. A failing job (an exception or a failed check) is reported and the others still run; the
exit status is 1 if any failed.

``--data-dir DIR`` adds the runs on data from disk, both declared in the registry: a job with
``Job.needs_data_dir`` (``real``: ``DIR/celeba`` ...) runs through its module's ``reproduce``
(without ``--data-dir`` it is skipped with a one-line note), and a job with
``Job.data_sources`` (the MAML jobs: ``mnist``, ``fashion-mnist``) runs once more per source
folder found under DIR (``DIR/<source>`` or ``DIR/<source>-*``), into ``OUT/<job>_<source>/``;
a missing folder is one line. The default runs (the bundled digits) stay as they are.
"""

from __future__ import annotations

import argparse
import time
import traceback
from pathlib import Path

from mtl_tracing.experiments import registry
from mtl_tracing.experiments.maml_common import find_source_dir

NAME = "reproduce"
HELP = "Run the registry's default jobs (figures, tables, sweeps, studies) into OUT/<job>/."

#: The jobs that also run on data sources found under ``--data-dir`` (from the registry).
MAML_DATA_JOBS = tuple(j.name for j in registry.JOBS if j.data_sources)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="./figures", help="output root (default ./figures)")
    parser.add_argument("--quick", action="store_true", help="small, fast versions of every job")
    needs = ", ".join(j.name for j in registry.JOBS if j.needs_data_dir)
    sources = sorted({s for j in registry.JOBS for s in j.data_sources})
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with celeba/, femnist/, stackoverflow/ (the jobs on data from disk: "
        f"{needs}) and/or {', '.join(f'{s}/' for s in sources)} (the jobs "
        f"{', '.join(MAML_DATA_JOBS)} on that source, into OUT/<job>_<source>/; tens of minutes "
        "each on 2 CPU cores); skipped, with a one-line note, without it",
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


def maml_data_runs(args, root: Path, selected: list[str]) -> list[tuple[str, Path, dict]]:
    """(job, out dir, options) of the selected jobs with ``data_sources``, once per source
    folder found under ``--data-dir``; a missing source folder is one printed line."""
    jobs = [registry.get(n) for n in selected if registry.get(n).data_sources]
    if args.data_dir is None or not jobs:
        return []
    runs = []
    for source in dict.fromkeys(s for job in jobs for s in job.data_sources):
        folder = find_source_dir(args.data_dir, source)
        if folder is None:
            print(f"[reproduce] MAML jobs on {source} skipped: no {source}/ in {args.data_dir}")
            continue
        for job in jobs:
            if source in job.data_sources:
                opts = {"source": source, "data_dir": str(folder)}
                runs.append((job.name, root / f"{job.name}_{source}", opts))
    return runs


def _run_one(job: registry.Job, args, out_dir: Path, opts: dict) -> list[str]:
    """Run one job (raising on failure); its printed lines, a failed check's starting with
    ``CHECK FAILED``."""
    if job.needs_data_dir:
        return list(job.load_module().reproduce(out_dir, args.data_dir, quick=bool(args.quick)))
    paths = registry.run_job(job, out_dir, quick=bool(args.quick), **opts)
    problems = job.load_module().check(out_dir)
    return [f"  wrote {p}" for p in paths] + [f"  CHECK FAILED: {p}" for p in problems]


def run(args: argparse.Namespace) -> int:
    root = Path(args.out)
    status: list[tuple[str, bool, float, str]] = []
    selected = _selected(args.only)
    runs = [(n, root if registry.get(n).needs_data_dir else root / n, {}) for n in selected]
    for name, out_dir, opts in runs + maml_data_runs(args, root, selected):
        job = registry.get(name)
        label = name if not opts else f"{name} ({opts['source']})"
        print(f"[reproduce] {label} -> {out_dir}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        try:
            lines = _run_one(job, args, out_dir, opts)
        except Exception as err:  # one failing job must not hide the others
            traceback.print_exc()
            status.append((label, False, time.perf_counter() - t0, f"{type(err).__name__}: {err}"))
            continue
        for line in lines:
            print(f"[reproduce] {line}")
        if job.needs_data_dir and args.data_dir is None:
            continue  # skipped (its line says why): not a run
        failed = [x.split("CHECK FAILED: ", 1)[1] for x in lines if "CHECK FAILED: " in x]
        info = f"check failed: {failed[0]}" if failed else str(out_dir)
        status.append((label, not failed, time.perf_counter() - t0, info))
    print("[reproduce] summary:")
    for name, ok, secs, info in status:
        print(f"  {name:<24} {'ok' if ok else 'FAILED':<7} {secs:7.1f} s  {info}")
    failed = [name for name, ok, _, _ in status if not ok]
    if failed:
        print(f"[reproduce] {len(failed)} of {len(status)} job(s) failed: {', '.join(failed)}")
        return 1
    print(f"[reproduce] all {len(status)} job(s) done; outputs under {root}")
    return 0
