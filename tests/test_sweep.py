"""Tests of the sweep engine: compile count, invariance, resume, format, validation, theory.

Compile budget (each compile costs seconds on CI): the module fixture compiles 1 simulation
program (T = 4, 8 padded to 8, chunk 6) and 2 statistics programs (T = 4, 8); the compile test
adds none (new d, N, k); the resume/chunk test adds 1 simulation program (chunk 3); the
4-device subprocess 2; x64 2.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import (
    assert_close,
    assert_rejects,
    assert_sweep_matches_theory,
    assert_within_se,
    z_scores,
)

from mtl_tracing import metrics, sweep
from mtl_tracing.gaussian.config import GameShape, GaussianGameConfig

GAMES = 200
# 2 shapes (T = 4, 8) x 3 sbar x 2 mu_bar = 12 cells; k = N/2 so both adversaries are distinct.
SPEC = sweep.SweepSpec(
    tasks=(4, 8),
    samples=(4,),
    dim=(16,),
    challenge=(2,),
    task_std=(0.5, 1.0, 2.0),
    sample_std=(1.0,),
    mean=(0.0, 1.5),
    seeds=(0,),
    games=GAMES,
    num_resamples=50,
)
# The T = 4 half of SPEC as its own spec (its cell ids differ: it is a different sweep).
SMALL = sweep.SweepSpec(**{**SPEC.to_dict(), "tasks": (4,)})


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    before = sweep.trace_counts()
    table = sweep.run_sweep(SPEC, sweep.gaussian_runner(SPEC), out, chunk_cells=6, progress=False)
    after = sweep.trace_counts()
    return out, table, {k: after[k] - before[k] for k in after}


def test_one_compile_per_simulation_shape_and_statistics_shape(swept, monkeypatch):
    _, table, traces = swept
    # 2 shapes x 6 (sbar, mu_bar) values -> 1 simulation program (T padded to 8: the sampler
    # takes T, N, d, k traced); 2 statistics shapes (G, T), the group-pair path only (no cell
    # needed the fallback program).
    assert traces == {"simulation": 1, "statistics": 2}
    before = sweep.trace_counts()
    # New traced values and seeds, same shapes: no recompile.
    spec2 = sweep.SweepSpec(**{**SPEC.to_dict(), "task_std": (0.7, 1.1, 3.0), "seeds": (5,)})
    t2 = sweep.run_sweep(spec2, chunk_cells=6, progress=False)
    assert sweep.trace_counts() == before
    assert len(t2["cell_id"]) == len(table["cell_id"]) == 24
    # Reversed group order: same numbers, no recompile.
    group_cells = sweep.engine._group_cells
    monkeypatch.setattr(sweep.engine, "_group_cells", lambda *a: group_cells(*a)[::-1])
    t3 = sweep.run_sweep(SPEC, chunk_cells=6, progress=False)
    assert sweep.trace_counts() == before
    for k in table:
        np.testing.assert_array_equal(t3[k], table[k], err_msg=k)
    # New d, N and k, the same T bucket and (G, T): no new program at all.
    spec3 = sweep.SweepSpec(
        **{**SPEC.to_dict(), "dim": (32,), "samples": (8,), "challenge": (3,), "mean": (0.0,)}
    )
    sweep.run_sweep(spec3, chunk_cells=6, progress=False)
    assert sweep.trace_counts() == before


def test_identical_rerun_served_from_disk(swept):
    out, table, _ = swept
    before = sweep.trace_count()
    again = sweep.run_sweep(SPEC, out_dir=out, chunk_cells=6, progress=False)
    assert sweep.trace_count() == before
    for k in table:
        np.testing.assert_array_equal(again[k], table[k])
    # A folder where the runner goes is refused (the signature is run_sweep(spec, runner, out)).
    with pytest.raises(ValueError, match="runner"):
        sweep.run_sweep(SPEC, out, progress=False)
    other = sweep.SweepSpec(**{**SPEC.to_dict(), "games": 100})
    with pytest.raises(ValueError, match="out_dir"):
        sweep.run_sweep(other, out_dir=out, progress=False)


def test_runner_is_a_protocol(swept):
    """run_sweep drives any CellRunner: here the Gaussian runner with its own table function
    (programs reused: the same simulate and statistics functions)."""
    _, table, _ = swept
    base = sweep.gaussian_runner(SPEC)
    seen = {}

    def table_fn(spec, cells, results):
        seen["n"] = len(results)
        return {
            "cell_id": np.array([c[0] for c in cells]),
            "auc": np.stack([r["strong/auc"] for r in results]),
        }

    before = sweep.trace_count()
    got = sweep.run_sweep(SPEC, base._replace(table=table_fn), chunk_cells=6, progress=False)
    assert sweep.trace_count() == before and seen["n"] == 12
    np.testing.assert_array_equal(got["auc"], table["auc"][0::2])
    with pytest.raises(ValueError, match="runner must be a CellRunner"):
        sweep.run_sweep(SPEC, object(), progress=False)


def test_resume_after_failure_equals_uninterrupted_and_chunking_invariant(tmp_path, monkeypatch):
    ref = sweep.run_sweep(SMALL, chunk_cells=6, progress=False)  # compiled by the fixture
    write_chunk = sweep.store.write_chunk

    def fail_after_write(*args):  # the first chunk is written, then the run dies
        write_chunk(*args)
        raise RuntimeError("injected failure after 1 chunk (test)")

    with monkeypatch.context() as m:
        m.setattr(sweep.store, "write_chunk", fail_after_write)
        with pytest.raises(RuntimeError, match="injected"):
            sweep.run_sweep(SMALL, out_dir=tmp_path, chunk_cells=3, progress=False)
    assert len(list((tmp_path / "chunks").glob("chunk-*.npz"))) == 1
    assert not (tmp_path / "sweep.npz").exists()
    before = sweep.trace_count()
    resumed = sweep.run_sweep(SMALL, out_dir=tmp_path, chunk_cells=3, progress=False)
    assert sweep.trace_count() == before  # chunk-3 program reused
    assert len(list((tmp_path / "chunks").glob("chunk-*.npz"))) == 2
    for k in ref:  # chunk 6 uninterrupted == chunk 3 interrupted + resumed, bitwise
        np.testing.assert_array_equal(resumed[k], ref[k], err_msg=k)


def test_cells_the_group_pair_path_refuses_are_rescored_by_the_fallback():
    """A cell whose statistics report ``_ok`` False (the group-pair bootstrap's numbers do not
    hold: a large tie group or a short TPR window) is rescored by the runner's fallback program
    (group pairs with the sorted path under ``lax.cond``, compiled only then); ``_ok`` is not
    kept. Here every cell is refused: the table equals the plain one (group pairs hold)."""
    base = sweep.gaussian_runner(SMALL)
    ref = sweep.run_sweep(SMALL, base, chunk_cells=6, progress=False)
    calls = {"n": 0}

    def refuse(key, sim):
        calls["n"] += 1
        return {**base.statistics(key, sim), "_ok": jnp.asarray(False)}

    before = sweep.trace_counts()
    got = sweep.run_sweep(SMALL, base._replace(statistics=refuse), chunk_cells=6, progress=False)
    after = sweep.trace_counts()
    assert calls["n"] == 1 and after["statistics"] - before["statistics"] == 2
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    # Without a fallback the refusal is an error naming it, not a silent result.
    with pytest.raises(ValueError, match="fallback_statistics"):
        no_fb = base._replace(statistics=refuse, fallback_statistics=None)
        sweep.run_sweep(SMALL, no_fb, chunk_cells=6, progress=False)
    with pytest.raises(ValueError, match="static_args"):
        sweep.run_sweep(SMALL, base._replace(static_args=None), progress=False)
    # The fallback alone (no group-pair program) gives the same numbers too.
    direct = sweep.run_sweep(
        SMALL, base._replace(statistics=base.fallback_statistics), chunk_cells=6, progress=False
    )
    for k in ref:
        np.testing.assert_array_equal(direct[k], ref[k], err_msg=k)


def test_sweep_buckets_pad_t_when_cheap():
    bucket = sweep.gaussian_runner(SPEC).bucket
    statics = [((4, 4, 16, 2), 6), ((8, 4, 16, 2), 6), ((8, 8, 32, 3), 6)]
    assert set(bucket(statics, 200).values()) == {(8,)}
    # Padding 3 tasks to 4096 in a million games would cost more than a compile: powers of two.
    big = [((3, 4, 16, 2), 8), ((4096, 4, 16, 2), 1)]
    assert bucket(big, 10**6) == {(3, 4, 16, 2): (4,), (4096, 4, 16, 2): (4096,)}
    assert (
        sweep.gaussian_runner(sweep.SweepSpec(**{**SPEC.to_dict(), "sampler": "faithful"})).bucket
        is None
    )


def test_memory_budget_sets_chunk_size(tmp_path):
    runner = sweep.gaussian_runner(SMALL)
    per = runner.bytes_per_cell((4, 4, 16, 2), GAMES, jnp.float32)
    assert per == sweep.bytes_per_cell(SMALL, GameShape(4, 4, 16, 2), jnp.float32)
    assert per >= GAMES * 3 * 4 * 4  # at least the scores themselves
    # The statistics part is the bootstrap's own estimate (metrics.bootstrap_memory_bytes).
    boot = metrics.bootstrap_memory_bytes(
        (metrics.auc, metrics.TprAtFprStatistic(SMALL.fpr)),
        (GAMES, 4),
        (GAMES, 4),
        num_resamples=SMALL.num_resamples,
        chunk=4,
    )
    assert per > boot
    before = sweep.trace_count()
    # A budget of 3.5 cells -> chunks of 3 cells (program cached by the resume test or new).
    t = sweep.run_sweep(SMALL, out_dir=tmp_path, memory_budget_bytes=int(3.5 * per), progress=False)
    assert sweep.trace_count() - before <= 1
    assert len(list((tmp_path / "chunks").glob("chunk-*.npz"))) == 2  # 6 cells in 2 chunks
    assert len(t["cell_id"]) == 12


_DEVICE_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    sys.path.insert(0, "tests")
    import jax, numpy as np
    from mtl_tracing import sweep
    from test_sweep import SMALL
    assert len(jax.local_devices()) == 4
    t = sweep.run_sweep(SMALL, chunk_cells=4, progress=False)
    np.savez(sys.argv[1], **t)
    """
)


