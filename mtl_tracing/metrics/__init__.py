"""Metrics of tracing attacks.

Modules (one concept each):

* :mod:`~mtl_tracing.metrics.roc`: ROC curve, AUC, TPR at FPR, percentile table (JAX);
* :mod:`~mtl_tracing.metrics.bootstrap`: the grouped bootstrap (the sorted path is the
  reference) and its memory estimate;
* :mod:`~mtl_tracing.metrics._fast`: the XLA:CPU kernels (integer-key sorts, group pairs);
* :mod:`~mtl_tracing.metrics.moments`: ``group_moments`` (host, float64).
"""

from mtl_tracing.metrics.bootstrap import (
    Interval,
    TprAtFprStatistic,
    bootstrap_memory_bytes,
    grouped_bootstrap,
)
from mtl_tracing.metrics.moments import GroupMoments, group_moments, group_moments_from_sums
from mtl_tracing.metrics.roc import (
    PercentileTable,
    Roc,
    TprAtFpr,
    auc,
    percentile_table,
    roc_curve,
    tpr_at_fpr,
    tpr_at_fpr_from_roc,
)

__all__ = [
    "GroupMoments",
    "Interval",
    "PercentileTable",
    "Roc",
    "TprAtFpr",
    "TprAtFprStatistic",
    "auc",
    "bootstrap_memory_bytes",
    "group_moments",
    "group_moments_from_sums",
    "grouped_bootstrap",
    "percentile_table",
    "roc_curve",
    "tpr_at_fpr",
    "tpr_at_fpr_from_roc",
]
