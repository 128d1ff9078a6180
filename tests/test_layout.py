"""The package's structure: dependencies, layering and the no-private-imports rule."""

from __future__ import annotations

import ast
import importlib.metadata
import pathlib
import re

PKG = pathlib.Path(__file__).resolve().parents[1] / "mtl_tracing"


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_sympy_is_a_core_dependency():
    """``mtl-tracing verify`` works after the README's plain install (no extra)."""
    reqs = importlib.metadata.requires("mtl-tracing") or []
    core = [r for r in reqs if "extra ==" not in r]
    assert any(re.match(r"sympy\b", r) for r in core), core


def test_no_module_imports_another_modules_private_name():
    """``from x import _y`` and ``x._y`` across modules are refused (publish a kernel instead)."""
    bad = []
    for path, tree in _modules():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtl_tracing"):
                sub = PKG.joinpath(*node.module.split(".")[1:])
                for a in node.names:
                    if (sub / f"{a.name}.py").exists() and path.parent == sub:
                        continue  # a package's own private submodule (e.g. metrics/_fast)
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{path.name}: from {node.module} import {a.name}")
                    aliases[a.asname or a.name] = node.module
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("mtl_tracing"):
                        aliases[(a.asname or a.name).split(".")[0]] = a.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in ("_fields", "_replace", "_asdict", "_make")
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                bad.append(f"{path.relative_to(PKG)}: {node.value.id}.{node.attr}")
    assert not bad, bad