def test_equal_over_device_count(tmp_path):
    """4 CPU devices (a subprocess) against 1 device of this process's backend: the same
    cells, equal to float32 rounding (the policy: equal in law across device counts and
    backends; on one CPU the numbers happen to be bitwise equal)."""
    ref = sweep.run_sweep(SMALL, chunk_cells=6, progress=False, devices=jax.local_devices()[:1])
    path = tmp_path / "dev4.npz"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", _DEVICE_SCRIPT, str(path)], check=True, env=env, cwd=root)
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == set(ref)
        for k in ref:  # 4 devices, chunk 4 (padded 6 -> 8) vs 1 device, chunk 6
            if np.issubdtype(ref[k].dtype, np.floating):
                assert_close(z[k], ref[k], dtype=np.float32, terms=64, what=k)
            else:
                np.testing.assert_array_equal(z[k], ref[k], err_msg=k)


def test_format_round_trip_numpy_only(swept):
    out, table, _ = swept
    script = textwrap.dedent(
        f"""
        import json, sys, numpy as np
        z = np.load({str(out / "sweep.npz")!r}, allow_pickle=False)
        meta = json.load(open({str(out / "sweep.json")!r}))
        assert set(meta["columns"]) == set(z.files), (meta["columns"], z.files)
        assert meta["rows"] == len(z["cell_id"]) and meta["format"] == "mtl-tracing-sweep/1"
        assert "jax" in meta["metadata"]["versions"]
        assert "jax" not in sys.modules
        print(len(z["cell_id"]))
        """
    )
    res = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    assert int(res.stdout) == 24
    loaded = sweep.load_sweep(out)
    assert list(loaded) == list(table)
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0].split(",") == list(table) and len(lines) == 25
    meta = json.loads((out / "sweep.json").read_text())
    assert sweep.SweepSpec.from_dict(meta["spec"]) == SPEC
    # Rows: cells in id order, adversaries strong then weak; both share the OUT statistics.
    np.testing.assert_array_equal(table["cell_id"], np.repeat(np.arange(12), 2))
    np.testing.assert_array_equal(table["mean_out"][0::2], table["mean_out"][1::2])


