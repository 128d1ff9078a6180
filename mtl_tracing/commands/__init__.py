"""Hand-written CLI subcommands, one module each; :data:`COMMANDS` is their registry.

A command module defines ``NAME`` (hyphenated; the underscore spelling is accepted too),
``HELP`` (one line), optionally ``DESCRIPTION`` and ``ALIASES`` (old flag spellings, hidden),
``add_arguments(parser)`` and ``run(args) -> int``. Adding one is its module plus one line in
:data:`COMMANDS`. The figure, table and sweep jobs are commands too, generated from
:mod:`mtl_tracing.experiments.registry` (:mod:`mtl_tracing.cli`). Every module here is cheap to
import (``mtl-tracing --help`` imports them all): JAX is imported when a command runs.
"""

from mtl_tracing.commands import (
    attack,
    audit,
    cache,
    game,
    maml_attack,
    plot_sweep,
    real,
    reproduce,
    sweep,
    train,
    verify,
)
from mtl_tracing.commands._common import check_required

#: The commands, in ``mtl-tracing --help``'s order.
COMMANDS = (
    game,
    sweep,
    plot_sweep,
    train,
    attack,
    audit,
    real,
    maml_attack,
    reproduce,
    verify,
    cache,
)

__all__ = [
    "COMMANDS",
    "attack",
    "audit",
    "cache",
    "check_required",
    "game",
    "maml_attack",
    "plot_sweep",
    "real",
    "reproduce",
    "sweep",
    "train",
    "verify",
]