def _private_module(module: str) -> str | None:
    """The private package prefix of ``module`` (``mtl_tracing.data._tasks`` ->
    ``mtl_tracing.data``), or None when every component is public."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


#: Job modules still importing the command layer's list parsers; they are re-pointed to
#: ``mtl_tracing.options`` by the MAML work (issue 23, the other part). Remove when done.
def test_no_module_imports_another_packages_private_module():
    """``from mtl_tracing.data._tasks import X`` (or ``import ...``) outside ``data/`` and any
    import of ``mtl_tracing.commands._common`` by the library are refused: a private module
    belongs to its package and that package's subpackages (``mtl_tracing._validate``: all of
    them); publish what others need."""
    bad = []
    for path, tree in _modules():
        rel = str(path.relative_to(PKG))
        here = "mtl_tracing." + ".".join(path.relative_to(PKG).parent.parts)
        here = here.rstrip(".")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
                modules += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                owner = _private_module(module) if module.startswith("mtl_tracing") else None
                if owner is None or here == owner or here.startswith(owner + "."):
                    continue  # public, or private to a package that holds this module
                bad.append(f"{rel}: {module}")
    assert not bad, sorted(set(bad))


def test_the_layout_rule_refuses_cross_package_private_imports(tmp_path, monkeypatch):
    """Power: the rule above flags both forms it exists for."""
    pkg = tmp_path / "mtl_tracing"
    (pkg / "experiments").mkdir(parents=True)
    (pkg / "experiments" / "job.py").write_text(
        "from mtl_tracing.commands._common import int_list\nfrom mtl_tracing.data import _tasks\n"
    )
    (pkg / "data").mkdir()
    (pkg / "data" / "loader.py").write_text("from mtl_tracing.data._tasks import TaskSpec\n")
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    try:
        test_no_module_imports_another_packages_private_module()
    except AssertionError as err:
        assert "experiments/job.py: mtl_tracing.commands._common" in str(err)
        assert "experiments/job.py: mtl_tracing.data._tasks" in str(err)
        assert "data/loader.py" not in str(err)  # a package's own private module
    else:
        raise AssertionError("the cross-package private imports were not refused")


def test_no_copy_of_jax_internals():
    """No module imports JAX's private modules (``jax._src``, ``jaxlib``'s internals) or
    re-implements its PRNG: the package calls the public ``jax.random`` API only."""
    bad = []
    for path, tree in _modules():
        rel = str(path.relative_to(PKG))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            bad += [f"{rel}: import {n}" for n in names if n.startswith(("jax._src", "jaxlib"))]
        text = path.read_text()
        bad += [f"{rel}: {w}" for w in ("threefry_2x32", "_threefry", "0x1BD11BDA") if w in text]
    assert not bad, bad


def test_adversaries_and_attacks_are_defined_once():
    for pattern, where in ((r"(IN_)?ADVERSARIES", "threat.py"), ("ATTACKS", "attacks/registry.py")):
        hits = [
            str(p.relative_to(PKG))
            for p in PKG.rglob("*.py")
            if re.search(rf"^{pattern}\s*[:=]", p.read_text(), re.M)
        ]
        assert hits == [where], hits


def test_readme_python_examples_run():
    """The README's Python blocks run as written (sizes shrunk: games, epochs, tasks)."""
    import jax

    text = (PKG.parent / "README.md").read_text()
    section = text.split("## In Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 2
    code = "\n".join(blocks)
    code = code.replace("games=2000", "games=64").replace("epochs=50", "epochs=2")
    code = code.replace("warm_start_epochs=5", "warm_start_epochs=1")
    code = code.replace("tasks=256, samples=8, dim=256", "tasks=16, samples=8, dim=16")
    code = code.replace("SyntheticConfig()", "SyntheticConfig(tasks=16, dim=8, embed_dim=16)")
    code = code.replace("runs=4", "runs=1")
    namespace: dict = {"jax": jax}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["emb"].shape[-1] == 16


def test_gaussian_moments_is_the_function_and_the_old_submodule_still_imports():
    """The submodule ``gaussian.moments`` is ``exact_moments`` now (no clash with the function
    ``gaussian.moments``); its old name still imports, for one release."""
    import importlib

    old = importlib.import_module("mtl_tracing.gaussian.moments")
    from mtl_tracing.gaussian.moments import second_order

    from mtl_tracing import gaussian
    from mtl_tracing.gaussian import exact_moments

    assert old is exact_moments and second_order is exact_moments.second_order
    assert gaussian.moments is exact_moments.moments
    assert set(gaussian.moments(gaussian.GaussianGameConfig())) == {"strong", "weak", "out"}


# ----------------------------------------------------------------------------- import graph

#: Third-party packages that make an import expensive (``mtl-tracing --help`` loads none).
HEAVY = {
    "jax", "jaxlib", "flax", "optax", "scipy", "matplotlib", "sympy", "dp_accounting", "PIL",
    "sklearn", "dm_pix",
}  # fmt: skip

#: Function-level imports kept for another reason than cost, each with its reason.
_LAZY_FOR_A_REASON: dict[tuple[str, str], str] = {}


class _Graph:
    """The import graph of the package, from the source alone (``ast``).

    An edge M -> X for every ``mtl_tracing`` module X that importing M runs: the imported
    module and the packages on its way (a package's ``__init__`` runs first), but not M's own
    packages (already running). Imports under ``if TYPE_CHECKING:`` never run; in the lazy
    packages (:mod:`mtl_tracing._lazy`) they name what a lazy name loads.
    """

    def __init__(self, pkg: pathlib.Path):
        self.files = {}
        for path in sorted(pkg.rglob("*.py")):
            parts = path.relative_to(pkg.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            self.files[name] = path
        self.trees = {m: ast.parse(p.read_text(), filename=str(p)) for m, p in self.files.items()}
        self.lazy = {m: self._lazy_names(t) for m, t in self.trees.items()}
        self.lazy = {m: names for m, names in self.lazy.items() if names}
        self.edges = {m: set() for m in self.files}
        self.external = {m: set() for m in self.files}
        self.deferred = []  # (module, line, targets, heavy names they load)
        for m, tree in self.trees.items():
            for node, in_function in self._imports(tree):
                if in_function:
                    self.deferred.append((m, node.lineno, node))
                    continue
                self.edges[m] |= self._runs(m, node)
                self.external[m] |= self._external(node)

    @staticmethod
    def _lazy_names(tree) -> dict[str, str]:
        """``{name: module}`` of a lazy package's ``TYPE_CHECKING`` imports."""
        out = {}
        for node in tree.body:
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                for imp in node.body:
                    if isinstance(imp, ast.ImportFrom):
                        out.update({a.asname or a.name: imp.module for a in imp.names})
        return out

    @staticmethod
    def _imports(tree):
        """(node, inside a function) for every import that can run."""
        out = []

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                    continue
                if isinstance(child, ast.Import | ast.ImportFrom):
                    out.append((child, in_function))
                func = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                visit(child, in_function or func)

        visit(tree, False)
        return out

    def _targets(self, node) -> list[str]:
        """The modules an import statement names (``from P import sub`` names ``P.sub``)."""
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if node.level or not node.module:
            return []
        return [
            f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in self.files else node.module
            for a in node.names
        ]

    def _runs(self, importer: str, node) -> set[str]:
        out = set()
        for target in self._targets(node):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                mod = ".".join(parts[:i])
                own = importer == mod or importer.startswith(mod + ".")
                if mod in self.files and not own:
                    out.add(mod)
        return out

    @staticmethod
    def _external(node) -> set[str]:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        return {n.split(".")[0] for n in names if n and n.split(".")[0] in HEAVY}

    def cycles(self) -> list[list[str]]:
        """The strongly connected components with more than one module (Tarjan)."""
        index, low, stack, on, found = {}, {}, [], set(), []

        def connect(v):
            index[v] = low[v] = len(index)
            stack.append(v)
            on.add(v)
            for w in sorted(self.edges[v]):
                if w not in index:
                    connect(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))

        for v in sorted(self.files):
            if v not in index:
                connect(v)
        return found

    def heavy(self, module: str, seen=None) -> set[str]:
        """The heavy packages importing ``module`` loads (module-level imports, transitively)."""
        seen = set() if seen is None else seen
        if module in seen:
            return set()
        seen.add(module)
        out = set(self.external[module])
        for dep in self.edges[module]:
            out |= self.heavy(dep, seen)
        return out

    def deferred_heavy(self, importer: str, node) -> set[str]:
        """What a function-level import can load: its modules, or for a lazy package imported
        whole, every lazy name's module; ``from lazy_package import name``: that name's."""
        out, targets = set(), self._targets(node)
        for mod in self._runs(importer, node):
            out |= self.heavy(mod)
            if mod not in self.lazy:
                continue
            if mod in targets:  # the lazy package itself: any of its names may be used
                wanted = list(self.lazy[mod].values())
            elif isinstance(node, ast.ImportFrom) and node.module == mod:
                wanted = [self.lazy[mod][a.name] for a in node.names if a.name in self.lazy[mod]]
            else:  # only on the way to one of its submodules
                wanted = []
            for sub in wanted:
                out |= self.heavy(sub)
        return out | self._external(node)


def test_module_level_imports_form_no_cycle():
    """The package's module-level import graph is a DAG (shared pieces live below both users;
    no loop is broken by an import inside a function: see the next test)."""
    assert _Graph(PKG).cycles() == []


def test_imports_inside_functions_are_for_cost_only():
    """An import inside a function must defer something heavy (JAX, SciPy, matplotlib, ...:
    ``mtl-tracing --help`` and the job modules stay cheap); one that loads nothing the module
    has not already loaded belongs at the top (where a cycle would show)."""
    graph = _Graph(PKG)
    bad = []
    for module, line, node in graph.deferred:
        if not graph._runs(module, node):
            continue  # a third-party import, or the module's own package
        if graph.deferred_heavy(module, node) - graph.heavy(module):
            continue  # defers a heavy import
        targets = ", ".join(sorted(graph._runs(module, node)))
        if (module, targets) not in _LAZY_FOR_A_REASON:
            bad.append(f"{module}:{line} imports {targets} inside a function for no cost reason")
    assert not bad, "\n".join(bad)


def test_the_graph_rules_catch_a_cycle_and_a_pointless_deferred_import(tmp_path, monkeypatch):
    """Power: a loop broken by a function-level import, and the same loop at module level."""
    pkg = tmp_path / "mtl_tracing"
    (pkg / "g").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "g" / "__init__.py").write_text("")
    (pkg / "g" / "law.py").write_text("import numpy\nfrom mtl_tracing.g import batched\n")
    (pkg / "g" / "batched.py").write_text(
        "import scipy\n\ndef f():\n    from mtl_tracing.g.law import x\n"
        "\ndef g():\n    import matplotlib\n    from mtl_tracing.g import plots\n"
    )
    (pkg / "g" / "plots.py").write_text("import matplotlib\n")
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    try:
        test_imports_inside_functions_are_for_cost_only()
    except AssertionError as err:
        assert "mtl_tracing.g.batched:4 imports mtl_tracing.g.law" in str(err)
        assert "plots" not in str(err)  # matplotlib: a cost reason
    else:
        raise AssertionError("the loop broken inside a function was not refused")
    (pkg / "g" / "batched.py").write_text("from mtl_tracing.g.law import x\n")
    assert _Graph(pkg).cycles() == [["mtl_tracing.g.batched", "mtl_tracing.g.law"]]


