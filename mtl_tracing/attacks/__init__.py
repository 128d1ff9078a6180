"""Black-box task-inference attacks on embeddings (Sec. 5.1, App. A.1, A.7.1).

Modules: :mod:`~mtl_tracing.attacks.registry` (the attacks, by name: ``ATTACKS``; a new
statistic is one function and one line there), :mod:`~mtl_tracing.attacks.statistics`
(Algorithms 1-2 and their Gram forms),
:mod:`~mtl_tracing.attacks.whitening` (A.7.1), :mod:`~mtl_tracing.attacks.challenge` (challenge
sets), :mod:`~mtl_tracing.attacks.evaluation` (the attack sweep and its metrics). Everything
public is re-exported here.

The attack layer sees only embeddings e = h_theta(x) (black box). For every task t the adversary
draws a challenge set of k embeddings and computes a statistic z; a task is called IN when
z > gamma.

Notation (argument -> paper symbol):

| argument | symbol | meaning |
|---|---|---|
| ``k`` / ``challenge`` | k | challenge set size (rows drawn without replacement) |
| ``m`` (last axis) | d in A.7.1, "embedding dimension" | embedding dimension |
| ``trials`` | - | independent challenge draws per task (paper: 128, App. A.5.1) |
| ``ridge`` | lambda | relative ridge of the whitening, Sigma_reg = Q + lambda tr(Q)/m I |
| tasks | 2T | T IN tasks then T OUT tasks |

Statistics (Algorithms 1 and 2):

* ``variance_statistic``: tr(Q) with Q the *unbiased* (ddof = 1) sample covariance of the k
  embeddings, i.e. the sum of the m coordinate-wise variances. Algorithm 1 returns tr(Q); the text
  of Sec. 5.1 says "trace divided by the dimension": ``per_dimension=True`` gives tr(Q)/m. Both
  rank tasks identically (m is fixed), so ROC metrics do not depend on the choice.
* ``inner_product_statistic``: mean over the k(k-1)/2 pairs i < j of |<e_i, e_j>| (Algorithm 2;
  its line 10 prints <e_i, e_i>, a typo: that would be the squared norm, not a pairwise
  similarity, and contradicts "for all unique pairs (e_i, e_j)" on line 8).

Whitening (A.7.1), leave one task out. The *adversary's pool* is every embedding the adversary
holds for the attack: the challenge pools of all 2T tasks (IN tasks: training samples for the
strong adversary, held-out samples for the weak one; OUT tasks: their fresh samples). For task t
the mean ebar_t and covariance Q_t use the pool minus task t's own rows, so the transform does not
depend on the challenge task's data. They come from downdates of pooled sums (sum e, sum e e^T,
count), not recomputation: O(tasks n m^2 + tasks m^3). Then Sigma_reg = Q_t + lambda tr(Q_t)/m I
and the ZCA transform W_t = Sigma_reg^(-1/2) (``eigh``); embeddings become W_t (e - ebar_t).
The whitening is computed once per task, not per trial; since it is linear, whitening the pool
and then drawing challenge sets equals drawing then whitening.
"""

from mtl_tracing.attacks.challenge import *  # noqa: F403
from mtl_tracing.attacks.evaluation import *  # noqa: F403
from mtl_tracing.attacks.registry import ATTACKS, STATISTICS, Attack, GramForm  # noqa: F401
from mtl_tracing.attacks.statistics import *  # noqa: F403
from mtl_tracing.attacks.whitening import *  # noqa: F403
