"""Multi-process sweep on one machine: 2 processes x 2 forced CPU devices, loopback only.

``python simulations/multihost_sweep_example.py --out runs/multihost`` launches two worker
processes of itself. Each worker calls ``jax.distributed.initialize("127.0.0.1:PORT", 2, i)``,
runs its share of the chunks (chunk j goes to process j % 2) on its 2 local devices and writes
the chunk files into the shared --out; after a barrier, process 0 assembles and writes
sweep.npz/.json/.csv. The launcher then checks the table equals a single-process run, bitwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

SPEC_KW = dict(
    tasks=(4, 8),
    dim=(16,),
    samples=(4,),
    challenge=(2,),
    task_std=(0.5, 1.0, 2.0),
    games=50,
    num_resamples=20,
)


def worker(out: str, port: int, pid: int, nproc: int) -> None:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)
    from jax.experimental import multihost_utils

    from mtl_tracing import sweep

    assert len(jax.local_devices()) == 2 and jax.process_count() == nproc
    spec = sweep.SweepSpec(**SPEC_KW)
    sweep.run_sweep(
        spec, out_dir=out, chunk_cells=2, process_index=pid, process_count=nproc, progress=False
    )
    multihost_utils.sync_global_devices("sweep chunks written")
    if pid == 0:
        table = sweep.run_sweep(
            spec, out_dir=out, chunk_cells=2, progress=False
        )  # assembles from disk
        print(f"process 0 wrote {len(table['cell_id'])} rows to {out}")
    multihost_utils.sync_global_devices("done")
    jax.distributed.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/multihost_sweep")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.out, args.port, args.worker, 2)
        return
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--out", args.out, "--worker", str(i), "--port", str(port)]
        )
        for i in range(2)
    ]
    codes = [p.wait(timeout=600) for p in procs]
    if any(codes):
        raise SystemExit(f"workers failed with exit codes {codes}")
    import numpy as np

    from mtl_tracing import sweep

    ref = sweep.run_sweep(sweep.SweepSpec(**SPEC_KW), chunk_cells=2, progress=False)
    got = sweep.load_sweep(args.out)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    print(f"ok: multi-process table in {args.out} equals the single-process one, bitwise")


if __name__ == "__main__":
    main()
