"""Metrics: ROC, AUC, TPR at FPR, percentile thresholds, grouped bootstrap."""

from mtl_tracing.metrics.bootstrap import *  # noqa: F403
from mtl_tracing.metrics.moments import *  # noqa: F403
