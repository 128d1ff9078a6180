"""Privacy auditing: lower bounds on (epsilon, delta) and GDP mu from attack scores.

- :mod:`~mtl_tracing.audit.gdp`: the mu-GDP tradeoff curve and mu -> epsilon(delta);
- :mod:`~mtl_tracing.audit.bounds`: Clopper-Pearson epsilon_lb / mu_lb from independent
  (IN, OUT) trials, threshold by a split or a union bound;
- :mod:`~mtl_tracing.audit.one_run`: the one-training-run audit of Steinke, Nasr and Jagielski
  (2023);
- :mod:`~mtl_tracing.audit.canary`: the worst-case canary of a clipped Gaussian release.
"""

from mtl_tracing.audit.bounds import *  # noqa: F403
from mtl_tracing.audit.canary import *  # noqa: F403
from mtl_tracing.audit.gdp import *  # noqa: F403
from mtl_tracing.audit.one_run import *  # noqa: F403
from mtl_tracing.audit.scores_file import *  # noqa: F403
