"""Hand-written CLI subcommands, one module each (discovered by ``mtl_tracing.cli``).

The figure, table and sweep jobs are commands too, generated from
:mod:`mtl_tracing.experiments.registry`; ``reproduce`` runs the registry's default jobs.
"""
