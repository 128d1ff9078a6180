"""The sweep with the DP release as traced columns (clip C, noise multiplier z, sigma).

Compile budget: 2 programs in all. The faithful release runner compiles 1 simulation + 1
statistics program (T = 4, G = 400, chunk 4), reused by every other test here and release
value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import jax
import numpy as np
import pytest
from _stats import assert_rejects, assert_sweep_matches_theory

from mtl_tracing import gaussian, results, sweep
from mtl_tracing.gaussian.config import GaussianGameConfig

SHAPE = {"tasks": (4,), "samples": (4,), "dim": (16,), "challenge": (2,)}
# Every release sweep here: one simulation and one statistics program.
RELEASE = {**SHAPE, "games": 400, "num_resamples": 50, "sampler": "faithful"}


def test_defaults_are_the_plain_sweep():
    """Release defaults: the same spec dict, fingerprint (so old output folders resume), cells,
    runner, columns and numbers as before the release fields existed (the whole table was also
    checked bitwise against the pre-release code when written)."""
    spec = sweep.SweepSpec(**SHAPE, task_std=(0.5, 1.0), games=20)
    explicit = sweep.SweepSpec(
        **SHAPE,
        task_std=(0.5, 1.0),
        games=20,
        clip=None,
        noise_multiplier=0.0,
        release_noise_std=(0,),
    )
    assert spec == explicit and not spec.has_release
    skip = (*sweep.RELEASE_FIELDS, "lrt")  # the release fields and the optimal statistic's
    old_fields = [f.name for f in dataclasses.fields(spec) if f.name not in skip]
    assert list(spec.to_dict()) == old_fields
    payload = json.dumps(
        {"spec": results.to_jsonable(spec.to_dict()), "dtype": "float32"}, sort_keys=True
    )
    assert spec.fingerprint(np.float32) == hashlib.sha256(payload.encode()).hexdigest()[:16]
    assert all(type(c) is GaussianGameConfig for _, c, _ in spec.cells())
    runner = sweep.gaussian_runner(spec)
    assert runner.traced_fields == sweep.TRACED_FIELDS and runner.columns is sweep.COLUMNS
    assert list(sweep.cell_table(spec)) == ["cell_id", "seed", *sweep.CONFIG_FIELDS]

    # The numbers: a default sweep's scores are gaussian.simulate's to float rounding (the same
    # draws; the sweep's shape-generic sampler sums alpha_1 in another order: game.py's
    # padded_sufficient_game), over every shape of the spec.
    def raw_table(spec_, cells, res):
        return {k: np.stack([r[k] for r in res]) for k in ("in", "out")}

    raw = runner._replace(statistics=lambda key, sim: {"in": sim["in"], "out": sim["out"]})
    got = sweep.run_sweep(spec, raw._replace(table=raw_table), chunk_cells=1, progress=False)
    for cid, config, _ in spec.cells():
        want = gaussian.simulate(jax.random.fold_in(jax.random.key(0), cid), config, games=20)
        tol = dict(rtol=1e-6, atol=1e-6)
        want_in = np.stack([want.strong_in, want.weak_in])
        np.testing.assert_allclose(got["in"][cid], want_in, **tol)
        np.testing.assert_allclose(got["out"][cid], want.out, **tol)
    # Adding release values adds axes after mean (last-but-seed fastest) and columns.
    rel = sweep.SweepSpec(**SHAPE, games=20, release_noise_std=(0.0, 1.0), seeds=(0, 1))
    assert rel.has_release and rel.num_cells == 4
    assert sweep.cell_table(rel)["release_noise_std"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert set(sweep.RELEASE_COLUMNS) <= set(sweep.gaussian_runner(rel).columns)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"clip": (1.0,)}, "sampler='faithful'"),  # the sufficient sampler refuses clipping
        ({"clip": (None, 1.0), "noise_multiplier": (1.0,), "sampler": "faithful"}, "clip"),
        ({"clip": (0.0,), "sampler": "faithful"}, "clip"),
        ({"noise_multiplier": (-1.0,)}, "noise_multiplier"),
        ({"release_noise_std": (float("nan"),)}, "release_noise_std"),
    ],
)
def test_release_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        sweep.SweepSpec(**kw)


def test_release_values_are_traced_columns(tmp_path):
    """One simulation and one statistics program for every (C, z, sigma): new release values
    reuse them. Clipped cells have NaN theory (no closed form), unclipped ones the noisy one."""
    spec = sweep.SweepSpec(**RELEASE, clip=(None, 1.0), release_noise_std=(0.0, 0.5))
    before = sweep.trace_counts()
    t = sweep.run_sweep(spec, None, tmp_path / "s", chunk_cells=4, progress=False)
    after = sweep.trace_counts()
    # The output folder round-trips the release spec (clip None) and resumes from disk.
    meta = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert sweep.SweepSpec.from_dict(meta["spec"]) == spec
    again = sweep.run_sweep(spec, None, tmp_path / "s", chunk_cells=4, progress=False)
    for k in t:
        np.testing.assert_array_equal(again[k], t[k], err_msg=k)
    assert {k: after[k] - before[k] for k in after} == {"simulation": 1, "statistics": 1}
    spec2 = dataclasses.replace(
        spec, clip=(0.5, 3.0), noise_multiplier=(0.0, 2.0), release_noise_std=(0.25,)
    )
    t2 = sweep.run_sweep(spec2, chunk_cells=4, progress=False)
    assert sweep.trace_counts() == after
    np.testing.assert_array_equal(t2["mu"][t2["noise_multiplier"] > 0], 1.0)  # mu = 2/z
    noise = np.hypot(t2["noise_multiplier"] * t2["clip"] / 4, 0.25)
    np.testing.assert_allclose(t2["noise_std"], noise, rtol=1e-15)
    clipped = ~np.isnan(t["clip"])
    assert np.all(np.isnan(t["exact_auc"][clipped])) and np.all(np.isnan(t2["theory_var_in"]))
    assert np.all(np.isfinite(t["exact_auc"][~clipped]))
    # Unclipped cells: the theory column is roc_theory with the release noise.
    row = np.flatnonzero(~clipped & (t["release_noise_std"] > 0))[0]
    config = GaussianGameConfig(**{f: t[f][row].item() for f in sweep.CONFIG_FIELDS})
    release = gaussian.DPRelease(release_noise_std=0.5)
    exact = gaussian.release_auc(config, release, str(t["adversary"][row]))
    assert t["exact_auc"][row] == pytest.approx(exact, abs=1e-12)
    # The clip binds: clipped cells have a much smaller Var z_IN than unclipped ones.
    assert np.all(t["var_in"][clipped] < t["var_in"][~clipped])


def test_noisy_release_matches_theory_with_power():
    """Unclipped release, sigma in {1, 2}: moments and AUC within 4.5 se of the noisy theory
    (A + sigma^2), and the noiseless theory is rejected by the same data."""
    spec = sweep.SweepSpec(**RELEASE, task_std=(1.0, 2.0), release_noise_std=(1.0, 2.0))
    t = sweep.run_sweep(spec, chunk_cells=4, progress=False)
    assert_sweep_matches_theory(t)
    auc_se = (t["auc_hi"] - t["auc_lo"]) / (2 * 1.96)
    # Power: the noiseless theory of the same cells (one adversary: independent rows). The
    # noise raises both variances and lowers the AUC.
    s = t["adversary"] == "strong"
    plain = gaussian.roc_theory(
        t["tasks"][s], t["samples"][s], t["dim"][s], t["challenge"][s], t["task_std"][s],
        t["sample_std"][s], "strong", 0.01,
    )  # fmt: skip
    assert assert_rejects(t["var_in"][s], plain["theory_var_in"], t["var_in_se"][s]) > 0
    assert assert_rejects(t["var_out"][s], plain["theory_var_out"], t["var_out_se"][s]) > 0
    assert assert_rejects(t["auc"][s], plain["exact_auc"], auc_se[s]) < 0


def test_cli_release_flags(tmp_path, capsys):
    """``sweep --clip/--noise-multiplier/--release-noise-std``: parsed into the spec; bad input
    is one line, exit 2, nothing written."""
    from mtl_tracing import cli
    from mtl_tracing.commands.sweep import clip_list

    assert clip_list("none, 0.5,1") == [None, 0.5, 1.0]
    base = ["sweep", "--tasks", "4", "--samples", "4", "--dim", "16", "--challenge", "2"]
    for extra, match in (
        (["--clip", "1"], "faithful"),
        (["--sampler", "faithful", "--clip", "none,1", "--noise-multiplier", "1"], "clip"),
        (["--release-noise-std", "-1"], "release_noise_std"),
    ):
        out = tmp_path / "o"
        assert cli.main([*base, "--out", str(out), *extra, "--no-progress"]) == 2
        assert match in capsys.readouterr().err and not out.exists()
