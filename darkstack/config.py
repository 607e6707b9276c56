"""Typed, frozen configuration for every stage, read from YAML and saved with every output.

Each stage declares a frozen dataclass; :func:`load_config` builds it from (in increasing
priority) the dataclass defaults, a named preset, a YAML file and ``--set key=value`` overrides,
checking every key and type so a typo is an error that names the file and the key rather than a
silently ignored setting. :func:`config_to_dict` gives the plain mapping stored in zarr attrs,
parquet metadata and checkpoints so each result says how it was made.

Values are validated in one mechanism, declared beside the fields (docs/settings.md):

- a field's allowed values are ``Annotated`` metadata, :class:`Range` for numbers (and each
  item of a tuple of numbers), :class:`OneOf` for names (of models, enums) that are not a
  ``Literal``, :class:`Increasing` for ``(low, high)`` ranges and :class:`Format` for strings
  of a form a parser accepts (sizes, durations)::

      r_max_kpc: Annotated[float, Range(gt=0)] = 100.0
      mass_function_model: Annotated[str, OneOf(colossus_models)] = "tinker08"

- a ``Literal`` field is checked as a :class:`OneOf` of its values;
- rules across fields are :class:`Rule` entries of the class's ``RULES``;
- a config class derives from :class:`Checked`, whose ``__post_init__`` applies both, whether
  the config comes from YAML, ``--set`` or Python.

A broken constraint raises :class:`ConfigError` naming the key, the value and what is allowed
(with a did-you-mean for a misspelt name or key), before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import operator
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

import yaml

from darkstack.errors import InputError

T = TypeVar("T")


class ConfigError(InputError, ValueError):
    """A configuration value, key or file that is not what the stage expects."""


class SettingError(ConfigError):
    """One setting that breaks its constraint: ``key=value; expected ...``.

    Attributes
    ----------
    key : str
        The setting, dotted relative to the config that checked it (the loader prefixes the
        path of a nested config and names the source).
    value : object
        Its value.
    expected : str
        What is allowed.
    """

    def __init__(self, *, key: str, value: Any, expected: str) -> None:
        super().__init__(f"{key}={shown(value)}; expected {expected}")
        self.key, self.value, self.expected = key, value, expected


@dataclasses.dataclass(frozen=True)
class Range:
    """The interval a number must lie in; unset bounds are open. ``None`` values pass.

    Parameters
    ----------
    ge, gt, le, lt : float, optional
        ``value >= ge``, ``value > gt``, ``value <= le``, ``value < lt``.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: Any) -> str | None:
        """What is expected, when ``value`` (or an item of a tuple) is outside the interval."""
        if value is None:
            return None
        if isinstance(value, tuple):
            problems = (self.problem(item) for item in value)
            found = next((problem for problem in problems if problem is not None), None)
            return None if found is None else f"every item {found.removeprefix('a value ')}"
        bounds = [
            (op, bound)
            for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if bound is not None
        ]
        allowed = " and ".join(f"{op} {bound:g}" for op, bound in bounds) or "a finite number"
        checks = {">=": value.__ge__, ">": value.__gt__, "<=": value.__le__, "<": value.__lt__}
        if not math.isfinite(value) or not all(checks[op](bound) for op, bound in bounds):
            return f"a value {allowed}" if bounds else allowed
        return None


@dataclasses.dataclass(frozen=True)
class OneOf:
    """A name that must be one of ``choices`` (a sequence, or a function giving it, so that a
    library listing its models is imported only when a config is checked)."""

    choices: Sequence[str] | Callable[[], Sequence[str]]

    def allowed(self) -> list[str]:
        """The allowed names."""
        return list(self.choices() if callable(self.choices) else self.choices)

    def problem(self, value: Any) -> str | None:
        """What is expected, when ``value`` (or an item of a tuple) is not an allowed name."""
        allowed = self.allowed()
        if isinstance(value, tuple):
            wrong = [item for item in value if item not in allowed]
            return None if not wrong else f"names {one_of(wrong[0], allowed)}"
        return None if value in allowed else one_of(value, allowed)


@dataclasses.dataclass(frozen=True)
class Increasing:
    """A tuple whose items increase (``(low, high)`` ranges); ``strict=False`` allows ties."""

    strict: bool = True

    def problem(self, value: Any) -> str | None:
        """What is expected, when the items of ``value`` do not increase."""
        if value is None:
            return None
        pairs = list(itertools.pairwise(value))
        if all(low < high if self.strict else low <= high for low, high in pairs):
            return None
        return "items in increasing order" if self.strict else "items in non-decreasing order"


@dataclasses.dataclass(frozen=True)
class Format:
    """A value that ``parse`` accepts (a size ``16GB``, a duration ``55m``); ``None`` passes.

    Parameters
    ----------
    parse : callable
        Raises ``ValueError``, ``TypeError`` or ``KeyError`` for a value of the wrong form.
    expected : str
        The form, as the error message states it (``a size such as 16GB``).
    """

    parse: Callable[[Any], object]
    expected: str

    def problem(self, value: Any) -> str | None:
        """What is expected, when ``parse`` refuses ``value``."""
        if value is None:
            return None
        try:
            self.parse(value)
        except (ValueError, TypeError, KeyError):
            return self.expected
        return None


