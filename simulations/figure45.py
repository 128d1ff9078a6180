"""Figures 4 and 5 (App. A.7.2): variance statistic IN vs OUT, task-head similarities.

    python simulations/figure45.py --out figures/figure45 [--quick] [--seed 0]

Thin wrapper over :mod:`mtl_tracing.experiments.figure45`. Exits 1 if a file is missing or an AUC
is not a number in [0, 1] inside its own task-bootstrap CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_tracing.experiments import figure45
from mtl_tracing.experiments.pipeline import check_attack_output


def _cells(out_dir: Path) -> list[tuple[str, dict]]:
    payload, _ = figure45.load(out_dir)
    return [("default", payload["attacks"])]


def check_output(out_dir: Path) -> list[str]:
    """Problems found in a finished run (empty if none)."""
    return check_attack_output(
        out_dir,
        (
            figure45.JSON_NAME,
            figure45.NPZ_NAME,
            "figure4.png",
            "figure4.pdf",
            "figure5.png",
            "figure5.pdf",
        ),
        _cells,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures/figure45", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    config = figure45.QUICK_CONFIG if args.quick else figure45.DEFAULT_CONFIG
    figure45.run(out, config=config, seed=args.seed)
    paths = figure45.plot(out)
    for p in paths:
        print(f"wrote {p}")
    problems = check_output(out)
    for p in problems:
        print(f"CHECK FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
