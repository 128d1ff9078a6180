"""``mtl-tracing train``: train one victim on synthetic data and save its embeddings (.npz)."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if

NAME = "train"
TRAINERS = ("standard", "gmrf", "robust")
HELP = "Train a victim (standard | gmrf | robust) on synthetic data; save embeddings for attack."
DESCRIPTION = (
    HELP + " With no other option: the default synthetic configuration (T=64, d=64, m=16, N=16, "
    "16 held-out samples) and Algorithm 3's training. Writes the .npz layout that "
    "`mtl-tracing attack --embeddings` reads (IN training, IN held-out and OUT samples)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trainer", default="standard", help="standard | gmrf | robust")
    parser.add_argument(
        "--save-embeddings", required=True, metavar="FILE.npz", help="output embeddings file"
    )
    parser.add_argument("--tasks", type=int, default=None, help="T IN tasks (default 64)")
    parser.add_argument("--dim", type=int, default=None, help="d (default 64)")
    parser.add_argument("--embed-dim", type=int, default=None, help="m (default 16)")
    parser.add_argument("--samples", type=int, default=None, help="N per task (default 16)")
    parser.add_argument("--clusters", type=int, default=None, help="task clusters K (default 0)")
    parser.add_argument("--cluster-spread", type=float, default=None, help="head spread (0.5)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 100)")
    parser.add_argument("--eta", type=float, default=0.3, help="GMRF prior strength (0.3)")
    parser.add_argument("--l1", type=float, default=0.1, help="GMRF graphical-lasso rho (0.1)")
    parser.add_argument("--norm", default="l2", help="PGD norm: linf | l2 (default l2)")
    parser.add_argument("--pgd-eps", type=float, default=1.0, help="PGD budget (default 1.0)")
    parser.add_argument("--pgd-steps", type=int, default=5, help="PGD steps (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="compute in float64")


def build(args: argparse.Namespace):
    """(SyntheticConfig, Trainer) from the arguments; ``ValueError`` on bad input."""
    from mtl_tracing.data.synthetic import SyntheticConfig
    from mtl_tracing.victims.mtl import MTLTrainer, TrainConfig

    if args.trainer not in TRAINERS:
        raise ValueError(f"--trainer must be one of {TRAINERS}, got {args.trainer!r}")
    fields = {
        "tasks": args.tasks,
        "dim": args.dim,
        "embed_dim": args.embed_dim,
        "samples": args.samples,
        "clusters": args.clusters,
        "cluster_spread": args.cluster_spread,
    }
    data_cfg = SyntheticConfig(holdout=16, **{k: v for k, v in fields.items() if v is not None})
    epochs = 100 if args.epochs is None else args.epochs
    train_cfg = TrainConfig(
        epochs=epochs,
        warm_start_epochs=min(10, epochs),
        task_batch=min(16, data_cfg.tasks),
    )
    m = data_cfg.embed_dim
    if args.trainer == "gmrf":
        from mtl_tracing.victims.gmrf import GMRFConfig, GMRFTrainer

        return data_cfg, GMRFTrainer(train_cfg, m, GMRFConfig(eta=args.eta, l1=args.l1))
    if args.trainer == "robust":
        from mtl_tracing.victims.robust import PGDConfig, RobustTrainer

        pgd = PGDConfig(norm=args.norm, eps=args.pgd_eps, steps=args.pgd_steps)
        return data_cfg, RobustTrainer(train_cfg, m, pgd)
    return data_cfg, MTLTrainer(train_cfg, m)


def _checked(args: argparse.Namespace):
    # Error messages name the flag, not the config field.
    try:
        return build(args)
    except ValueError as err:
        msg = str(err)
        for field, flag in (
            ("eta", "--eta"),
            ("eps", "--pgd-eps"),
            ("steps", "--pgd-steps"),
            ("clusters", "--clusters"),
            ("l1", "--l1"),
            ("norm", "--norm"),
        ):
            if msg.startswith(field + " "):
                raise ValueError(flag + msg[len(field) :]) from None
        raise


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    if not str(args.save_embeddings).endswith(".npz"):
        raise ValueError(f"--save-embeddings must end in .npz, got {args.save_embeddings!r}")
    data_cfg, trainer = _checked(args)
    import jax
    import numpy as np

    from mtl_tracing._validate import check_int
    from mtl_tracing.data import synthetic
    from mtl_tracing.data.base import MultitaskData
    from mtl_tracing.data.embeddings import save_embeddings
    from mtl_tracing.victims.trainer import fit

    seed = check_int("--seed", args.seed, low=0)
    k_data, k_train = jax.random.split(jax.random.key(seed))
    data = synthetic.generate(k_data, data_cfg, dtype="float64" if args.x64 else None)
    in_part = MultitaskData(data.x, data.y, None, None, data.x_heldout, data.y_heldout)
    out = fit(trainer, k_train, in_part, runs=1, progress=False)
    state = jax.tree.map(lambda v: v[0], out.state)
    embed = jax.jit(trainer.embed)
    T, N, H = data.tasks, data.samples, data.heldout

    def rows(x):  # (tasks, n, d) -> (tasks * n, m)
        e = np.asarray(embed(state, x))
        return e.reshape(-1, e.shape[-1])

    ids = np.arange(2 * T)
    path = save_embeddings(
        args.save_embeddings,
        in_embeddings=rows(data.x),
        in_task=np.repeat(ids[:T], N),
        out_embeddings=rows(data.x_out),
        out_task=np.repeat(ids[T:], N),
        in_heldout_embeddings=rows(data.x_heldout),
        in_heldout_task=np.repeat(ids[:T], H),
    )
    hist = {k: float(v[0, -1]) for k, v in out.history.items()}
    print(
        f"{args.trainer}: T={T}, N={N}, {trainer.epochs} epochs; "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(hist.items()))
    )
    print(f"wrote {path}")
    return 0
