"""Provenance of a build's outputs: a rerun with settings that change them must not mix.

A build records what its outputs depend on (its config, its inputs). Rerunning it with a
config that would change those outputs either rebuilds what the change affects, when the build
can tell (ingest re-profiles every galaxy from its cutout, so target radii are free to change),
or refuses with :class:`ProvenanceError`: one line naming the differing keys and ``--rebuild``,
which replaces what the old settings made. A saved config therefore always made the data beside
it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from darkstack.errors import InputError

#: The flag of every build verb that replaces outputs made with other settings.
REBUILD_FLAG = "--rebuild"


class ProvenanceError(InputError):
    """Outputs on disk were made with settings or inputs other than the current ones.

    Raised before any work: nothing is written (exit code 2, like any refused input).
    """


def flatten(mapping: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the dotted keys of ``--set``."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, prefix=f"{name}.")
        else:
            flat[name] = value
    return flat


def differing_keys(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore: Iterable[str] = ()
) -> list[str]:
    """Dotted keys whose values differ between two (nested) provenance mappings.

    Parameters
    ----------
    saved, current : mapping
        What the outputs were made with, and what the rerun asks for.
    ignore : iterable of str
        Keys (or dotted prefixes ending in ``.``) that do not change the outputs.
    """
    ignored = tuple(ignore)
    old, new = flatten(saved), flatten(current)
    return [
        key
        for key in sorted(old.keys() | new.keys())
        if not any(key == name or (name.endswith(".") and key.startswith(name)) for name in ignored)
        and _normalise(old.get(key)) != _normalise(new.get(key))
    ]


def describe_change(saved: Mapping[str, Any], current: Mapping[str, Any], keys: list[str]) -> str:
    """``key: old -> new`` for each key, comma-separated."""
    old, new = flatten(saved), flatten(current)
    return ", ".join(f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys)


def refuse(path: Path, change: str, *, what: str = "rebuild it") -> ProvenanceError:
    """The one-line error of a rerun whose settings differ from those ``path`` was made with.

    Parameters
    ----------
    path : Path
        The output made with other settings.
    change : str
        What differs (keys and values).
    what : str
        What ``--rebuild`` does to it.
    """
    return ProvenanceError(
        f"{path} was made with other settings ({change}); pass {REBUILD_FLAG} to {what}, or "
        "use another --store"
    )


def _normalise(value: Any) -> Any:
    """Lists and tuples compare equal (YAML and JSON turn tuples into lists)."""
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    return value
