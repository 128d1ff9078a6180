"""The job registry: every figure or table job is declared once, here.

A job is one module of :mod:`mtl_tracing.experiments` with this interface (imported only when
the job runs, so ``mtl-tracing --help`` never imports JAX):

- ``HELP``: one line for ``--help``.
- ``OPTIONS``: a tuple of :class:`Option`, the job's own command-line flags; each becomes a
  keyword argument of ``run`` (``--embed-dim`` -> ``embed_dim``). May be empty.
- ``QUICK``: the ``run`` keyword arguments of the small, fast version (``--quick``).
- ``run(out_dir, *, seed=0, progress=True, dtype=None, **kwargs) -> None``: computes and writes
  the data (JSON + NPZ with ``results.run_metadata``) into ``out_dir``.
- ``plot(out_dir) -> list[Path]``: redraws the figures from the data alone.
- ``load(out_dir) -> (payload, arrays)``: reads the data back.
- ``headline(payload) -> str``: the headline numbers, a short text table.
- ``check(out_dir) -> list[str]``: problems found in a finished run (empty when fine).

Importing a job module must stay cheap (the CLI reads every ``OPTIONS`` to build its parser):
import JAX, flax and :mod:`~mtl_tracing.experiments.pipeline` inside the functions, and build
constants that need them (a default config, ``QUICK``) with :func:`lazy_constants`.

From the registry come the ``mtl-tracing <job>`` commands (:mod:`mtl_tracing.cli`; also
``python -m mtl_tracing <job>``) and ``mtl-tracing reproduce`` (the jobs with ``default=True``,
in order); both run a job through :func:`main_from_args` or :func:`run_job`. A new job is one
module plus one :class:`Job` line in :data:`JOBS`; the tests iterate :data:`JOBS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from mtl_tracing.options import Option, add_options

__all__ = [
    "JOB_INTERFACE",
    "Option",
    "Job",
    "JOBS",
    "get",
    "names",
    "add_job_arguments",
    "run_job",
    "main_from_args",
    "lazy_constants",
    "pipeline_job",
    "check_out_dir",
]


#: The names every job module exports (its ``__all__`` ends with ``*JOB_INTERFACE``).
JOB_INTERFACE = ("OPTIONS", "QUICK", "run", "plot", "load", "headline", "check")


@dataclasses.dataclass(frozen=True)
class Job:
    """A registered job: its name (the command and the output sub-folder) and its module.

    ``aliases`` are more command names for the same job (``figure4`` and ``figure5`` run the
    shared ``figure45`` job). The command is the name with hyphens (``sweep-auc-tasks-dim``;
    the underscore spelling works too); the output sub-folder is the name itself.

    ``needs_data_dir``: the job reads data from disk (``real``). ``reproduce`` then calls its
    module's ``reproduce(out_root, data_dir, *, quick, seed, progress) -> list[str]`` (its runs
    under ``out_root``, one line each) with ``--data-dir``, and without it prints one line
    saying the job was skipped. ``data_sources``: data sets the job can also run on (its
    ``source``/``data_dir`` options); ``reproduce --data-dir DIR`` runs it once more per source
    folder found under DIR, into ``OUT/<job>_<source>/`` (the MAML jobs on MNIST).
    """

    name: str
    module: str
    help: str
    default: bool = True  # part of ``reproduce``'s default figure set
    x64: bool = True  # accepts --x64
    aliases: tuple[str, ...] = ()
    command: bool = True  # False: a hand-written command in ``commands/`` runs this job
    pass_name: bool = False  # ``run`` gets ``name=<job name>`` (one module serving several jobs)
    needs_data_dir: bool = False  # runs on data from disk: ``reproduce --data-dir`` (below)
    data_sources: tuple[str, ...] = ()  # also run on these under ``reproduce --data-dir``

    def load_module(self) -> ModuleType:
        return importlib.import_module(self.module)


_E = "mtl_tracing.experiments."
_IDX = ("mnist", "fashion-mnist")  # the MAML jobs' IDX sources (besides the bundled digits)

#: The registry, in ``reproduce``'s order.
JOBS: tuple[Job, ...] = (
    Job(
        "figure7",
        _E + "figure7",
        "Figure 7: ROC and score distributions of the tracing attack, simulation vs exact theory.",
    ),
    Job("figure6", _E + "figure6", "Figure 6: attack AUC ablations on synthetic MTL (App. A.8)."),
    Job(
        "figure3",
        _E + "figure3",
        "Figure 3: attack AUC vs generalization gaps at training checkpoints (synthetic MTL).",
    ),
    Job(
        "figure45",
        _E + "figure45",
        "Figures 4-5: score distributions and head similarity (synthetic MTL).",
        aliases=("figure4", "figure5"),
    ),
    Job("table", _E + "table", "Tables 1-2: percentile thresholds and balanced accuracy."),
    Job(
        "sweep_auc_tasks_dim",
        _E + "sweeps",
        "Sweep: tracing AUC against T and d (Gaussian game), with exact curves.",
        pass_name=True,
    ),
    Job(
        "sweep_strong_weak_gap",
        _E + "sweeps",
        "Sweep: strong-weak AUC gap against sbar/s (Gaussian game).",
        pass_name=True,
    ),
    Job(
        "sweep_membership_limit",
        _E + "sweeps",
        "Sweep: the membership-inference limit sbar = 0, AUC against d/N, one line per N.",
        pass_name=True,
    ),
    Job(
        "sweep_optimal_gap",
        _E + "sweeps",
        "Sweep: the paper's z against the optimal (likelihood-ratio) test over T and d/N.",
        pass_name=True,
    ),
    Job(
        "real",
        _E + "real",
        "Tables 1-2, Figs 1-5 on real data (--data-dir).",
        command=False,  # ``mtl-tracing real`` is commands/real.py (dataset/setting flags)
        needs_data_dir=True,
    ),
    Job(
        "maml_tables",
        _E + "maml_tables",
        "MAML Tables I-II, Figs. 4-6: attack accuracy over ways x shots.",
        data_sources=_IDX,
    ),
    Job(
        "maml_noise",
        _E + "maml_noise",
        "MAML Figs. 9-12: noise defences, attack vs utility.",
        data_sources=_IDX,
    ),
    Job(
        "maml_sensitivity",
        _E + "maml_sensitivity",
        "MAML Figs. 7-8: the observed epoch.",
        data_sources=_IDX,
    ),
    Job(
        "maml_runtime",
        _E + "maml_runtime",
        "MAML Tables III-IV: attack runtimes on the paper's grid (not in the default set: "
        "20 attack programs at 28x28 to compile).",
        default=False,
        x64=False,
    ),
    Job("dp_defence", _E + "dp_defence", "Task-level DP defence: GDP bounds, DP-SGD, audits."),
    Job(
        "leakage_by_trainer",
        _E + "leakage_by_trainer",
        "Study: leakage against the training method (standard, GMRF, robust, DP-SGD MTL).",
    ),
)


def names(default_only: bool = False) -> list[str]:
    """Registered job names, in order."""
    return [j.name for j in JOBS if j.default or not default_only]


def get(name: str) -> Job:
    """The job called ``name`` (hyphens or underscores); ``ValueError`` listing the names
    otherwise."""
    for job in JOBS:
        if job.name == name.replace("-", "_"):
            return job
    raise ValueError(f"job must be one of {tuple(names())}, got {name!r}")


def add_job_arguments(parser: argparse.ArgumentParser, job: Job, module: ModuleType | None = None):
    """The common flags (``--out --quick --seed --x64 --no-progress --replot``) + ``OPTIONS``."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="the small, fast version")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    if job.x64:
        parser.add_argument("--x64", action="store_true", help="compute in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--replot", action="store_true", help="only redraw from the data in --out")
    add_options(parser, _options(job, module))


