"""mtl-tracing: task-inference (tracing) attacks on shared representations in multitask learning.

Reference: "Black-Box Privacy Attacks on Shared Representations in Multitask Learning"
(arXiv 2506.16460). Layers: ``gaussian`` (the game and its exact theory), ``metrics``, ``data``
(``MultitaskData``), ``victims`` (the ``Trainer`` protocol), ``attacks``, ``sweep`` and
``experiments`` (the job registry). The notation table is in ``mtl_tracing.gaussian.config``.
"""

from mtl_tracing.gaussian.config import GameShape, GaussianGameConfig

__version__ = "0.1.0"

__all__ = ["GameShape", "GaussianGameConfig", "__version__"]
