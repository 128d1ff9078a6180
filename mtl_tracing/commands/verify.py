"""``mtl-tracing verify``: machine-check Sec. 4 / App. B (symbolic, Monte Carlo, errata)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_tracing._validate import check_int
from mtl_tracing.results import run_metadata, write_json

NAME = "verify"
HELP = "Re-derive and check Sec. 4 / App. B of the paper; write verify.md and verify.json."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--heavy", action="store_true", help="more Monte Carlo games (200k) and parameter points"
    )
    parser.add_argument("--out", default="verify", help="output folder (default ./verify)")
    parser.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Run every check, print the table, write DIR/verify.md and DIR/verify.json; 1 on failure."""
    from proofs_check import all_passed, payload, render_markdown, render_text, run_all

    seed = check_int("seed", args.seed, low=0)
    checks = run_all(seed=seed, heavy=args.heavy)
    print(render_text(checks))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "verify.md").write_text(render_markdown(checks))
    meta = run_metadata(seed=seed, heavy=bool(args.heavy), command="verify")
    write_json(out / "verify.json", payload(checks, meta))
    print(f"wrote {out / 'verify.md'} and {out / 'verify.json'}")
    return 0 if all_passed(checks) else 1
