"""Fabricated datasets in the exact on-disk formats the real-data loaders read.

Used by the tests (tiny sizes) and by ``benchmarks/bench_real.py`` (the paper's sizes): the
contents are random, the layouts are CelebA's aligned release, LEAF's FEMNIST JSON shards and
TensorFlow Federated's Stack Overflow SQLite file (see each loader's module docstring). Nothing
here is read by the pipeline itself.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from mtl_tracing.data import celeba, stackoverflow
from mtl_tracing.data._example_proto import encode_example

__all__ = [
    "ATTRS",
    "CELEBA_ATTRIBUTES",
    "TAGS",
    "write_celeba",
    "write_femnist",
    "write_stackoverflow",
]

#: The tests' 8 attributes and tags.
ATTRS = ["Smiling", "Eyeglasses", "Male", "Young", "Bald", "Bangs", "Blond_Hair", "Wavy_Hair"]
TAGS = ["python", "java", "c++", "sql", "git", "linux", "css", "regex"]

#: CelebA's 40 attribute names, in the order of ``list_attr_celeba.txt``.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()


def write_celeba(
    root: Path, *, people=8, per_person=10, size=(10, 12), seed=0, attributes=None, progress=False
) -> Path:
    """img_align_celeba/*.jpg (``size`` = (width, height); the release is 178 x 218),
    identity_CelebA.txt, list_attr_celeba.txt (``attributes``, default :data:`ATTRS`, values
    +-1 at random), list_eval_partition.txt."""
    from PIL import Image
    from tqdm.auto import tqdm

    attributes = list(ATTRS if attributes is None else attributes)
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / celeba.IMAGES).mkdir(parents=True)
    n = people * per_person
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    ident = np.repeat(np.arange(people) + 100, per_person)
    attrs = np.where(rng.random((n, len(attributes))) < 0.5, 1, -1)
    for name, pid in tqdm(list(zip(names, ident, strict=True)), disable=not progress):
        base = np.array([pid * 37, pid * 91, pid * 53]) % 256
        img = np.clip(base + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / celeba.IMAGES / name, quality=90)
    (root / celeba.IDENTITY).write_text(
        "".join(f"{a} {b}\n" for a, b in zip(names, ident, strict=True))
    )
    lines = [f"{n}", " ".join(attributes) + " "]
    lines += [
        f"{a} " + " ".join(f"{v:2d}" for v in row) for a, row in zip(names, attrs, strict=True)
    ]
    (root / celeba.ATTRIBUTES).write_text("\n".join(lines) + "\n")
    (root / celeba.PARTITION).write_text("".join(f"{a} {i % 3}\n" for i, a in enumerate(names)))
    return root


def write_femnist(root: Path, *, users=8, per_user=10, shards=2, seed=0) -> Path:
    """LEAF JSON shards (x: 784 floats in [0, 1] rounded to 3 digits, y: class in 0..61); the
    first writer's samples are split over the first two shards."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True)
    blobs = [{"users": [], "num_samples": [], "user_data": {}} for _ in range(shards)]
    for u in range(users):
        name = f"f{u:04d}_{u % 7:02d}"
        x = rng.random((per_user, 784)).round(3)
        y = rng.integers(0, 62, per_user)
        parts = [(0, per_user // 2), (1, per_user)] if u == 0 else [(0, per_user)]
        start = 0
        for j, (_, stop) in enumerate(parts):
            s = j if u == 0 else u % shards
            b = blobs[s]
            b["users"].append(name)
            b["num_samples"].append(stop - start)
            b["user_data"][name] = {"x": x[start:stop].tolist(), "y": y[start:stop].tolist()}
            start = stop
    for s, b in enumerate(blobs):
        (root / f"all_data_{s}.json").write_text(json.dumps(b))
    return root


def write_stackoverflow(
    root: Path, *, users=8, per_user=10, seed=0, tags=None, tags_per_post=(2, 5), words=40,
    body_words=12,
) -> Path:  # fmt: skip
    """TFF's SQLite layout: examples(split_name, client_id, serialized_example_proto) with
    tf.train.Example protos (tokens, title, tags, type, score, creation_date); each post has
    ``tags_per_post`` (low, high exclusive) tags drawn from ``tags`` (default :data:`TAGS`) and a
    body of ``body_words`` words from a vocabulary of ``words``, then its tags."""

    tags = list(TAGS if tags is None else tags)
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True)
    con = sqlite3.connect(root / stackoverflow.FILE)
    con.execute(
        "CREATE TABLE examples (split_name TEXT NOT NULL, client_id TEXT NOT NULL, "
        "serialized_example_proto BLOB NOT NULL)"
    )
    con.execute("CREATE INDEX idx_examples_client_id_split ON examples (split_name, client_id)")
    con.execute(
        "CREATE TABLE client_metadata (client_id TEXT NOT NULL, split_name TEXT NOT NULL, "
        "num_examples INTEGER NOT NULL)"
    )
    vocab = [f"w{i}" for i in range(words)]
    for u in range(users):
        cid = f"{1000 + u}"
        for _ in range(per_user):
            post_tags = list(rng.choice(tags, size=rng.integers(*tags_per_post), replace=False))
            body = " ".join(rng.choice(vocab, body_words)) + " " + " ".join(post_tags)
            proto = encode_example(
                {
                    "tokens": body,
                    "title": f"question about {post_tags[0]}",
                    "tags": "|".join(post_tags),
                    "type": "question",
                    "score": [int(rng.integers(-2, 10))],
                    "creation_date": "2010-01-01 00:00:00.000 UTC",
                }
            )
            con.execute("INSERT INTO examples VALUES (?, ?, ?)", ("train", cid, proto))
        con.execute("INSERT INTO client_metadata VALUES (?, ?, ?)", (cid, "train", per_user))
    con.execute(
        "INSERT INTO examples VALUES (?, ?, ?)", ("test", "1000", encode_example({"tags": "x"}))
    )
    con.commit()
    con.close()
    return root
