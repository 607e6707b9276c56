"""Typed, frozen configuration for every stage, read from YAML and saved with every output.

Each stage declares a frozen dataclass; :func:`load_config` builds it from (in increasing
priority) the dataclass defaults, a named preset, a YAML file and ``--set key=value`` overrides,
checking every key and type so a typo is an error that names the file and the key rather than a
silently ignored setting. :func:`config_to_dict` gives the plain mapping stored in zarr attrs,
parquet metadata and checkpoints so each result says how it was made.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from darkstack.errors import InputError

T = TypeVar("T")


class ConfigError(InputError, ValueError):
    """A configuration value, key or file that is not what the stage expects."""


def load_config(
    cls: type[T],
    *,
    path: str | Path | None = None,
    preset: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> T:
    """Build a config dataclass from defaults, a preset, a YAML file and overrides.

    Parameters
    ----------
    cls : type
        The frozen config dataclass of the stage.
    path : str or Path, optional
        A YAML file holding a mapping of the dataclass' fields (nested mappings for nested
        dataclasses).
    preset : mapping, optional
        Values that replace the defaults before the file is applied.
    overrides : sequence of str
        ``dotted.key=value`` strings; values are parsed as YAML scalars (``1e10``, ``true``).

    Returns
    -------
    cls
        The validated config.

    Raises
    ------
    ConfigError
        For a missing or unreadable file, an unknown key or a value of the wrong type; the
        message names the source (file or ``--set``) and the key.
    """
    data: dict[str, Any] = _deep_merge({}, dict(preset or {}))
    if path is not None:
        data = _deep_merge(data, _read_yaml_mapping(Path(path)))
    for item in overrides:
        key, value = _parse_override(item)
        data = _deep_merge(data, _nest(key, value))
    sources = [str(path)] if path is not None else []
    sources += ["--set"] if overrides else []
    source = " and ".join(sources) or "preset"
    return from_mapping(cls, data, source=source)


def from_mapping(cls: type[T], data: Mapping[str, Any], *, source: str = "configuration") -> T:
    """Validate ``data`` against the dataclass ``cls`` (recursively) and build it."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    return typing.cast(T, _build(cls, data, source=source, prefix=""))


def config_to_dict(config: Any) -> dict[str, Any]:
    """The plain, YAML- and JSON-serialisable mapping of a config dataclass."""
    return typing.cast(dict[str, Any], _plain(dataclasses.asdict(config)))


def dump_config(config: Any, path: str | Path) -> None:
    """Write ``config`` as YAML, so the output it sits beside says how it was made."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (expected a YAML mapping)")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} holds a {type(loaded).__name__}, expected a mapping")
    return loaded


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value (for example seed=3)")
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    nested: Any = value
    for part in reversed(dotted.split(".")):
        nested = {part: nested}
    return typing.cast(dict[str, Any], nested)


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _build(cls: Any, data: Any, *, source: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or cls.__name__
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping, got {data!r}")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {prefix}{unknown[0]!s}; expected one of {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {
        name: _coerce(hints[name], data[name], source=source, key=f"{prefix}{name}")
        for name in fields
        if name in data
    }
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {where}: {error}") from None


def _coerce(hint: Any, value: Any, *, source: str, key: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source=source, prefix=f"{key}.")
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{source}: {key}={value!r}; expected one of {list(get_args(hint))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        errors = []
        for option in (arg for arg in get_args(hint) if arg is not type(None)):
            try:
                return _coerce(option, value, source=source, key=key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigError(f"{source}: {key}={value!r}; expected a list")
        args = get_args(hint)
        item_hints = [args[0]] * len(value) if args[-1:] == (Ellipsis,) else list(args)
        if len(item_hints) != len(value):
            raise ConfigError(f"{source}: {key}={value!r}; expected {len(item_hints)} items")
        return tuple(
            _coerce(h, v, source=source, key=f"{key}[{i}]")
            for i, (h, v) in enumerate(zip(item_hints, value, strict=True))
        )
    return _coerce_scalar(hint, value, source=source, key=key)


def _coerce_scalar(hint: Any, value: Any, *, source: str, key: str) -> Any:
    # YAML reads 1e10 as a string (YAML 1.1 wants a dot); accept it where a number is expected.
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Any:
        return value
    else:
        raise TypeError(f"config type {hint!r} of {key} is not supported")
    raise ConfigError(f"{source}: {key}={value!r}; expected {hint.__name__}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
