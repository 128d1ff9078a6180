"""Few-shot sampler and IDX parser (files written by the tests themselves)."""

from __future__ import annotations

import gzip

import jax
import numpy as np
import pytest
from scipy import stats

from mtl_tracing.data import fewshot, idx


def _write_idx(path, array, *, magic=None, cut=0, compress=False):
    array = np.asarray(array, dtype=np.uint8)
    head = bytes([0, 0, 0x08, array.ndim]) if magic is None else magic
    head += b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    raw = head + array.tobytes()
    raw = raw[: len(raw) - cut]
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_idx_roundtrip_and_split(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    gz = ".gz" if compress else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{gz}", images, compress=compress)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{gz}", labels, compress=compress)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / f"train-images-idx3-ubyte{gz}"), images)
    x, y = idx.load_idx_split(tmp_path, "train")
    assert x.dtype == np.float32 and x.shape == (7, 5, 4)
    np.testing.assert_allclose(x, images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_idx_errors(tmp_path):
    with pytest.raises(ValueError, match="missing IDX file") as e:
        idx.load_idx_split(tmp_path, "train")
    _one_line(e)
    with pytest.raises(ValueError, match="readable folder"):
        idx.load_idx_split(tmp_path / "nope", "train")
    bad = _write_idx(tmp_path / "bad", np.zeros((2, 2)), magic=bytes([0, 0, 0x0D, 2]))
    with pytest.raises(ValueError, match="wrong magic number") as e:
        idx.read_idx(bad)
    _one_line(e)
    cut = _write_idx(tmp_path / "cut", np.zeros((3, 4, 4)), cut=5)
    with pytest.raises(ValueError, match="truncated IDX file") as e:
        idx.read_idx(cut)
    _one_line(e)
    with pytest.raises(ValueError, match="truncated"):
        idx.read_idx(_write_idx(tmp_path / "head", np.zeros((3, 4, 4)), cut=48 + 6))
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 2, 2)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4))
    with pytest.raises(ValueError, match="mismatched IDX counts: 5 images .* 4 labels") as e:
        idx.load_idx_split(tmp_path, "train")
    _one_line(e)


@pytest.fixture(scope="module")
def pools():
    return fewshot.split_pools(jax.random.key(0), fewshot.load_source("digits"))


def test_pools_are_disjoint_and_balanced(pools):
    assert pools.train.image_shape == (8, 8, 1) and pools.train.classes == 10
    flat = [np.asarray(p.images).reshape(10, p.per_class, -1) for p in pools]
    for c in range(10):
        rows = [set(map(bytes, f[c].astype(np.float32))) for f in flat]
        assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    assert float(np.max(flat[0])) <= 1.0 and float(np.min(flat[0])) >= 0.0


@pytest.mark.parametrize("ways,shots", [(3, 1), (5, 3)])
def test_tasks_have_disjoint_support_and_query(pools, ways, shots):
    t = fewshot.sample_tasks(jax.random.key(1), pools.train, ways=ways, shots=shots, num_tasks=6)
    assert t.support_x.shape == (6, ways * shots, 8, 8, 1)
    np.testing.assert_array_equal(t.support_y[0], np.repeat(np.arange(ways), shots))
    for b in range(6):
        assert len(set(np.asarray(t.classes[b]).tolist())) == ways
        for c in range(ways):
            sl = slice(c * shots, (c + 1) * shots)
            s_idx, q_idx = (
                set(np.asarray(t.support_idx[b, sl])),
                set(np.asarray(t.query_idx[b, sl])),
            )
            assert len(s_idx) == shots and len(q_idx) == shots and not s_idx & q_idx
            cls = int(t.classes[b, c])
            for k in range(shots):
                want = pools.train.images[cls, int(t.support_idx[b, c * shots + k])]
                np.testing.assert_array_equal(t.support_x[b, c * shots + k], want)
    data = fewshot.as_multitask_data(t, t)
    assert data.tasks == 6 and data.samples == ways * shots and data.heldout == ways * shots


def test_padded_tasks_mark_their_active_slots(pools):
    t = fewshot.sample_tasks(
        jax.random.key(2), pools.train, ways=5, shots=3, num_tasks=4, active=(3, 2)
    )
    want = np.array([c < 3 and k < 2 for c in range(5) for k in range(3)])
    np.testing.assert_array_equal(t.mask, np.broadcast_to(want, (4, 15)))
    assert t.support_x.shape == (4, 15, 8, 8, 1)
    for b in range(4):  # the active part is a 3-way 2-shot task: disjoint support and query
        for c in range(3):
            s_idx = set(np.asarray(t.support_idx[b, 3 * c : 3 * c + 2]).tolist())
            q_idx = set(np.asarray(t.query_idx[b, 3 * c : 3 * c + 2]).tolist())
            assert len(s_idx) == 2 and len(q_idx) == 2 and not s_idx & q_idx
    with pytest.raises(ValueError, match="active ways must be <= 5"):
        fewshot.sample_tasks(jax.random.key(2), pools.train, ways=5, shots=3, num_tasks=1,
                             active=(6, 1))  # fmt: skip


def test_nonmember_samplers_draw_what_they_claim(pools):
    """Members all of classes {0, 1, 2}: same-class non-members keep the member's class;
    any-class ones are uniform over the 10 classes (chi-square, p > 1e-4: false failure
    probability 1e-4) and the same-class draws are rejected by that test (power). Both are
    images of the outside pool (never in a task) at the drawn class and index."""
    n = 4000
    member_cls = jax.random.randint(jax.random.key(3), (n,), 0, 3)
    draws = {
        mode: fewshot.sample_nonmembers(jax.random.key(4), pools.outside, member_cls, mode=mode)
        for mode in fewshot.NONMEMBER_MODES
    }
    x_same, c_same, i_same = (np.asarray(a) for a in draws["same-class"])
    np.testing.assert_array_equal(c_same, member_cls)
    x_any, c_any, i_any = (np.asarray(a) for a in draws["any-class"])
    out = np.asarray(pools.outside.images)
    for x, c, i in ((x_same, c_same, i_same), (x_any, c_any, i_any)):
        np.testing.assert_array_equal(x, out[c, i])
        assert i.min() >= 0 and i.max() < pools.outside.per_class
    counts = lambda c: np.bincount(c, minlength=10)  # noqa: E731
    assert stats.chisquare(counts(c_any)).pvalue > 1e-4
    assert stats.chisquare(counts(c_same)).pvalue < 1e-4  # power: not the data distribution
    assert np.mean(c_any == np.asarray(member_cls)) < 0.2  # independent of the member: ~1/10
    with pytest.raises(ValueError, match="nonmember mode must be one of"):
        fewshot.sample_nonmembers(jax.random.key(4), pools.outside, member_cls, mode="other")


def test_sampler_and_source_validation(pools):
    with pytest.raises(ValueError, match="shots must be >= 1, got 0"):
        fewshot.sample_tasks(jax.random.key(0), pools.train, ways=3, shots=0, num_tasks=1)
    with pytest.raises(ValueError, match="ways must be <= the 10 classes"):
        fewshot.sample_tasks(jax.random.key(0), pools.train, ways=11, shots=1, num_tasks=1)
    with pytest.raises(ValueError, match="shots must be <="):
        fewshot.check_task_shape(pools.test, 3, 40)
    with pytest.raises(ValueError, match="source must be one of"):
        fewshot.load_source("cifar")
    with pytest.raises(ValueError, match="needs data_dir"):
        fewshot.load_source("mnist")
