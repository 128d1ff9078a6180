"""Figure, table and sweep jobs, one module each, registered in :mod:`.registry`.

Each job module exposes ``OPTIONS``, ``QUICK``, ``run(out_dir, ...)`` (simulate, write data +
metadata to ``out_dir``), ``plot(out_dir)`` (redraw the figures from those files only),
``load``, ``headline`` and ``check``; see :mod:`.registry` for the contract. ``pipeline`` is the
shared synthetic-MTL pipeline, ``checks`` the shared output checks.
"""
