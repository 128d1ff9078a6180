"""Gaussian multitask mean estimation (Sec. 4, App. B): the tracing game and its exact theory.

- :mod:`~mtl_tracing.gaussian.config`: ``GaussianGameConfig`` (T, N, d, k, sbar, s, mu_bar).
- :mod:`~mtl_tracing.gaussian.game`: the samplers (faithful and sufficient statistics), JAX.
- :mod:`~mtl_tracing.gaussian.moments`: Thms 4.1-4.3 exactly (host, float64).
- :mod:`~mtl_tracing.gaussian.law`: the exact law of z (``ScoreLaw``) and the exact ROC.
- :mod:`~mtl_tracing.gaussian.batched`: ``roc_theory``, many cells at once (sweeps).
- :mod:`~mtl_tracing.gaussian.release`: the DP release (clip, noise) and its exact theory.

Everything public is re-exported here: ``from mtl_tracing import gaussian`` then
``gaussian.simulate(...)``, ``gaussian.exact_auc(...)``.
"""

from mtl_tracing.gaussian.batched import *  # noqa: F403
from mtl_tracing.gaussian.config import *  # noqa: F403
from mtl_tracing.gaussian.game import *  # noqa: F403
from mtl_tracing.gaussian.law import *  # noqa: F403
from mtl_tracing.gaussian.moments import *  # noqa: F403
from mtl_tracing.gaussian.release import *  # noqa: F403
