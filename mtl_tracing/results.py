"""Writing results: data plus config, seed and versions, so figures can be redrawn offline."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata as _md
import json
import math
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "versions",
    "run_metadata",
    "to_jsonable",
    "write_json",
    "read_json",
    "save_outputs",
    "load_outputs",
    "outputs_loader",
]

_PACKAGES = (
    "mtl-tracing",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "numpy",
    "scipy",
    "matplotlib",
    "dp-accounting",
    "dm-pix",
    "scikit-learn",
    "pillow",
)


def versions() -> dict[str, str]:
    """Installed versions of this package and its numerical dependencies, plus Python."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_metadata(*, config: Any = None, seed: int | None = None, **extra: Any) -> dict:
    """Metadata block for a results file: config, seed, versions, platform, devices, time."""
    import jax

    meta = {
        "config": to_jsonable(config),
        "seed": seed,
        "versions": versions(),
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    meta.update({k: to_jsonable(v) for k, v in extra.items()})
    return meta


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, NamedTuples, arrays and NumPy scalars to JSON-ready values.

    Non-finite floats become ``None`` (JSON has no NaN/inf).
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: to_jsonable(v) for k, v in obj._asdict().items()}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "__array__"):
        return to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON (atomically: temp file then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_outputs(
    out_dir: str | os.PathLike,
    json_name: str,
    payload: Any,
    npz_name: str | None = None,
    arrays: Mapping[str, Any] | None = None,
) -> Path:
    """A job's data files: ``arrays`` as compressed ``npz_name`` (if given), then ``payload``
    as ``json_name``, in ``out_dir``; returns ``out_dir`` as a Path."""
    out = Path(out_dir)
    if npz_name is not None:
        np.savez_compressed(out / npz_name, **(arrays or {}))
    write_json(out / json_name, payload)
    return out


def load_outputs(out_dir: str | os.PathLike, json_name: str, npz_name: str | None = None):
    """``(json payload, npz arrays or None)`` of a finished job; raises ``FileNotFoundError``."""
    out = Path(out_dir)
    names = [json_name] + ([npz_name] if npz_name else [])
    for name in names:
        if not (out / name).is_file():
            raise FileNotFoundError(f"{out / name} not found: run the job into {out} first")
    arrays = None
    if npz_name:
        with np.load(out / npz_name) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return read_json(out / json_name), arrays


def outputs_loader(json_name: str, npz_name: str | None = None):
    """A job's ``load(out_dir) -> (json payload, npz arrays or None)`` (:func:`load_outputs`)."""

    def load(out_dir: str | os.PathLike):
        return load_outputs(out_dir, json_name, npz_name)

    load.__doc__ = f"``({json_name} payload, {npz_name or 'None'} arrays)`` of a finished run."
    return load
