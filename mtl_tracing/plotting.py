"""Shared matplotlib style for figure jobs: headless (Agg) backend, one look, PNG + PDF output.

Figure jobs in ``mtl_tracing.experiments`` call :func:`new_figure` and :func:`save_figure`;
nothing here runs on import except selecting no backend (the backend is chosen lazily).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "STYLE",
    "ADVERSARY_COLORS",
    "pyplot",
    "style",
    "new_figure",
    "save_figure",
    "chance_line",
]

#: rcParams applied to every figure (small, print-friendly, no TeX dependency).
STYLE: dict = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # embed TrueType, so PDFs are editable and journal-safe
}

#: One colour per adversary / class, used consistently across figures.
ADVERSARY_COLORS: dict[str, str] = {"strong": "#c0392b", "weak": "#2471a3", "out": "#7f8c8d"}

#: Line styles of the attacks, in registry order (Algorithm 1 dashed, Algorithm 2 solid, ...).
ATTACK_LINESTYLES = ("--", "-", ":", "-.")


def attack_style(name: str) -> tuple[str, str]:
    """``(label, line style)`` of attack ``name`` (:mod:`mtl_tracing.attacks.registry`; a name
    no longer registered, read from old data: the name itself, dotted)."""
    from mtl_tracing.attacks import registry

    if name not in registry.ATTACKS:
        return name.replace("_", " "), ":"
    i = registry.ATTACKS.index(name)
    return registry.get(name).label, ATTACK_LINESTYLES[i % len(ATTACK_LINESTYLES)]


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (safe on headless machines)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def style():
    """Context manager applying :data:`STYLE`; draw and save a whole figure inside it."""
    return pyplot().rc_context(STYLE)


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 3.2, height: float = 2.8):
    """A ``(fig, axes)`` pair, ``axes`` of shape (nrows, ncols); each panel ``width x height`` in.

    Call inside :func:`style` so fonts and grids follow :data:`STYLE`.
    """
    plt = pyplot()
    return plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained"
    )


def chance_line(ax, *, log: bool = False, lo: float = 1e-4) -> None:
    """Draw the TPR = FPR diagonal (on log axes from ``lo`` to 1)."""
    xs = [lo, 1.0] if log else [0.0, 1.0]
    ax.plot(xs, xs, color="0.5", linestyle=":", linewidth=1.0, label="chance")


def save_figure(fig, out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/stem.png`` and ``out_dir/stem.pdf``, close it, return the paths."""
    plt = pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{stem}.{ext}"
        fig.savefig(path, dpi=STYLE["savefig.dpi"])
        paths.append(path)
    plt.close(fig)
    return paths
