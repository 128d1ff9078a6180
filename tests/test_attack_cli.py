"""End-to-end tests of ``mtl-tracing attack`` and of the ``.npz`` embeddings format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mtl_tracing import cli
from mtl_tracing.data import embeddings

# Same shapes as the sweep tests in test_attacks.py (6 IN tasks x 8 rows, 5 OUT tasks x 6 rows,
# m = 4, k = 3, 8 trials), so the attack kernel compiles once for both files.
T_IN, N_IN, T_OUT, N_OUT, M = 6, 8, 5, 6, 4


def _arrays(seed=0, heldout=True):
    """Planted signal: IN tasks have a strong task-mean component, OUT tasks a weak one."""
    rng = np.random.default_rng(seed)
    mu_in = 3.0 * rng.normal(size=(T_IN, 1, M))
    mu_out = 0.3 * rng.normal(size=(T_OUT, 1, M))
    a = {
        "in_embeddings": (mu_in + rng.normal(size=(T_IN, N_IN, M))).reshape(-1, M),
        "in_task": np.repeat(np.arange(T_IN), N_IN),
        "out_embeddings": (mu_out + rng.normal(size=(T_OUT, N_OUT, M))).reshape(-1, M),
        "out_task": np.repeat(100 + np.arange(T_OUT), N_OUT),
    }
    if heldout:
        a["in_heldout_embeddings"] = (mu_in + rng.normal(size=(T_IN, 4, M))).reshape(-1, M)
        a["in_heldout_task"] = np.repeat(np.arange(T_IN), 4)
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in a.items()}


def test_save_load_roundtrip_ragged(tmp_path):
    a = _arrays()
    perm = np.random.default_rng(1).permutation(a["in_task"].size)[:-3]  # shuffled and ragged
    a["in_embeddings"], a["in_task"] = a["in_embeddings"][perm], a["in_task"][perm]
    path = embeddings.save_embeddings(tmp_path / "e.npz", **a)
    data = embeddings.load_embeddings(path, adversary="weak", challenge=3)
    pool = data.train_in
    assert pool.embeddings.shape == (T_IN, N_IN, M) and pool.counts.sum() == perm.size
    np.testing.assert_array_equal(pool.task_ids, np.arange(T_IN))
    for t in range(T_IN):  # every row lands in its task, in file order, padding is zero
        rows = a["in_embeddings"][a["in_task"] == t]
        np.testing.assert_array_equal(pool.embeddings[t, : pool.counts[t]], rows)
        assert np.all(pool.embeddings[t, pool.counts[t] :] == 0)
    assert data.adversary_pools("weak")[0] is data.heldout_in
    assert data.out.embeddings.shape == (T_OUT, N_OUT, M)


def _run(capsys, argv):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_attack_end_to_end(tmp_path, capsys):
    path = embeddings.save_embeddings(tmp_path / "emb.npz", **_arrays())
    out = tmp_path / "res" / "attack.json"
    png = tmp_path / "roc.png"
    argv = ["attack", "--embeddings", str(path), "--challenge", "3", "--trials", "8"]
    argv += ["--bootstrap", "50", "--seed", "1", "--json", str(out), "--plot", str(png)]
    code, stdout, err = _run(capsys, argv)
    assert code == 0, err
    payload = json.loads(out.read_text())
    ip = payload["attacks"]["inner_product"]
    assert ip["auc"] > 0.8  # planted signal (chance: 0.5)
    assert payload["metadata"]["seed"] == 1 and payload["metadata"]["config"]["challenge"] == 3
    assert [t["target_fpr"] for t in ip["tpr_at_fpr"]] == [0.01, 0.001]
    assert ip["auc_ci"]["low"] <= ip["auc"] <= ip["auc_ci"]["high"]
    assert len(ip["percentile_table"]["balanced_accuracy"]) == 3
    side = np.load(out.with_suffix(".npz"))
    assert side["inner_product_in"].shape == (T_IN, 8)
    assert side["variance_out"].shape == (T_OUT, 8)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "inner_product" in stdout


def _write(tmp_path, name, arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _malformed(tmp_path):
    """(case, path, extra flags, expected message fragment)."""
    a = _arrays()
    cases = []

    def mod(name, **changes):
        b = {k: v for k, v in a.items() if changes.get(k, 0) is not None}
        b.update({k: v for k, v in changes.items() if v is not None})
        cases.append((name, _write(tmp_path, name + ".npz", b), [], name))

    cases.append(("missing_file", tmp_path / "nope.npz", [], "not found"))
    text = tmp_path / "text.npz"
    text.write_text("not a zip\n")
    cases.append(("not_npz", text, [], "cannot read"))
    good = _write(tmp_path, "good.npz", a)
    trunc = tmp_path / "truncated.npz"
    trunc.write_bytes(good.read_bytes()[:300])
    cases.append(("corrupted", trunc, [], "cannot read"))
    mod("missing_array", out_task=None)
    mod("dim_mismatch", out_embeddings=a["out_embeddings"][:, :3])
    mod("length_mismatch", in_task=a["in_task"][:-1])
    mod("float_ids", out_task=a["out_task"].astype(np.float64))
    mod("too_few_rows", out_task=np.concatenate([[7], a["out_task"][1:]]))
    nan = a["in_embeddings"].copy()
    nan[2, 1] = np.nan
    mod("nan", in_embeddings=nan)
    mod("wrong_rank", in_embeddings=a["in_embeddings"].reshape(T_IN, N_IN, M))
    no_held = {k: v for k, v in a.items() if "heldout" not in k}
    noheld = _write(tmp_path, "noheld.npz", no_held)
    cases.append(("weak_without_heldout", noheld, ["--weak"], "weak adversary needs"))
    cases.append(("k_above_pool", good, ["--challenge", "7"], "needs >= 7"))
    return cases


EXPECTED = {
    "missing_array": "missing the array 'out_task'",
    "dim_mismatch": "expected m=4",
    "length_mismatch": "in_task has 47 ids but in_embeddings has 48 rows",
    "float_ids": "out_task must hold integer task ids",
    "too_few_rows": "task 7 has 1 row(s), needs >= 3",
    "nan": "in_embeddings must be finite, got 1 non-finite",
    "wrong_rank": "in_embeddings must have shape (rows, m)",
}


def test_malformed_files_exit_2_with_one_line(tmp_path, capsys):
    for case, path, flags, fragment in _malformed(tmp_path):
        out = tmp_path / f"{case}.json"
        argv = ["attack", "--embeddings", str(path), "--challenge", "3", *flags, "--json", str(out)]
        code, _, err = _run(capsys, argv)
        assert code == 2, case
        lines = err.strip().splitlines()
        assert len(lines) == 1, (case, err)
        assert lines[0].startswith("mtl-tracing attack: error:"), (case, err)
        assert EXPECTED.get(case, fragment) in lines[0], (case, lines[0])
        assert not out.exists(), case


def test_save_embeddings_refuses_bad_arrays(tmp_path):
    a = _arrays()
    a["out_task"] = a["out_task"][:-1]
    with pytest.raises(ValueError, match="out_task has 29 ids but out_embeddings has 30 rows"):
        embeddings.save_embeddings(tmp_path / "bad.npz", **a)
    assert not list(tmp_path.iterdir())  # nothing left behind


def _fractions(node, path=""):
    """(path, value) of every TPR, FPR and balanced accuracy in a results payload."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _fractions(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _fractions(v, f"{path}[{i}]")
    elif isinstance(node, float) and path.rsplit(".", 1)[-1].split("[")[0] in (
        "tpr",
        "fpr",
        "balanced_accuracy",
    ):
        yield path, node


