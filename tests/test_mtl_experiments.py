"""Synthetic-MTL jobs (figure6, figure3, figure4/5, table), their registry commands, the pipeline.

Every training call uses ``pipeline.QUICK_CONFIG``'s shapes and training config, so the
training program compiles once for the whole file: figure3 runs one checkpoint at the quick
config's epoch count and figure6 runs a grid whose values all equal the quick default.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _stats import assert_rejects, assert_within_se
from scipy import stats

from mtl_tracing import attacks, flat_random
from mtl_tracing.cli import main
from mtl_tracing.experiments import checks, figure3, figure6, figure45, registry, table
from mtl_tracing.experiments import pipeline as mc
from mtl_tracing.victims import mtl as train

QUICK = mc.QUICK_CONFIG
QUICK_EPOCHS = QUICK.train.epochs
# One value per panel, each equal to the quick default: one cell, no new training shapes.
ONE_CELL_GRID = {
    "embed_dim": (QUICK.data.embed_dim,),
    "samples": (QUICK.data.samples,),
    "tasks": (QUICK.data.tasks,),
}


SUMMARY_KEYS = {
    "auc",
    "auc_ci",
    "auc_per_run",
    "auc_ci_per_run",
    "auc_mean",
    "auc_ci_over_runs",
    "tpr_at_fpr",
    "percentile_table",
}


# ------------------------------------------------------------------------------ jobs (slow part)


@pytest.fixture(scope="module")
def job_dirs(tmp_path_factory):
    """Run every job once at the quick config (table, figure3/4 through the CLI, figure6
    through ``registry.run_job`` on a one-cell grid)."""
    root = tmp_path_factory.mktemp("mtl_jobs")
    dirs = {name: root / name for name in ("table", "figure45", "figure3", "figure6")}
    argv = ["--out", str(dirs["table"]), "--quick", "--no-progress"]
    assert main(["table", *argv]) == 0
    assert main(["figure4", "--out", str(dirs["figure45"]), "--quick", "--no-progress"]) == 0
    assert (
        main(
            [
                "figure3",
                "--out",
                str(dirs["figure3"]),
                "--quick",
                "--no-progress",
                "--checkpoints",
                str(QUICK_EPOCHS),
            ]
        )
        == 0
    )
    paths = registry.run_job(
        "figure6", dirs["figure6"], quick=True, progress=False, grid=ONE_CELL_GRID
    )
    assert paths == [dirs["figure6"] / "figure6.png", dirs["figure6"] / "figure6.pdf"]
    return dirs


EXPECTED_FILES = {
    "table": ("table.json", "table.md"),
    "figure45": (
        "figure45.json",
        "figure45.npz",
        "figure4.png",
        "figure4.pdf",
        "figure5.png",
        "figure5.pdf",
    ),
    "figure3": ("figure3.json", "figure3.npz", "figure3.png", "figure3.pdf"),
    "figure6": ("figure6.json", "figure6.npz", "figure6.png", "figure6.pdf"),
}


@pytest.mark.parametrize("job", sorted(EXPECTED_FILES))
def test_job_writes_its_files(job_dirs, job):
    for name in EXPECTED_FILES[job]:
        assert (job_dirs[job] / name).is_file(), name


def test_json_payloads_have_the_keys(job_dirs):
    tab, _ = table.load(job_dirs["table"])
    assert {"rows", "attacks", "k", "runs", "heldout_accuracy", "metadata"} <= set(tab)
    assert [(r["attack"], r["access"]) for r in tab["rows"]] == [
        (a, b) for a in mc.ATTACKS for b in mc.ADVERSARIES
    ]
    assert [p["percentile"] for p in tab["rows"][0]["percentiles"]] == [50.0, 75.0, 90.0]
    assert mc.pipeline_config_from_dict(tab["metadata"]["config"]) == QUICK
    assert tab["metadata"]["seed"] == 0 and tab["dtype"] == "float32"
    for name in mc.ATTACKS:
        for adv in mc.ADVERSARIES:
            s = tab["attacks"][name][adv]
            assert SUMMARY_KEYS <= set(s)
            assert len(s["auc_per_run"]) == QUICK.runs
            assert [t["target_fpr"] for t in s["tpr_at_fpr"]] == list(QUICK.attack.fprs)
    held = tab["heldout_accuracy"]
    assert len(held["per_run"]) == QUICK.runs and 0.0 <= held["mean"] <= 1.0

    f45, arr = figure45.load(job_dirs["figure45"])
    assert {"attacks", "heads", "metadata"} <= set(f45)
    T, R = QUICK.data.tasks, QUICK.runs
    assert arr["heads_inner"].shape == (R, T * (T - 1) // 2)
    assert arr["variance_strong_in"].shape == (R, T, QUICK.attack.trials)
    assert mc.pipeline_config_from_dict(f45["metadata"]["config"]).attack.whiten is False

    f3, arr3 = figure3.load(job_dirs["figure3"])
    (row,) = f3["checkpoints"]
    assert row["epochs"] == QUICK_EPOCHS
    assert set(row["gaps"]) == set(figure3.GAP_FIELDS)
    assert arr3["inner_product_strong_auc"].shape == (1, R)
    assert arr3["history_train_loss"].shape == (R, QUICK_EPOCHS)

    f6, arr6 = figure6.load(job_dirs["figure6"])
    assert list(f6["panels"]) == list(figure6.PANELS)
    for field in figure6.PANELS:
        (cell,) = f6["panels"][field]["cells"]
        assert cell["k_clamped"] is False and cell["k"] == {"strong": 4, "weak": 4}
        assert arr6[f"{field}_variance_strong_auc"].shape == (1, R)
    # the same default cell is computed once and reused by every panel
    cells = [f6["panels"][f]["cells"][0]["attacks"] for f in figure6.PANELS]
    assert cells[0] == cells[1] == cells[2]


def test_strong_variance_auc_is_a_probability_inside_its_ci(job_dirs):
    s = table.load(job_dirs["table"])[0]["attacks"]["variance"]["strong"]
    auc, (lo, hi) = s["auc"], s["auc_ci"]
    assert math.isfinite(auc) and 0.0 <= auc <= 1.0
    assert 0.0 <= lo <= auc <= hi <= 1.0


def test_replot_does_not_retrain(job_dirs, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("replot must not train or attack")

    monkeypatch.setattr(train, "train", boom)
    monkeypatch.setattr(mc, "run_pipeline", boom)
    for job, names in EXPECTED_FILES.items():
        for name in names:
            if name.endswith((".png", ".pdf", ".md")):
                (job_dirs[job] / name).unlink()
    for cmd, job in (
        ("figure6", "figure6"),
        ("figure3", "figure3"),
        ("figure5", "figure45"),
        ("table", "table"),
    ):
        assert main([cmd, "--out", str(job_dirs[job]), "--replot"]) == 0
    for job, names in EXPECTED_FILES.items():
        for name in names:
            assert (job_dirs[job] / name).is_file(), name
    md = (job_dirs["table"] / "table.md").read_text()
    assert "| variance | strong |" in md and "50th (TPR, FPR)" in md


def test_replot_of_an_empty_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="figure6.json"):
        figure6.plot(tmp_path)
    with pytest.raises(FileNotFoundError, match="table.json"):
        table.plot(tmp_path)


# ------------------------------------------------------------------------------ pipeline pieces


def test_attack_runs_equals_run_attacks_per_run_and_compiles_once():
    key = jax.random.key(3)
    R, tasks, n, m = 2, 6, 5, 3
    pool = flat_random.normal(jax.random.key(4), (R, tasks, n, m))
    got = mc.attack_runs(key, pool, tasks_in=3, k=3, trials=4, whiten=True)
    keys = jax.random.split(key, R)
    for r in range(R):
        want = attacks.run_attacks(keys[r], pool[r, :3], pool[r, 3:], k=3, trials=4, whiten=True)
        for name in mc.ATTACKS:
            for field in ("scores_in", "scores_out"):
                np.testing.assert_allclose(
                    getattr(getattr(got, name), field)[r],
                    getattr(getattr(want, name), field),
                    rtol=1e-5,
                )
    assert got.variance.scores_in.shape == (R, 3, 4) and got.variance.scores_out.shape == (R, 3, 4)
    before = mc._attack_runs._cache_size()
    mc.attack_runs(jax.random.key(5), pool + 1.0, tasks_in=3, k=3, trials=4, whiten=True)
    assert mc._attack_runs._cache_size() == before


def test_attack_runs_keeps_float64(x64):
    pool = flat_random.normal(jax.random.key(0), (1, 4, 3, 2), dtype=jnp.float64)
    out = mc.attack_runs(jax.random.key(1), pool, tasks_in=2, k=2, trials=2, whiten=False)
    assert out.inner_product.scores_in.dtype == jnp.float64
    out32 = mc.attack_runs(
        jax.random.key(1), pool.astype(jnp.float32), tasks_in=2, k=2, trials=2, whiten=False
    )
    assert out32.inner_product.scores_in.dtype == jnp.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tasks_in": 4}, "tasks_in"),
        ({"k": 6}, "challenge k"),
        ({"k": 1}, "challenge k"),
        ({"trials": 0}, "trials"),
        ({"ridge": -1.0}, "ridge"),
    ],
)
def test_attack_runs_rejects_bad_input(kwargs, match):
    pool = jnp.ones((1, 4, 5, 2))
    args = {"tasks_in": 2, "k": 2, "trials": 2, "whiten": False} | kwargs
    with pytest.raises(ValueError, match=match):
        mc.attack_runs(jax.random.key(0), pool, **args)
    with pytest.raises(ValueError, match="finite"):
        mc.attack_runs(
            jax.random.key(0),
            pool.at[0, 0, 0, 0].set(jnp.nan),
            tasks_in=2,
            k=2,
            trials=2,
            whiten=False,
        )


def test_pooling_groups_each_task_over_runs_and_trials():
    s = jnp.arange(2 * 3 * 4).reshape(2, 3, 4)  # (R, T, trials)
    from mtl_tracing.experiments import summary

    pooled = summary._pooled(s)
    assert pooled.shape == (3, 8)
    for t in range(3):
        assert set(np.asarray(pooled[t]).tolist()) == set(np.asarray(s[:, t]).ravel().tolist())


def test_summarize_auc_matches_the_binormal_formula_with_power():
    """IN ~ N(delta, 1), OUT ~ N(0, 1): AUC = Phi(delta / sqrt 2); the naive Phi(delta) fails.

    16 independent "runs" give 16 independent per-run AUCs; se = their std / 4. The check
    |mean - theory| <= 4.5 se fails with probability < 1e-5 (t_15 tail at 4.5 is ~2e-4 two-sided;
    4.5 se of a mean of 16 near-normal AUCs). Power: Phi(delta) lies 0.08 away, > 10 se here.
    """
    R, T, trials, delta = 16, 8, 16, 1.0
    k_in, k_out, k_eval = jax.random.split(jax.random.key(11), 3)
    s_in = delta + flat_random.normal(k_in, (R, T, trials))
    s_out = flat_random.normal(k_out, (R, T, trials))
    g = attacks.GroupedScores(s_in, s_out)
    scores = {adv: attacks.AttackScores({"variance": g}) for adv in mc.ADVERSARIES}
    cfg = mc.AttackConfig(num_resamples=50)
    s = mc.summarize(k_eval, scores, cfg)["variance"]["strong"]
    per_run = np.asarray(s["auc_per_run"])
    se = per_run.std(ddof=1) / math.sqrt(R)
    theory = stats.norm.cdf(delta / math.sqrt(2))
    wrong = stats.norm.cdf(delta)
    assert_within_se(s["auc_mean"], theory, se)
    assert_rejects(s["auc_mean"], wrong, se)  # power: the neighbouring wrong formula fails
    # pooled AUC also compares IN and OUT scores of different runs: same target, here i.i.d.
    assert_within_se(s["auc"], theory, se)
    assert s["auc_ci"][0] <= theory <= s["auc_ci"][1]


# ------------------------------------------------------------------------------ small pieces


def test_head_similarities_match_numpy_and_handle_zero_heads():
    heads = jnp.asarray([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [-2.0, 0.0]])
    inner, cos = figure45.head_similarities(heads)
    i, j = np.triu_indices(4, 1)
    h = np.asarray(heads)
    np.testing.assert_allclose(inner, (h @ h.T)[i, j])
    want_cos = [1 / math.sqrt(2), 0.0, -1.0, 0.0, -1 / math.sqrt(2), 0.0]
    np.testing.assert_allclose(cos, want_cos, rtol=1e-6, atol=1e-7)
    stacked, _ = figure45.head_similarities(jnp.stack([heads, 2 * heads]))  # (R, T, m)
    np.testing.assert_allclose(stacked[1], 4 * inner)
    with pytest.raises(ValueError, match="heads"):
        figure45.head_similarities(jnp.ones((1, 3)))


def test_over_runs_interval_is_a_student_t_interval():
    lo, hi = mc.over_runs_interval([0.5, 0.7], level=0.95)
    half = stats.t.ppf(0.975, 1) * np.std([0.5, 0.7], ddof=1) / math.sqrt(2)
    assert lo == pytest.approx(0.6 - half) and hi == pytest.approx(0.6 + half)
    assert mc.over_runs_interval([0.3]) == [0.3, 0.3]


def test_figure6_clamps_k_to_small_pools():
    cfg = figure6._cell_config(QUICK, "samples", 2)
    assert cfg.attack.strong_k == 2 and cfg.attack.weak_k == QUICK.attack.weak_k
    assert figure6._cell_config(QUICK, "tasks", 4).train.task_batch == 4
    assert figure6._cell_config(QUICK, "embed_dim", QUICK.data.embed_dim) == QUICK


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: mc.AttackConfig(strong_k=1), "strong_k"),
        (lambda: mc.AttackConfig(trials=0), "trials"),
        (lambda: mc.AttackConfig(ridge=float("nan")), "ridge"),
        (lambda: mc.AttackConfig(level=1.5), "level"),
        (lambda: mc.AttackConfig(fprs=(0.0,)), "fprs"),
        (lambda: mc.AttackConfig(whiten=1), "whiten"),
        (lambda: QUICK.replace(attack=QUICK.attack.replace(strong_k=9)), "strong_k"),
        (lambda: QUICK.replace(attack=QUICK.attack.replace(weak_k=9)), "weak_k"),
        (lambda: QUICK.replace(runs=0), "runs"),
        (lambda: QUICK.replace(data=QUICK.data.replace(tasks=4)), "task_batch"),
        (lambda: mc.PipelineConfig(data={"tasks": 3}), "data"),
        (lambda: figure3.run("unused", config=QUICK, checkpoints=(20, 10)), "checkpoints"),
        (lambda: figure6.run("unused", config=QUICK, grid={"width": (3,)}), "grid"),
        (lambda: figure6.run("unused", config=QUICK, grid={"samples": (1,)}), "samples"),
        (lambda: figure45.plot("unused", which=("figure9",)), "which"),
        (lambda: mc.run_pipeline(jax.random.PRNGKey(0), QUICK), "key"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_config_round_trips_through_json():
    payload = json.loads(json.dumps(mc.DEFAULT_CONFIG.to_dict()))
    assert mc.pipeline_config_from_dict(payload) == mc.DEFAULT_CONFIG
    assert mc.DEFAULT_CONFIG.attack.strong_k == 8 and mc.DEFAULT_CONFIG.runs == 4


def test_check_attack_output(job_dirs, tmp_path):
    """The output check behind every synthetic-MTL job's ``check``: passes a finished job, names
    what is missing, and rejects an AUC outside its own CI."""
    out = job_dirs["table"]

    def cells(d):
        return [("default", table.load(d)[0]["attacks"])]

    assert checks.check_attack_output(out, (table.JSON_NAME, table.MD_NAME), cells) == []
    assert checks.check_attack_output(tmp_path, (table.JSON_NAME,), cells) == [
        f"missing {tmp_path / table.JSON_NAME}"
    ]
    bad = [("x", {"variance": {"strong": {"auc": 0.9, "auc_ci": [0.1, 0.5]}}})]
    assert checks.check_attack_output(out, (), lambda d: bad) == [
        "x variance strong: AUC 0.9 outside [0.1, 0.5]"
    ]


@pytest.mark.parametrize("job", sorted(EXPECTED_FILES))
def test_job_check_and_headline(job_dirs, job):
    """Each job's own ``check`` passes its finished run and names a deleted file; its
    ``headline`` summarises the run in a few lines."""
    mod = registry.get(job).load_module()
    assert mod.check(job_dirs[job]) == []
    payload, _ = mod.load(job_dirs[job])
    text = mod.headline(payload)
    assert "strong" in text and ("AUC" in text or "variance" in text)


def test_job_check_names_a_missing_file(tmp_path):
    for job in EXPECTED_FILES:
        problems = registry.get(job).load_module().check(tmp_path)
        assert problems and all(p.startswith(f"missing {tmp_path}") for p in problems), job


def test_quick_settings_are_declared_once():
    """``--quick`` of every synthetic-MTL job is the pipeline's tiny config (+ small grids)."""
    assert table.QUICK == {"config": QUICK}
    assert figure3.QUICK == {"config": QUICK, "checkpoints": figure3.QUICK_CHECKPOINTS}
    assert figure6.QUICK == {"config": QUICK, "grid": figure6.QUICK_GRID}
    assert figure45.QUICK["config"] == figure45.QUICK_CONFIG
    assert figure45.QUICK_CONFIG.attack.whiten is False and figure45.QUICK_CONFIG.data == QUICK.data
    assert figure6.DEFAULT_CONFIG.train.epochs == 100
    with pytest.raises(AttributeError):
        figure3.NOT_A_CONSTANT  # noqa: B018
