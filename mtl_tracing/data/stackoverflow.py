"""Stack Overflow in TensorFlow Federated's SQLite layout, as ``MultitaskData``.

File read: ``DIR/stackoverflow.sqlite`` (TFF's ``stackoverflow.sqlite.lzma``, decompressed with
``xz -d``). Schema read (TFF ``sql_client_data``)::

    CREATE TABLE examples (split_name TEXT NOT NULL,      -- "train", "heldout" or "test"
                           client_id TEXT NOT NULL,       -- the user
                           serialized_example_proto BLOB NOT NULL);
    CREATE TABLE client_metadata (client_id TEXT, split_name TEXT, num_examples INTEGER);

Each ``serialized_example_proto`` is a ``tf.train.Example`` with bytes features ``tokens`` (the
post's body, space-separated tokens), ``title``, ``tags`` (``|``-separated) and ``type``, and
int64 ``score`` / bytes ``creation_date``; we read ``tokens``, ``title`` and ``tags`` (decoded by
a small wire-format parser, :mod:`mtl_tracing.data._example_proto`; no TensorFlow needed). Only
the ``examples`` table is required; a user's posts are ordered by ``rowid``.

Settings (App. A.5):

- ``personalization``: task = user (``client_id``); as the paper, each user's head detects the
  presence of ``topics`` (default 256) topics, several per post: labels y (T, N, topics) in
  {0, 1}, multi-label heads (``info["head_loss"] = "multilabel"``, ``info["head_outputs"] =
  topics``). The vocabulary (``info["topics"]``) is the ``topics`` most frequent tags among the
  selected posts of all T + T_out users (ties by name; empty names pad it when fewer tags
  occur): fixed by the data and the seed, without scanning the whole split. With
  ``label_tag``, binary labels instead: the post carries that tag. Paper: 128 + 128 users,
  N = 32, H = 16.
- ``problems``: task = tag; each task's N + H posts are half with the tag (label 1), half
  without (label 0); a post may belong to several tasks, as in the paper. Paper: 70 + 70 tags,
  N + H = 1024 here split as N and H. This setting scans every post of the split once (pure
  Python protobuf parsing, about 10^5 posts/s); ``scan_posts`` limits the scan to the first
  posts by ``rowid`` (ignored by the personalization setting, which scans nothing).

Text is featurised on the host as a hashed bag of unigrams and bigrams of the lower-cased title
and body (CRC-32 modulo ``hash_dim``, log(1 + count), unit L2 norm): the input of the trained
MLP encoder. With ``features_dir``, ``features_dir/<client_id>/<j>.npy`` is the feature vector
of the user's j-th post in the split (0-based, ``rowid`` order, which is the order in which TFF's
``create_tf_dataset_for_client`` yields them).
"""

from __future__ import annotations

import collections
import os
import sqlite3
import zlib
from pathlib import Path

import numpy as np

from mtl_tracing._validate import check_int
from mtl_tracing.data import _tasks, cache
from mtl_tracing.data._example_proto import decode_example
from mtl_tracing.data._tasks import TaskSpec
from mtl_tracing.data.base import MultitaskData

__all__ = ["FILE", "TOPICS", "connect", "featurize", "load"]

FILE = "stackoverflow.sqlite"
_CHUNK = 500  # SQLite host parameters per query
TOPICS = 256  #: App. A.5.1: the personalisation heads detect 256 topics


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    """Open read-only and check the ``examples`` table; one-line errors naming the file."""
    path = _tasks.require_file(path, "Stack Overflow SQLite file")
    try:
        con = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        cols = [r[1] for r in con.execute("PRAGMA table_info(examples)")]
    except sqlite3.DatabaseError as err:
        raise ValueError(f"cannot read {os.fspath(path)!r} as SQLite: {err}") from None
    need = ("split_name", "client_id", "serialized_example_proto")
    if not cols:
        con.close()
        raise ValueError(
            f"{os.fspath(path)!r} has no table 'examples' (expected TFF's layout: "
            "examples(split_name, client_id, serialized_example_proto))"
        )
    missing = [c for c in need if c not in cols]
    if missing:
        con.close()
        raise ValueError(f"{os.fspath(path)!r}: table 'examples' lacks column(s) {missing}")
    return con


