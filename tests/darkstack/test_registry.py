"""Plugins by name: built-ins imported on first use, entry points, registrations at run time."""

from __future__ import annotations

import fractions
import importlib.metadata

import pytest

from darkstack.registry import Registry


def numbers(**builtin: str) -> Registry[type]:
    return Registry(
        kind="number type",
        group="darkstack.test_numbers",
        builtin=builtin,
        accepts=lambda entry: isinstance(entry, type) and issubclass(entry, int | float),
        expected="a number type",
    )


def test_builtins_are_imported_when_asked_for_and_registrations_replace_them() -> None:
    registry = numbers(integer="builtins:int", decimal="decimal:Decimal")
    assert registry.get("integer") is int
    assert registry.names() == ("decimal", "integer")
    registry.register("integer", bool)
    assert registry.get("integer") is bool
    with pytest.raises(TypeError, match=r"number type 'decimal' is .*Decimal.* not a number type"):
        registry.get("decimal")
    with pytest.raises(ValueError, match="unknown number type 'complex'; registered: decimal"):
        registry.get("complex")


def test_installed_entry_points_are_found_and_builtins_win(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = [
        importlib.metadata.EntryPoint("ratio", "fractions:Fraction", "darkstack.test_numbers"),
        importlib.metadata.EntryPoint("integer", "builtins:float", "darkstack.test_numbers"),
    ]

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        return [entry for entry in installed if entry.group == group]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry = numbers(integer="builtins:int")
    assert registry.names() == ("integer", "ratio")
    assert registry.get("integer") is int
    with pytest.raises(TypeError, match="Fraction"):
        registry.get("ratio")
    registry = Registry(
        kind="number type",
        group="darkstack.test_numbers",
        builtin={},
        accepts=lambda entry: entry is fractions.Fraction,
        expected="Fraction",
    )
    assert registry.get("ratio") is fractions.Fraction
