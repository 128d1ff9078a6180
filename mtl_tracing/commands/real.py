"""``mtl-tracing real``: Tables 1-2 and Figures 1-5 on CelebA, FEMNIST or Stack Overflow."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if
from mtl_tracing.experiments import real
from mtl_tracing.options import add_options

NAME = "real"
HELP = "Tables 1-2 and Figures 1-5 on the paper's real data (CelebA, FEMNIST, Stack Overflow)."
DESCRIPTION = (
    HELP + " Reads the datasets from --data-dir in their distributed formats (nothing is "
    "downloaded); see the README section 'Running on the paper's data'. Defaults are the "
    "paper's set-ups (App. A.5-A.6); --quick is a few tasks, tiny images and few epochs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help="a tiny version (smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="train and score in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--no-cache", action="store_true", help="do not cache decoded arrays")
    parser.add_argument("--replot", action="store_true", help="only redraw from the data in --out")
    add_options(parser, [o for o in real.OPTIONS if o.flag == "--dataset"], required=True)
    add_options(parser, [o for o in real.OPTIONS if o.flag != "--dataset"])


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    if not args.replot:
        if args.data_dir is None:
            raise ValueError("--data-dir is required (the dataset's folder)")
        kw = dict(real.QUICK) if args.quick else {}
        for opt in real.OPTIONS:
            v = getattr(args, opt.dest)
            if v is not None and opt.dest not in ("dataset", "setting", "data_dir", "features"):
                kw[opt.dest] = v
        if args.no_cache:
            kw["cache_dir"] = None
        real.run(
            args.out,
            dataset=args.dataset,
            setting=args.setting or "personalization",
            data_dir=args.data_dir,
            features=args.features,
            seed=args.seed,
            progress=not args.no_progress,
            dtype="float64" if args.x64 else None,
            **kw,
        )
    paths = real.plot(args.out)
    payload, _ = real.load(args.out)
    print(paths[0].read_text())
    print(real.headline(payload))
    for p in paths:
        print(f"wrote {p}")
    problems = real.check(args.out)
    for p in problems:
        print(f"CHECK FAILED: {p}")
    return 1 if problems else 0
