"""Gaussian multitask mean estimation (Sec. 4, App. B): the tracing game and its exact theory."""

from mtl_tracing.gaussian.config import *  # noqa: F403
from mtl_tracing.gaussian.game import *  # noqa: F403
from mtl_tracing.gaussian.theory import *  # noqa: F403
