"""Real-data loaders, encoders, sharding and the ``real`` command on fixtures written in the
datasets' exact on-disk formats (nothing is downloaded).

Fixtures (written by :mod:`mtl_tracing.data.fixtures`) are tiny (8 tasks of 10 samples, 8x8
images); the end-to-end runs train 2 epochs with a 4-channel ResNet.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mtl_tracing import flat_random
from mtl_tracing.attacks import ATTACKS
from mtl_tracing.data import celeba, femnist, stackoverflow
from mtl_tracing.data import registry as datasets
from mtl_tracing.data._example_proto import decode_example, encode_example
from mtl_tracing.data.fixtures import (
    ATTRS,
    TAGS,
    write_celeba,
    write_femnist,
    write_stackoverflow,
)
from mtl_tracing.data.registry import TaskSpec

SPEC = TaskSpec(tasks=3, out_tasks=3, samples=6, heldout=4, seed=1)


def _no_cache_files(cache: Path) -> bool:
    return not cache.exists() or not any(cache.iterdir())


# ------------------------------------------------------------------------------------ loaders


def test_celeba_personalization_and_problems(tmp_path):
    root = write_celeba(tmp_path / "celeba")
    d = celeba.load(root, spec=SPEC, image_size=8)
    assert d.x.shape == (3, 6, 8, 8, 3) and d.x_out.shape == (3, 6, 8, 8, 3)
    assert d.x_heldout.shape == (3, 4, 8, 8, 3) and d.y.shape == (3, 6)
    assert 0.0 <= d.x.min() and d.x.max() <= 1.0 and set(np.unique(d.y)) <= {0.0, 1.0}
    ids = d.info["sample_ids"]
    assert len(set(d.info["task_names"])) == 6
    # each task's samples are distinct images of that identity
    ident = np.repeat(np.arange(8) + 100, 10)
    for t, name in enumerate(d.info["task_names"]):
        assert len(set(ids[t])) == 10 and set(ident[ids[t]]) == {int(name)}
    p = celeba.load(root, spec=SPEC, setting="problems", image_size=8)
    assert set(p.info["task_names"]) <= set(ATTRS)
    y_all = np.concatenate([p.y, p.y_heldout], axis=1)
    assert np.all(y_all.sum(1) == 5)  # half positive
    # labels are the attribute values of the images
    rows = celeba.read_tables(root)[2]
    for t, name in enumerate(p.info["task_names"][:3]):
        col = rows[p.info["sample_ids"][t], ATTRS.index(name)]
        np.testing.assert_array_equal(np.concatenate([p.y[t], p.y_heldout[t]]), col > 0)
    # the seed decides the split; the same seed gives the same data
    again = celeba.load(root, spec=SPEC, image_size=8)
    np.testing.assert_array_equal(again.x, d.x)
    other = celeba.load(root, spec=TaskSpec(3, 3, 6, 4, seed=2), image_size=8)
    assert not np.array_equal(other.info["sample_ids"], ids)


def test_celeba_cache_and_features(tmp_path):
    root = write_celeba(tmp_path / "celeba")
    cache = tmp_path / "cache"
    a = celeba.load(root, spec=SPEC, image_size=8, cache_dir=cache)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    b = celeba.load(root, spec=SPEC, image_size=8, cache_dir=cache)
    np.testing.assert_array_equal(a.x, b.x)
    assert len(list(cache.iterdir())) == 1
    celeba.load(root, spec=SPEC, image_size=6, cache_dir=cache)  # other options, other key
    assert len(list(cache.iterdir())) == 2
    feats = tmp_path / "feats"
    feats.mkdir()
    for i in range(80):
        np.save(feats / f"{i + 1:06d}.npy", np.full(5, i, np.float32))
    f = celeba.load(root, spec=SPEC, features_dir=feats)
    assert f.x.shape == (3, 6, 5)
    np.testing.assert_array_equal(f.x[..., 0], f.info["sample_ids"][:3, :6])
    os.remove(feats / "000001.npy")
    with pytest.raises(ValueError, match="feature file not found: .*000001.npy"):
        celeba.load(root, spec=TaskSpec(4, 4, 6, 4), features_dir=feats)


@pytest.mark.parametrize(
    "case, match",
    [
        ("no_dir", "CelebA folder not found"),
        ("no_identity", "identity file not found: .*identity_CelebA.txt"),
        ("bad_identity", r"identity_CelebA.txt:3: malformed line"),
        ("bad_attr", r"list_attr_celeba.txt:5: malformed line"),
        ("too_few", r"identity_CelebA.txt.*only 8 identities qualify"),
        ("no_image", r"CelebA image not found: .*000001.jpg"),
    ],
)
def test_celeba_errors_leave_no_cache(tmp_path, case, match):
    root = write_celeba(tmp_path / "celeba", people=8)
    spec = SPEC
    if case == "no_dir":
        root = tmp_path / "missing"
    elif case == "no_identity":
        os.remove(root / celeba.IDENTITY)
    elif case == "bad_identity":
        lines = (root / celeba.IDENTITY).read_text().splitlines()
        lines[2] = "000003.jpg"
        (root / celeba.IDENTITY).write_text("\n".join(lines) + "\n")
    elif case == "bad_attr":
        lines = (root / celeba.ATTRIBUTES).read_text().splitlines()
        lines[4] = lines[4] + " 1"
        (root / celeba.ATTRIBUTES).write_text("\n".join(lines) + "\n")
    elif case == "too_few":
        spec = TaskSpec(5, 5, 6, 4)
    elif case == "no_image":
        spec = TaskSpec(4, 4, 6, 4)  # every identity, so image 000001 is read
        os.remove(root / celeba.IMAGES / "000001.jpg")
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=match) as err:
        celeba.load(root, spec=spec, image_size=8, cache_dir=cache)
    assert "\n" not in str(err.value)
    assert _no_cache_files(cache)


def test_femnist_loader_and_errors(tmp_path):
    root = write_femnist(tmp_path / "femnist")
    d = femnist.load(root, spec=TaskSpec(4, 4, 6, 4, seed=0))
    assert d.x.shape == (4, 6, 28, 28, 1) and d.x_out_heldout.shape == (4, 4, 28, 28, 1)
    # labels: LEAF's classes, matching the JSON; 62-way softmax heads
    assert d.y.dtype == np.int32 and d.y.shape == (4, 6) and d.y_out_heldout.shape == (4, 4)
    assert str(d.info["head_loss"]) == "softmax" and int(d.info["head_outputs"]) == 62
    blobs = [json.loads(p.read_text()) for p in sorted(root.glob("*.json"))]
    for t, name in enumerate(d.info["task_names"][:4]):
        x = np.concatenate([np.asarray(b["user_data"][name]["x"]) for b in blobs if name in
                            b["user_data"]])  # fmt: skip
        y = np.concatenate([b["user_data"][name]["y"] for b in blobs if name in b["user_data"]])
        for j in range(6):
            row = np.flatnonzero(np.all(np.isclose(x, d.x[t, j].ravel()), axis=1))[0]
            assert d.y[t, j] == y[row]
    assert "f0000_00" in set(d.info["task_names"])  # the writer split across two shards
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="only 8 writers qualify"):
        femnist.load(root, spec=TaskSpec(5, 4, 6, 4), cache_dir=cache)
    with pytest.raises(ValueError, match="FEMNIST folder not found"):
        femnist.load(tmp_path / "nope", spec=SPEC, cache_dir=cache)
    (root / "all_data_1.json").write_text(json.dumps({"users": [], "num_samples": []}))
    with pytest.raises(ValueError, match=r"all_data_1.json' has no 'user_data'"):
        femnist.load(root, spec=SPEC, cache_dir=cache)
    assert _no_cache_files(cache)
    with pytest.raises(ValueError, match="setting must be 'personalization' for FEMNIST"):
        femnist.load(root, spec=SPEC, setting="problems")


def test_example_proto_roundtrip():
    feats = {"tokens": "a b", "tags": "x|y", "score": [5, -3, 2**40], "title": b"t"}
    got = decode_example(encode_example(feats))
    assert got == {"tokens": [b"a b"], "tags": [b"x|y"], "score": [5, -3, 2**40], "title": [b"t"]}


def test_stackoverflow_loader_and_errors(tmp_path):
    root = write_stackoverflow(tmp_path / "so")
    d = stackoverflow.load(root, spec=SPEC, hash_dim=64, topics=10)
    assert d.x.shape == (3, 6, 64) and d.y.shape == (3, 6, 10) and d.y_out.shape == (3, 6, 10)
    np.testing.assert_allclose(np.linalg.norm(d.x, axis=-1), 1.0, rtol=1e-5)
    assert str(d.info["head_loss"]) == "multilabel" and int(d.info["head_outputs"]) == 10
    vocab = [str(v) for v in d.info["topics"]]
    assert sorted(vocab[:8]) == sorted(TAGS) and vocab[8:] == ["", ""]  # padded vocabulary
    binary = stackoverflow.load(root, spec=SPEC, hash_dim=64, label_tag="sql")
    assert binary.y.shape == (3, 6) and str(binary.info["head_loss"]) == "binary"
    con = sqlite3.connect(root / stackoverflow.FILE)
    for t in range(3):
        for j, rid in enumerate(d.info["sample_ids"][t, :6]):
            blob, cid = con.execute(
                "SELECT serialized_example_proto, client_id FROM examples WHERE rowid = ?",
                (int(rid),),
            ).fetchone()
            assert cid == d.info["task_names"][t]
            tags = decode_example(blob)["tags"][0].decode().split("|")
            np.testing.assert_array_equal(d.y[t, j], [float(v in tags) for v in vocab])
            assert binary.y[t, j] == float("sql" in tags)
    p = stackoverflow.load(root, spec=SPEC, setting="problems", hash_dim=64)
    assert set(p.info["task_names"]) <= set(TAGS)
    for t, name in enumerate(p.info["task_names"][:3]):
        for j, rid in enumerate(p.info["sample_ids"][t, :6]):
            blob = con.execute(
                "SELECT serialized_example_proto FROM examples WHERE rowid = ?", (int(rid),)
            ).fetchone()[0]
            assert p.y[t, j] == float(name in decode_example(blob)["tags"][0].decode().split("|"))
    con.close()
    # features: <client_id>/<j>.npy, j in rowid order within the client
    feats = tmp_path / "feats"
    for u in range(8):
        (feats / f"{1000 + u}").mkdir(parents=True)
        for j in range(10):
            np.save(feats / f"{1000 + u}" / f"{j}.npy", np.asarray([u, j], np.float32))
    f = stackoverflow.load(root, spec=SPEC, features_dir=feats)
    assert f.x.shape == (3, 6, 2)
    assert all(f.x[t, :, 0].min() == int(n) - 1000 for t, n in enumerate(f.info["task_names"][:3]))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="only 8 users qualify"):
        stackoverflow.load(root, spec=TaskSpec(6, 6, 6, 4), cache_dir=cache)
    bad = tmp_path / "bad"
    bad.mkdir()
    sqlite3.connect(bad / stackoverflow.FILE).execute("CREATE TABLE other (a)").connection.close()
    with pytest.raises(ValueError, match=r"stackoverflow.sqlite' has no table 'examples'"):
        stackoverflow.load(bad, spec=SPEC, cache_dir=cache)
    (bad / stackoverflow.FILE).write_bytes(b"not a database at all" * 10)
    with pytest.raises(ValueError, match="cannot read .* as SQLite"):
        stackoverflow.load(bad, spec=SPEC, cache_dir=cache)
    with pytest.raises(ValueError, match="Stack Overflow SQLite file not found"):
        stackoverflow.load(tmp_path, spec=SPEC, cache_dir=cache)
    assert _no_cache_files(cache)


# ------------------------------------------------------------------------------------- heads


def test_head_losses_accuracies_and_validation():
    from mtl_tracing.data.base import MultitaskData, check_multitask_data
    from mtl_tracing.victims import heads

    logits = np.asarray([[[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]]], np.float32)  # (1, 2, 3)
    y_cls = np.asarray([[0, 1]], np.int32)
    ce = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
    want = (ce[0, 0, 0] + ce[0, 1, 1]) / 2
    np.testing.assert_allclose(heads.loss("softmax", logits, y_cls), want, rtol=1e-6)
    assert float(heads.accuracy("softmax", logits, y_cls)) == 0.5  # top-1: hit, miss
    y_ml = np.asarray([[[1, 0, 0], [0, 1, 0]]], np.float32)
    assert float(heads.accuracy("multilabel", logits, y_ml)) == pytest.approx(5 / 6)  # per label
    assert heads.check_head("softmax", 62) == ("softmax", 62)
    for kind, c, match in (("binary", 2, "must be 1"), ("softmax", 1, ">= 2"), ("x", 1, "one of")):
        with pytest.raises(ValueError, match=f"head_.*{match}"):
            heads.check_head(kind, c)
    x = np.zeros((2, 3, 4), np.float32)
    ok = MultitaskData(x, np.zeros((2, 3, 5)), x, np.zeros((2, 3, 5)))
    check_multitask_data(ok)
    with pytest.raises(ValueError, match=r"y_out must have shape \(2, 3, 5\)"):
        check_multitask_data(ok._replace(y_out=np.zeros((2, 3, 6))))


def test_bound_optimisation_probes_reach_the_minimiser():
    """Multi-label probe = per-label Newton probes; softmax probe: zero gradient at the fit,
    and the one-vs-rest fit (the neighbouring wrong estimator) is rejected."""
    import jax
    import jax.numpy as jnp

    from mtl_tracing.victims import heads, mtl

    r = np.random.default_rng(0)
    e, e2 = r.normal(size=(2, 16, 3)).astype(np.float32)
    y = (r.random((16, 4)) < 0.4).astype(np.float32)
    y2 = (r.random((16, 4)) < 0.4).astype(np.float32)
    got = heads.probe_loss("multilabel", e, y, e2, y2, classes=4, ridge=1.0)
    per = jax.vmap(
        lambda a, b: mtl.probe_loss(e, a, e2, b, ridge=1.0, newton_steps=25), in_axes=(1, 1)
    )(y, y2)
    np.testing.assert_allclose(got, per.mean(), rtol=1e-4)
    cls = r.integers(0, 5, 16)
    X = jnp.concatenate([e, jnp.ones((16, 1))], -1)
    Y = jax.nn.one_hot(cls, 5)
    W = heads._bound_fit(X, Y, softmax=True, ridge=1.0, steps=200)

    def objective(w):
        return -jnp.sum(Y * jax.nn.log_softmax(X @ w)) + 0.5 * jnp.sum(w**2)

    g0 = float(jnp.linalg.norm(jax.grad(objective)(0 * W)))
    assert float(jnp.linalg.norm(jax.grad(objective)(W))) < 1e-3 * g0
    ovr = jax.vmap(lambda c: mtl.probe_fit(e, c, ridge=1.0, newton_steps=25), out_axes=1)(Y.T)
    assert float(objective(ovr)) > float(objective(W)) + 1e-2


def test_encoder_model_head_shapes():
    """C > 1 heads: (T, C, m) kernel, (T, n, C) logits, by row or by task id alike."""
    from flax import nnx

    from mtl_tracing.victims.encoders import EncoderModel, MLPSpec

    x = np.random.default_rng(0).normal(size=(4, 6, 5)).astype(np.float32)
    model = EncoderModel(MLPSpec((8,)), (5,), 2, 4, rngs=nnx.Rngs(0), head_outputs=3)
    assert model.head_kernel[...].shape == (4, 3, 2) and model.head_bias[...].shape == (4, 3)
    by_row = model(x)
    assert by_row.shape == (4, 6, 3)
    np.testing.assert_allclose(model(x, np.arange(4)[:, None]), by_row, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------- sharding

_SHARD_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from mtl_tracing.data.base import MultitaskData
    from mtl_tracing.victims.encoder_mtl import EncoderMTLTrainer, shard_tasks, task_mesh
    from mtl_tracing.victims.encoders import MLPSpec
    from mtl_tracing.victims.mtl import TrainConfig
    from mtl_tracing.victims.trainer import fit
    assert len(jax.devices()) == 4, jax.devices()
    r = np.random.default_rng(0)
    x = r.normal(size=(8, 6, 5)).astype(np.float32)
    y = (x.sum(-1) > 0).astype(np.float32)
    d = MultitaskData(x, y, None, None, x[:, :3], y[:, :3])
    cfg = TrainConfig(epochs=4, task_batch=4, warm_start_epochs=1)
    one = EncoderMTLTrainer(cfg, MLPSpec((16,)), 4, devices=1)
    four = EncoderMTLTrainer(cfg, MLPSpec((16,)), 4, devices=4)
    a = fit(one, jax.random.key(0), d, runs=2)
    sharded = shard_tasks(d, task_mesh(4))
    assert len(sharded.x.sharding.device_set) == 4
    b = fit(four, jax.random.key(0), sharded, runs=2)
    for u, v in zip(jax.tree.leaves(a.state.params), jax.tree.leaves(b.state.params)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-5)
    print("OK")
    """
)


