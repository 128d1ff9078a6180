"""``mtl-tracing sweep``: a vectorised, sharded, resumable parameter sweep of the tracing game."""

from __future__ import annotations

import argparse

from mtl_tracing.commands._common import enable_x64_if, float_list, int_list, str_list

NAME = "sweep"
HELP = "Sweep the Gaussian tracing game over lists of T, N, d, k, sbar, s, mu_bar and seeds."
DESCRIPTION = (
    HELP + " Each list flag takes comma-separated values; the sweep is their product. Writes "
    "sweep.npz, sweep.json and sweep.csv (one row per cell and adversary) into --out; "
    "re-running the same command resumes an interrupted sweep or loads a finished one. "
    "--clip/--noise-multiplier/--release-noise-std sweep the DP release (as in `game`) as "
    "traced columns: one compiled program per shape for all their values."
)


def clip_list(text: str) -> list[float | None]:
    """Comma-separated clips C; ``none`` is no clipping (e.g. ``none,0.5,1``)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        return [None if t.lower() == "none" else float(t) for t in items]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers or 'none', got {text!r}"
        ) from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--tasks", type=int_list, default=[256], help="T values (default 256)")
    parser.add_argument("--samples", type=int_list, default=[8], help="N values (default 8)")
    parser.add_argument("--dim", type=int_list, default=[256], help="d values (default 256)")
    parser.add_argument("--challenge", type=int_list, default=[4], help="k values (default 4)")
    parser.add_argument("--task-std", type=float_list, default=[1.0], help="sbar values")
    parser.add_argument("--sample-std", type=float_list, default=[1.0], help="s values")
    parser.add_argument("--mean", type=float_list, default=[0.0], help="mu_bar values (scalars)")
    parser.add_argument(
        "--adversary", type=str_list, default=["strong", "weak"], help="strong,weak"
    )
    parser.add_argument("--seeds", type=int_list, default=[0], help="seeds (default 0)")
    parser.add_argument("--games", type=int, default=500, help="G games per cell (default 500)")
    parser.add_argument("--sampler", default="sufficient", help="sufficient|faithful")
    parser.add_argument(
        "--clip",
        type=clip_list,
        default=[None],
        help="C values of the DP release ('none': no clipping; default none); a clip needs "
        "--sampler faithful",
    )
    parser.add_argument(
        "--noise-multiplier",
        type=float_list,
        default=[0.0],
        help="z values: noise z C on the clipped sum (needs --clip; default 0)",
    )
    parser.add_argument(
        "--release-noise-std",
        type=float_list,
        default=[0.0],
        help="sigma values: Gaussian noise on mu_hat, no clipping needed (default 0)",
    )
    parser.add_argument("--fpr", type=float, default=0.01, help="FPR of the TPR column")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples")
    parser.add_argument(
        "--memory-budget-mb", type=float, default=256.0, help="memory per chunk (MiB)"
    )
    parser.add_argument(
        "--host-devices",
        type=int,
        default=None,
        help="on a CPU host, split it into this many JAX devices so that the sweep's cells "
        "run on every core (default: the number of cores, unless XLA_FLAGS sets it; "
        "results do not depend on it)",
    )
    parser.add_argument("--x64", action="store_true", help="simulate in float64")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def use_host_devices(count: int | None) -> None:
    """Ask XLA for ``count`` CPU devices (default: one per core) before JAX starts its backend.

    Sharding the cells over them is how the sweep uses every core of a CPU host (one XLA:CPU
    device runs one cell at a time). No effect once a backend is running, when ``XLA_FLAGS``
    already sets the count, or on accelerators (the mesh then holds the GPUs/TPUs).
    """
    import os

    n = (os.cpu_count() or 1) if count is None else count
    if n < 1:
        raise ValueError(f"host-devices must be >= 1, got {count!r}")
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 or "xla_force_host_platform_device_count" in flags:
        return
    import jax

    try:  # public config; JAX refuses it once a backend is running
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # a backend is running: its device count stays
        return


def run(args: argparse.Namespace) -> int:
    from mtl_tracing.experiments.registry import check_out_dir

    check_out_dir(args.out)
    use_host_devices(args.host_devices)
    enable_x64_if(args.x64)
    import jax.numpy as jnp

    from mtl_tracing import sweep

    spec = sweep.SweepSpec(
        tasks=tuple(args.tasks),
        samples=tuple(args.samples),
        dim=tuple(args.dim),
        challenge=tuple(args.challenge),
        task_std=tuple(args.task_std),
        sample_std=tuple(args.sample_std),
        mean=tuple(args.mean),
        seeds=tuple(args.seeds),
        games=args.games,
        adversaries=tuple(args.adversary),
        sampler=args.sampler,
        fpr=args.fpr,
        num_resamples=args.resamples,
        clip=tuple(args.clip),
        noise_multiplier=tuple(args.noise_multiplier),
        release_noise_std=tuple(args.release_noise_std),
    )
    if args.memory_budget_mb <= 0:
        raise ValueError(f"memory-budget-mb must be > 0, got {args.memory_budget_mb!r}")
    table = sweep.run_sweep(
        spec,
        sweep.gaussian_runner(spec),
        args.out,
        dtype=jnp.float64 if args.x64 else jnp.float32,
        memory_budget_bytes=int(args.memory_budget_mb * 2**20),
        progress=not args.no_progress,
    )
    print(f"{len(table['cell_id'])} rows ({spec.num_cells} cells) in {args.out}/sweep.npz")
    head = f"{'adv':<6} {'T':>5} {'N':>4} {'d':>6} {'k':>3} {'AUC [CI]':<24} {'exact':>6}"
    head += f" {'TPR@' + format(spec.fpr, 'g'):>9} {'exact':>6}"
    print(head + (f" {'noise':>7} {'mu':>6}" if spec.has_release else ""))
    for i in range(min(len(table["cell_id"]), 40)):
        print(
            f"{table['adversary'][i]:<6} {table['tasks'][i]:>5} {table['samples'][i]:>4} "
            f"{table['dim'][i]:>6} {table['challenge'][i]:>3} "
            f"{table['auc'][i]:.3f} [{table['auc_lo'][i]:.3f}, {table['auc_hi'][i]:.3f}]"
            f"{'':<5} {table['exact_auc'][i]:>6.3f} {table['tpr'][i]:>9.3f} "
            f"{table['exact_tpr'][i]:>6.3f}"
            + (f" {table['noise_std'][i]:>7.3g} {table['mu'][i]:>6.3g}" if spec.has_release else "")
        )
    return 0
