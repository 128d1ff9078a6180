"""Data: the ``MultitaskData`` type, synthetic tasks (App. A.8), embeddings files and the real
data sets (:mod:`~mtl_tracing.data.registry`: CelebA, FEMNIST, Stack Overflow).

Lazy (:mod:`mtl_tracing._lazy`): ``mtl-tracing --help`` reads the data set registry, so the
names below load on first use (the synthetic tasks import JAX), and loading one loader never
imports another's dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mtl_tracing._lazy import attach

if TYPE_CHECKING:
    from mtl_tracing.data.base import MultitaskData, check_multitask_data
    from mtl_tracing.data.embeddings import (
        EmbeddingSet,
        TaskPool,
        load_embeddings,
        save_embeddings,
    )
    from mtl_tracing.data.registry import DATASETS, SETTINGS, DataSet, TaskSpec
    from mtl_tracing.data.registry import load as load_dataset
    from mtl_tracing.data.synthetic import SyntheticConfig, generate

__all__ = [
    "DATASETS",
    "SETTINGS",
    "DataSet",
    "EmbeddingSet",
    "MultitaskData",
    "SyntheticConfig",
    "TaskPool",
    "TaskSpec",
    "check_multitask_data",
    "generate",
    "load_dataset",
    "load_embeddings",
    "save_embeddings",
]

__getattr__, __dir__ = attach(__name__, __file__)
