"""Figure 6 (App. A.8): synthetic-MTL ablations over embedding dim, samples and tasks.

    python simulations/figure6.py --out figures/figure6 [--quick] [--seed 0]

Thin wrapper over :mod:`mtl_tracing.experiments.figure6`. Exits 1 if a file is missing or an AUC
is not a number in [0, 1] inside its own task-bootstrap CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_tracing.experiments import figure6
from mtl_tracing.experiments.pipeline import check_attack_output


def _cells(out_dir: Path) -> list[tuple[str, dict]]:
    payload, _ = figure6.load(out_dir)
    return [
        (f"{field}={v}", c["attacks"])
        for field, panel in payload["panels"].items()
        for v, c in zip(panel["values"], panel["cells"], strict=True)
    ]


def check_output(out_dir: Path) -> list[str]:
    """Problems found in a finished run (empty if none)."""
    return check_attack_output(
        out_dir, (figure6.JSON_NAME, figure6.NPZ_NAME, "figure6.png", "figure6.pdf"), _cells
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures/figure6", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    kwargs = {"config": figure6.QUICK_CONFIG, "grid": figure6.QUICK_GRID} if args.quick else {}
    figure6.run(out, seed=args.seed, **kwargs)
    paths = figure6.plot(out)
    for p in paths:
        print(f"wrote {p}")
    problems = check_output(out)
    for p in problems:
        print(f"CHECK FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
