"""The distribution's layout: every root folder installs as darkstack.<folder>, nothing bare."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import darkstack

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]


def _folder(package: str) -> Path:
    """Where setuptools takes ``package`` from: its own mapping or its parent's folder."""
    if package in PACKAGE_DIR:
        return ROOT / PACKAGE_DIR[package]
    parent, _, name = package.rpartition(".")
    return _folder(parent) / name


def test_every_listed_package_is_a_typed_folder_and_every_folder_is_listed() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert set(PACKAGE_DIR) <= listed
    for package in listed:
        folder = _folder(package)
        assert (folder / "__init__.py").is_file(), package
        assert (folder / "py.typed").is_file(), package
        assert importlib.import_module(package).__name__ == package
    # A subpackage folder that is not listed would be missing from the wheel.
    for package in listed:
        for child in _folder(package).iterdir():
            if (child / "__init__.py").is_file():
                assert f"{package}.{child.name}" in listed, child


def test_user_layout_folders_are_mapped_under_the_namespace() -> None:
    for folder in ("ingest", "features", "train", "evaluate", "cluster", "catalogs"):
        assert PACKAGE_DIR[f"darkstack.{folder}"] == folder


def test_version_comes_from_the_installed_metadata() -> None:
    assert darkstack.__version__ == importlib.metadata.version("darkstack")


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff (the dev extra) missing")
def test_linter_bans_bare_stage_imports(tmp_path: Path) -> None:
    source = tmp_path / "uses_bare_names.py"
    source.write_text("import train\nfrom features import x\nimport darkstack.ingest\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--config",
            str(ROOT / "pyproject.toml"),
            "--select",
            "TID251",
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "`train` is banned" in result.stdout
    assert "`features` is banned" in result.stdout
    assert "`darkstack.ingest` is banned" not in result.stdout


def test_license_is_an_spdx_expression_with_its_file() -> None:
    # A table (license = {text = ...}) is deprecated since setuptools 77 and warns on install.
    assert PYPROJECT["project"]["license"] == "BSD-3-Clause"
    assert all((ROOT / name).is_file() for name in PYPROJECT["project"]["license-files"])
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]
