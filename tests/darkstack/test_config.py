"""Typed configs from presets, YAML and --set overrides, with errors that name the key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml

from darkstack.config import (
    Checked,
    ConfigError,
    Format,
    Increasing,
    OneOf,
    Range,
    Rule,
    SettingError,
    config_to_dict,
    dump_config,
    load_config,
)


@dataclass(frozen=True, kw_only=True)
class Inner:
    rate: float = 1.0
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True, kw_only=True)
class Outer:
    seed: int = 0
    mode: Literal["fast", "exact"] = "fast"
    limit: float | None = None
    inner: Inner = field(default_factory=Inner)


def test_priority_is_defaults_preset_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: 2\ninner:\n  rate: 3\n")
    config = load_config(
        Outer, path=path, preset={"seed": 1, "mode": "exact"}, overrides=["inner.rate=1e10"]
    )
    assert config == Outer(seed=2, mode="exact", inner=Inner(rate=1e10))
    assert isinstance(config.inner.rate, float)


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    config = Outer(seed=5, limit=2.5, inner=Inner(names=("x", "y")))
    dump_config(config, tmp_path / "out.yaml")
    assert yaml.safe_load((tmp_path / "out.yaml").read_text()) == config_to_dict(config)
    assert load_config(Outer, path=tmp_path / "out.yaml") == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sede=3"], "--set: unknown key sede"),
        (["inner.rte=3"], "--set: unknown key inner.rte"),
        (["seed=abc"], "--set: seed='abc'; expected int"),
        (["mode=slow"], "--set: mode='slow'; expected one of ['fast', 'exact']"),
        (["inner.names=3"], "inner.names=3; expected a list"),
        (["seed"], "--set 'seed': expected key=value"),
        (["seed=true"], "seed=True; expected int"),
    ],
)
def test_bad_values_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(Outer, overrides=overrides)
    assert message in str(error.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, path=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match=f"{bad} holds a list, expected a mapping"):
        load_config(Outer, path=bad)
    bad.write_text("seed: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(Outer, path=bad)


def test_dataclass_validation_errors_are_config_errors() -> None:
    from darkstack.universe.config import UniverseConfig

    with pytest.raises(ConfigError, match=r"^--set: box_size_mpc_h=-1; expected a value > 0$"):
        load_config(UniverseConfig, overrides=["box_size_mpc_h=-1"])


@dataclass(frozen=True, kw_only=True)
class Limits(Checked):
    low: Annotated[float, Range(gt=0)] = 1.0
    high: Annotated[float, Range(gt=0, le=10)] = 2.0
    count: Annotated[int | None, Range(ge=1)] = None
    model: Annotated[str, OneOf(lambda: ["tinker08", "watson13"])] = "tinker08"

    RULES = (Rule.ordered("low", "<=", "high"),)


@dataclass(frozen=True, kw_only=True)
class Holder(Checked):
    limits: Limits = field(default_factory=Limits)
    seed: int = 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["limits.low=-1"], "--set: limits.low=-1; expected a value > 0"),
        (["limits.low=.nan"], "--set: limits.low=nan; expected a value > 0"),
        (["limits.high=11"], "--set: limits.high=11; expected a value > 0 and <= 10"),
        (["limits.count=0"], "--set: limits.count=0; expected a value >= 1"),
        (["limits.low=5"], "--set: limits.low=5; expected <= high=2"),
        (
            ["limits.model=tinkr08"],
            "--set: limits.model='tinkr08'; expected one of ['tinker08', 'watson13'] "
            "(did you mean 'tinker08'?)",
        ),
        (["limits.hihg=3"], "--set: unknown key limits.hihg; did you mean limits.high?"),
        (["high=3"], "--set: unknown key high; did you mean limits.high?"),
        (["sede=1"], "--set: unknown key sede; did you mean seed?"),
        (["nothing_like_it=1"], "--set: unknown key nothing_like_it; expected one of"),
    ],
)
def test_constraints_name_the_key_the_value_and_what_is_allowed(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(Holder, overrides=overrides)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@dataclass(frozen=True, kw_only=True)
class Window(Checked):
    first: int = 0
    last: int | None = None

    RULES = (Rule.ordered("first", "<", "last", why="the window is not empty"),)


def test_an_ordering_rule_skips_an_unset_bound_and_shows_integers_as_integers() -> None:
    assert Window(first=5).last is None  # no bound, no rule
    assert Window(first=1, last=2).first == 1
    with pytest.raises(ConfigError) as error:
        Window(first=3_000_000, last=3_000_000)
    assert str(error.value) == ("first=3000000; expected < last=3000000 (the window is not empty)")


def test_constraints_hold_for_configs_made_in_python_too() -> None:
    assert Holder(limits=Limits(count=3)).limits.count == 3
    with pytest.raises(SettingError, match=r"^low=-1; expected a value > 0$") as error:
        Limits(low=-1.0)
    assert (error.value.key, error.value.value) == ("low", -1.0)
    with pytest.raises(SettingError, match=r"^low=3; expected <= high=2$"):
        Limits(low=3.0)


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


@dataclass(frozen=True, kw_only=True)
class Shapes(Checked):
    widths: Annotated[tuple[int, ...], Range(ge=1)] = (2, 3)
    window: Annotated[tuple[float, float], Range(gt=0), Increasing()] = (1.0, 2.0)
    span: Annotated[tuple[float, float], Increasing(strict=False)] = (1.0, 1.0)
    names: Annotated[tuple[str, ...], OneOf(("xy", "rv"))] = ("xy",)
    size: Annotated[str, Format(_positive_int, "a positive integer in a string")] = "4"
    cap: Annotated[int, Range(ge=1)] | None = None
    mode: Literal["fast", "exact"] = "fast"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"widths": (2, 0)}, "widths=(2, 0); expected every item >= 1"),
        ({"window": (1.0, -2.0)}, "window=(1.0, -2.0); expected every item > 0"),
        ({"window": (2.0, 1.0)}, "window=(2.0, 1.0); expected items in increasing order"),
        ({"window": (1.0, 1.0)}, "window=(1.0, 1.0); expected items in increasing order"),
        ({"span": (2.0, 1.0)}, "span=(2.0, 1.0); expected items in non-decreasing order"),
        ({"names": ("xy", "vr")}, "names=('xy', 'vr'); expected names one of ['xy', 'rv']"),
        ({"size": "-4"}, "size='-4'; expected a positive integer in a string"),
        ({"size": "four"}, "size='four'; expected a positive integer in a string"),
        ({"cap": 0}, "cap=0; expected a value >= 1"),
        ({"mode": "slow"}, "mode='slow'; expected one of ['fast', 'exact']"),
    ],
)
def test_tuples_ranges_formats_optionals_and_literals(
    change: dict[str, object], message: str
) -> None:
    assert Shapes(span=(1.0, 1.0), cap=None) == Shapes()
    assert Shapes(cap=3, size="12").cap == 3
    with pytest.raises(SettingError) as error:
        Shapes(**change)  # type: ignore[arg-type]
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        (
            "ingest",
            ["targets.r_max_kpc=300"],
            "targets.r_max_kpc=300; expected <= the cutout radius 100 kpc",
        ),
        (
            "ingest",
            ["cutout.min_radius_kpc=-50"],
            "cutout.min_radius_kpc=-50; expected a value > 0",
        ),
        ("ingest", ["galaxies_per_task=0"], "galaxies_per_task=0; expected a value >= 1"),
        (
            "universe",
            ["concentration_scatter_dex=-0.5"],
            "concentration_scatter_dex=-0.5; expected a value >= 0",
        ),
        (
            "universe",
            ["mass_function_model=tinkr08"],
            "mass_function_model='tinkr08'; expected one of ['tinker08', ",
        ),
    ],
)
def test_the_issues_settings_fail_before_any_work(
    config: str, overrides: list[str], message: str
) -> None:
    from darkstack.ingest.config import IngestConfig
    from darkstack.universe.config import UniverseConfig

    cls = {"ingest": IngestConfig, "universe": UniverseConfig}[config]
    with pytest.raises(ConfigError, match=rf"^--set: {re.escape(message)}"):
        load_config(cls, overrides=overrides)


def test_the_mass_function_models_are_colossus_ones_with_m200c() -> None:
    from colossus.lss import mass_function

    from darkstack.universe.config import mass_function_models

    models = mass_function_models()
    assert "tinker08" in models and "press74" not in models  # press74 is FoF-only
    assert set(models) <= set(mass_function.models)
