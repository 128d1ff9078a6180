"""The command line and the job registry: generated commands, errors and imports.

The job runs here use tiny grids (the sweeps) or fail before computing anything (the paths);
the figure and table jobs run in test_figure7.py and test_mtl_experiments.py.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _stats import assert_within_se

from mtl_tracing import cli
from mtl_tracing.experiments import registry
from mtl_tracing.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "jaxlib", "flax", "optax", "matplotlib", "scipy", "sympy")


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this checkout's package first); its stdout."""
    env = {**os.environ, "MTL_TRACING_NO_CACHE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def _run(capsys, argv) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mtl-tracing {command}: error: "), err
    return lines[0]


# ----------------------------------------------------------------------------- imports


def test_building_the_parser_imports_nothing_heavy():
    """``mtl-tracing --help`` and ``mtl-tracing figure3 --help`` read every job's OPTIONS and the
    trainer and data set registries without importing JAX, flax, matplotlib, the pipeline, a
    victim or an attack (beyond what ``import mtl_tracing`` does)."""
    code = (
        "import sys, contextlib, io, mtl_tracing\n"
        "before = set(sys.modules)\n"
        "from mtl_tracing import cli\n"
        "cli.build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        cli.main(['figure3', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "new = set(sys.modules) - before\n"
        f"heavy = [m for m in new if m.split('.')[0] in {HEAVY!r}]\n"
        "heavy += [m for m in new if m.startswith(('mtl_tracing.experiments.pipeline',"
        " 'mtl_tracing.victims.', 'mtl_tracing.metrics', 'mtl_tracing.sweep.',"
        " 'mtl_tracing.attacks'))]\n"
        "jax_free = ('mtl_tracing.victims.registry', 'mtl_tracing.victims.accounting')\n"
        "heavy = [m for m in heavy if m not in jax_free]\n"
        "print(sorted(heavy))"
    )
    assert _python(code) == "[]"


def test_help_imports_no_jax():
    """The whole ``--help`` path is JAX-free once the package ``__init__`` files are lazy."""
    assert _python("import sys, mtl_tracing; print('jax' in sys.modules)") == "False"
    code = (
        "import sys; from mtl_tracing import cli; cli.build_parser(); print('jax' in sys.modules)"
    )
    assert _python(code) == "False"


