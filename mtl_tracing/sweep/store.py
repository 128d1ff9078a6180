"""The sweep's files: the output folder, per-chunk results (resume), the table (npz, json, csv).

Output format (``out_dir``):
  * ``spec.json``: the spec and its fingerprint (a re-run with another spec is refused);
  * ``chunks/chunk-<group>-<first cell>.npz``: per-cell results of one finished chunk, written
    atomically; a re-run skips the cells found there;
  * ``sweep.npz``: one array per column, one entry per row; strings are NumPy unicode arrays,
    so ``np.load(path)`` works without pickle. A column of optional numbers (``clip``: ``None``
    is no clip) is stored as strings, ``""`` for ``None``; :func:`load_sweep` reads it back as
    floats and ``None``. Written last: it marks the sweep finished;
  * ``sweep.json``: ``{"format": "mtl-tracing-sweep/1", "spec": ..., "metadata":
    results.run_metadata(...), "columns": {name: description}, "rows": n}``;
  * ``sweep.csv``: the same table with a header row (``None``: an empty field).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtl_tracing import results

__all__ = ["FORMAT", "OPTIONAL_COLUMNS", "load_sweep"]

FORMAT = "mtl-tracing-sweep/1"
#: Columns of numbers or ``None`` (an object array in Python, strings on disk).
OPTIONAL_COLUMNS = ("clip",)


def atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary name, then an atomic rename: never a half-written file."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def open_out_dir(out: Path, spec, fingerprint: str, dtype_name: str, writer: bool) -> bool:
    """Create ``out`` or check it holds this sweep; True when the sweep is already finished.

    ``writer``: whether this process writes ``spec.json`` (one writer, process 0).
    """
    out.mkdir(parents=True, exist_ok=True)
    spec_file = out / "spec.json"
    if spec_file.exists():
        old = results.read_json(spec_file)
        if old.get("fingerprint") != fingerprint:
            raise ValueError(
                f"out_dir {str(out)!r} holds a different sweep (fingerprint "
                f"{old.get('fingerprint')!r}, this one {fingerprint!r}); use a new folder"
            )
        return (out / "sweep.npz").exists()
    if writer:
        results.write_json(
            spec_file, {"fingerprint": fingerprint, "dtype": dtype_name, "spec": spec.to_dict()}
        )
    return False


def write_chunk(chunk_dir: Path, group: int, cell_ids, res: dict[str, np.ndarray]) -> None:
    """Write one finished chunk: ``res`` holds per-cell arrays (cells, ...) for ``cell_ids``."""
    chunk_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"cell_id": np.asarray(cell_ids, np.int64)}
    arrays.update({k.replace("/", "__"): v for k, v in res.items()})
    atomic_savez(chunk_dir / f"chunk-{group:04d}-{int(cell_ids[0]):08d}.npz", arrays)


def load_chunks(chunk_dir: Path | None) -> dict[int, dict[str, np.ndarray]]:
    """``{cell_id: {result name: array}}`` of every finished chunk in ``chunk_dir``."""
    done: dict[int, dict[str, np.ndarray]] = {}
    if chunk_dir is None or not chunk_dir.is_dir():
        return done
    for f in sorted(chunk_dir.glob("chunk-*.npz")):
        if f.name.endswith(".tmp.npz"):
            continue
        with np.load(f, allow_pickle=False) as z:
            data = {k.replace("__", "/"): z[k] for k in z.files}
        for i, cid in enumerate(data.pop("cell_id").tolist()):
            done[int(cid)] = {k: v[i] for k, v in data.items()}
    return done


def write_table(out: Path, spec, table: dict[str, np.ndarray], columns, metadata) -> None:
    """Write ``sweep.json``, ``sweep.csv`` and, last, ``sweep.npz``."""
    results.write_json(
        out / "sweep.json",
        {
            "format": FORMAT,
            "spec": spec.to_dict(),
            "metadata": metadata,
            "columns": dict(columns),
            "rows": int(len(table["cell_id"])),
        },
    )
    tmp = out / "sweep.csv.tmp"
    names = list(table)
    with open(tmp, "w") as fh:
        fh.write(",".join(names) + "\n")
        for i in range(len(table["cell_id"])):
            fh.write(",".join(_csv(table[n][i]) for n in names) + "\n")
    os.replace(tmp, out / "sweep.csv")
    on_disk = {n: _to_disk(n, v) for n, v in table.items()}
    atomic_savez(out / "sweep.npz", on_disk)  # written last: marks the sweep finished


def _csv(v) -> str:
    if v is None:
        return ""
    if isinstance(v, np.floating | float):
        return repr(float(v))
    return str(v)


def _to_disk(name: str, column: np.ndarray) -> np.ndarray:
    """An optional-number column as strings (``""``: None), so the npz needs no pickle."""
    if column.dtype != object:
        return column
    if name not in OPTIONAL_COLUMNS:
        raise ValueError(f"column {name!r} holds Python objects; only {OPTIONAL_COLUMNS} may")
    return np.array(["" if v is None else repr(float(v)) for v in column], dtype=str)


def _from_disk(name: str, column: np.ndarray) -> np.ndarray:
    """An optional-number column read back: floats and ``None`` (empty strings, and the NaN or
    inf that sweeps written before used for no clip)."""
    if name not in OPTIONAL_COLUMNS:
        return column
    if column.dtype.kind in "US":
        values = [None if v == "" else float(v) for v in column.tolist()]
    else:
        values = [float(v) if np.isfinite(v) else None for v in column.tolist()]
    return np.array(values, dtype=object)


def load_sweep(out_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load ``out_dir/sweep.npz`` as {column: (rows,)} (NumPy only, no pickle); the optional
    columns (:data:`OPTIONAL_COLUMNS`) as object arrays of floats and ``None``."""
    path = Path(out_dir) / "sweep.npz"
    if not path.exists():
        raise ValueError(f"out_dir {str(out_dir)!r} has no sweep.npz (sweep not finished?)")
    with np.load(path, allow_pickle=False) as z:
        return {k: _from_disk(k, z[k]) for k in z.files}
