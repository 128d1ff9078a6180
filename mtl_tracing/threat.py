"""The threat model's adversaries, defined once for the whole package (the black-box attacks
are the registry :mod:`mtl_tracing.attacks.registry`).

- ``strong``: holds k of the challenge task's N training samples (without replacement);
- ``weak``: holds k fresh samples of the challenge task's distribution;
- ``out``: the negative class, k samples of a task that was not trained on.
"""

__all__ = ["ADVERSARIES", "IN_ADVERSARIES"]

#: Every score an experiment produces: the two IN adversaries and the OUT (negative) class.
ADVERSARIES = ("strong", "weak", "out")

#: The adversaries whose scores form the positive (IN) class of a ROC against ``out``.
IN_ADVERSARIES = ("strong", "weak")
