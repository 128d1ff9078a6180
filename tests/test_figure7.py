"""Figure 7 job, its registry commands (``figure7``, ``reproduce``) and redraw-without-rerun.

Shapes come from two fixed configs (TINY for plumbing, STAT for the statistical check) so the
file compiles each kernel a handful of times only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_rejects, assert_within_se

from mtl_tracing import gaussian
from mtl_tracing.cli import main
from mtl_tracing.experiments import figure7, figure7_summary, registry
from mtl_tracing.gaussian import game
from mtl_tracing.gaussian.config import GaussianGameConfig

TINY = GaussianGameConfig(tasks=16, dim=16, samples=8, challenge=4, task_std=1.0, sample_std=1.0)
TINY_GAMES = 100
# Same shapes as TINY (no recompile); sigma^2/N is large, so the strong adversary's exact AUC
# (0.706) is far from the weak one's (0.572).
STAT = TINY.replace(sample_std=4.0)
STAT_GAMES = TINY_GAMES

JSON_KEYS = {"games", "scores_per_class", "adversaries", "out_moments", "dtype", "metadata"}
ADV_KEYS = {"auc", "tpr_at_fpr", "percentiles", "moments"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One CLI run (simulate + plot) on TINY, shared by the tests below: (out dir, stdout)."""
    out = tmp_path_factory.mktemp("fig7")
    argv = ["figure7", "--out", str(out), "--games", str(TINY_GAMES), "--no-progress"]
    argv += ["--tasks", "16", "--dim", "16", "--samples", "8", "--challenge", "4", "--seed", "3"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return out, buf.getvalue()


def _no_simulation(*args, **kwargs):
    raise AssertionError("plot must not re-run the simulation")


def test_run_writes_data_with_all_numbers(tiny_run):
    out, stdout = tiny_run
    # The CLI prints the headline table and where the figure went.
    assert "strong" in stdout and "weak" in stdout and "AUC" in stdout
    assert "figure7.png" in stdout and "figure7.pdf" in stdout
    payload, arrays = figure7.load(out)
    assert JSON_KEYS <= set(payload)
    assert payload["games"] == TINY_GAMES
    assert payload["scores_per_class"] == TINY_GAMES * TINY.tasks
    assert payload["dtype"] == "float32"  # float32 by default
    meta = payload["metadata"]
    assert meta["seed"] == 3 and meta["games"] == TINY_GAMES and meta["sampler"] == "sufficient"
    assert figure7.config_from_json(payload) == TINY
    assert set(payload["adversaries"]) == set(figure7.IN_ADVERSARIES)
    for adv, s in payload["adversaries"].items():
        assert ADV_KEYS <= set(s)
        auc = s["auc"]
        assert 0.0 <= auc["ci"][0] <= auc["ci"][1] <= 1.0
        assert auc["exact"] == pytest.approx(gaussian.exact_auc(TINY, adv))
        assert [t["target_fpr"] for t in s["tpr_at_fpr"]] == list(figure7.FPR_TARGETS)
        for t in s["tpr_at_fpr"]:
            assert t["realised_fpr"] <= t["target_fpr"] + 1e-12
            assert 0.0 <= t["ci"][0] <= t["ci"][1] <= 1.0
            assert t["exact"] == pytest.approx(
                gaussian.exact_tpr_at_fpr(TINY, adv, t["target_fpr"])
            )
        emp = s["percentiles"]["empirical"]
        assert emp["percentile"] == list(figure7.PERCENTILES)
        assert len(emp["tpr"]) == len(emp["fpr"]) == len(figure7.PERCENTILES)
        assert s["percentiles"]["exact"]
        # ROC stored downsampled, still a monotone curve from (0, 0) to (1, 1).
        fpr, tpr = arrays[f"roc_fpr_{adv}"], arrays[f"roc_tpr_{adv}"]
        assert fpr.shape == tpr.shape and fpr.size <= 700
        assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
        assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
        # The optimal statistic Lambda: the same numbers, its own OUT moments and ROC.
        opt = s["lrt"]
        assert ADV_KEYS | {"out_moments"} <= set(opt)
        assert opt["auc"]["exact"] == pytest.approx(gaussian.lrt_auc(TINY, adv))
        assert opt["tpr_at_fpr"][0]["exact"] == pytest.approx(
            gaussian.lrt_tpr_at_fpr(TINY, adv, figure7.FPR_TARGETS[0])
        )
        assert opt["out_moments"]["mean"]["exact"] == pytest.approx(
            gaussian.lrt_moments(TINY, adv)["out"][0]
        )
        assert arrays[f"roc_fpr_{adv}_lrt"].shape == arrays[f"roc_tpr_{adv}_lrt"].shape
    assert "strong opt" in stdout
    n = TINY_GAMES * TINY.tasks
    for name in ("strong_in", "weak_in", "out"):
        assert arrays[f"hist_{name}"].sum() == n  # every score is in a bin
    assert (out / figure7.NPZ_NAME).stat().st_size < 100_000


def test_replot_redraws_without_rerunning(tiny_run, monkeypatch, capsys):
    out, _ = tiny_run
    monkeypatch.setattr(game, "simulate", _no_simulation)
    monkeypatch.setattr(figure7, "run", _no_simulation)
    for p in out.glob("figure7.p*"):
        p.unlink()
    assert main(["figure7", "--out", str(out), "--replot"]) == 0
    assert "AUC" in capsys.readouterr().out
    paths = [out / "figure7.png", out / "figure7.pdf"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_plot_of_missing_run_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="figure7.json"):
        figure7.plot(tmp_path)
    assert main(["figure7", "--out", str(tmp_path), "--replot"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"games": 1}, "games must be >= 2, got 1"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"config": {"tasks": 16}}, "config must be a GaussianGameConfig"),
        ({"num_resamples": 1}, "num_resamples must be >= 2, got 1"),
        ({"dims": 3}, "overrides must be among"),
    ],
)
def test_run_rejects_bad_input_before_simulating(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.setattr(game, "simulate", _no_simulation)
    with pytest.raises(ValueError, match=match):
        figure7.run(tmp_path, **{"config": TINY, "progress": False, **kwargs})


def test_cli_reports_bad_config_on_one_line(tmp_path, capsys):
    assert main(["figure7", "--out", str(tmp_path), "--samples", "2", "--challenge", "4"]) == 2
    assert "challenge must be <= samples" in capsys.readouterr().err


def _float32_rounded(x: float, n: int) -> bool:
    """True if ``x``, a fraction m / n, carries float32 rounding (e.g. 0.3333333432674408)."""
    return abs(x * n - round(x * n)) > 1e-9


def test_float64_on_request(tmp_path, x64, monkeypatch):
    monkeypatch.setattr(figure7, "FPR_TARGETS", (0.01,))  # one TPR bootstrap: fewer compiles
    figure7.run(tmp_path, config=TINY, games=TINY_GAMES, progress=False, dtype=jnp.float64)
    payload, _ = figure7.load(tmp_path)
    assert payload["dtype"] == "float64"
    assert payload["metadata"]["x64"] is True
    n = TINY_GAMES * TINY.tasks
    for s in payload["adversaries"].values():
        table = s["percentiles"]["empirical"]
        rounded = [x for k in ("tpr", "fpr") for x in table[k] if _float32_rounded(x, n)]
        assert rounded == []  # the pre-fix table (float32 means of booleans) failed here


def test_moments_are_group_moments(tiny_run):
    """Mean and variance of z with their SEs over games: ``metrics.group_moments``."""
    payload, _ = figure7.load(tiny_run[0])
    moms = [s["moments"] for s in payload["adversaries"].values()] + [payload["out_moments"]]
    for m in moms:
        assert m["mean"]["se"] > 0 and m["var"]["se"] > 0 and m["var"]["empirical"] > 0
    mom = gaussian.moments(TINY)["strong"]
    m = payload["adversaries"]["strong"]["moments"]
    assert_within_se(m["mean"]["empirical"], float(mom.mean), m["mean"]["se"])
    assert_within_se(m["var"]["empirical"], float(mom.var), m["var"]["se"])


def test_group_moments_is_the_one_definition(tmp_path, monkeypatch):
    from mtl_tracing import metrics

    calls = []
    real = metrics.group_moments
    monkeypatch.setattr(metrics, "group_moments", lambda z: calls.append(z.shape) or real(z))
    monkeypatch.setattr(figure7, "FPR_TARGETS", (0.01,))
    figure7.run(tmp_path, config=TINY, games=TINY_GAMES, progress=False)
    # z: strong IN, weak IN; the optimal Lambda: IN and OUT per adversary; OUT (z)
    assert calls == [(TINY_GAMES, TINY.tasks)] * 7


def test_reproduce_quick_runs_registry_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(figure7, "QUICK", {"config": TINY, "games": TINY_GAMES})
    from mtl_tracing.commands import reproduce

    # reproduce runs the registry's default jobs (every one, none by hand), in registry order
    default = [j.name for j in registry.JOBS if j.default]
    assert reproduce._selected(None) == registry.names(default_only=True) == default
    assert reproduce._selected(",".join(reversed(default))) == default
    # The other jobs run in test_mtl_experiments.py and test_cli.py (same registry path).
    assert main(["reproduce", "--out", str(tmp_path), "--quick", "--only", "figure7"]) == 0
    for name in ("figure7.json", "figure7.npz", "figure7.png", "figure7.pdf"):
        assert (tmp_path / "figure7" / name).is_file()
    out = capsys.readouterr().out
    assert "summary" in out and "figure7" in out and "FAILED" not in out
    assert figure7.load(tmp_path / "figure7")[0]["games"] == TINY_GAMES


def _fake_job(monkeypatch, name: str, run, problems=()) -> registry.Job:
    """A registered job backed by a throwaway module (``run`` as given, no figures)."""
    mod = types.ModuleType(f"fake_job_{name}")
    mod.OPTIONS, mod.QUICK, mod.run = (), {"size": 1}, run
    mod.plot = lambda out_dir: []
    mod.load = lambda out_dir: ({}, None)
    mod.headline = lambda payload: ""
    mod.check = lambda out_dir: list(problems)
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return registry.Job(name, mod.__name__, f"fake {name}")


def test_reproduce_reports_failure_and_runs_the_rest(tmp_path, monkeypatch, capsys):
    ran = []

    def boom(out_dir, **kwargs):
        raise RuntimeError("job exploded")

    def ok(out_dir, **kwargs):
        ran.append((out_dir.name, kwargs.get("size")))

    def from_disk(out_root, data_dir, *, quick=False):
        ran.append(("disk", data_dir))
        return (
            ["disk skipped: no --data-dir"] if data_dir is None else [f"  disk ran on {data_dir}"]
        )

    disk = _fake_job(monkeypatch, "disk", ok)
    sys.modules[disk.module].reproduce = from_disk
    jobs = (
        _fake_job(monkeypatch, "bad", boom),
        _fake_job(monkeypatch, "good", ok),
        _fake_job(monkeypatch, "wrong", ok, problems=["AUC off"]),
        dataclasses.replace(
            disk, needs_data_dir=True
        ),  # declared in the registry, not in reproduce
    )
    monkeypatch.setattr(registry, "JOBS", jobs)
    assert main(["reproduce", "--out", str(tmp_path), "--quick"]) == 1
    assert ran == [("good", 1), ("wrong", 1), ("disk", None)]  # after the failure; QUICK applied
    out = capsys.readouterr().out
    assert "bad" in out and "FAILED" in out and "2 of 3 job(s) failed: bad, wrong" in out
    assert "CHECK FAILED: AUC off" in out
    # A job on data from disk (Job.needs_data_dir) runs through its module's reproduce: without
    # --data-dir, its one line says it was skipped, and it is not counted as a run.
    assert "disk skipped: no --data-dir" in out
    assert main(["reproduce", "--out", str(tmp_path), "--only", "disk", "--data-dir", "D"]) == 0
    assert ran[-1] == ("disk", "D") and "disk ran on D" in capsys.readouterr().out
    assert main(["reproduce", "--out", str(tmp_path), "--only", "nope"]) == 2
    assert main(["reproduce", "--out", str(tmp_path), "--only", "good"]) == 0
    assert ran[-1] == ("good", None)  # not quick: the job's own defaults
    capsys.readouterr()
    monkeypatch.undo()  # the real registry again
    empty = tmp_path / "data"
    empty.mkdir()
    assert (
        main(["reproduce", "--out", str(tmp_path), "--only", "real", "--data-dir", str(empty)]) == 0
    )
    out = capsys.readouterr().out
    assert f"real_celeba_personalization skipped: {empty / 'celeba'} not found" in out


def test_pooled_auc_matches_exact_and_rejects_neighbouring_formula(tmp_path):
    """Statistical check of the whole pipeline on STAT (G = 100 games, 1600 scores per class).

    se is the bootstrap-over-games standard error. |AUC - exact| <= 4.5 se fails
    with probability ~7e-6 per adversary under a normal estimate. Power: the same data must
    reject the other adversary's exact AUC, i.e. E z_IN without the sigma^2/N term (strong
    data vs the weak formula) and with a spurious one (weak data vs the strong formula).
    """
    figure7.run(tmp_path, config=STAT, games=STAT_GAMES, seed=1, progress=False)
    payload, _ = figure7.load(tmp_path)
    other = {"strong": "weak", "weak": "strong"}
    for adv in figure7.IN_ADVERSARIES:
        a = payload["adversaries"][adv]["auc"]
        se = a["se"]
        assert se > 0
        assert_within_se(a["empirical"], gaussian.exact_auc(STAT, adv), se)
        assert_rejects(a["empirical"], gaussian.exact_auc(STAT, other[adv]), se)  # power
        # The optimal statistic Lambda: its AUC within SE of its exact AUC.
        opt = payload["adversaries"][adv]["lrt"]["auc"]
        assert opt["exact"] == pytest.approx(gaussian.lrt_auc(STAT, adv))
        assert opt["exact"] >= a["exact"]
        assert_within_se(opt["empirical"], opt["exact"], opt["se"])


def test_downsampled_roc_is_the_empirical_curve_on_the_grid():
    # A staircase ROC with 10 negatives: every stored vertex is an original vertex.
    fpr = np.repeat(np.linspace(0, 1, 11), 2)[1:]
    tpr = np.repeat(np.linspace(0, 1, 11), 2)[:-1]
    thr = np.linspace(1, 0, fpr.size)
    f, t, h = figure7_summary.downsample_roc(fpr, tpr, thr, 10, 20)
    orig = set(zip(fpr.tolist(), tpr.tolist(), thr.tolist(), strict=True))
    assert set(zip(f.tolist(), t.tolist(), h.tolist(), strict=True)) <= orig
    assert (f[0], t[0]) == (0.0, 0.0) and (f[-1], t[-1]) == (1.0, 1.0)


def test_exact_roc_points_lie_on_theory_exact_roc():
    fpr, tpr = figure7.exact_roc_points(TINY, points=40)
    assert fpr[0] == 0.0 and fpr[-1] == 1.0 and np.all(np.diff(fpr) > 0)
    assert fpr[1] == pytest.approx(5e-5)  # covers the log-log panel from 1e-4
    inner = fpr[[5, 20, 35]]
    for adv in figure7.IN_ADVERSARIES:
        assert np.all(np.diff(tpr[adv]) >= 0)
        np.testing.assert_allclose(
            tpr[adv][[5, 20, 35]], gaussian.exact_roc(TINY, adv, inner), rtol=1e-7, atol=1e-10
        )


def test_default_config_is_the_papers():
    c = figure7.DEFAULT_CONFIG
    assert (c.tasks, c.dim, c.samples, c.challenge, c.task_std, c.sample_std) == (
        256,
        256,
        8,
        4,
        1.0,
        1.0,
    )
    assert jax.numpy.zeros(()).dtype == jnp.float32