def _post(path: Path, rowid: int, blob) -> tuple[str, list[str]]:
    try:
        ex = decode_example(bytes(blob))
    except ValueError as err:
        msg = f"{os.fspath(path)!r}: row {rowid} is not a tf.train.Example: {err}"
        raise ValueError(msg) from None

    def text(name):
        return b" ".join(ex.get(name, [])).decode("utf-8", errors="replace")

    tags = [t for t in text("tags").split("|") if t]
    return text("title") + " " + text("tokens"), tags


def featurize(texts, hash_dim: int) -> np.ndarray:
    """Hashed bag of unigrams + bigrams, log(1 + count), unit norm: (len(texts), hash_dim)."""
    out = np.zeros((len(texts), hash_dim), np.float32)
    for i, t in enumerate(texts):
        words = t.lower().split()
        grams = words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
        for g in grams:
            out[i, zlib.crc32(g.encode("utf-8")) % hash_dim] += 1.0
    out = np.log1p(out)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)


def _fetch_posts(con, path, rowids, progress) -> dict:
    from tqdm.auto import tqdm

    posts = {}
    rowids = [int(r) for r in rowids]
    bar = tqdm(total=len(rowids), desc="Stack Overflow posts", disable=not progress)
    for s in range(0, len(rowids), _CHUNK):
        part = rowids[s : s + _CHUNK]
        q = ",".join("?" * len(part))
        for rid, blob in con.execute(
            f"SELECT rowid, serialized_example_proto FROM examples WHERE rowid IN ({q})", part
        ):
            posts[rid] = _post(path, rid, blob)
        bar.update(len(part))
    bar.close()
    return posts


