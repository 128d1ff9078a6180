"""CLI subcommands, one module each (discovered by ``mtl_tracing.cli``)."""
