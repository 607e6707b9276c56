"""Provenance comparisons name the dotted keys that differ."""

from __future__ import annotations

from darkstack.provenance import describe_change, differing_keys, flatten


def test_differing_keys_are_dotted_and_skip_the_ignored() -> None:
    saved = {"cutout": {"min_radius_kpc": 100.0, "fov": 17.2}, "seed": 0, "cache": "a", "t": [1]}
    current = {"cutout": {"min_radius_kpc": 150.0, "fov": 17.2}, "seed": 0, "cache": "b", "t": (1,)}
    assert flatten(saved)["cutout.min_radius_kpc"] == 100.0
    keys = differing_keys(saved, current, ignore=("cache",))
    assert keys == ["cutout.min_radius_kpc"]
    assert differing_keys(saved, current, ignore=("cutout.", "cache")) == []
    assert differing_keys({"a": 1}, {"b": 1}) == ["a", "b"]
    assert describe_change(saved, current, keys) == "cutout.min_radius_kpc: 100.0 -> 150.0"