#: What a field's ``Annotated`` metadata may hold.
Constraint = Range | OneOf | Increasing | Format


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule across the fields of a config.

    Parameters
    ----------
    key : str
        The setting blamed when the rule is broken, dotted from the config that holds the rule
        (``targets.r_max_kpc``).
    problem : callable
        ``problem(config)``: what is expected of ``key`` when the config breaks the rule, or
        None when it holds.
    """

    key: str
    problem: Callable[[Any], str | None]

    @classmethod
    def ordered(
        cls, key: str, relation: str, other: str, *, spec: str | None = None, why: str = ""
    ) -> Rule:
        """``key relation other`` between two fields: the one rule most configs state.

        Parameters
        ----------
        key, other : str
            The two fields; ``key`` is blamed when the order is broken.
        relation : {"<", "<=", ">", ">="}
            What ``key`` must be relative to ``other``.
        spec : str, optional
            Format spec of ``other``'s value in the message (default: ``d`` for integers, ``g``
            for floats).
        why : str, optional
            Reason appended to the message in parentheses.

        The rule holds when either field is None (an unset optional bound).
        """
        holds = _ORDERINGS[relation]

        def problem(config: Any) -> str | None:
            value, bound = getattr(config, key), getattr(config, other)
            if value is None or bound is None or holds(value, bound):
                return None
            shown = format(bound, spec or ("d" if isinstance(bound, int) else "g"))
            return f"{relation} {other}={shown}" + (f" ({why})" if why else "")

        return cls(key, problem)


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Checked:
    """Base of config dataclasses: applies their field constraints and ``RULES``.

    Subclasses are frozen dataclasses; ``__post_init__`` checks the fields in declaration
    order, then the rules, and raises :class:`SettingError` at the first broken one.
    """

    #: Rules across fields, checked after every field passed its own constraints.
    RULES: ClassVar[tuple[Rule, ...]] = ()

    def __post_init__(self) -> None:
        for name, constraints in _constraints(type(self)).items():
            value = getattr(self, name)
            for constraint in constraints:
                expected = constraint.problem(value)
                if expected is not None:
                    raise SettingError(key=name, value=value, expected=expected)
        for rule in type(self).RULES:
            expected = rule.problem(self)
            if expected is not None:
                blamed: Any = self
                for part in rule.key.split("."):
                    blamed = getattr(blamed, part)
                raise SettingError(key=rule.key, value=blamed, expected=expected)


def shown(value: Any) -> str:
    """``value`` as an error message shows it: floats short (``1e+14``), others by repr."""
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def one_of(value: Any, allowed: Sequence[Any]) -> str:
    """``one of [...]``, with the closest allowed name when ``value`` looks like a typo."""
    text = f"one of {list(allowed)}"
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1, cutoff=0.6)
        if close:
            text += f" (did you mean {close[0]!r}?)"
    return text


#: The constraints of each config class, read from its type hints once.
_CONSTRAINTS: dict[type, dict[str, tuple[Constraint, ...]]] = {}


def _constraints(cls: type) -> dict[str, tuple[Constraint, ...]]:
    if cls in _CONSTRAINTS:
        return _CONSTRAINTS[cls]
    hints = typing.get_type_hints(cls, include_extras=True)
    constraints: dict[str, tuple[Constraint, ...]] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        found: tuple[Constraint, ...] = ()
        if get_origin(hint) in (typing.Union, types.UnionType):
            # An optional constrained value, ``Annotated[int, Range(ge=1)] | None``.
            annotated = [arg for arg in get_args(hint) if get_origin(arg) is typing.Annotated]
            hint = annotated[0] if len(annotated) == 1 else hint
        if get_origin(hint) is typing.Annotated:
            found = tuple(m for m in hint.__metadata__ if isinstance(m, Constraint))
            hint = get_args(hint)[0]
        # A Literal is checked when the config is made in Python too, not only when loaded.
        if get_origin(hint) is Literal:
            found = (OneOf(get_args(hint)), *found)
        if found:
            constraints[field.name] = found
    _CONSTRAINTS[cls] = constraints
    return constraints


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
        # PyYAML's message spans several lines; its mark and problem fit one.
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None
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
        raise ConfigError(f"{source}: {_unknown_key(cls, str(unknown[0]), prefix=prefix)}")
    hints = typing.get_type_hints(cls)
    kwargs = {
        name: _coerce(hints[name], data[name], source=source, key=f"{prefix}{name}")
        for name in fields
        if name in data
    }
    try:
        return cls(**kwargs)
    except SettingError as error:
        raise ConfigError(
            f"{source}: {prefix}{error.key}={shown(error.value)}; expected {error.expected}"
        ) from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {where}: {error}") from None


def _unknown_key(cls: Any, key: str, *, prefix: str) -> str:
    """``unknown key ...`` with the closest key: a typo, or a key of a nested config."""
    fields = sorted(field.name for field in dataclasses.fields(cls) if field.init)
    paths = list(_dotted_keys(cls))
    close = (
        difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
        or [path for path in paths if path.rpartition(".")[2] == key][:1]
    )
    if close:
        return f"unknown key {prefix}{key}; did you mean {prefix}{close[0]}?"
    return f"unknown key {prefix}{key}; expected one of {fields}"


def _dotted_keys(cls: Any, prefix: str = "") -> Iterator[str]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        yield prefix + field.name
        if dataclasses.is_dataclass(hints[field.name]):
            yield from _dotted_keys(hints[field.name], prefix=f"{prefix}{field.name}.")


def _coerce(hint: Any, value: Any, *, source: str, key: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source=source, prefix=f"{key}.")
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(
                f"{source}: {key}={value!r}; expected {one_of(value, get_args(hint))}"
            )
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
