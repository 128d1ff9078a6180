"""CelebA (Liu et al. 2015) from its distributed files, as ``MultitaskData``.

Folder layout read (the "Align&Cropped" release)::

    DIR/img_align_celeba/000001.jpg ...     # 202,599 JPEGs, 178 x 218
    DIR/identity_CelebA.txt                 # "<image> <identity id>" per line
    DIR/list_attr_celeba.txt                # line 1: image count; line 2: the 40 attribute
                                            # names; then "<image> <40 values in {-1, 1}>"
    DIR/list_eval_partition.txt             # optional: "<image> <0 train|1 val|2 test>"

Settings (App. A.5):

- ``personalization``: task = identity (a person), label = one attribute, ``attribute``
  (default ``Smiling``: the paper does not name its attribute; Smiling is the most balanced of
  the 40, about 48% positive). Paper: 256 + 256 identities, N = 22, H = 8.
- ``problems``: task = attribute, label = that attribute; each task's N + H images are drawn
  half positive, half negative (so both labels are present; an image may be in several tasks).
  Paper: 20 + 20 attributes, N >= 1024.

Images are decoded with Pillow only for the selected samples, centre-cropped to a square and
resized to ``image_size`` (default 64), kept as uint8 until the final float conversion, so
memory is bounded by the selection, not by the 200k images. The text files are streamed line by
line. With ``features_dir``, images are not decoded: ``features_dir/<image stem>.npy`` (e.g.
``000001.npy``) holds the user's feature vector of each image.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing._validate import check_choice, check_int
from mtl_tracing.data import _tasks, cache
from mtl_tracing.data._tasks import TaskSpec
from mtl_tracing.data.base import MultitaskData

__all__ = ["IMAGES", "IDENTITY", "ATTRIBUTES", "PARTITION", "PARTITIONS", "read_tables", "load"]

IMAGES = "img_align_celeba"
IDENTITY = "identity_CelebA.txt"
ATTRIBUTES = "list_attr_celeba.txt"
PARTITION = "list_eval_partition.txt"
PARTITIONS = ("all", "train", "val", "test")


def _lines(path: Path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh, start=1):
            if line.strip():
                yield i, line.split()


def read_tables(data_dir: str | os.PathLike, partition: str = "all"):
    """Stream the three text files: ``(names (n,), identity (n,) int64, attrs (n, 40) int8,
    attribute names)``, in the attribute file's order, restricted to ``partition``."""
    root = _tasks.require_dir(data_dir, "CelebA folder")
    partition = check_choice("partition", partition, PARTITIONS)
    attr_path = _tasks.require_file(root / ATTRIBUTES, "CelebA attribute file")
    id_path = _tasks.require_file(root / IDENTITY, "CelebA identity file")
    lines = _lines(attr_path)
    try:
        i, head = next(lines)
        if len(head) != 1 or not head[0].isdigit():
            raise ValueError
        count = int(head[0])
        i, attr_names = next(lines)
    except (StopIteration, ValueError):
        raise ValueError(
            f"{os.fspath(attr_path)}: malformed header (expected the image count, then the "
            "attribute names)"
        ) from None
    n_attr = len(attr_names)
    names, rows = [], np.empty((count, n_attr), np.int8)
    for i, parts in lines:
        if (
            len(names) >= count
            or len(parts) != n_attr + 1
            or any(v not in ("1", "-1", "0") for v in parts[1:])
        ):
            raise ValueError(
                f"{os.fspath(attr_path)}:{i}: malformed line (expected '<image>' and {n_attr} "
                f"values in {{-1, 1}} for {count} images): {' '.join(parts)[:80]!r}"
            )
        rows[len(names)] = np.asarray(parts[1:], np.int8)
        names.append(parts[0])
    if len(names) != count:
        raise ValueError(
            f"{os.fspath(attr_path)}: header says {count} images, found {len(names)} lines"
        )
    index = {n: j for j, n in enumerate(names)}
    ident = np.full(count, -1, np.int64)
    for i, parts in _lines(id_path):
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise ValueError(
                f"{os.fspath(id_path)}:{i}: malformed line (expected '<image> <identity id>'): "
                f"{' '.join(parts)[:80]!r}"
            )
        j = index.get(parts[0])
        if j is None:
            raise ValueError(f"{os.fspath(id_path)}:{i}: image {parts[0]!r} is not in {ATTRIBUTES}")
        ident[j] = int(parts[1])
    keep = ident >= 0
    if partition != "all":
        part_path = _tasks.require_file(root / PARTITION, "CelebA partition file")
        want = PARTITIONS.index(partition) - 1
        in_part = np.zeros(count, bool)
        for i, parts in _lines(part_path):
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(
                    f"{os.fspath(part_path)}:{i}: malformed line (expected '<image> <0|1|2>'): "
                    f"{' '.join(parts)[:80]!r}"
                )
            j = index.get(parts[0])
            if j is not None:
                in_part[j] = int(parts[1]) == want
        keep &= in_part
    names_arr = np.asarray(names, dtype=str)
    return names_arr[keep], ident[keep], rows[keep], list(attr_names)


