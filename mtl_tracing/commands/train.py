"""``mtl-tracing train``: train one victim on synthetic data and save its embeddings (.npz).

The trainers, their ``--trainer`` names and their own flags come from the trainer registry
(:mod:`mtl_tracing.victims.registry`).
"""

from __future__ import annotations

import argparse

from mtl_tracing._validate import check_int
from mtl_tracing.commands._common import add_option, check_output_file, enable_x64_if
from mtl_tracing.data.base import MultitaskData
from mtl_tracing.data.embeddings import save_embeddings
from mtl_tracing.options import Option, add_options, rename_error
from mtl_tracing.victims import registry

NAME = "train"
HELP = "Train a registered victim on synthetic data; save its embeddings for `attack`."
#: Old spelling -> flag, accepted (hidden) for one release.
ALIASES = {"--save-embeddings": "--out"}
DESCRIPTION = (
    HELP + " With no other option: the default synthetic configuration (T=64, d=64, m=16, N=16, "
    "16 held-out samples) and Algorithm 3's training. Writes the .npz layout that "
    "`mtl-tracing attack --embeddings` reads (IN training, IN held-out and OUT samples). "
    "Trainers: " + "; ".join(f"{t.name}: {t.help}" for t in registry.TRAINERS) + "."
)

#: The synthetic data and training flags (None: SyntheticConfig's default, epochs 100).
DATA_OPTIONS = (
    Option("--tasks", int, "T IN tasks (default 64)"),
    Option("--dim", int, "d (default 64)"),
    Option("--embed-dim", int, "m (default 16)"),
    Option("--samples", int, "N per task (default 16)"),
    Option("--clusters", int, "task clusters K (default 0)"),
    Option("--cluster-spread", float, "head spread (0.5)"),
    Option("--epochs", int, "epochs (default 100)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trainer", default="standard", choices=registry.names(), help="the victim's trainer"
    )
    add_option(
        parser,
        "--out",
        aliases=ALIASES,
        required=True,
        metavar="FILE.npz",
        help="output embeddings file",
    )
    add_options(parser, DATA_OPTIONS)
    add_options(parser, registry.options())
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--x64", action="store_true", help="compute in float64")


def build(args: argparse.Namespace):
    """(SyntheticConfig, Trainer) from the arguments; ``ValueError`` naming the flag."""
    from mtl_tracing.data.synthetic import SyntheticConfig
    from mtl_tracing.victims.mtl import TrainConfig

    try:
        fields = {o.dest: getattr(args, o.dest) for o in DATA_OPTIONS if o.dest != "epochs"}
        data_cfg = SyntheticConfig(holdout=16, **{k: v for k, v in fields.items() if v is not None})
        epochs = 100 if args.epochs is None else args.epochs
        train_cfg = TrainConfig(
            epochs=epochs,
            warm_start_epochs=min(10, epochs),
            task_batch=min(16, data_cfg.tasks),
        )
        options = {o.dest: getattr(args, o.dest) for o in registry.options()}
        trainer = registry.build(
            args.trainer, train_cfg, data_cfg.embed_dim, tasks=data_cfg.tasks, **options
        )
    except ValueError as err:
        raise rename_error(err, DATA_OPTIONS + registry.get(args.trainer).options) from None
    return data_cfg, trainer


def run(args: argparse.Namespace) -> int:
    enable_x64_if(args.x64)
    out_path = check_output_file("--out", args.out, ".npz")
    data_cfg, trainer = build(args)
    import jax
    import numpy as np

    from mtl_tracing.data import synthetic
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
        out_path,
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
