"""Figure 7: simulate the tracing game, draw the figure, then check the output.

    python simulations/figure7.py --out figures/figure7 [--games 2000] [--seed 0]

Thin wrapper over :mod:`mtl_tracing.experiments.figure7`. Exits 1 if a file is missing or the
exact AUC of an adversary lies outside the 95% bootstrap CI of its simulated AUC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mtl_tracing.experiments import figure7


def check_output(out_dir: Path) -> list[str]:
    """Problems found in a finished run (empty if none)."""
    problems = []
    for name in (figure7.JSON_NAME, figure7.NPZ_NAME, f"{figure7.STEM}.png", f"{figure7.STEM}.pdf"):
        if not (out_dir / name).is_file():
            problems.append(f"missing {out_dir / name}")
    if problems:
        return problems
    payload, _ = figure7.load(out_dir)
    for adv, s in payload["adversaries"].items():
        lo, hi = s["auc"]["ci"]
        exact = s["auc"]["exact"]
        ok = lo <= exact <= hi
        print(
            f"{adv}: AUC {s['auc']['empirical']:.4f} CI [{lo:.4f}, {hi:.4f}], exact {exact:.4f}"
            f" -> {'ok' if ok else 'OUTSIDE CI'}"
        )
        if not ok:
            problems.append(f"{adv}: exact AUC {exact:.4f} outside CI [{lo:.4f}, {hi:.4f}]")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures/figure7", help="output folder")
    parser.add_argument("--games", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampler", default="sufficient", choices=("sufficient", "faithful"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    figure7.run(out, games=args.games, seed=args.seed, sampler=args.sampler)
    for p in figure7.plot(out):
        print(f"wrote {p}")
    problems = check_output(out)
    for p in problems:
        print(f"CHECK FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