def test_x64_outputs_are_float64(tmp_path, capsys, x64):
    """Under --x64 every rate is a float64 fraction m / n, never a float32 one such as
    0.3333333432674408 (the scores file is float64 too)."""
    path = embeddings.save_embeddings(tmp_path / "emb.npz", **_arrays())
    out = tmp_path / "attack.json"
    argv = ["attack", "--embeddings", str(path), "--challenge", "3", "--trials", "8", "--x64"]
    code, _, err = _run(capsys, [*argv, "--bootstrap", "20", "--json", str(out)])
    assert code == 0, err
    payload = json.loads(out.read_text())
    assert payload["metadata"]["x64"] is True
    side = np.load(out.with_suffix(".npz"))
    assert side["variance_in"].dtype == np.float64
    n_in, n_out = T_IN * 8, T_OUT * 8  # scores: tasks x trials
    rounded = []
    for where, x in _fractions(payload["attacks"]):
        # a TPR is m / n_in, an FPR m / n_out, a balanced accuracy m / (2 n_in n_out)
        if min(abs(x * n - round(x * n)) for n in (n_in, n_out, 2 * n_in * n_out)) > 1e-9:
            rounded.append((where, x))
    assert len(list(_fractions(payload["attacks"]))) >= 12
    # Power: the pre-fix percentile table (jnp.mean of booleans, float32) failed here.
    assert rounded == []
