"""``mtl-tracing audit``: lower bounds on epsilon (at delta) and on the GDP mu from scores.

The ``--scores`` file holds ``scores_in`` and ``scores_out``: one IN and one OUT score per
independent trial (two 1-D arrays of one length). Writes ``--out`` with ``mu_lb``,
``epsilon_lb``, their thresholds, the Clopper-Pearson rates, the confidence level and the
threshold method (``split``: chosen on the first half of the trials; ``union``: Bonferroni over
all thresholds). See :mod:`mtl_tracing.audit.bounds`.
"""

from __future__ import annotations

import argparse

from mtl_tracing import results
from mtl_tracing._validate import check_probability
from mtl_tracing.commands._common import add_option, check_output_file

NAME = "audit"
HELP = "Privacy lower bounds (epsilon_lb at delta, GDP mu_lb) from independent IN/OUT scores."
#: Old spelling -> flag, accepted (hidden) for one release.
ALIASES = {"--json": "--out"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", required=True, metavar="FILE.npz", help="scores_in/out")
    parser.add_argument("--delta", type=float, required=True, help="delta, in (0, 1)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence (default 0.95)")
    parser.add_argument(
        "--threshold", choices=("split", "union"), default="split", help="threshold choice"
    )
    add_option(
        parser, "--out", aliases=ALIASES, required=True, metavar="OUT.json", help="results file"
    )


def run(args: argparse.Namespace) -> int:
    check_probability("--delta", args.delta)
    check_probability("--level", args.level)
    out = check_output_file("--out", args.out, ".json")

    from mtl_tracing import audit

    s_in, s_out = audit.load_trials(args.scores)
    r = audit.audit(s_in, s_out, delta=args.delta, level=args.level, threshold=args.threshold)
    payload = {
        **r.to_dict(),
        "scores": str(args.scores),
        "metadata": results.run_metadata(config={"delta": args.delta, "level": args.level}),
    }
    results.write_json(out, payload)
    print(
        f"audit  n={r.trials} ({r.method})  mu_lb {r.mu_lb:.4f}  epsilon_lb {r.epsilon_lb:.4f} "
        f"(delta={r.delta:g}, level={r.level:g})"
    )
    print(f"wrote {out}")
    return 0
