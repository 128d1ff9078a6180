"""The trainer registry: every victim that ``mtl-tracing train`` and the studies train, once.

An entry names a factory ``make_trainer(config, embed_dim, *, tasks, **options) -> Trainer``
(``config`` a :class:`~mtl_tracing.victims.mtl.TrainConfig`, ``embed_dim`` m, ``tasks`` T the IN
tasks it will train on) and the factory's own options, declared as command-line flags
(:class:`~mtl_tracing.options.Option`, defaults included). From :data:`TRAINERS` come the
``train`` command's ``--trainer`` choices and flags, the leakage study's trainers and flags
(:mod:`mtl_tracing.experiments.leakage_by_trainer`), and the tests that train every trainer.

Adding a trainer: its module (a :class:`~mtl_tracing.victims.trainer.Trainer` and its
``make_trainer``) plus one :class:`TrainerEntry` line below. Cheap to import (no JAX): the
factory's module is imported when a trainer is built.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from mtl_tracing._validate import check_choice
from mtl_tracing.options import Option

__all__ = ["TrainerEntry", "TRAINERS", "names", "get", "options", "defaults", "build"]


@dataclasses.dataclass(frozen=True)
class TrainerEntry:
    """A registered trainer: ``name`` (``--trainer``), ``factory`` (``"module:function"``),
    one-line ``help`` and the factory's ``options`` (keyword arguments, as flags)."""

    name: str
    factory: str
    help: str
    options: tuple[Option, ...] = ()

    def load_factory(self) -> Callable[..., Any]:
        module, function = self.factory.split(":")
        return getattr(importlib.import_module(module), function)


_V = "mtl_tracing.victims."

#: The registry, in table order (the leakage study's rows).
TRAINERS: tuple[TrainerEntry, ...] = (
    TrainerEntry("standard", _V + "mtl:make_trainer", "Algorithm 3 (App. A.3)"),
    TrainerEntry(
        "gmrf",
        _V + "gmrf:make_trainer",
        "GMRF prior on the heads with a learned precision Omega",
        (
            Option("--eta", float, "GMRF prior strength eta (default 0.3)", default=0.3),
            Option("--l1", float, "GMRF graphical-lasso rho (default 0.1)", default=0.1),
        ),
    ),
    TrainerEntry(
        "robust",
        _V + "robust:make_trainer",
        "PGD adversarial training of the shared encoder",
        (
            Option("--norm", str, "PGD norm (default l2)", default="l2", choices=("linf", "l2")),
            Option("--pgd-eps", float, "PGD budget epsilon (default 1.0)", 1.0, field="eps"),
            Option("--pgd-steps", int, "PGD steps n (default 5)", 5, field="steps"),
        ),
    ),
    TrainerEntry(
        "dp",
        _V + "dp:make_trainer",
        "task-level DP-SGD, noise calibrated to epsilon at delta 1e-5 (RDP)",
        (Option("--dp-epsilon", float, "DP-SGD epsilon at delta 1e-5 (default 4)", default=4.0),),
    ),
)


def names() -> list[str]:
    """Registered trainer names, in order."""
    return [t.name for t in TRAINERS]


def get(name: str) -> TrainerEntry:
    """The entry called ``name``; ``ValueError`` listing the names otherwise."""
    return TRAINERS[names().index(check_choice("trainer", name, names()))]


def options() -> tuple[Option, ...]:
    """Every registered trainer's options, once each, in registry order (a flag two trainers
    share must be declared identically)."""
    seen: dict[str, Option] = {}
    for entry in TRAINERS:
        for opt in entry.options:
            if seen.setdefault(opt.flag, opt) != opt:
                raise ValueError(f"option {opt.flag} is declared differently by two trainers")
    return tuple(seen.values())


def defaults() -> dict[str, Any]:
    """``{keyword: default}`` of :func:`options`."""
    return {opt.dest: opt.default for opt in options()}


def build(name: str, config, embed_dim: int, *, tasks: int, **opts: Any):
    """The trainer ``name`` for ``config`` (TrainConfig), m = ``embed_dim`` and T = ``tasks``.

    ``opts`` are keyword arguments of :func:`options` (another trainer's are ignored; None
    means the default); a keyword no registered trainer declares is refused (``ValueError``).
    """
    entry = get(name)
    known = defaults()
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise ValueError(f"trainer options must be among {tuple(known)}, got {unknown}")
    kwargs = {o.dest: o.default for o in entry.options}
    kwargs.update({k: v for k, v in opts.items() if k in kwargs and v is not None})
    return entry.load_factory()(config, embed_dim, tasks=tasks, **kwargs)
