"""Vectorised, sharded, resumable parameter sweeps."""

from mtl_tracing.sweep.engine import *  # noqa: F403
