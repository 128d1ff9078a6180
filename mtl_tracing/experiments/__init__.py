"""Figure and table jobs.

Each job module exposes ``run(out_dir, ...) -> Path`` (simulate, write data + metadata to
``out_dir``) and ``plot(out_dir) -> list[Path]`` (redraw the figure from those files only).
"""
