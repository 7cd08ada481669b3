"""No import runs against the layer order of `mcuforge.layers`.

Every module of src/mcuforge is parsed with `ast`; every ``import`` and ``from ... import`` at any
depth (functions and ``TYPE_CHECKING`` blocks included), relative or absolute, is resolved to the
top-level package it reaches and checked with `may_import`. A failure names ``file:line``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable

import pytest

import mcuforge
from mcuforge.layers import LAYERS, layer_index, may_import

SOURCE_ROOT = Path(mcuforge.__file__).resolve().parent


def _module_name(path: Path) -> str:
    """Dotted name of the module at ``path`` (a package's ``__init__`` is the package)."""
    parts = path.relative_to(SOURCE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_package(module: str) -> str:
    """``mcuforge.planner.arena`` -> ``planner``; the root package is ``mcuforge``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in ``path``, at any depth."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return imports_in_source(path.read_text(), package, str(path))


def imports_in_source(text: str, package: str, filename: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``text``, a module of ``package``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(text, filename)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if node.module is None:  # `from . import x` / `from .. import x`: x may be a package
                found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, base))
    return found


def _source_files() -> list[Path]:
    return sorted(SOURCE_ROOT.rglob("*.py"))


def _packages_on_disk() -> set[str]:
    names = {path.stem for path in SOURCE_ROOT.glob("*.py") if path.name != "__init__.py"}
    names |= {path.parent.name for path in SOURCE_ROOT.glob("*/__init__.py")}
    return names


def layer_violations(files: list[Path] | None = None,
                     imports_of: Callable[[Path], list[tuple[int, str]]] = imported_modules
                     ) -> list[str]:
    """``file:line: importer -> imported`` for every import against the layer order, over
    ``files`` (default: every module of src/mcuforge) with the imports ``imports_of`` finds."""
    violations = []
    for path in _source_files() if files is None else files:
        module = _module_name(path)
        importer = _top_package(module)
        for line, target in imports_of(path):
            if target != "mcuforge" and not target.startswith("mcuforge."):
                continue
            imported = _top_package(target)
            where = f"{path.relative_to(SOURCE_ROOT.parent)}:{line}"
            if importer == "mcuforge":
                if not may_import(importer, imported):
                    violations.append(f"{where}: the root package imports {target}")
            elif not may_import(importer, imported):
                violations.append(f"{where}: {importer} (layer {layer_index(importer)}) imports "
                                  f"{target} (layer {layer_index(imported)})")
    return violations


def test_every_package_on_disk_has_a_layer() -> None:
    placed = {package for layer in LAYERS for package in layer.packages}
    unplaced = sorted(_packages_on_disk() - placed)
    assert not unplaced, f"place these packages in mcuforge/layers.py: {unplaced}"


def test_each_package_is_in_one_layer_only() -> None:
    names = [package for layer in LAYERS for package in layer.packages]
    assert len(names) == len(set(names))


def test_no_import_runs_against_the_layer_order() -> None:
    violations = layer_violations()
    assert not violations, "imports against mcuforge/layers.py:\n" + "\n".join(violations)


def test_the_import_walk_sees_relative_nested_and_absolute_imports() -> None:
    """The walker resolves every form of import it must judge (a sample module of the package
    mcuforge.analysis)."""
    text = ("from ..codegen import emit\n"
            "from . import memory\n"
            "from .. import runtime\n"
            "import mcuforge.planner.arena\n"
            "def f():\n"
            "    from mcuforge.nas.space import Space\n"
            "    if True:\n"
            "        from ..errors import McuforgeError\n")
    found = imports_in_source(text, "mcuforge.analysis", "sample.py")
    assert sorted(found) == [(1, "mcuforge.codegen"), (2, "mcuforge.analysis.memory"),
                             (3, "mcuforge.runtime"), (4, "mcuforge.planner.arena"),
                             (6, "mcuforge.nas.space"), (8, "mcuforge.errors")]


def test_a_violation_is_reported_with_file_and_line() -> None:
    """An upward import (here: the runtime importing quant) is named by file and line."""
    runtime_file = SOURCE_ROOT / "runtime" / "reference.py"

    def with_an_upward_import(path: Path) -> list[tuple[int, str]]:
        return imported_modules(path) + [(7, "mcuforge.quant.inference")]

    assert layer_violations([runtime_file], with_an_upward_import) == [
        f"mcuforge/runtime/reference.py:7: runtime (layer {layer_index('runtime')}) imports "
        f"mcuforge.quant.inference (layer {layer_index('quant')})"]


@pytest.mark.parametrize("importer, imported, allowed", [
    ("runtime", "planner", True),    # the runtime runs patch schedules the planner made
    ("runtime", "quant", False),     # PyTorch quantisation sits above the runtime
    ("codegen", "frontends", False),  # code generation takes a Graph, it loads no model file
    ("analysis", "frontends", False),
    ("frontends", "models", True),
    ("rivals", "frontends", True),
    ("analysis", "rivals", False),
    ("quant", "train", False),
    ("nas", "report", True),
    ("report", "nas", False),
    ("ops", "ir", True),
    ("ir", "ops", False),
    ("patch", "planner", True),
    ("planner", "patch", False),
    ("mcuforge", "ops", True),       # the root package registers the op kinds
    ("mcuforge", "codegen", False),
    ("codegen", "mcuforge", True),
])
def test_may_import_follows_the_order(importer: str, imported: str, allowed: bool) -> None:
    assert may_import(importer, imported) is allowed


def test_every_package_docstring_says_what_it_may_import() -> None:
    """Each package's ``__init__`` docstring says what it holds and what it may import."""
    missing = []
    for init in sorted(SOURCE_ROOT.glob("*/__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        if "may import" not in docstring.lower():
            missing.append(str(init.relative_to(SOURCE_ROOT.parent)))
    assert not missing, f"package docstrings without 'May import': {missing}"
