"""``mtl-tracing maml-attack``: one MAML membership-inference setting, results as JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_tracing import results
from mtl_tracing._validate import check_choice, check_int, check_nonnegative
from mtl_tracing.commands._common import add_option, check_output_file, enable_x64_if
from mtl_tracing.experiments import maml_common as mcom

NAME = "maml-attack"
HELP = "Meta-train MAML on few-shot tasks and run the query/support gradient-inversion attack."
DESCRIPTION = (
    HELP + " Writes --out (accuracy, recall, precision at the validation threshold, AUC and "
    "TPR at 1% FPR with CIs from resampling trials, meta-test accuracy, metadata) and the test "
    "scores next to it (same name, .npz). Data: the bundled digits, or MNIST / Fashion-MNIST "
    "IDX files in --data-dir."
)
PLACES = ("none", "support", "adaptation", "query", "validation")
SOURCES = ("digits", "mnist", "fashion-mnist")
#: Old spelling -> flag, accepted (hidden) for one release.
ALIASES = {"--json": "--out", "--bootstrap": "--resamples"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="digits", choices=SOURCES, help="few-shot data")
    parser.add_argument("--data-dir", default=None, help="folder with the IDX files")
    parser.add_argument("--attack", default="query", choices=("query", "support"), help="attack")
    parser.add_argument("--ways", type=int, default=3, help="w, classes per task (default 3)")
    parser.add_argument("--shots", type=int, default=1, help="s, images per class (default 1)")
    parser.add_argument("--epochs", type=int, default=2, help="meta-training epochs (default 2)")
    parser.add_argument("--steps-per-epoch", type=int, default=20, help="meta-steps per epoch")
    parser.add_argument("--trials", type=int, default=32, help="trials per split (default 32)")
    parser.add_argument("--iterations", type=int, default=100, help="attack steps (default 100)")
    parser.add_argument("--noise-place", default="none", choices=PLACES, help="noise defence")
    parser.add_argument("--sigma", type=float, default=0.0, help="noise std (default 0)")
    add_option(
        parser, "--resamples", aliases=ALIASES, type=int, default=200, help="trial resamples (CIs)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    add_option(
        parser, "--out", aliases=ALIASES, required=True, metavar="OUT.json", help="results file"
    )


def run(args: argparse.Namespace) -> int:
    import dataclasses

    # Validate everything before touching JAX or the data.
    check_choice("--source", args.source, SOURCES)
    check_choice("--attack", args.attack, ("query", "support"))
    check_choice("--noise-place", args.noise_place, PLACES)
    check_nonnegative("--sigma", args.sigma)
    check_int("--shots", args.shots, low=1)
    check_int("--ways", args.ways, low=2)
    for name in ("epochs", "trials", "iterations", "resamples", "seed"):
        check_int(f"--{name}", getattr(args, name), low=0 if name in ("epochs", "seed") else 2)
    check_int("--steps-per-epoch", args.steps_per_epoch, low=1)
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise ValueError(f"--data-dir must be a readable folder, got {args.data_dir!r}")
    out_json = check_output_file("--out", args.out, ".json")
    enable_x64_if(args.x64)

    import jax
    import numpy as np

    from mtl_tracing.victims import maml

    dtype = "float64" if args.x64 else None
    pools = mcom.load_pools(args.source, args.data_dir, args.seed, dtype)
    if args.ways > pools.train.classes:
        raise ValueError(
            f"--ways must be <= the {pools.train.classes} classes of {args.source}, got {args.ways}"
        )
    victim = dataclasses.replace(
        mcom.DEFAULT_VICTIM,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        trials=args.trials,
        iterations=args.iterations,
        bootstrap=args.resamples,
    )
    res = mcom.run_setting(
        jax.random.key(args.seed),
        pools,
        ways=args.ways,
        shots=args.shots,
        victim=victim,
        kinds=(args.attack,),
        noise=maml.noise_at(args.noise_place, args.sigma),
        dtype=dtype,
    )
    summary = res["attacks"][str(args.epochs)][args.attack]
    sidecar = out_json.with_suffix(".npz")
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    np.savez(sidecar, **res["scores"])
    settings = {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "out"}
    payload = {
        "attack": args.attack,
        "summary": summary,
        "meta_test_accuracy": res["meta_test_accuracy"],
        "meta_test_history": res["history"],
        "scores_file": sidecar.name,
        "metadata": results.run_metadata(config={**settings, "victim": victim}, seed=args.seed),
    }
    results.write_json(out_json, payload)
    print(
        f"{args.attack} attack: accuracy {summary['accuracy']:.3f}  recall {summary['recall']:.3f}"
        f"  AUC {summary['auc']:.3f} [{summary['auc_ci'][0]:.3f}, {summary['auc_ci'][1]:.3f}]"
        f"  meta-test accuracy {res['meta_test_accuracy']:.3f}"
    )
    return 0