def test_empirical_matches_theory_with_power(swept):
    """|est - theory| <= 4.5 se per row (48 checks; P(false fail) < 48 * 6.8e-6 ~ 3e-4)."""
    _, t, _ = swept
    assert_sweep_matches_theory(t)
    # Power. Rows are not independent across adversaries, so aggregate one adversary only:
    # Z = sum_i r_i / sqrt(n) is N(0, 1) over independent cells under the true formula.
    strong = t["adversary"] == "strong"
    r = z_scores(t["var_in"], t["theory_var_in"], t["var_in_se"])[strong]
    assert_within_se(np.sum(r) / math.sqrt(r.size), 0.0, 1.0, what="aggregate var_in")
    # The paper's Thm 4.3 (Var z_IN = Var z_OUT, missing d c^2) is rejected by the same data.
    s = strong
    assert assert_rejects(t["var_in"][s], t["paper_var"][s], t["var_in_se"][s]) > 0
    # Missing the s^2/N term of the strong mean (the weak formula) is rejected.
    weak_mean = t["dim"] * t["task_std"] ** 2 / t["tasks"]
    assert assert_rejects(t["mean_in"][s], weak_mean[s], t["mean_in_se"][s]) > 0


def test_theory_columns_match_scalar_theory(swept):
    """The vectorised theory columns (gaussian.roc_theory, one call per adversary) agree with the
    scalar single-cell functions row by row: exact-law AUC/TPR to their documented accuracy,
    moments and normal approximations exactly."""
    from mtl_tracing import gaussian

    _, t, _ = swept
    for i in range(len(t["cell_id"])):
        fields = ("tasks", "samples", "dim", "challenge", "task_std", "sample_std", "mean")
        config = GaussianGameConfig(**{f: t[f][i].item() for f in fields})
        adv, fpr = str(t["adversary"][i]), float(t["fpr"][i])
        mom = gaussian.moments(config)
        assert t["theory_mean_in"][i] == mom[adv].mean and t["theory_var_in"][i] == mom[adv].var
        assert t["theory_mean_out"][i] == mom["out"].mean
        assert t["theory_var_out"][i] == mom["out"].var
        assert t["paper_var"][i] == mom["out"].paper_var
        assert t["normal_auc"][i] == pytest.approx(gaussian.normal_auc(config, adv), abs=1e-15)
        assert t["normal_tpr"][i] == pytest.approx(
            gaussian.normal_tpr_at_fpr(config, adv, fpr), abs=1e-15
        )
        assert abs(t["exact_auc"][i] - gaussian.exact_auc(config, adv)) <= 1e-12
        tpr = gaussian.exact_tpr_at_fpr(config, adv, fpr)
        assert abs(t["exact_tpr"][i] - tpr) <= max(1e-12, 1e-10 * tpr)