# ----------------------------------------------------------------------------- exports

#: The packages ``mtl-tracing --help`` imports whose APIs need JAX: lazy (``_lazy.attach``).
LAZY_PACKAGES = {"mtl_tracing.gaussian", "mtl_tracing.data", "mtl_tracing.victims"}


def test_every_package_exports_explicitly_with_a_curated_all():
    """One export style: every package ``__init__`` names its exports (no star import, no
    hand-written ``__getattr__`` map) in a sorted ``__all__`` whose names all resolve; only the
    packages of :data:`LAZY_PACKAGES` load them lazily, from ``TYPE_CHECKING`` imports that
    match ``__all__`` exactly."""
    import importlib

    from mtl_tracing import _lazy

    lazy = set()
    for init in sorted(PKG.rglob("__init__.py")):
        name = ".".join(init.relative_to(PKG.parent).parent.parts)
        tree = ast.parse(init.read_text())
        stars = [
            n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.names[0].name == "*"
        ]
        assert not stars, f"{name}: star import"
        module = importlib.import_module(name)
        names = list(module.__all__)
        assert len(set(names)) == len(names), name
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, (name, missing)
        exports = _lazy.exports_of(init)
        if exports:
            lazy.add(name)
            assert set(exports) == set(names) - {"__version__"}, name
        elif name != "mtl_tracing":
            assert "__getattr__" not in vars(module), f"{name}: a lazy map outside _lazy"
        if name.count(".") == 1:  # a package of the library: sorted (constants, classes, rest)
            kind = [(0 if n.isupper() else 1 if n[0].isupper() else 2, n.lower()) for n in names]
            assert kind == sorted(kind), f"{name}: __all__ not sorted"
    assert lazy == LAZY_PACKAGES
