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
    HELP + " The victim trains until its meta-test accuracy plateaus (at most --epochs); the "
    "attack's lr, TV weight and iteration count are tuned on validation trials, disjoint from "
    "the test trials. Writes --out (accuracy, recall, precision at the validation threshold, "
    "AUC and TPR at 1% FPR with CIs from resampling trials, for any-class and same-class "
    "non-members; the tuned attack; meta-test accuracy; metadata) and the test scores next to "
    "it (same name, .npz). Data: the bundled digits, or MNIST / Fashion-MNIST IDX files in "
    "--data-dir."
)
PLACES = ("none", "support", "adaptation", "query", "validation")
SOURCES = ("digits", "mnist", "fashion-mnist")
NONMEMBERS = ("any-class", "same-class")
#: Old spelling -> flag, accepted (hidden) for one release.
ALIASES = {"--json": "--out", "--bootstrap": "--resamples"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="digits", choices=SOURCES, help="few-shot data")
    parser.add_argument("--data-dir", default=None, help="folder with the IDX files")
    parser.add_argument("--attack", default="query", choices=("query", "support"), help="attack")
    parser.add_argument("--ways", type=int, default=3, help="w, classes per task (default 3)")
    parser.add_argument("--shots", type=int, default=1, help="s, images per class (default 1)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="most meta-training epochs (default: source's)"
    )
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="meta-steps per epoch")
    parser.add_argument("--trials", type=int, default=None, help="test trials (default 32)")
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="largest attack iteration count tuned (checkpoints it/4, it/2, it; default: source's)",
    )
    parser.add_argument(
        "--nonmember", default="any-class", choices=NONMEMBERS, help="printed non-member mode"
    )
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
    # Validate everything before touching JAX or the data.
    check_choice("--source", args.source, SOURCES)
    check_choice("--attack", args.attack, ("query", "support"))
    check_choice("--nonmember", args.nonmember, NONMEMBERS)
    check_choice("--noise-place", args.noise_place, PLACES)
    check_nonnegative("--sigma", args.sigma)
    check_int("--shots", args.shots, low=1)
    check_int("--ways", args.ways, low=2)
    for name in ("epochs", "trials", "iterations", "resamples", "seed", "steps_per_epoch"):
        v = getattr(args, name)
        low = {"epochs": 0, "seed": 0, "iterations": 1, "steps_per_epoch": 1}.get(name, 2)
        if v is not None:
            check_int(f"--{name.replace('_', '-')}", v, low=low)
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
    it = args.iterations
    victim = mcom.settings_for(
        args.source,
        max_epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        trials=args.trials,
        checkpoints=None if it is None else (max(1, it // 4), max(1, it // 2), it),
        bootstrap=args.resamples,
        pad=False,
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
    e = res["epochs_trained"]
    by_mode = res["attacks"][str(e)][args.attack]
    summary = by_mode[args.nonmember]
    sidecar = out_json.with_suffix(".npz")
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    np.savez(sidecar, **res["arrays"])
    settings = {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "out"}
    payload = {
        "attack": args.attack,
        "summary": summary,
        "summaries": by_mode,
        "meta_test_accuracy": res["meta_test_accuracy"],
        "meta_test_history": res["history"],
        "epochs_trained": e,
        "scores_file": sidecar.name,
        "metadata": results.run_metadata(
            config={**settings, "victim": victim.to_dict()}, seed=args.seed
        ),
    }
    results.write_json(out_json, payload)
    ch = summary["chosen"]
    print(
        f"{args.attack} attack ({args.nonmember} non-members): accuracy {summary['accuracy']:.3f}"
        f"  recall {summary['recall']:.3f}  AUC {summary['auc']:.3f} [{summary['auc_ci'][0]:.3f},"
        f" {summary['auc_ci'][1]:.3f}]  tuned lr {ch['lr']:g} alpha {ch['alpha']:g} "
        f"iterations {ch['iterations']}  meta-test accuracy {res['meta_test_accuracy']:.3f} "
        f"({e} epochs)"
    )
    return 0