def test_float64(x64, tmp_path):
    spec = sweep.SweepSpec(
        tasks=(2,), samples=(2,), dim=(4,), challenge=(1,), games=20, num_resamples=10
    )
    t = sweep.run_sweep(spec, dtype=jnp.float64, chunk_cells=1, progress=False)
    assert t["auc"].dtype == np.float64 and t["tpr_lo"].dtype == np.float64
    assert t["mean_in"].dtype == np.float64  # moments are host float64 statistics
    t32 = sweep.run_sweep(spec, chunk_cells=1, progress=False)  # x64 on, float32 asked
    assert t32["auc"].dtype == np.float32


def test_float64_needs_x64():
    if jax.config.jax_enable_x64:
        pytest.skip("x64 enabled globally")
    with pytest.raises(ValueError, match="dtype"):
        sweep.run_sweep(SMALL, dtype=jnp.float64, progress=False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tasks", (0,)),
        ("challenge", (9,)),
        ("task_std", (-1.0,)),
        ("sample_std", (float("nan"),)),
        ("mean", (float("inf"),)),
        ("dim", ()),
        ("games", 1),
        ("seeds", (-1,)),
        ("adversaries", ("out",)),
        ("sampler", "exact"),
        ("fpr", 1.5),
    ],
)
def test_validation_names_field(field, value):
    with pytest.raises(ValueError, match=field):
        sweep.SweepSpec(**{field: value})


