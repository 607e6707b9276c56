"""Typed configs from presets, YAML and --set overrides, with errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from darkstack.config import ConfigError, config_to_dict, dump_config, load_config


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

    with pytest.raises(ConfigError, match="invalid value for box_size_mpc_h"):
        load_config(UniverseConfig, overrides=["box_size_mpc_h=-1"])
