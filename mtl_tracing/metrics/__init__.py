"""Metrics: ROC, AUC, TPR at FPR, percentile thresholds, grouped bootstrap."""

from mtl_tracing.metrics.bootstrap import *  # noqa: F403