def _imports_of(path: Path) -> list[str]:
    """Every module a file imports, at the top or inside its functions."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_game_sweep_verify_import_no_flax_or_optax():
    """Everything the three commands import, lazily or not, leaves flax and optax out."""
    mods = set()
    for name in ("game", "sweep", "verify"):
        mods.update(_imports_of(ROOT / "mtl_tracing" / "commands" / f"{name}.py"))
    mods.discard("jax._src")
    code = f"import importlib, sys\nfor m in {sorted(mods)!r}:\n    importlib.import_module(m)\n"
    code += "print([m for m in ('flax', 'optax') if m in sys.modules])"
    assert "mtl_tracing.gaussian.config" in mods and "proofs_check" in mods
    assert _python(code) == "[]"


# ----------------------------------------------------------------------------- the registry


def test_every_job_has_the_interface_and_a_command():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for job in registry.JOBS:
        mod = job.load_module()
        for name in ("run", "plot", "load", "headline", "check"):
            assert callable(getattr(mod, name)), (job.name, name)
        params = inspect.signature(mod.run).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        assert {"seed", "progress", "dtype"} <= set(params), job.name
        for key in [*mod.QUICK, *(o.dest for o in mod.OPTIONS)]:
            assert key in params or takes_any, (job.name, key)
        for name in (job.name, *job.aliases):
            assert name in commands, name
    with pytest.raises(ValueError, match="job must be one of"):
        registry.get("figure8")


def test_todays_flags_still_parse():
    parser = cli.build_parser()
    argv = ["figure7", "--out", "o", "--games", "5", "--sampler", "faithful", "--tasks", "4"]
    argv += ["--dim", "6", "--samples", "3", "--challenge", "2", "--task-std", "0.5"]
    argv += ["--sample-std", "2", "--resamples", "10", "--x64", "--replot", "--no-progress"]
    a = parser.parse_args(argv)
    assert (a.games, a.sampler, a.tasks, a.dim, a.samples, a.challenge) == (
        5,
        "faithful",
        4,
        6,
        3,
        2,
    )
    assert (a.task_std, a.sample_std, a.num_resamples, a.x64, a.replot) == (
        0.5,
        2.0,
        10,
        True,
        True,
    )
    assert parser.parse_args(["figure3", "--out", "o", "--checkpoints", "1,5"]).checkpoints == [
        1,
        5,
    ]
    for alias in ("figure4", "figure5", "figure45"):
        assert parser.parse_args([alias, "--out", "o", "--quick"]).quick
    size = parser.parse_args(["sweep_strong_weak_gap", "--out", "o", "--size", "full"]).size
    assert size == "full"


#: The old flag spellings, kept for one release as hidden aliases (issue 23): command -> {old: new}.
OLD_SPELLINGS = {
    "game": {"--json": "--out", "--bootstrap": "--resamples"},
    "attack": {"--json": "--out", "--bootstrap": "--resamples"},
    "audit": {"--json": "--out"},
    "train": {"--save-embeddings": "--out"},
    "maml-attack": {"--json": "--out", "--bootstrap": "--resamples"},
}


#: The other required flags of those commands.
BASE_ARGS = {"attack": ["--embeddings", "e.npz"], "audit": ["--scores", "s.npz", "--delta", "1e-5"]}


def _subparsers(parser=None) -> dict:
    parser = parser or cli.build_parser()
    return parser._subparsers._group_actions[0].choices


def test_each_old_flag_spelling_is_a_hidden_alias():
    """Each old spelling sets the same value as its new flag and is absent from ``--help``;
    a command declaring an alias not pinned here fails (pin it, or drop it after a release)."""
    from mtl_tracing.commands import COMMANDS

    declared = {m.NAME: dict(getattr(m, "ALIASES", {})) for m in COMMANDS}
    assert {k: v for k, v in declared.items() if v} == OLD_SPELLINGS
    subs = _subparsers()
    for command, aliases in OLD_SPELLINGS.items():
        sub = subs[command]
        helptext = sub.format_help()
        base = BASE_ARGS.get(command, [])
        required = [*base, "--out", "x.npz" if command == "train" else "x.json"]
        for old, new in aliases.items():
            value = "x.npz" if command == "train" else ("7" if new == "--resamples" else "x.json")
            dest = new.lstrip("-").replace("-", "_")
            rest = base if new == "--out" else required
            got = cli.build_parser().parse_args([command, old, value, *rest])
            want = cli.build_parser().parse_args([command, new, value, *rest])
            assert getattr(got, dest) == getattr(want, dest) == type(getattr(want, dest))(value)
            assert old not in helptext and new in helptext, (command, old)
    # A required --out is satisfied by its old spelling, and missing under both: one usage error.
    with pytest.raises(SystemExit) as exc:
        cli.main(["audit", "--scores", "s.npz", "--delta", "1e-5"])
    assert exc.value.code == 2


def test_game_defaults_are_figure7s_configuration():
    """``mtl-tracing game --json g.json`` needs no other flag: GaussianGameConfig's defaults
    (Figure 7's setting), Figure 7's 2000 games and seed 0."""
    from mtl_tracing.commands import game
    from mtl_tracing.experiments import figure7
    from mtl_tracing.gaussian import GaussianGameConfig

    args = cli.build_parser().parse_args(["game", "--json", "g.json"])
    config = GaussianGameConfig(**{k: getattr(args, k) for k in game._CONFIG})
    assert config == GaussianGameConfig() == figure7.DEFAULT_CONFIG
    assert (args.games, args.seed, args.resamples, args.out) == (2000, 0, 200, "g.json")


def test_every_command_and_job_answers_to_hyphens_and_underscores(capsys):
    """Each command and job is reachable by its hyphenated name and its underscore spelling,
    and ``--help`` lists them in two groups, one line each."""
    from mtl_tracing.commands import COMMANDS

    subs = _subparsers()
    names = [m.NAME for m in COMMANDS] + [j.name for j in registry.JOBS if j.command]
    for name in names:
        hyphens, underscores = name.replace("_", "-"), name.replace("-", "_")
        assert subs[hyphens] is subs[underscores], name
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    commands, jobs = out.split("commands:\n", 1)[1].split("\n\njobs", 1)
    assert [ln.split()[0] for ln in commands.splitlines()] == [m.NAME for m in COMMANDS]
    listed = [ln.split()[0] for ln in jobs.split(":\n", 1)[1].split("\n\n")[0].splitlines()]
    assert listed == [j.name.replace("_", "-") for j in registry.JOBS if j.command]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--out", "e.npz", "--trainer", "nope"],
        ["train", "--out", "e.npz", "--trainer", "robust", "--norm", "l1"],
        ["sweep", "--out", "o", "--sampler", "exact"],
        ["sweep", "--out", "o", "--adversary", "strong,out"],
        ["game", "--out", "g.json", "--sampler", "exact"],
        ["figure7", "--out", "o", "--sampler", "exact"],
        ["maml-attack", "--out", "m.json", "--attack", "head"],
        ["maml-attack", "--out", "m.json", "--noise-place", "labels"],
        ["maml-attack", "--out", "m.json", "--nonmember", "other-task"],
        ["audit", "--scores", "s.npz", "--out", "a.json", "--threshold", "best"],
    ],
)
def test_closed_sets_are_choices(argv, capsys):
    """A value outside a closed set stops at parsing, with argparse's list of the choices."""
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2 and "choose from" in capsys.readouterr().err or argv[0] == "sweep"


def test_readme_job_table_names_registered_jobs_only():
    """Every job the README's job table names is registered (the registry is the source of
    truth; ``mtl-tracing --help`` lists every job with its one line). A new job needs no README
    row to pass the tests."""
    text = (ROOT / "README.md").read_text()
    table = text.split("| job (command) |", 1)[1].split("\n\n", 1)[0]
    first = [row.split("|")[1] for row in table.splitlines()[2:]]
    found = (n for cell in first for n in re.findall(r"`([a-z0-9_-]+)`", cell))
    listed = {n.replace("-", "_") for n in found}  # the table shows the hyphenated commands
    known = set(registry.names()) | {a for job in registry.JOBS for a in job.aliases}
    assert listed and listed <= known, listed - known
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    assert {j.name for j in registry.JOBS if j.command} <= set(commands)


def test_job_command_runs_its_job(tmp_path, monkeypatch, capsys):
    """``mtl-tracing figure7 ...`` (also ``python -m mtl_tracing figure7 ...``) runs the
    registry's job: flags, QUICK, headline, written paths and the check's exit status (a
    stand-in job module; the real figure7 runs in test_figure7.py). No per-job scripts: the
    ``simulations/`` folder holds examples only."""
    import types

    assert sorted(p.name for p in (ROOT / "simulations").glob("*.py")) == [
        "multihost_sweep_example.py"
    ]
    calls = []
    mod = types.ModuleType("fake_figure7")
    mod.OPTIONS = (registry.Option("--games", int, kwarg="num_games"),)
    mod.QUICK = {"num_games": 3, "size": "tiny"}
    mod.run = lambda out_dir, **kw: calls.append(kw)
    mod.plot = lambda out_dir: [Path(out_dir) / "fig.png"]
    mod.load = lambda out_dir: ({"auc": 0.75}, None)
    mod.headline = lambda payload: f"AUC {payload['auc']}"
    mod.check = lambda out_dir: ["exact AUC outside the CI"] if calls[-1]["seed"] else []
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(registry, "JOBS", (registry.Job("figure7", mod.__name__, "fake"),))
    for argv, status in (
        (["--out", str(tmp_path), "--quick", "--games", "5", "--no-progress"], 0),
        (["--out", str(tmp_path), "--seed", "2"], 1),
    ):
        assert cli.main(["figure7", *argv]) == status
    assert calls == [
        {"seed": 0, "progress": False, "dtype": None, "num_games": 5, "size": "tiny"},
        {"seed": 2, "progress": True, "dtype": None},
    ]
    captured = capsys.readouterr()
    assert "AUC 0.75" in captured.out and f"wrote {tmp_path / 'fig.png'}" in captured.out
    assert "CHECK FAILED: exact AUC outside the CI" in captured.err


def test_one_module_serving_several_jobs_gets_the_job_name(tmp_path, monkeypatch):
    """``Job(pass_name=True)``: ``run`` receives ``name=<job>`` (the ready sweeps share a
    module); other jobs never get it."""
    import types

    seen = []
    mod = types.ModuleType("fake_family")
    mod.OPTIONS, mod.QUICK = (), {}
    mod.run = lambda out_dir, **kw: seen.append(kw.get("name"))
    mod.plot = lambda out_dir: []
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    jobs = (
        registry.Job("a", mod.__name__, "a", pass_name=True),
        registry.Job("b", mod.__name__, "b"),
    )
    monkeypatch.setattr(registry, "JOBS", jobs)
    registry.run_job("a", tmp_path)
    registry.run_job("b", tmp_path)
    assert seen == ["a", None]
    assert [j.name for j in registry.JOBS if j.pass_name] == ["a"]


# ----------------------------------------------------------------------------- errors


def test_unusable_paths_are_one_line_errors_and_lose_nothing(tmp_path, capsys):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    existing = tmp_path / "a_file"
    existing.write_text("precious")
    game = ["game", "--tasks", "4", "--samples", "2", "--dim", "4", "--challenge", "1"]
    game += ["--task-std", "1", "--sample-std", "1", "--games", "4", "--seed", "0"]
    cases = [
        ("game", [*game, "--json", str(folder)], "--out must be a file path"),
        ("sweep", ["sweep", "--out", str(existing), "--no-progress"], "--out must be a folder"),
        ("figure7", ["figure7", "--out", str(existing), "--no-progress"], "--out must be a folder"),
        ("table", ["table", "--out", str(existing), "--replot"], "--out must be a folder"),
        ("attack", ["attack", "--embeddings", "x.npz", "--json", str(folder)], "file path"),
    ]
    for command, argv, fragment in cases:
        code, _, err = _run(capsys, argv)
        assert code == 2, (command, err)
        assert fragment in _one_line_error(err, command), command
    assert existing.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder"]
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_any_os_error_is_one_line(tmp_path, monkeypatch, capsys):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(registry, "run_job", denied)
    code, _, err = _run(capsys, ["figure7", "--out", str(tmp_path)])
    assert code == 2 and "Permission denied" in _one_line_error(err, "figure7")
    assert err.strip() == (
        f"mtl-tracing figure7: error: [Errno 13] Permission denied: '{tmp_path / 'x'}'"
    )


# ----------------------------------------------------------------------------- game command


def test_game_reports_group_moments(tmp_path, monkeypatch, capsys):
    from mtl_tracing import metrics

    calls = []
    real = metrics.group_moments
    monkeypatch.setattr(metrics, "group_moments", lambda z: calls.append(z.shape) or real(z))
    out = tmp_path / "g.json"
    argv = ["game", "--tasks", "8", "--samples", "4", "--dim", "8", "--challenge", "2"]
    argv += ["--task-std", "1", "--sample-std", "1", "--games", "50", "--seed", "1"]
    code, stdout, err = _run(capsys, [*argv, "--bootstrap", "20", "--json", str(out)])
    assert code == 0, err
    assert calls == [(50, 8)] * 7  # z: strong, weak, OUT; Lambda: IN and OUT per adversary
    payload = json.loads(out.read_text())
    for adv in ("strong", "weak", "out"):
        r = payload[adv]
        assert {"mean", "mean_se", "var", "var_se"} <= set(r)
        assert_within_se(r["mean"], r["theory_mean"], r["mean_se"])
    assert "AUC strong" in stdout and "pending" not in stdout


# ----------------------------------------------------------------------------- ready sweeps


def _sbar0_allowed() -> bool:
    from mtl_tracing import gaussian

    cfg = gaussian.GaussianGameConfig(tasks=1, samples=4, dim=4, challenge=1, task_std=0.0)
    return float(gaussian.exact_auc(cfg, "weak")) == 0.5


def test_ready_sweeps_run_plot_and_check(tmp_path, monkeypatch, capsys):
    """The three ready sweeps on tiny grids, through their commands: they write the
    table and figures, print the headline and pass their own checks against theory. The
    membership sweep runs at sbar = 0 and draws one line per N against d/N."""
    from mtl_tracing.experiments import sweeps

    assert _sbar0_allowed()
    tiny = {
        "sweep_auc_tasks_dim": dict(tasks=(4,), dim=(16, 32), games=100, num_resamples=20),
        "sweep_strong_weak_gap": dict(
            tasks=(4,), samples=(2, 8), dim=(16,), challenge=(1,), games=100, num_resamples=20
        ),
        "sweep_membership_limit": dict(
            tasks=(1,),
            samples=(4,),
            dim=(4, 16),
            challenge=(1,),
            task_std=(0.0,),
            games=200,
            num_resamples=20,
        ),
        "sweep_optimal_gap": dict(
            tasks=(4,),
            samples=(4,),
            dim=(8, 16),
            challenge=(2,),
            games=100,
            num_resamples=20,
            fpr=1e-2,
            lrt=True,
        ),
    }
    assert sweeps.GRIDS["sweep_membership_limit"]["small"]["task_std"] == (0.0,)
    assert sweeps.GRIDS["sweep_optimal_gap"]["quick"]["lrt"] is True
    monkeypatch.setattr(sweeps, "GRIDS", {k: {"quick": v} for k, v in tiny.items()})
    out = {name: tmp_path / name for name in tiny}
    argv = ["--quick", "--no-progress"]
    code = cli.main(["sweep_auc_tasks_dim", "--out", str(out["sweep_auc_tasks_dim"])] + argv)
    assert code == 0
    code = cli.main(["sweep_strong_weak_gap", "--out", str(out["sweep_strong_weak_gap"])] + argv)
    assert code == 0
    stdout = capsys.readouterr().out
    assert "gap" in stdout and "exact" in stdout
    code = cli.main(["sweep_membership_limit", "--out", str(out["sweep_membership_limit"])] + argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    code = cli.main(["sweep_optimal_gap", "--out", str(out["sweep_optimal_gap"])] + argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "optimal Lambda" in captured.out
    for name, d in out.items():
        assert (d / "sweep.npz").is_file() and (d / "sweep.csv").is_file(), name
        figure = "optimal_gap.png" if name == "sweep_optimal_gap" else "sweep_*.png"
        assert list(d.glob(figure)), name
    assert (out["sweep_membership_limit"] / "auc_vs_d_over_n.png").is_file()
    t = load_sweep(out["sweep_optimal_gap"])
    assert np.all(t["lrt_exact_auc"] >= t["exact_auc"] - 1e-12)
    # `mtl-tracing plot-sweep` redraws from the folder alone, into another folder.
    replot = tmp_path / "replot"
    assert cli.main(["plot-sweep", str(out["sweep_auc_tasks_dim"]), "--out", str(replot)]) == 0
    assert any(replot.glob("*.png")) and any(replot.glob("*.pdf"))
    missing = ("job.json", "sweep.json", "sweep.npz", "sweep.csv")
    assert sweeps.check(tmp_path) == [f"missing {tmp_path / n}" for n in missing]
    with pytest.raises(ValueError, match="size"):
        sweeps.run(tmp_path / "x", name="sweep_auc_tasks_dim", size="huge")


@pytest.mark.parametrize("sbar", [0.0, 1.0])
def test_membership_figure_draws_one_line_per_n(tmp_path, monkeypatch, sbar):
    """``auc_vs_d_over_n``: per N and adversary, simulated points and an exact curve over d/N,
    from a sweep table alone; the title names membership inference at sbar = 0."""
    from mtl_tracing import plotting
    from mtl_tracing.experiments import sweep_plots

    assert _sbar0_allowed()
    rows = [(n, d, adv) for n in (4, 8) for d in (4, 16, 64) for adv in ("strong", "weak")]
    auc = np.linspace(0.5, 0.9, len(rows))
    table = {
        "adversary": np.array([r[2] for r in rows]),
        "tasks": np.ones(len(rows), np.int64),
        "samples": np.array([r[0] for r in rows]),
        "dim": np.array([r[1] for r in rows]),
        "challenge": np.ones(len(rows), np.int64),
        "task_std": np.full(len(rows), sbar),
        "sample_std": np.ones(len(rows)),
        "mean": np.zeros(len(rows)),
        "auc": auc,
        "auc_lo": auc - 0.02,
        "auc_hi": auc + 0.02,
    }
    np.savez(tmp_path / "sweep.npz", **table)
    figs = {}
    real_save = plotting.save_figure

    def save(fig, out_dir, stem):
        figs[stem] = fig
        return real_save(fig, out_dir, stem)

    monkeypatch.setattr(plotting, "save_figure", save)
    paths = sweep_plots.plot_membership_limit(tmp_path, dense=12)
    assert [p.name for p in paths] == ["auc_vs_d_over_n.png", "auc_vs_d_over_n.pdf"]
    ax = figs["auc_vs_d_over_n"].axes[0]
    curves = [ln for ln in ax.get_lines() if ln.get_label().startswith("N = ")]
    assert sorted(ln.get_label() for ln in curves) == [
        f"N = {n}, {a}" for n in (4, 8) for a in ("strong", "weak")
    ]
    for ln in curves:
        n = int(ln.get_label().split()[2].rstrip(","))
        x, y = ln.get_xdata(), ln.get_ydata()
        assert x.size > 3 and np.all(np.diff(x) > 0)  # a dense exact curve, in d/N order
        assert x[0] == pytest.approx(4 / n) and x[-1] == pytest.approx(64 / n)
        assert np.all((y >= 0.5 - 1e-9) & (y <= 1))
        if sbar == 0.0 and "weak" in ln.get_label():
            np.testing.assert_allclose(y, 0.5, atol=1e-9)
    title = ax.get_title()
    if sbar == 0.0:
        assert "Membership inference" in title and r"\bar\sigma = 0" in title
    else:
        assert "Membership" not in title
