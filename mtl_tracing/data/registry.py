"""The data set registry: every real data set the paper's experiment runs on, declared once.

An entry names its loader, ``load(data_dir, *, setting, spec, features_dir, cache_dir,
progress, **options) -> MultitaskData`` (``spec`` a :class:`TaskSpec`: T IN and T OUT tasks,
N + H samples each, the split seed), the paper's configuration per setting (App. A.5-A.6: T,
N, H, the adversaries' k, trials, warm start, ...), the loader's own options (keys of that
configuration passed on to it), the default encoder (``"resnet"`` for images, ``"mlp"`` for
hashed text; a linear projection with ``--features``), and a writer of fabricated files in its
format (tests, benchmarks). From :data:`DATASETS` come ``mtl-tracing real --dataset``, the
real-data experiment (:mod:`mtl_tracing.experiments.real`), ``reproduce --data-dir`` and the
tests.

Adding a data set: its loader module plus one :class:`DataSet` line below. Cheap to import
(no JAX, no image or database libraries: the loader's module is imported when it loads).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from mtl_tracing._validate import check_choice
from mtl_tracing.data._tasks import SETTINGS, TaskSpec

__all__ = [
    "DataSet",
    "DATASETS",
    "ENCODERS",
    "SETTINGS",
    "TaskSpec",
    "names",
    "get",
    "load",
]

#: Default encoders a data set may name (:func:`mtl_tracing.experiments.real_setup.encoder_spec`).
ENCODERS = ("resnet", "mlp")


def _entry_point(ref: str) -> Callable[..., Any]:
    module, function = ref.split(":")
    return getattr(importlib.import_module(module), function)


@dataclasses.dataclass(frozen=True)
class DataSet:
    """A registered data set: ``name`` (``--dataset``), ``title`` (tables, figures), ``loader``
    and ``fixture`` (``"module:function"``), ``paper`` (``{setting: the paper's configuration}``,
    its settings in order), ``encoder`` (one of :data:`ENCODERS`) and ``options`` (the
    configuration keys the loader takes as keywords)."""

    name: str
    title: str
    loader: str
    paper: Mapping[str, Mapping[str, Any]]
    encoder: str
    options: tuple[str, ...] = ()
    fixture: str | None = None

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        bad = set(self.paper) - set(SETTINGS)
        if not self.paper or bad:
            raise ValueError(f"paper must map settings among {SETTINGS}, got {tuple(self.paper)}")

    @property
    def settings(self) -> tuple[str, ...]:
        return tuple(self.paper)

    def load_loader(self) -> Callable[..., Any]:
        return _entry_point(self.loader)

    def write_fixture(self, root: str | os.PathLike, **kwargs) -> os.PathLike:
        """Fabricated files in the data set's format under ``root`` (tests, benchmarks)."""
        if self.fixture is None:
            raise ValueError(f"data set {self.name!r} has no fixture writer")
        return _entry_point(self.fixture)(root, **kwargs)


_D = "mtl_tracing.data."

#: The registry, in order; ``paper``: App. A.5 / A.6 set-ups (T = T_out, N, H, k strong / weak,
#: trials, warm start epochs, and what differs from the experiment's common defaults).
DATASETS: tuple[DataSet, ...] = (
    DataSet("celeba", "CelebA", _D + "celeba:load", {
        "personalization": dict(tasks=256, samples=22, heldout=8, strong_k=8, weak_k=4,
                                trials=128, warm_start_epochs=40),
        "problems": dict(tasks=20, samples=1024, heldout=64, strong_k=16, weak_k=8, trials=128,
                         warm_start_epochs=40, runs=8, sample_batch=64, task_batch=4),
    }, "resnet", ("image_size",), _D + "fixtures:write_celeba"),
    DataSet("femnist", "FEMNIST", _D + "femnist:load", {
        "personalization": dict(tasks=128, samples=128, heldout=16, strong_k=16, weak_k=8,
                                trials=128, warm_start_epochs=40, image_size=28, sample_batch=64),
    }, "resnet", (), _D + "fixtures:write_femnist"),
    DataSet("stackoverflow", "Stack Overflow", _D + "stackoverflow:load", {
        "personalization": dict(tasks=128, samples=32, heldout=16, strong_k=8, weak_k=4,
                                trials=128, warm_start_epochs=20),
        "problems": dict(tasks=70, samples=1024, heldout=64, strong_k=32, weak_k=16, trials=128,
                         warm_start_epochs=20, sample_batch=64),
    }, "mlp", ("hash_dim", "scan_posts"), _D + "fixtures:write_stackoverflow"),
)  # fmt: skip


def names() -> list[str]:
    """Registered data set names, in order."""
    return [d.name for d in DATASETS]


def get(name: str) -> DataSet:
    """The data set called ``name``; ``ValueError`` listing the names otherwise."""
    return DATASETS[names().index(check_choice("dataset", name, names()))]


def load(
    name: str,
    data_dir: str | os.PathLike,
    config: Mapping[str, Any],
    *,
    setting: str = "personalization",
    seed: int = 0,
    features_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
):
    """Data set ``name`` from ``data_dir`` as ``MultitaskData``: ``config["tasks"]`` IN and as
    many OUT tasks of ``config["samples"]`` + ``config["heldout"]`` samples each (the split
    drawn from ``seed``), plus the loader's own options from ``config`` (e.g. ``image_size``)."""
    entry = get(name)
    if setting not in entry.paper:
        raise ValueError(f"setting must be one of {entry.settings} for {name}, got {setting!r}")
    spec = TaskSpec(config["tasks"], config["tasks"], config["samples"], config["heldout"], seed)
    options = {k: config[k] for k in entry.options if k in config}
    return entry.load_loader()(
        data_dir, setting=setting, spec=spec, features_dir=features_dir, cache_dir=cache_dir,
        progress=progress, **options,
    )  # fmt: skip
