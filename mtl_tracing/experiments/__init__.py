"""Figure, table, sweep and study jobs, one module each, registered in :mod:`.registry`.

Each job module exposes ``OPTIONS``, ``QUICK``, ``run(out_dir, ...)`` (simulate, write data +
metadata to ``out_dir``), ``plot(out_dir)`` (redraw the figures from those files only),
``load``, ``headline`` and ``check``; see :mod:`.registry` for the contract. ``pipeline`` is the
shared synthetic-MTL pipeline, ``checks`` the shared output checks, ``game_report`` the
``game`` command's computation. Exported here: the registry (cheap: ``mtl-tracing --help``
reads it; the job modules and the pipeline are imported as submodules).
"""

from mtl_tracing.experiments.registry import (
    JOB_INTERFACE,
    JOBS,
    Job,
    add_job_arguments,
    get,
    names,
    run_job,
)

__all__ = ["JOB_INTERFACE", "JOBS", "Job", "add_job_arguments", "get", "names", "run_job"]
