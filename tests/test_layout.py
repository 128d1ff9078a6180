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


def test_gaussian_moments_is_the_function_even_after_the_submodule_import():
    import importlib

    importlib.import_module("mtl_tracing.gaussian.moments")
    from mtl_tracing import gaussian

    assert callable(gaussian.moments) and gaussian.moments.__module__.endswith(".moments")
    assert set(gaussian.moments(gaussian.GaussianGameConfig())) == {"strong", "weak", "out"}
