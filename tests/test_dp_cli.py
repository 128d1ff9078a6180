"""End-to-end tests of the DP command-line surface: ``mtl-tracing audit``, ``game --clip
--noise-multiplier`` and ``attack --audit``; bad input gets one line and writes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtl_tracing import attacks, audit, cli
from mtl_tracing.data import embeddings

GAME = "--tasks 4 --samples 4 --dim 8 --challenge 2 --task-std 3 --sample-std 1 --seed 0".split()


def test_audit_command_writes_bounds(tmp_path, capsys):
    a, b = audit.canary_scores(
        __import__("jax").random.key(0), clip=1.0, noise_multiplier=2.0, trials=20_000
    )
    path = audit.save_trials(tmp_path / "s.npz", np.asarray(a), np.asarray(b))
    out = tmp_path / "a.json"
    rc = cli.main(["audit", "--scores", str(path), "--delta", "1e-5", "--json", str(out)])
    assert rc == 0
    got = json.loads(out.read_text())
    assert 0.8 < got["mu_lb"] <= 1.0 and got["level"] == 0.95 and got["method"] == "split"
    assert {"epsilon_lb", "mu_threshold", "epsilon_threshold", "trials"} <= set(got)
    assert "mu_lb" in capsys.readouterr().out


def _bad_files(tmp_path):
    np.savez(tmp_path / "matrix.npz", scores_in=np.zeros((5, 3)), scores_out=np.zeros((5, 3)))
    np.savez(tmp_path / "ragged.npz", scores_in=np.zeros(5), scores_out=np.zeros(6))
    np.savez(tmp_path / "nokey.npz", scores=np.zeros(5))
    np.savez(tmp_path / "nan.npz", scores_in=np.r_[0.0, np.nan], scores_out=np.zeros(2))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    return {
        "matrix.npz": "independent pairs",
        "ragged.npz": "equal length",
        "nokey.npz": "scores_in",
        "nan.npz": "finite",
        "junk.npz": "readable",
        "missing.npz": "not found",
    }


def test_audit_command_bad_input_one_line_nothing_written(tmp_path, capsys):
    good = audit.save_trials(tmp_path / "good.npz", np.arange(10.0), np.zeros(10))
    out = tmp_path / "o.json"
    cases = [(str(tmp_path / f), msg, "1e-5", "0.95") for f, msg in _bad_files(tmp_path).items()]
    cases += [(str(good), "delta", d, "0.95") for d in ("0", "1", "-0.5")]
    cases += [(str(good), "level", "1e-5", lv) for lv in ("0", "1.5")]
    for scores, msg, delta, level in cases:
        argv = ["audit", "--scores", scores, "--delta", delta, "--level", level]
        assert cli.main(argv + ["--json", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and msg in err, (scores, err)
        assert not out.exists()


def test_game_dp_flags_add_dp_and_audit(tmp_path):
    out = tmp_path / "g.json"
    argv = ["game", *GAME, "--games", "512", "--sampler", "faithful", "--clip", "1"]
    assert cli.main(argv + ["--noise-multiplier", "2", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["dp"]["mu"] == 1.0 and got["dp"]["epsilon"] > 0
    assert got["audit"]["mu_lb"] <= 1.0 and "epsilon_lb" in got["audit"]
    # Unclipped release noise: exact theory with A + sigma^2; no guarantee (mu null).
    argv = ["game", *GAME, "--games", "512", "--release-noise-std", "0.5", "--json", str(out)]
    assert cli.main(argv) == 0
    got = json.loads(out.read_text())
    assert got["dp"]["mu"] is None and got["auc"]["strong"]["exact"] is not None


@pytest.mark.parametrize(
    "extra, msg",
    [
        (["--clip", "0"], "clip must be > 0"),
        (["--clip", "1", "--noise-multiplier", "-1"], "--noise-multiplier must be >= 0"),
        (["--clip", "1", "--delta", "1"], "--delta"),
        (["--clip", "1"], "faithful"),  # sufficient sampler refuses clipping
    ],
)
def test_game_dp_bad_input(tmp_path, capsys, extra, msg):
    out = tmp_path / "g.json"
    assert cli.main(["game", *GAME, "--games", "8", *extra, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and msg in err
    assert not out.exists()


def test_attack_audit_flag(tmp_path):
    rng = np.random.default_rng(0)
    T, n, m = 8, 6, 4
    mu = 3.0 * rng.normal(size=(T, 1, m))
    emb = embeddings.save_embeddings(
        tmp_path / "e.npz",
        in_embeddings=(mu + rng.normal(size=(T, n, m))).reshape(-1, m).astype(np.float32),
        in_task=np.repeat(np.arange(T), n),
        out_embeddings=rng.normal(size=(T * n, m)).astype(np.float32),
        out_task=np.repeat(100 + np.arange(T), n),
    )
    out = tmp_path / "a.json"
    argv = ["attack", "--embeddings", str(emb), "--challenge", "3", "--trials", "4"]
    assert cli.main(argv + ["--bootstrap", "10", "--audit", "--json", str(out)]) == 0
    got = json.loads(out.read_text())["audit"]
    assert set(got) == set(attacks.ATTACKS)  # every registered attack, none hard-coded
    assert got["variance"]["guesses"] == 4 and got["variance"]["epsilon_lb"] >= 0
