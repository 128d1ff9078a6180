"""``mtl-tracing audit``: lower bounds on epsilon (at delta) and on the GDP mu from scores.

The ``--scores`` file holds ``scores_in`` and ``scores_out``: one IN and one OUT score per
independent trial (two 1-D arrays of one length). Writes ``--json`` with ``mu_lb``,
``epsilon_lb``, their thresholds, the Clopper-Pearson rates, the confidence level and the
threshold method (``split``: chosen on the first half of the trials; ``union``: Bonferroni over
all thresholds). See :mod:`mtl_tracing.audit.bounds`.
"""

from __future__ import annotations

import argparse

NAME = "audit"
HELP = "privacy lower bounds (epsilon_lb at delta, GDP mu_lb) from independent IN/OUT scores"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", required=True, metavar="FILE.npz", help="scores_in/out")
    parser.add_argument("--delta", type=float, required=True, help="delta, in (0, 1)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence (default 0.95)")
    parser.add_argument(
        "--threshold", choices=("split", "union"), default="split", help="threshold choice"
    )
    parser.add_argument("--json", required=True, metavar="OUT.json", help="results file")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mtl_tracing._validate import check_probability

    check_probability("--delta", args.delta)
    check_probability("--level", args.level)
    if Path(args.json).suffix != ".json":
        raise ValueError(f"--json must end in .json, got {args.json!r}")

    from mtl_tracing import audit, results

    s_in, s_out = audit.load_trials(args.scores)
    r = audit.audit(s_in, s_out, delta=args.delta, level=args.level, threshold=args.threshold)
    payload = {
        **r.to_dict(),
        "scores": str(args.scores),
        "metadata": results.run_metadata(config={"delta": args.delta, "level": args.level}),
    }
    results.write_json(args.json, payload)
    print(
        f"audit  n={r.trials} ({r.method})  mu_lb {r.mu_lb:.4f}  epsilon_lb {r.epsilon_lb:.4f} "
        f"(delta={r.delta:g}, level={r.level:g})"
    )
    print(f"wrote {args.json}")
    return 0
