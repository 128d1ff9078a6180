"""Black-box attacks on embeddings (Sec. 5, App. A)."""

from mtl_tracing.attacks.evaluation import *  # noqa: F403
