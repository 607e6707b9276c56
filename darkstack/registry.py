"""Plugins by name: built-ins, installed entry points and registrations at run time.

The pattern of xarray's backends, written once for every extensible stage (ingest sources,
training tasks, evaluations): a built-in is named by ``"module:attribute"`` and imported on
first use (so ``darkstack --help`` imports no plugin), an installed package adds one through an
entry point of the registry's group, and :meth:`Registry.register` adds one at run time (tests,
notebooks). Built-ins and registrations win over entry points of the same name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plugins of one kind.

    Parameters
    ----------
    kind : str
        What a plugin is, for messages (``"ingest source"``).
    group : str
        Entry-point group through which installed packages add plugins, as
        ``name = "package.module:attribute"``.
    builtin : mapping of str to str
        Name -> ``"module:attribute"`` of the plugins darkstack ships.
    accepts : callable
        Whether a loaded object is a plugin of this kind.
    expected : str
        What :attr:`accepts` wants, for messages (``"a Source subclass"``).
    """

    def __init__(
        self,
        *,
        kind: str,
        group: str,
        builtin: Mapping[str, str],
        accepts: Callable[[Any], bool],
        expected: str,
    ) -> None:
        self.kind = kind
        self.group = group
        self.accepts = accepts
        self.expected = expected
        self._entries: dict[str, T | str] = dict(builtin)

    def register(self, name: str, plugin: T | str) -> None:
        """Make ``name`` give ``plugin`` (or the ``"module:attribute"`` it names), replacing an
        earlier registration of that name."""
        self._entries[name] = plugin

    def names(self) -> tuple[str, ...]:
        """Every known name, sorted."""
        return tuple(sorted(self._all()))

    def get(self, name: str) -> T:
        """The plugin called ``name``, imported on first use.

        Raises
        ------
        ValueError
            For an unknown name (the message lists the known ones).
        TypeError
            If what the name gives is not a plugin of this kind.
        """
        entry = self._all().get(name)
        if entry is None:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
        if not self.accepts(entry):
            raise TypeError(f"{self.kind} {name!r} is {entry!r}, not {self.expected}")
        plugin: T = entry
        return plugin

    def _all(self) -> dict[str, T | str]:
        installed: dict[str, T | str] = {
            entry.name: entry.value for entry in importlib.metadata.entry_points(group=self.group)
        }
        return installed | self._entries
