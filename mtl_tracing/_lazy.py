"""Lazy exports for the packages ``mtl-tracing --help`` imports (the one tested exception).

Every package ``__init__`` exports its public API by explicit imports and a curated
``__all__`` (as optax does). ``mtl-tracing --help`` must not import JAX, and it imports three
packages whose APIs are built on JAX: ``gaussian`` (``import mtl_tracing`` reads its config),
``data`` and ``victims`` (their registries). Their ``__init__`` writes the same explicit
imports under ``if TYPE_CHECKING:`` (what static tools and readers see) and hands its own file
to :func:`attach`, which reads those imports once and loads each name on first use (PEP 562).
``tests/test_layout.py`` pins which packages do this, and that their names match ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["attach", "exports_of"]


def exports_of(init_file: str | Path) -> dict[str, tuple[str, str]]:
    """``{name: (module, attribute)}`` of the ``from M import a [as b]`` statements inside the
    top-level ``if TYPE_CHECKING:`` blocks of ``init_file``."""
    tree = ast.parse(Path(init_file).read_text(), filename=str(init_file))
    out: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        test = getattr(node, "test", None)
        if not (isinstance(node, ast.If) and isinstance(test, ast.Name)):
            continue
        if test.id != "TYPE_CHECKING":
            continue
        for imp in node.body:
            if isinstance(imp, ast.ImportFrom) and imp.module:
                for a in imp.names:
                    out[a.asname or a.name] = (imp.module, a.name)
    return out


def attach(package: str, init_file: str) -> tuple[Callable[[str], object], Callable[[], list]]:
    """``(__getattr__, __dir__)`` for ``package`` whose lazy exports are the ``TYPE_CHECKING``
    imports of ``init_file`` (:func:`exports_of`). A name's module is imported on first access
    and the value cached in the package; other names raise ``AttributeError``."""
    exports = exports_of(init_file)

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = exports[name]
        value = getattr(importlib.import_module(module), attr)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