def load(
    data_dir: str | os.PathLike,
    *,
    setting: str = "personalization",
    spec: TaskSpec,
    split: str = "train",
    label_tag: str | None = None,
    topics: int = TOPICS,
    hash_dim: int = 1024,
    scan_posts: int | None = None,
    features_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    dtype=np.float32,
) -> MultitaskData:
    """Stack Overflow as ``MultitaskData`` (see the module docstring).

    Returns x (T, N, hash_dim) hashed n-grams (or (T, N, D) features), labels in {0, 1}: (T, N,
    topics) multi-hot for personalization (unless ``label_tag``), (T, N) otherwise; ``info``
    holds ``task_names`` (users or tags), ``sample_ids`` (``rowid``), ``label_tag`` and
    ``topics`` (the vocabulary, personalization) and the heads (``head_loss``,
    ``head_outputs``).
    """
    setting = _tasks.check_setting(setting)
    if not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be a TaskSpec, got {spec!r}")
    hash_dim = check_int("hash_dim", hash_dim, low=2)
    topics = check_int("topics", topics, low=2)
    if setting == "personalization":
        scan_posts = None  # the problems setting's scan only
    if scan_posts is not None:
        scan_posts = check_int("scan_posts", scan_posts, low=1)
    root = _tasks.require_dir(data_dir, "Stack Overflow folder")
    path = root / FILE
    connect(path).close()
    if features_dir is not None:
        _tasks.require_dir(features_dir, "features folder")
    options = {
        "setting": setting,
        "spec": spec.to_dict(),
        "split": split,
        "label_tag": label_tag,
        "topics": topics if setting == "personalization" and label_tag is None else None,
        "hash_dim": None if features_dir else hash_dim,
        "scan_posts": scan_posts,
        "features": os.path.abspath(features_dir) if features_dir else None,
    }

    def build():
        from tqdm.auto import tqdm

        con = connect(path)
        try:
            position: dict[int, tuple[str, int]] = {}  # rowid -> (client, j)
            if setting == "personalization":
                counts = con.execute(
                    "SELECT client_id, COUNT(*) FROM examples WHERE split_name = ? "
                    "GROUP BY client_id",
                    (split,),
                ).fetchall()
                cands = {c: np.arange(n) for c, n in counts}
                local = _tasks.select_tasks(cands, spec, source=os.fspath(path), what="users")
                sel = []
                for client, js in local:
                    rows = [
                        r[0]
                        for r in con.execute(
                            "SELECT rowid FROM examples WHERE split_name = ? AND client_id = ? "
                            "ORDER BY rowid",
                            (split, client),
                        )
                    ]
                    position.update({r: (client, j) for j, r in enumerate(rows)})
                    sel.append((client, np.asarray([rows[j] for j in js], np.int64)))
                wanted = np.unique(np.concatenate([s[1] for s in sel]))
                posts = _fetch_posts(con, path, wanted, progress)
                tag = label_tag
                if tag is None:
                    freq = collections.Counter(t for _, tags in posts.values() for t in tags)
                    if not freq:
                        raise ValueError(f"{os.fspath(path)!r}: the selected posts have no tags")
                    top = [t for t, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))]
                    vocab = (top + [""] * topics)[:topics]
                    index = {t: c for c, t in enumerate(vocab) if t}
                    y = np.zeros((len(wanted), topics), np.float32)
                    row = {int(r): j for j, r in enumerate(wanted)}
                    for r in wanted:
                        for t in posts[int(r)][1]:
                            if t in index:
                                y[row[int(r)], index[t]] = 1.0
                    sel = [(c, ids, y[[row[int(i)] for i in ids]]) for c, ids in sel]
                else:
                    sel = [
                        (c, ids, np.asarray([tag in posts[int(i)][1] for i in ids], np.float32))
                        for c, ids in sel
                    ]
            else:
                tag = None
                by_tag: dict[str, list[int]] = collections.defaultdict(list)
                seen: collections.Counter = collections.Counter()
                universe = []
                limit = "" if scan_posts is None else f" LIMIT {scan_posts}"
                total = con.execute(
                    "SELECT COUNT(*) FROM examples WHERE split_name = ?", (split,)
                ).fetchone()[0]
                cur = con.execute(
                    "SELECT rowid, client_id, serialized_example_proto FROM examples "
                    f"WHERE split_name = ? ORDER BY rowid{limit}",
                    (split,),
                )
                n_scan = total if scan_posts is None else min(total, scan_posts)
                for rid, client, blob in tqdm(
                    cur, total=n_scan, desc="Stack Overflow scan", disable=not progress
                ):
                    for t in set(_post(path, rid, blob)[1]):
                        by_tag[t].append(rid)
                    position[rid] = (client, seen[client])
                    seen[client] += 1
                    universe.append(rid)
                pos = {t: np.asarray(v, np.int64) for t, v in by_tag.items()}
                sel = _tasks.select_balanced(
                    pos, np.asarray(universe, np.int64), spec, source=os.fspath(path), what="tags"
                )
                posts = None
            if features_dir is not None:

                def fetch(ids):
                    files = [
                        Path(features_dir) / position[int(i)][0] / f"{position[int(i)][1]}.npy"
                        for i in ids
                    ]
                    return _tasks.read_features(files, progress=progress)

            else:

                def fetch(ids):
                    got = posts if posts is not None else _fetch_posts(con, path, ids, progress)
                    return featurize([got[int(i)][0] for i in ids], hash_dim)

            arrays = _tasks.assemble(sel, spec, fetch)
        finally:
            con.close()
        arrays["label_tag"] = np.asarray("" if tag is None else tag)
        if setting == "personalization" and label_tag is None:
            arrays["topics"] = np.asarray(vocab, dtype=str)
            arrays["head_loss"] = np.asarray("multilabel")
            arrays["head_outputs"] = np.asarray(topics)
        return arrays

    def inputs():
        return cache.file_stamps([path])

    arrays = cache.cached_arrays(cache_dir, "stackoverflow", options, inputs, build)
    data = _tasks.to_multitask(arrays, dtype=dtype)
    data.info["label_tag"] = arrays["label_tag"]
    if "topics" in arrays:
        data.info["topics"] = arrays["topics"]
    return data
