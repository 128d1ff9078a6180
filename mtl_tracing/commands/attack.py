"""``mtl-tracing attack``: run both black-box attacks on an embeddings ``.npz``."""

from __future__ import annotations

import argparse
from pathlib import Path

from mtl_tracing.commands._common import check_output_file, enable_x64_if
from mtl_tracing.commands._dp import attack_audit

NAME = "attack"
HELP = "Run the variance and inner-product attacks (Algorithms 1-2) on an embeddings .npz."
DESCRIPTION = (
    HELP + " Writes --json (AUC with a task-resampling CI, TPR at 1% and 0.1% FPR, the "
    "50/75/90 percentile table, metadata), the scores next to it (same name, .npz) and, with "
    "--plot, a ROC figure. File layout: see mtl_tracing.data.embeddings."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embeddings", required=True, metavar="FILE.npz", help="input .npz")
    adv = parser.add_mutually_exclusive_group()
    adv.add_argument(
        "--strong",
        dest="adversary",
        action="store_const",
        const="strong",
        help="IN challenge sets from training samples (default)",
    )
    adv.add_argument(
        "--weak",
        dest="adversary",
        action="store_const",
        const="weak",
        help="IN challenge sets from held-out samples",
    )
    parser.set_defaults(adversary="strong")
    parser.add_argument(
        "--challenge", type=int, default=None, help="k, challenge size (default 8 strong, 4 weak)"
    )
    parser.add_argument("--trials", type=int, default=128, help="draws per task (default 128)")
    parser.add_argument(
        "--whiten",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="leave-one-task-out whitening, A.7.1 (default on)",
    )
    parser.add_argument("--ridge", type=float, default=None, help="whitening lambda (1e-3)")
    parser.add_argument("--cosine", action="store_true", help="cosine similarity in Algorithm 2")
    parser.add_argument(
        "--bootstrap", type=int, default=200, help="task resamples for the CI (default 200)"
    )
    parser.add_argument(
        "--tpr-ci", action="store_true", help="also bootstrap CIs of the TPRs (slower)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    parser.add_argument("--json", required=True, metavar="OUT.json", help="results file")
    parser.add_argument("--plot", default=None, metavar="ROC.png", help="ROC figure (PNG)")
    parser.add_argument(
        "--audit", action="store_true", help="add a one-run privacy audit (epsilon_lb) to --json"
    )


def _plot(path: Path, scores, summary: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mtl_tracing import metrics
    from mtl_tracing.plotting import attack_style

    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for name, (s_in, s_out) in scores.items():
        label = attack_style(name)[0]
        roc = metrics.roc_curve(s_in, s_out)
        fpr, tpr = np.asarray(roc.fpr), np.asarray(roc.tpr)
        ax.plot(fpr, tpr, label=f"{label}, AUC {float(summary[name]['auc']):.3f}")
    ax.plot([1e-4, 1], [1e-4, 1], ls=":", color="grey", lw=0.8)
    ax.set(xscale="log", yscale="log", xlim=(1e-3, 1), ylim=(1e-3, 1.02))
    ax.set(xlabel="FPR", ylabel="TPR", title=title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mtl_tracing import attacks, results
    from mtl_tracing._validate import check_int
    from mtl_tracing.data import embeddings

    k = args.challenge if args.challenge is not None else (8 if args.adversary == "strong" else 4)
    k = check_int("--challenge", k, low=2)
    trials = check_int("--trials", args.trials, low=1)
    check_int("--bootstrap", args.bootstrap, low=1)
    check_int("--seed", args.seed, low=0)
    ridge = attacks.DEFAULT_RIDGE if args.ridge is None else args.ridge
    out_json = check_output_file("--json", args.json)
    if out_json.suffix != ".json":
        raise ValueError(f"--json must end in .json, got {args.json!r}")
    if args.plot is not None and Path(args.plot).suffix.lower() != ".png":
        raise ValueError(f"--plot must end in .png, got {args.plot!r}")
    if args.plot is not None:
        check_output_file("--plot", args.plot)
    check_output_file("--json (its scores file)", str(out_json.with_suffix(".npz")))

    data = embeddings.load_embeddings(args.embeddings, adversary=args.adversary, challenge=k)
    pool_in, pool_out = data.adversary_pools(args.adversary)
    dtype = jnp.float64 if args.x64 else jnp.float32
    key = jax.random.key(args.seed)
    k_attack, k_boot = jax.random.split(key)
    scores = attacks.run_attacks(
        k_attack,
        jnp.asarray(pool_in.embeddings, dtype=dtype),
        jnp.asarray(pool_out.embeddings, dtype=dtype),
        k=k,
        trials=trials,
        whiten=args.whiten,
        cosine=args.cosine,
        ridge=ridge,
        sizes_in=pool_in.counts,
        sizes_out=pool_out.counts,
    )
    summary = attacks.evaluate(k_boot, scores, num_resamples=args.bootstrap, tpr_ci=args.tpr_ci)

    sidecar = out_json.with_suffix(".npz")
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        sidecar,
        **{
            f"{a}_{side}": np.asarray(getattr(g, f"scores_{side}"))
            for a, g in scores.items()
            for side in ("in", "out")
        },
        in_task=pool_in.task_ids,
        out_task=pool_out.task_ids,
    )
    settings = {
        "embeddings": str(args.embeddings),
        "adversary": args.adversary,
        "challenge": k,
        "trials": trials,
        "whiten": bool(args.whiten),
        "ridge": ridge,
        "cosine": bool(args.cosine),
        "bootstrap": args.bootstrap,
        "tpr_ci": bool(args.tpr_ci),
        "tasks_in": int(pool_in.counts.size),
        "tasks_out": int(pool_out.counts.size),
        "dim": int(pool_in.embeddings.shape[-1]),
    }
    payload = {
        "attacks": summary,
        "scores_file": sidecar.name,
        "metadata": results.run_metadata(config=settings, seed=args.seed),
    }
    if args.audit:
        payload["audit"] = attack_audit(scores)
    results.write_json(out_json, payload)
    if args.plot is not None:
        title = f"{args.adversary}, k={k}, {'whitened' if args.whiten else 'raw'}"
        _plot(Path(args.plot), scores, summary, title)
    for name in summary:
        print(f"{name:<14} AUC {float(summary[name]['auc']):.4f}")
    return 0
