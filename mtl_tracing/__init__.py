"""mtl-tracing: task-inference (tracing) attacks on shared representations in multitask learning.

Reference: "Black-Box Privacy Attacks on Shared Representations in Multitask Learning"
(arXiv 2506.16460). See ``mtl_tracing.config`` for the notation table.
"""

from mtl_tracing.gaussian.config import GameShape, GaussianGameConfig

__version__ = "0.1.0"

__all__ = ["GameShape", "GaussianGameConfig", "__version__"]