def test_cell_ids_are_canonical():
    cells = sweep.cell_table(SPEC)
    assert cells["cell_id"].tolist() == list(range(12))
    # Last field (seed), then mean, varies fastest; tasks slowest.
    assert cells["tasks"].tolist() == [4] * 6 + [8] * 6
    assert cells["mean"][:2].tolist() == [0.0, 1.5]


# The ready sweeps (experiments/sweeps.py jobs and their commands): tests/test_cli.py.


def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL a ``mtl-tracing sweep`` process midway (after its first chunk file appears),
    re-run the same command: it skips the finished chunks and the table equals, bitwise, an
    uninterrupted run."""
    import signal
    import time

    from mtl_tracing.cli import main

    out = tmp_path / "killed"
    stds = ",".join(str(0.5 + 0.1 * i) for i in range(24))
    argv = ["sweep", "--out", str(out), "--tasks", "16", "--dim", "16", "--samples", "4"]
    argv += ["--challenge", "2", "--task-std", stds, "--games", "400", "--resamples", "20"]
    argv += ["--memory-budget-mb", "0.01", "--no-progress"]  # one cell per chunk
    proc = subprocess.Popen([sys.executable, "-m", "mtl_tracing", *argv])
    chunks = out / "chunks"
    deadline = time.monotonic() + 240
    while not (chunks.is_dir() and any(chunks.glob("chunk-*.npz"))):
        assert proc.poll() is None, "sweep exited before writing a chunk"
        assert time.monotonic() < deadline, "no chunk written in time"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(chunks.glob("chunk-*.npz")))
    assert 1 <= done < 24 and not (out / "sweep.npz").exists(), done
    assert main(argv) == 0  # the same command resumes
    resumed = sweep.load_sweep(out)
    spec = sweep.SweepSpec.from_dict(json.loads((out / "sweep.json").read_text())["spec"])
    ref = sweep.run_sweep(spec, memory_budget_bytes=int(0.01 * 2**20), progress=False)
    for k in ref:
        np.testing.assert_array_equal(resumed[k], ref[k], err_msg=k)


_HOST_DEVICES_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ.pop("XLA_FLAGS", None)
    import jax, pytest
    from mtl_tracing.commands import sweep as sweep_cmd
    with pytest.raises(ValueError, match="host-devices"):
        sweep_cmd.use_host_devices(0)
    sweep_cmd.use_host_devices(3)  # before the backend starts: 3 CPU devices
    assert len(jax.devices("cpu")) == 3, jax.devices("cpu")
    sweep_cmd.use_host_devices(5)  # a backend is running: no change, no error
    assert len(jax.devices("cpu")) == 3
    print("ok")
    """
)


def test_cli_host_devices_flag():
    """``mtl-tracing sweep`` asks for one CPU device per core before the backend starts
    (JAX's public ``jax_num_cpu_devices``), and changes nothing once a backend runs."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run(
        [sys.executable, "-c", _HOST_DEVICES_SCRIPT], env=env, cwd=root, capture_output=True
    )
    assert res.returncode == 0 and res.stdout.strip() == b"ok", res.stderr.decode()[-2000:]


def test_cli_compilation_cache_env(monkeypatch, tmp_path):
    """The ``mtl-tracing`` executable keeps compiled programs in $MTL_TRACING_CACHE_DIR;
    MTL_TRACING_NO_CACHE=1 turns that off."""
    from mtl_tracing import cli

    before = jax.config.jax_compilation_cache_dir
    try:
        monkeypatch.setenv("MTL_TRACING_NO_CACHE", "1")
        assert cli.enable_compilation_cache() is None
        assert jax.config.jax_compilation_cache_dir == before
        monkeypatch.setenv("MTL_TRACING_NO_CACHE", "0")
        monkeypatch.setenv("MTL_TRACING_CACHE_DIR", str(tmp_path / "xla"))
        assert cli.enable_compilation_cache() == str(tmp_path / "xla")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
