"""Figure 3 (Sec. 6.5): attack AUC vs generalization gaps at training checkpoints.

    python simulations/figure3.py --out figures/figure3 [--quick] [--seed 0]

Thin wrapper over :mod:`mtl_tracing.experiments.figure3`. Exits 1 if a file is missing or an AUC
is not a number in [0, 1] inside its own task-bootstrap CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_tracing.experiments import figure3
from mtl_tracing.experiments.pipeline import check_attack_output


def _cells(out_dir: Path) -> list[tuple[str, dict]]:
    payload, _ = figure3.load(out_dir)
    return [(f"epoch {r['epochs']}", r["attacks"]) for r in payload["checkpoints"]]


def check_output(out_dir: Path) -> list[str]:
    """Problems found in a finished run (empty if none)."""
    return check_attack_output(
        out_dir, (figure3.JSON_NAME, figure3.NPZ_NAME, "figure3.png", "figure3.pdf"), _cells
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures/figure3", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    config = figure3.QUICK_CONFIG if args.quick else figure3.DEFAULT_CONFIG
    cps = figure3.QUICK_CHECKPOINTS if args.quick else figure3.DEFAULT_CHECKPOINTS
    figure3.run(out, config=config, checkpoints=cps, seed=args.seed)
    paths = figure3.plot(out)
    for p in paths:
        print(f"wrote {p}")
    problems = check_output(out)
    for p in problems:
        print(f"CHECK FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
