"""IDX files (the MNIST / Fashion-MNIST format), parsed with NumPy; raw or gzip-compressed.

Format: a 4-byte magic ``0x00 0x00 <type> <ndim>`` (type ``0x08`` = unsigned byte, the only one
MNIST and Fashion-MNIST use), then ``ndim`` big-endian uint32 sizes, then the data.

Every problem is one ``ValueError`` line naming the file: a missing file, a wrong magic number,
a truncated (or over-long) file, and image/label files whose counts differ.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "load_idx_split", "IDX_FILES", "find_idx_file"]

#: The file stems of the two splits (Fashion-MNIST uses the same names as MNIST).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_UBYTE = 0x08


def find_idx_file(data_dir: str | os.PathLike, stem: str) -> Path:
    """``data_dir/stem`` or ``data_dir/stem.gz`` (also ``stem`` with ``-`` -> ``.`` before idx)."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise ValueError(f"data_dir must be a readable folder, got {str(data_dir)!r}")
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        path = folder / name
        if path.is_file():
            return path
    raise ValueError(f"missing IDX file {stem}[.gz] in {str(folder)!r}")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in one IDX file (uint8), shape from its header."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"missing IDX file {str(path)!r}")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"unreadable IDX file {str(path)!r}: {err}") from None
    if len(raw) < 4:
        raise ValueError(f"truncated IDX file {str(path)!r}: {len(raw)} bytes, no header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or not 1 <= raw[3] <= 4:
        magic = int.from_bytes(raw[:4], "big")
        raise ValueError(
            f"wrong magic number in IDX file {str(path)!r}: got 0x{magic:08x}, "
            "expected 0x00000801..0x00000804 (unsigned bytes, 1-4 dims)"
        )
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"truncated IDX file {str(path)!r}: header cut at {len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    need = int(np.prod(shape, dtype=np.int64))
    have = len(raw) - head
    if have != need:
        what = "truncated" if have < need else "over-long"
        raise ValueError(
            f"{what} IDX file {str(path)!r}: header {shape} needs {need} data bytes, got {have}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(shape)


def load_idx_split(data_dir: str | os.PathLike, split: str = "train"):
    """(images (n, H, W) float32 in [0, 1], labels (n,) int32) of one split in ``data_dir``."""
    if split not in IDX_FILES:
        raise ValueError(f"split must be one of {tuple(IDX_FILES)}, got {split!r}")
    img_stem, lab_stem = IDX_FILES[split]
    img_path = find_idx_file(data_dir, img_stem)
    lab_path = find_idx_file(data_dir, lab_stem)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3:
        raise ValueError(f"IDX images {str(img_path)!r} must have 3 dims, got {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"IDX labels {str(lab_path)!r} must have 1 dim, got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"mismatched IDX counts: {images.shape[0]} images in {img_path.name} but "
            f"{labels.shape[0]} labels in {lab_path.name}"
        )
    return images.astype(np.float32) / 255.0, labels.astype(np.int32)
