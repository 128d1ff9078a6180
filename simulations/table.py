"""Percentile-threshold table (App. A.7, Tables 1-2 layout) on the default synthetic config.

    python simulations/table.py --out figures/table [--quick] [--seed 0]

Thin wrapper over :mod:`mtl_tracing.experiments.table`. Exits 1 if a file is missing or an AUC
is not a number in [0, 1] inside its own task-bootstrap CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_tracing.experiments import table
from mtl_tracing.experiments.pipeline import check_attack_output


def _cells(out_dir: Path) -> list[tuple[str, dict]]:
    payload = table.load(out_dir)
    return [("default", payload["attacks"])]


def check_output(out_dir: Path) -> list[str]:
    """Problems found in a finished run (empty if none)."""
    return check_attack_output(out_dir, (table.JSON_NAME, table.MD_NAME), _cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures/table", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny config")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    config = table.QUICK_CONFIG if args.quick else table.DEFAULT_CONFIG
    table.run(out, config=config, seed=args.seed)
    paths = table.plot(out)
    print(paths[0].read_text())
    for p in paths:
        print(f"wrote {p}")
    problems = check_output(out)
    for p in problems:
        print(f"CHECK FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