def _decode(root: Path, names, image_size: int, progress: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    from tqdm.auto import tqdm

    out = np.empty((len(names), image_size, image_size, 3), np.uint8)
    for i, name in enumerate(tqdm(names, desc="CelebA images", unit="img", disable=not progress)):
        path = root / IMAGES / name
        if not path.is_file():
            raise ValueError(f"CelebA image not found: {os.fspath(path)!r}")
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                s = min(w, h)
                left, top = (w - s) // 2, (h - s) // 2
                im = im.crop((left, top, left + s, top + s))
                out[i] = np.asarray(im.resize((image_size, image_size), Image.BILINEAR))
        except (OSError, UnidentifiedImageError) as err:
            raise ValueError(f"cannot decode {os.fspath(path)!r}: {err}") from None
    return out


def load(
    data_dir: str | os.PathLike,
    *,
    setting: str = "personalization",
    spec: TaskSpec,
    attribute: str = "Smiling",
    image_size: int = 64,
    partition: str = "all",
    features_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    dtype=np.float32,
) -> MultitaskData:
    """CelebA as ``MultitaskData`` (see the module docstring).

    Args:
      data_dir: the CelebA folder.
      setting: ``"personalization"`` (task = identity) or ``"problems"`` (task = attribute).
      spec: T, T_out, N, H and the split seed.
      attribute: the label of the personalization setting (one of the 40 names).
      image_size: side of the square images (pixels); ignored with ``features_dir``.
      partition: restrict to the official ``train``/``val``/``test`` partition, or ``all``.
      features_dir: user-provided features, ``<image stem>.npy`` per image.
      cache_dir: cache folder of the decoded arrays (None: no cache).
      progress: tqdm bars on the long reads.

    Returns:
      ``MultitaskData`` with x (T, N, size, size, 3) in [0, 1] (or (T, N, D) features),
      labels in {0, 1}; ``info`` holds ``task_names`` and ``sample_ids`` (row of the attribute
      file).
    """
    setting = _tasks.check_setting(setting)
    if not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be a TaskSpec, got {spec!r}")
    image_size = check_int("image_size", image_size, low=4)
    root = _tasks.require_dir(data_dir, "CelebA folder")
    if features_dir is not None:
        _tasks.require_dir(features_dir, "features folder")
    else:
        _tasks.require_dir(root / IMAGES, "CelebA image folder")
    options = {
        "setting": setting,
        "spec": spec.to_dict(),
        "attribute": attribute if setting == "personalization" else None,
        "image_size": None if features_dir else image_size,
        "partition": partition,
        "features": os.path.abspath(features_dir) if features_dir else None,
    }

    def inputs():
        files = [root / ATTRIBUTES, root / IDENTITY]
        files += [root / PARTITION] if (root / PARTITION).is_file() else []
        stamps = cache.file_stamps(f for f in files if f.is_file())
        return stamps + ([] if features_dir else [[os.path.abspath(root / IMAGES)]])

    def build():
        names, ident, attrs, attr_names = read_tables(root, partition)
        src = os.fspath(root / (IDENTITY if setting == "personalization" else ATTRIBUTES))
        if setting == "personalization":
            if attribute not in attr_names:
                raise ValueError(f"attribute must be one of {tuple(attr_names)}, got {attribute!r}")
            col = attrs[:, attr_names.index(attribute)]
            order = np.argsort(ident, kind="stable")
            uid, starts = np.unique(ident[order], return_index=True)
            groups = np.split(order, starts[1:])
            cands = {str(u): g for u, g in zip(uid, groups, strict=True)}
            sel = _tasks.select_tasks(cands, spec, source=src, what="identities")

            def label(_name, ids):
                return (col[ids] > 0).astype(np.float32)

        else:
            pos = {a: np.flatnonzero(attrs[:, j] > 0) for j, a in enumerate(attr_names)}
            sel = _tasks.select_balanced(
                pos, np.arange(len(names)), spec, source=src, what="attributes"
            )
            label = None

        if features_dir is not None:

            def fetch(ids):
                files = [Path(features_dir) / (Path(n).stem + ".npy") for n in names[ids]]
                return _tasks.read_features(files, progress=progress)

        else:

            def fetch(ids):
                return _decode(root, names[ids], image_size, progress)

        return _tasks.assemble(sel, spec, fetch, label)

    arrays = cache.cached_arrays(cache_dir, "celeba", options, inputs, build)
    scale = 1.0 / 255.0 if arrays["x"].dtype == np.uint8 else None
    return _tasks.to_multitask(arrays, dtype=dtype, scale=scale)
