"""Privacy auditing: lower bounds on (epsilon, delta) and GDP mu from attack scores.

- :mod:`~mtl_tracing.audit.gdp`: the mu-GDP tradeoff curve and mu -> epsilon(delta);
- :mod:`~mtl_tracing.audit.bounds`: Clopper-Pearson epsilon_lb / mu_lb from independent
  (IN, OUT) trials, threshold by a split or a union bound;
- :mod:`~mtl_tracing.audit.one_run`: the one-training-run audit of Steinke, Nasr and Jagielski
  (2023);
- :mod:`~mtl_tracing.audit.canary`: the worst-case canary of a clipped Gaussian release.
- :mod:`~mtl_tracing.audit.scores_file`: the ``.npz`` of independent (IN, OUT) trials.
"""

from mtl_tracing.audit.bounds import (
    METHODS,
    AuditResult,
    audit,
    check_trials,
    clopper_pearson_upper,
    epsilon_lb,
    game_trials,
    mu_lb,
)
from mtl_tracing.audit.canary import canary_scores
from mtl_tracing.audit.gdp import gaussian_mechanism_mu, gdp_delta, gdp_epsilon, gdp_tradeoff
from mtl_tracing.audit.one_run import (
    OneRunResult,
    attacks_audit,
    max_epsilon_lb,
    one_run_audit,
    one_run_epsilon_lb,
    one_run_p_value,
    task_audit,
)
from mtl_tracing.audit.scores_file import load_trials, save_trials

__all__ = [
    "METHODS",
    "AuditResult",
    "OneRunResult",
    "attacks_audit",
    "audit",
    "canary_scores",
    "check_trials",
    "clopper_pearson_upper",
    "epsilon_lb",
    "game_trials",
    "gaussian_mechanism_mu",
    "gdp_delta",
    "gdp_epsilon",
    "gdp_tradeoff",
    "load_trials",
    "max_epsilon_lb",
    "mu_lb",
    "one_run_audit",
    "one_run_epsilon_lb",
    "one_run_p_value",
    "save_trials",
    "task_audit",
]