def _options(job: Job, module: ModuleType | None) -> tuple[Option, ...]:
    if module is None:
        # The options live in the job module; importing it is cheap (no JAX at import time).
        module = job.load_module()
    return tuple(getattr(module, "OPTIONS", ()))


def check_out_dir(out_dir: str | Path, flag: str = "--out") -> Path:
    """``out_dir`` as a Path, refused up front (``ValueError``) when it exists but is no folder.

    Checked before any computation, so a bad path costs nothing and overwrites nothing.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} must be a folder, got the existing file {str(out)!r}")
    return out


def run_job(
    job: Job | str,
    out_dir: str | Path,
    *,
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
    x64: bool = False,
    replot: bool = False,
    **options: Any,
) -> list[Path]:
    """Run (unless ``replot``) and plot one job into ``out_dir``; returns the figure paths.

    ``options`` override the job's defaults (and its ``QUICK`` values when ``quick``); ``None``
    values are left out. ``x64`` turns on ``jax_enable_x64`` and passes ``dtype="float64"``.
    """
    job = get(job) if isinstance(job, str) else job
    mod = job.load_module()
    out_dir = check_out_dir(out_dir)
    if not replot:
        kwargs = dict(getattr(mod, "QUICK", {})) if quick else {}
        kwargs.update({k: v for k, v in options.items() if v is not None})
        dtype = None
        if x64:
            import jax

            jax.config.update("jax_enable_x64", True)
            dtype = "float64"
        if job.pass_name:
            kwargs["name"] = job.name
        mod.run(out_dir, seed=seed, progress=progress, dtype=dtype, **kwargs)
    return list(mod.plot(out_dir))


def main_from_args(job: Job | str, args: argparse.Namespace, *, prog: str) -> int:
    """Run a job from parsed :func:`add_job_arguments` flags; print headline, files and check.

    Returns 0, 1 if the job's ``check`` finds a problem (``CHECK FAILED: ...`` on stderr), or 2
    with ``PROG: error: ...`` on one line for bad input or an unusable path (any ``OSError``).
    """
    job = get(job) if isinstance(job, str) else job
    mod = job.load_module()
    options = {o.dest: getattr(args, o.dest, None) for o in _options(job, mod)}
    t0 = time.perf_counter()
    try:
        paths = run_job(
            job,
            args.out,
            quick=args.quick,
            seed=args.seed,
            progress=not args.no_progress,
            x64=getattr(args, "x64", False),
            replot=args.replot,
            **options,
        )
        payload, _ = mod.load(Path(args.out))
    except (ValueError, OSError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(mod.headline(payload))
    for p in paths:
        print(f"wrote {p}")
    problems = mod.check(Path(args.out))
    for p in problems:
        print(f"CHECK FAILED: {p}", file=sys.stderr)
    print(f"{prog}: {time.perf_counter() - t0:.1f} s")
    return 1 if problems else 0


def lazy_constants(
    factory: Callable[[], Mapping[str, Any]], names: Sequence[str]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for the constants that need JAX to build.

    ``factory()`` returns ``{name: value}`` for ``names``; it runs once, on the first access to
    one of them, so importing the module (to read ``OPTIONS``) never imports JAX. Other names
    raise ``AttributeError`` at once. Usage in a job module::

        @functools.cache
        def _constants():
            from mtl_tracing.experiments import pipeline
            return {"DEFAULT_CONFIG": pipeline.DEFAULT_CONFIG, "QUICK": {...}}

        __getattr__ = registry.lazy_constants(_constants, ("DEFAULT_CONFIG", "QUICK"))
    """
    cached = functools.cache(factory)
    known = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in known:
            raise AttributeError(name)
        return cached()[name]

    return __getattr__


def pipeline_job(
    constants: Callable[[], Mapping[str, Any]], write: Callable[..., Path], doc: str
) -> Callable[..., Path]:
    """The ``run`` of a job that is one synthetic-MTL pipeline call (``figure45``, ``table``).

    ``run(out_dir, *, config=None, seed=0, progress=True, dtype=None) -> Path`` checks its
    arguments (:func:`mtl_tracing.experiments.pipeline.start_job`; ``config`` defaults to
    ``constants()["DEFAULT_CONFIG"]``), trains and attacks (``pipeline.run_pipeline`` with key
    ``key(seed)``) and returns ``write(out, result, config, seed)``. ``doc`` is its docstring.
    The pipeline is imported when ``run`` runs, so the job module stays cheap to import.
    """

    def run(out_dir, *, config=None, seed: int = 0, progress: bool = True, dtype=None) -> Path:
        import jax

        from mtl_tracing.experiments import pipeline as mc

        config, seed, out = mc.start_job(out_dir, config, constants()["DEFAULT_CONFIG"], seed)
        res = mc.run_pipeline(jax.random.key(seed), config, dtype=dtype, progress=progress)
        return write(out, res, config, seed)

    run.__doc__ = doc
    return run