def test_sharded_training_matches_one_device(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", _SHARD_SCRIPT],
        env=env, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout


# -------------------------------------------------------------------------------- end to end

TINY = dict(
    tasks=3, samples=4, heldout=4, epochs=2, checkpoints=2, trials=8, image_size=8, runs=1,
    embed_dim=4, warm_start_epochs=1, task_batch=3, widths="4", hidden=16, hash_dim=32,
    strong_k=4, weak_k=4, sample_batch=3, num_resamples=50,
)  # fmt: skip


def _check_outputs(out: Path, setting: str):
    from mtl_tracing.experiments import real

    assert real.check(out) == []
    table = (out / "table.md").read_text()
    assert ("Table 1" if setting == "personalization" else "Table 2") in table
    n = len(ATTACKS)  # one row per registered attack and adversary
    assert table.count("| Strong |") == n and table.count("| Weak |") == n
    roc = "figure1_roc" if setting == "personalization" else "figure2_roc"
    for stem in (roc, "figure3", "figure4", "figure5"):
        assert (out / f"{stem}.png").is_file() and (out / f"{stem}.pdf").is_file()
    payload, arr = real.load(out)
    assert payload["metadata"]["seed"] == 0 and len(payload["checkpoints"]) == 2
    assert arr["gap_strong_gap"].shape == (2, 1)


#: What a data set's end-to-end run must also show (beyond the shared output checks).
_HEADS = {
    "celeba": ("binary", 1),
    "femnist": ("softmax", 62),
    "stackoverflow": ("multilabel", 256),  # personalization: 256 topic detectors
}


@pytest.mark.parametrize("dataset", datasets.names())
def test_end_to_end_command_on_every_registered_dataset(tmp_path, dataset):
    """``mtl-tracing real --dataset NAME`` on each registered data set's fabricated files, its
    first setting, at a tiny size: every output file, the table, the checks, ``--replot``; a
    missing folder is a one-line error."""
    from mtl_tracing import cli
    from mtl_tracing.experiments import real

    entry = datasets.get(dataset)
    setting = entry.settings[0]
    root = entry.write_fixture(tmp_path / dataset)
    out = tmp_path / "out"
    args = ["real", "--dataset", dataset, "--setting", setting, "--data-dir",
            str(root), "--out", str(out), "--no-progress", "--no-cache", "--quick",
            "--tasks", "3", "--samples", "4", "--heldout", "4", "--epochs", "2",
            "--image-size", "8", "--trials", "8", "--embed-dim", "4"]  # fmt: skip
    assert cli.main(args) == 0
    _check_outputs(out, setting)
    payload, arr = real.load(out)
    assert arr["heads_cosine"].shape == (1, 3)  # R = 1 run, T = 3 heads (flattened)
    if dataset in _HEADS:
        kind, c = _HEADS[dataset]
        assert (payload["data"]["head_loss"], payload["data"]["head_outputs"]) == (kind, c)
        heads = {"binary": "binary", "softmax": f"{c}-way softmax"}.get(kind, f"{c}-label")
        assert heads in (out / "table.md").read_text()
    assert cli.main(["real", "--dataset", dataset, "--out", str(out), "--replot"]) == 0
    assert cli.main(args[:5] + ["--data-dir", str(tmp_path / "nope"), "--out", str(out)]) == 2


def test_dataset_registry_configurations_and_loaders():
    """Every registered (data set, setting): the paper's configuration has T, N, H, k, trials;
    the loader takes the registry's common keywords and the data set's own options."""
    import inspect

    from mtl_tracing.experiments import real

    cells = [(d.name, s) for d in datasets.DATASETS for s in d.settings]
    assert len(cells) == len(set(cells)) >= len(datasets.DATASETS)
    for name, setting in cells:
        cfg = real.config_for(name, setting)
        for key in ("tasks", "samples", "heldout", "strong_k", "weak_k", "trials"):
            assert isinstance(cfg[key], int) and cfg[key] >= 1, (name, setting, key)
        assert cfg["strong_k"] <= cfg["samples"] and cfg["weak_k"] <= cfg["heldout"]
        entry = datasets.get(name)
        params = inspect.signature(entry.load_loader()).parameters
        for kw in ("setting", "spec", "features_dir", "cache_dir", "progress", *entry.options):
            assert kw in params, (name, kw)
        assert entry.encoder in datasets.ENCODERS
    for name in datasets.names():
        missing = [s for s in datasets.SETTINGS if s not in datasets.get(name).settings]
        for setting in missing:
            with pytest.raises(ValueError, match=f"setting must be one of .* for {name}"):
                real.config_for(name, setting)
    with pytest.raises(ValueError, match="dataset must be one of"):
        real.config_for("imagenet", "personalization")


def _run_tiny(tmp_path, dataset: str, setting: str, writer):
    """The job at TINY on a fixture, plotted and checked: (payload, arrays, out)."""
    from mtl_tracing.experiments import real

    root = writer(tmp_path / dataset)
    out = tmp_path / "out"
    real.run(out, dataset=dataset, setting=setting, data_dir=root, cache_dir=None,
             progress=False, **TINY)  # fmt: skip
    real.plot(out)
    _check_outputs(out, setting)
    return (*real.load(out), out)


def test_end_to_end_stackoverflow_problems(tmp_path):
    payload, _, _ = _run_tiny(tmp_path, "stackoverflow", "problems", write_stackoverflow)
    assert payload["data"]["head_loss"] == "binary"


def test_reproduce_helper_skips_without_data_dir(tmp_path):
    from mtl_tracing.experiments import real

    lines = real.reproduce(tmp_path, None)
    assert len(lines) == 1 and "skipped" in lines[0] and "--data-dir" in lines[0]
    lines = real.reproduce(tmp_path, tmp_path / "empty")
    cells = sum(len(d.settings) for d in datasets.DATASETS)
    assert len(lines) == cells and all("not found" in s for s in lines)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loop_safe_conv_equals_xla_conv(dtype, request):
    """``encoders.loop_safe_conv`` (the ResNet's convolution: XLA's forward and input gradient,
    the kernel gradient as an im2col matmul, which XLA:CPU runs 20x faster inside the
    training scan) gives XLA's forward bitwise and its gradients to float rounding, for the
    ResNet's strides, paddings and kernel sizes; other convolutions fall back to XLA's."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from mtl_tracing.victims.encoders import _NHWC, loop_safe_conv

    if dtype == "float64":
        request.getfixturevalue("x64")
    tol = 1e-5 if dtype == "float32" else 1e-12
    kx, kw = jax.random.split(jax.random.key(0))
    x = flat_random.normal(kx, (3, 9, 7, 4), dtype)
    for shape, strides, padding in (
        ((3, 3, 4, 8), (1, 1), "SAME"),
        ((3, 3, 4, 8), (2, 2), "SAME"),
        ((1, 1, 4, 8), (2, 2), "SAME"),
        ((3, 3, 4, 8), (2, 1), ((1, 0), (2, 1))),
    ):
        w = flat_random.normal(kw, shape, dtype)

        def ref(x, w, strides=strides, padding=padding):
            return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)

        def ours(x, w, strides=strides, padding=padding):
            return loop_safe_conv(x, w, strides, padding, dimension_numbers=_NHWC)

        @jax.jit  # one program per configuration: forwards, both gradients, the scanned one
        def compare(x, w, g, ours=ours, ref=ref):
            scanned = lax.scan(lambda c, _: (c, jax.vjp(ours, x, w)[1](g)), 0, None, 1)[1]
            return (
                (ours(x, w), ref(x, w)),
                (jax.vjp(ours, x, w)[1](g), jax.vjp(ref, x, w)[1](g)),
                jax.tree.map(lambda a: a[0], scanned),
            )

        g = flat_random.normal(jax.random.key(1), jax.eval_shape(ref, x, w).shape, dtype)
        (fwd, fwd_ref), (grads, grads_ref), scanned = compare(x, w, g)
        np.testing.assert_array_equal(np.asarray(fwd), np.asarray(fwd_ref))
        for got, want in zip(grads, grads_ref, strict=True):
            assert got.dtype == jnp.dtype(dtype)
            scale = float(jnp.abs(want).max())
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=tol * scale)
        # Inside a scan (where the kernel gradient matters), the same numbers.
        np.testing.assert_allclose(
            np.asarray(scanned[1]), np.asarray(grads[1]), rtol=0,
            atol=tol * float(jnp.abs(scanned[1]).max()),
        )  # fmt: skip
    dil = dict(rhs_dilation=(2, 2), dimension_numbers=_NHWC)
    np.testing.assert_array_equal(
        np.asarray(loop_safe_conv(x, w, (1, 1), "SAME", **dil)),
        np.asarray(lax.conv_general_dilated(x, w, (1, 1), "SAME", **dil)),
    )
