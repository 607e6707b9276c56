"""The TNG web API client against a fake API serving a tiny mock universe.

What the client returns is compared with what illustris_python reads from the same universe on
disk, the reader a user with a local TNG mirror would use.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import illustris_python as il
import numpy as np
import pytest

from darkstack.ingest.tng_api import (
    SUBHALO_API_FIELDS,
    MissingAPIKeyError,
    TNGAPIError,
    TNGAuthError,
    TNGNotFoundError,
    TNGWebAPI,
    resolve_api_key,
)
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig

# tests/ has no packages (pytest runs in importlib mode): the helper is a sibling module.
sys.path.insert(0, str(Path(__file__).parent))
from fake_tng_api import FakeTNGAPI, serve_fake_tng_api

SIM = "TNG100-1"
SNAP = 99
KEY = "0123456789abcdef-fake-test-key"


@pytest.fixture(scope="module")
def sim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    config = UniverseConfig(box_size_mpc_h=8.0, snapshot_files=3, groupcat_files=2)
    build_universe(config, root, progress=False)
    return root


@pytest.fixture(scope="module")
def base_path(sim_root: Path) -> str:
    return str(sim_root / "output")


@pytest.fixture(scope="module")
def catalog(base_path: str) -> dict[str, Any]:
    return il.groupcat.loadSubhalos(base_path, SNAP)


@pytest.fixture(scope="module")
def server(sim_root: Path) -> Iterator[FakeTNGAPI]:
    """A well-behaved fake shared by the tests that only count their own requests."""
    with serve_fake_tng_api(sim_root, api_key=KEY, simulation=SIM) as api:
        yield api


def make_client(api: FakeTNGAPI, cache_dir: Path, **options: Any) -> TNGWebAPI:
    settings: dict[str, Any] = {"api_key": KEY, "backoff_s": 0.01, "timeout_s": 10.0} | options
    return TNGWebAPI(simulation=SIM, base_url=api.base_url, cache_dir=cache_dir, **settings)


def counted(api: FakeTNGAPI, call: Callable[[], Any]) -> tuple[Any, int]:
    """The result of ``call`` and how many requests it sent to ``api``."""
    before = api.request_count
    result = call()
    return result, api.request_count - before


def test_subhalo_detail_equals_group_catalog_row(
    server: FakeTNGAPI, tmp_path: Path, base_path: str, catalog: dict[str, Any]
) -> None:
    covered = {field for field, _ in SUBHALO_API_FIELDS.values()}
    assert set(catalog) - {"count"} <= covered, "every catalog field has an API name"
    client = make_client(server, tmp_path)
    first_sub = il.groupcat.loadHalos(base_path, SNAP, fields=["GroupFirstSub"])
    flags = []
    for subhalo_id in range(catalog["count"]):
        detail = client.subhalo(SNAP, subhalo_id)
        for api_name, (field, column) in SUBHALO_API_FIELDS.items():
            if field in catalog:
                value = catalog[field][subhalo_id]
                assert detail[api_name] == (value if column is None else value[column]), api_name
        # Spelled out, so a wrong entry in the shared name table cannot pass unnoticed.
        assert detail["mass_stars"] == catalog["SubhaloMassType"][subhalo_id, 4]
        assert detail["len_dm"] == catalog["SubhaloLenType"][subhalo_id, 1]
        assert detail["pos_y"] == catalog["SubhaloPos"][subhalo_id, 1]
        assert detail["sfr"] == catalog["SubhaloSFR"][subhalo_id]
        grnr = int(catalog["SubhaloGrNr"][subhalo_id])
        assert detail["grnr"] == grnr
        assert detail["id"] == subhalo_id
        assert detail["primary_flag"] == int(first_sub[grnr] == subhalo_id)
        assert detail["cutouts"]["subhalo"].endswith(f"/subhalos/{subhalo_id}/cutout.hdf5")
        flags.append(detail["primary_flag"])
    assert set(flags) == {0, 1}, "the mock universe should hold centrals and satellites"


def test_search_pagination_returns_every_match_once(
    server: FakeTNGAPI, tmp_path: Path, base_path: str, catalog: dict[str, Any]
) -> None:
    client = make_client(server, tmp_path)
    stellar_mass = catalog["SubhaloMassType"][:, 4].astype(np.float64)
    threshold = float(np.quantile(stellar_mass, 0.25))
    first_sub = il.groupcat.loadHalos(base_path, SNAP, fields=["GroupFirstSub"])
    central = first_sub[catalog["SubhaloGrNr"]] == np.arange(catalog["count"])
    expected = np.flatnonzero((stellar_mass > threshold) & central).tolist()
    assert len(expected) > 10, "too few matches to need several pages"

    results, requests = counted(
        server,
        lambda: list(
            client.search_subhalos(SNAP, mass_stars__gt=threshold, primary_flag=1, limit=4)
        ),
    )

    ids = [result["id"] for result in results]
    assert ids == expected  # each match once, in id order
    assert requests == -(-len(expected) // 4)  # one request per page of 4


def test_pagination_links_are_followed_on_the_configured_origin(
    sim_root: Path, tmp_path: Path, catalog: dict[str, Any]
) -> None:
    # Port 1 of another loopback address refuses at once: following the link verbatim fails.
    elsewhere = "http://127.0.0.2:1/api/"
    with serve_fake_tng_api(sim_root, api_key=KEY, simulation=SIM, link_base_url=elsewhere) as api:
        client = make_client(api, tmp_path, max_retries=0)
        ids = [result["id"] for result in client.search_subhalos(SNAP, limit=10)]
    assert ids == list(range(catalog["count"]))


@pytest.mark.parametrize(
    ("kind", "object_id", "loader"),
    [("subhalo", 0, il.snapshot.loadSubhalo), ("halo", 1, il.snapshot.loadHalo)],
)
def test_cutout_particles_equal_the_snapshot(
    server: FakeTNGAPI,
    tmp_path: Path,
    base_path: str,
    kind: str,
    object_id: int,
    loader: Callable[..., dict[str, Any]],
) -> None:
    client = make_client(server, tmp_path)
    download = client.subhalo_cutout if kind == "subhalo" else client.halo_cutout
    path = download(
        SNAP,
        object_id,
        fields={"gas": ["Coordinates", "Masses"], "dm": "Coordinates", "stars": ["all"]},
    )
    with h5py.File(path, "r") as cutout:
        assert sorted(cutout) == ["Header", "PartType0", "PartType1", "PartType4"]
        assert sorted(cutout["PartType0"]) == ["Coordinates", "Masses"]
        assert sorted(cutout["PartType1"]) == ["Coordinates"]
        stars = loader(base_path, SNAP, object_id, 4)
        assert stars["count"] > 0 and sorted(cutout["PartType4"]) == sorted(set(stars) - {"count"})
        for ptype, group in ((0, "PartType0"), (1, "PartType1"), (4, "PartType4")):
            for name in cutout[group]:
                expected = loader(base_path, SNAP, object_id, ptype, fields=[name])
                np.testing.assert_array_equal(cutout[group][name][()], expected, f"{group}/{name}")


def test_second_request_is_served_from_the_cache(server: FakeTNGAPI, tmp_path: Path) -> None:
    fields = {"dm": ["Coordinates"]}
    client = make_client(server, tmp_path)
    path, first = counted(server, lambda: client.subhalo_cutout(SNAP, 2, fields=fields))
    detail, first_detail = counted(server, lambda: client.subhalo(SNAP, 2))
    assert (first, first_detail) == (1, 1)

    # A new client on the same folder stands for a rerun or another worker.
    again = make_client(server, tmp_path)
    cached_path, second = counted(server, lambda: again.subhalo_cutout(SNAP, 2, fields=fields))
    cached_detail, second_detail = counted(server, lambda: again.subhalo(SNAP, 2))
    assert (second, second_detail) == (0, 0)
    assert cached_path == path and cached_detail == detail
    assert all(KEY not in entry.name for entry in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    ("status", "retry_after", "failures", "min_seconds"),
    [(503, None, 3, 0.0), (429, "1", 1, 1.0)],
)
def test_transient_errors_are_retried(
    sim_root: Path,
    tmp_path: Path,
    catalog: dict[str, Any],
    status: int,
    retry_after: str | None,
    failures: int,
    min_seconds: float,
) -> None:
    with serve_fake_tng_api(
        sim_root,
        api_key=KEY,
        simulation=SIM,
        fail_first=failures,
        fail_status=status,
        retry_after=retry_after,
    ) as api:
        client = make_client(api, tmp_path)
        start = time.monotonic()
        detail = client.subhalo(SNAP, 3)
        elapsed = time.monotonic() - start
        assert api.request_count == failures + 1
    assert detail["mass"] == catalog["SubhaloMass"][3]
    # backoff_s is 0.01 s: a wait this long can only come from Retry-After.
    assert elapsed >= min_seconds


def test_retries_stop_after_max_retries(sim_root: Path, tmp_path: Path) -> None:
    with serve_fake_tng_api(sim_root, api_key=KEY, simulation=SIM, fail_first=100) as api:
        client = make_client(api, tmp_path, max_retries=2)
        with pytest.raises(TNGAPIError, match=r"failed \(3 attempts\); last: HTTP 503"):
            client.subhalo(SNAP, 0)
        assert api.request_count == 3


def test_wrong_key_fails_at_once_without_revealing_it(
    server: FakeTNGAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "fedcba9876543210-wrong-key"
    client = make_client(server, tmp_path, api_key=wrong_key)
    caplog.set_level(logging.DEBUG)

    before = server.request_count
    with pytest.raises(TNGAuthError) as raised:
        client.subhalo_cutout(SNAP, 0, fields={"dm": ["Coordinates"]})

    assert server.request_count - before == 1, "a rejected key must not be retried"
    assert str(raised.value) == (
        "the TNG API rejected the API key (HTTP 403); check TNG_API_KEY or the key file"
    )
    assert wrong_key not in repr(client) and "***" in repr(client)
    assert wrong_key not in caplog.text
    assert all(wrong_key not in entry.name for entry in tmp_path.rglob("*"))


def test_unknown_subhalo_names_the_object(server: FakeTNGAPI, tmp_path: Path) -> None:
    client = make_client(server, tmp_path)
    before = server.request_count
    with pytest.raises(TNGNotFoundError, match=rf"no {SIM}/snapshots/{SNAP}/subhalos/999999 "):
        client.subhalo(SNAP, 999_999)
    assert server.request_count - before == 1, "a missing object must not be retried"


def test_api_key_comes_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "tng_key"
    key_file.write_text("\n   \n  file-key  \nsecond-line\n", encoding="utf-8")
    monkeypatch.setenv("TNG_API_KEY", "env-key")
    assert resolve_api_key(key_file=key_file) == "file-key"
    assert resolve_api_key(key_file=tmp_path / "absent") == "env-key"
    assert resolve_api_key(key_file=None) == "env-key"


def test_missing_api_key_names_both_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TNG_API_KEY", raising=False)
    key_file = tmp_path / "tng_key"
    with pytest.raises(MissingAPIKeyError) as raised:
        resolve_api_key(key_file=key_file)
    assert "TNG_API_KEY" in str(raised.value) and str(key_file) in str(raised.value)
    with pytest.raises(MissingAPIKeyError, match="TNG_API_KEY"):
        TNGWebAPI(api_key=None, cache_dir=tmp_path / "cache")


def test_truncated_download_is_fetched_again(
    sim_root: Path, tmp_path: Path, base_path: str
) -> None:
    with serve_fake_tng_api(sim_root, api_key=KEY, simulation=SIM, truncate_first=1) as api:
        client = make_client(api, tmp_path)
        path = client.subhalo_cutout(SNAP, 0, fields={"dm": ["Coordinates"]})
        assert api.request_count == 2
    with h5py.File(path, "r") as cutout:
        expected = il.snapshot.loadSubhalo(base_path, SNAP, 0, 1, fields=["Coordinates"])
        np.testing.assert_array_equal(cutout["PartType1/Coordinates"][()], expected)
    assert [entry.name for entry in tmp_path.iterdir()] == [path.name], "no temporary file left"


def test_corrupt_cached_file_is_fetched_again(server: FakeTNGAPI, tmp_path: Path) -> None:
    client = make_client(server, tmp_path)
    path = client.subhalo_cutout(SNAP, 1, fields={"stars": ["Masses"]})
    intact = path.read_bytes()
    path.write_bytes(intact[: len(intact) // 3])

    again, requests = counted(
        server, lambda: client.subhalo_cutout(SNAP, 1, fields={"stars": ["Masses"]})
    )

    assert again == path and requests == 1
    assert path.read_bytes() == intact


def test_groupcat_subset_equals_the_catalog(
    server: FakeTNGAPI, tmp_path: Path, base_path: str, catalog: dict[str, Any]
) -> None:
    client = make_client(server, tmp_path)
    path = client.groupcat_subset(
        SNAP, subhalo_fields=["SubhaloSFR", "SubhaloMassType"], group_fields=["GroupFirstSub"]
    )
    with h5py.File(path, "r") as subset:
        assert sorted(subset["Subhalo"]) == ["SubhaloMassType", "SubhaloSFR"]
        for name in subset["Subhalo"]:
            np.testing.assert_array_equal(subset["Subhalo"][name][()], catalog[name])
        first_sub = il.groupcat.loadHalos(base_path, SNAP, fields=["GroupFirstSub"])
        np.testing.assert_array_equal(subset["Group/GroupFirstSub"][()], first_sub)


def test_simulation_info_gives_cosmology_and_dark_matter_mass(
    server: FakeTNGAPI, tmp_path: Path, base_path: str
) -> None:
    info = make_client(server, tmp_path).simulation_info()
    with h5py.File(il.snapshot.snapPath(base_path, SNAP), "r") as snapshot:
        header = snapshot["Header"].attrs
        assert info["mass_dm"] == header["MassTable"][1] > 0
        assert info["hubble"] == header["HubbleParam"]
        assert info["boxsize"] == header["BoxSize"]
