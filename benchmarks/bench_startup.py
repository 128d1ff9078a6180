"""Benchmark: time to first result. Every command cold in a fresh process, compile time counted.

For each command below, a fresh Python process runs ``mtl_tracing.cli.main(argv)`` with a
``jax.monitoring`` listener on JAX's compile events and prints:

- wall: the whole process, interpreter start and imports included (what a user waits);
- compile: XLA backend compile time summed over programs, and its share of the wall time;
- trace+lower: tracing to jaxpr and lowering to MLIR (also compile-side work);
- programs: the number of XLA programs compiled;
- warm: the wall time of a second run of the same command with the persistent compilation
  cache filled by a first cached run (a fresh cache folder per command).

Cold runs set ``MTL_TRACING_NO_CACHE=1``. The plain baseline of the tiny game is the same game
in NumPy (faithful sampler, loop-free over tasks, the same sizes), in a fresh process too.

Run: ``.venv/bin/python benchmarks/bench_startup.py [--only game,figure7] [--no-warm]``.
Results go to ``benchmarks/README.md`` (machine named there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

PROBE = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    stats = {"compile_s": 0.0, "programs": 0, "trace_lower_s": 0.0}
    def on_duration(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            stats["compile_s"] += duration
            stats["programs"] += 1
        elif event in ("/jax/core/compile/jaxpr_trace_duration",
                       "/jax/core/compile/jaxpr_to_mlir_module_duration"):
            stats["trace_lower_s"] += duration
    if "--help" not in sys.argv:
        import jax.monitoring as mon
        mon.register_event_duration_secs_listener(on_duration)
    from mtl_tracing import cli
    if "--cache" in sys.argv:
        sys.argv.remove("--cache")
        cli.enable_compilation_cache()
    try:
        rc = cli.main(sys.argv[1:])
    except SystemExit as e:
        rc = e.code
    stats["rc"] = rc
    stats["jax_imported"] = "jax" in sys.modules
    print("BENCH " + json.dumps(stats), file=sys.stderr)
    """
)

NUMPY_GAME = textwrap.dedent(
    """
    import numpy as np
    T, N, d, k, G = 16, 4, 32, 2, 1000
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(G, T, d))
    x = mu[:, :, None, :] + rng.normal(size=(G, T, N, d))
    alpha = x.mean(axis=(1, 2))
    strong = np.einsum("gtd,gd->gt", x[:, :, :k].mean(2), alpha)
    def batch_mean(means):
        return (means[:, :, None] + rng.normal(size=(G, T, k, d))).mean(2)
    weak = np.einsum("gtd,gd->gt", batch_mean(mu), alpha)
    out = np.einsum("gtd,gd->gt", batch_mean(rng.normal(size=(G, T, d))), alpha)
    auc = (strong[:, :, None] > out[:, None, :]).mean()
    print(auc)
    """
)


def commands(emb: str) -> dict[str, list[str]]:
    """The commands timed, as CLI argv (outputs relative: each run has its own folder)."""
    return {
        "--help": ["--help"],
        "game (tiny)": [
            "game", "--tasks", "16", "--samples", "4", "--dim", "32", "--challenge", "2",
            "--task-std", "1", "--sample-std", "1", "--games", "1000", "--seed", "1",
            "--json", "game.json",
        ],
        "figure7 (default)": ["figure7", "--out", "f7", "--no-progress"],
        "sweep (2 cells)": [
            "sweep", "--tasks", "16,32", "--dim", "16", "--samples", "4", "--challenge", "2",
            "--games", "200", "--out", "sw", "--no-progress",
        ],
        "attack (tiny file)": [
            "attack", "--embeddings", emb, "--strong", "--challenge", "4", "--trials", "16",
            "--json", "attack.json",
        ],
        "figure3 --quick": ["figure3", "--quick", "--out", "f3", "--no-progress"],
        "train (small)": [
            "train", "--tasks", "8", "--dim", "8", "--embed-dim", "4", "--samples", "8",
            "--epochs", "5", "--save-embeddings", "t.npz",
        ],
        "maml-attack (small)": [
            "maml-attack", "--epochs", "1", "--steps-per-epoch", "2", "--trials", "4",
            "--iterations", "3", "--bootstrap", "20", "--json", "m.json",
        ],
        "verify": ["verify", "--out", "verify"],
    }  # fmt: skip


def _write_embeddings(path: str) -> None:
    import numpy as np

    from mtl_tracing.data.embeddings import save_embeddings

    rng = np.random.default_rng(0)
    n, m, tasks = 8, 8, 16
    save_embeddings(
        path,
        in_embeddings=rng.normal(size=(tasks * n, m)),
        in_task=np.repeat(np.arange(tasks), n),
        out_embeddings=rng.normal(size=(tasks * n, m)),
        out_task=np.repeat(np.arange(tasks, 2 * tasks), n),
    )


def _run(argv: list[str], env: dict, tmp: str) -> tuple[float, dict]:
    cwd = tempfile.mkdtemp(prefix="run_", dir=tmp)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], env=env, cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("BENCH ")]
    if not line:
        raise RuntimeError(f"{argv[:1]} failed:\n{proc.stderr[-2000:]}")
    return wall, json.loads(line[-1][6:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=None, help="comma-separated command labels (prefix match)")
    p.add_argument("--no-warm", action="store_true", help="skip the cached re-runs")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_startup_")
    emb = os.path.join(tmp, "emb.npz")
    _write_embeddings(emb)
    cmds = commands(emb)
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        cmds = {lab: a for lab, a in cmds.items() if any(lab.startswith(k) for k in keys)}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    cold_env = dict(base_env, MTL_TRACING_NO_CACHE="1")
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", NUMPY_GAME], check=True, capture_output=True)
    print(
        f"baseline: the tiny game in plain NumPy, fresh process: {time.perf_counter() - t0:.2f} s"
    )
    head = f"{'command':<20} {'wall s':>7} {'compile s':>9} {'share':>6} {'trace+lower s':>13}"
    head += f" {'programs':>8} {'jax?':>5} {'warm s':>7}"
    print(head)
    for label, argv in cmds.items():
        wall, st = _run(argv, cold_env, tmp)
        warm = float("nan")
        if not args.no_warm and label != "--help":
            cache = tempfile.mkdtemp(prefix="cache_", dir=tmp)
            env = dict(base_env, MTL_TRACING_CACHE_DIR=cache)
            _run([*argv, "--cache"], env, tmp)  # fills the cache
            warm, _ = _run([*argv, "--cache"], env, tmp)
        share = st["compile_s"] / wall if wall else 0.0
        print(
            f"{label:<20} {wall:>7.2f} {st['compile_s']:>9.2f} {share:>6.0%} "
            f"{st['trace_lower_s']:>13.2f} {st['programs']:>8d} {str(st['jax_imported']):>5} "
            f"{warm:>7.2f}"
        )


if __name__ == "__main__":
    main()
