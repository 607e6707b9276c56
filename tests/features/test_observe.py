"""darkstack observe on a small store: zarr layout, determinism, resumption, shared views."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.features import observe as observe_module
from darkstack.features.hi import HIConfig, hi_moment_maps
from darkstack.features.observe import (
    CHANNELS,
    ObserveConfig,
    draw_view,
    rotate_particles,
    run_observe,
)
from darkstack.features.photometry import BANDS, PhotometryConfig, render_sdss
from darkstack.ingest.cutouts import read_cutout
from darkstack.provenance import ProvenanceError
from darkstack.store import StoreLayout, column_units

PIXELS = 48
CONFIG = ObserveConfig(
    n_realisations=2,
    photometry=PhotometryConfig(n_pixels=PIXELS),
    hi=HIConfig(n_pixels=PIXELS),
)


@pytest.fixture(scope="module")
def store(tiny_ingested_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("observed") / "store"
    shutil.copytree(tiny_ingested_store, store)
    run_observe(CONFIG, store=store, progress=False)
    return store


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_zarr_dataset_has_the_contract_layout(store: Path) -> None:
    galaxies = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    ok = galaxies[galaxies.status == "ok"].sort_values("subhalo_id")
    dataset = xr.open_zarr(StoreLayout(store).zarr("observations"), consolidated=False)
    n_samples = 2 * len(ok)
    assert len(ok) >= 3
    assert dataset["images"].dims == ("sample", "channel", "y", "x")
    assert dataset["images"].shape == (n_samples, 8, PIXELS, PIXELS)
    assert dataset["images"].dtype == np.float32
    assert list(dataset["channel"].values) == list(CHANNELS)
    assert dataset["images"].encoding["chunks"] == (1, 8, PIXELS, PIXELS)
    assert dataset["targets"].dims == ("sample", "radius")
    np.testing.assert_allclose(
        dataset["targets"].values[::2], np.stack(ok["log10_mdm_enclosed"]), rtol=1e-6
    )
    assert list(dataset["subhalo_id"].values[::2]) == list(ok["subhalo_id"])
    assert list(dataset["realisation"].values[:2]) == [0, 1]
    assert np.all((dataset["distance_mpc"] >= 10) & (dataset["distance_mpc"] <= 20))
    assert dataset["orientation"].shape == (n_samples, 4)
    assert "config" in dataset.attrs and "channel_units" in dataset.attrs
    assert dataset.attrs["format_version"] == 2  # built from the store's schema
    assert dataset["targets"].attrs["units"] == "log10 Msun"
    assert np.isfinite(dataset["images"].values).all()


def test_observations_catalog_has_one_row_per_sample(store: Path) -> None:
    table = pd.read_parquet(StoreLayout(store).catalog("observations"))
    dataset = xr.open_zarr(StoreLayout(store).zarr("observations"), consolidated=False)
    assert table["sample"].tolist() == list(range(dataset.sizes["sample"]))
    assert (table.status == "ok").all()
    assert (table.r_band_flux_nanomaggies > 0).all() and (table.hi_flux_jy_kms >= 0).all()
    assert column_units(StoreLayout(store).catalog("observations"))["distance_mpc"] == "Mpc"


def test_the_schemas_channels_are_in_the_order_observe_stacks_them() -> None:
    # _observe stacks render_sdss's bands (photometry's BANDS order), then HI moments 0-2.
    assert CHANNELS == (*(f"sdss_{band}" for band in BANDS), "hi_mom0", "hi_mom1", "hi_mom2")


def test_views_are_deterministic_and_uniform_on_the_sphere() -> None:
    first = draw_view(seed=1, subhalo_id=7, realisation=0, config=CONFIG)
    assert first == draw_view(seed=1, subhalo_id=7, realisation=0, config=CONFIG)
    assert first != draw_view(seed=1, subhalo_id=7, realisation=1, config=CONFIG)
    lines_of_sight = np.array(
        [
            draw_view(seed=2, subhalo_id=s, realisation=0, config=CONFIG).rotation[2]
            for s in range(3000)
        ]
    )
    # Where the galaxy frame's axes point along the line of sight: uniform on the sphere.
    assert np.abs(lines_of_sight.mean(axis=0)).max() < 0.05
    assert np.var(lines_of_sight[:, 2]) == pytest.approx(1 / 3, abs=0.03)


def test_rerun_skips_and_resumes_with_identical_bytes(store: Path, tmp_path: Path) -> None:
    before = _tree(store)
    run_observe(CONFIG, store=store, progress=False)
    assert _tree(store) == before
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    for record in sorted(StoreLayout(copy).work("observations").glob("*.json"))[:3]:
        record.unlink()
    StoreLayout(copy).catalog("observations").unlink()
    run_observe(CONFIG, store=copy, progress=False)
    assert _tree(copy) == before


def test_an_unreadable_cutout_is_retried_and_the_rest_built(
    tiny_ingested_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_ingested_store, store)
    galaxies = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    victim = int(galaxies[galaxies.status == "ok"].subhalo_id.iloc[0])
    StoreLayout(store).cutout(victim).write_bytes(b"not an HDF5 file")
    summary = run_observe(CONFIG, store=store, progress=False)
    table = pd.read_parquet(StoreLayout(store).catalog("observations"))
    assert table[table.subhalo_id == victim].status.str.startswith("retry: OSError").all()
    assert (table[table.subhalo_id != victim].status == "ok").all()
    images = xr.open_zarr(StoreLayout(store).zarr("observations"), consolidated=False)["images"]
    assert np.isnan(images.values[table.subhalo_id == victim]).all()
    assert not summary.report.complete
    assert summary.report.retry == {"OSError": CONFIG.n_realisations} or (
        sum(summary.report.retry.values()) == CONFIG.n_realisations
    )


def test_observing_before_the_cutouts_exist_completes_once_they_do(
    store: Path, tiny_ingested_store: Path, tmp_path: Path
) -> None:
    """The probe's case: every sample failed for good; now each is retried by the next run."""
    early = tmp_path / "store"
    shutil.copytree(tiny_ingested_store, early)
    cutouts = StoreLayout(early).cutouts
    cutouts.rename(tmp_path / "cutouts-elsewhere")
    runner = CliRunner()
    arguments = ["observe", "--store", str(early), *_cli_settings(CONFIG)]
    first = runner.invoke(cli, arguments)
    assert first.exit_code == 1, first.output
    last = first.output.strip().splitlines()[-1]
    n = 2 * int((pd.read_parquet(StoreLayout(early).catalog("galaxies")).status == "ok").sum())
    assert last == (
        f"darkstack: error: observe: 0 of {n} samples ok; {n} to retry, re-run to build them "
        f"({n} x FileNotFoundError: No such file or directory)"
    ), last
    (tmp_path / "cutouts-elsewhere").rename(cutouts)
    second = runner.invoke(cli, arguments)
    assert second.exit_code == 0, second.output
    assert second.output.strip().splitlines()[-1] == f"observe: {n} of {n} samples ok"
    assert _tree(early) == _tree(store)


def test_a_full_disk_fails_the_build_and_the_next_run_completes_it(
    store: Path, tiny_ingested_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = tmp_path / "store"
    shutil.copytree(tiny_ingested_store, full)
    calls = []

    def no_space(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) % 3 == 0:  # every third view finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return observe_module.hi_moment_maps(*args, **kwargs)

    monkeypatch.setattr(observe_module, "hi_moment_maps", no_space)
    first = run_observe(CONFIG, store=full, progress=False)
    assert first.report.retry == {"OSError: No space left on device": len(calls) // 3}, first.report
    assert not first.report.complete
    monkeypatch.undo()
    second = run_observe(CONFIG, store=full, progress=False)
    assert second.report.complete and second.report.n_ok == second.report.n_items
    assert _tree(full) == _tree(store)


def _cli_settings(config: ObserveConfig) -> list[str]:
    return [
        "--set",
        f"n_realisations={config.n_realisations}",
        "--set",
        f"photometry.n_pixels={config.photometry.n_pixels}",
        "--set",
        f"hi.n_pixels={config.hi.n_pixels}",
    ]


def test_a_different_config_is_refused_naming_the_keys(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    with pytest.raises(ProvenanceError, match=r"\(seed: 0 -> 9\); pass --rebuild"):
        run_observe(dataclasses.replace(CONFIG, seed=9), store=copy, progress=False)
    rebuilt = run_observe(
        dataclasses.replace(CONFIG, seed=9), store=copy, progress=False, rebuild=True
    )
    assert rebuilt.report.complete
    attrs = xr.open_zarr(StoreLayout(copy).zarr("observations"), consolidated=False).attrs
    assert '"seed": 9' in attrs["config"]


def test_an_old_format_store_is_refused_then_replaced_by_rebuild(
    store: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    path = StoreLayout(copy).zarr("observations")
    expected = _tree(store)
    # Format 1 said nothing of its format; the same settings do not make it current.
    del zarr.open_group(path, mode="r+").attrs["format_version"]
    result = CliRunner().invoke(cli, ["observe", "--store", str(copy), *_cli_settings(CONFIG)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"darkstack: error: {path}: observations.zarr format version 1, this darkstack reads "
        f"format 2; rebuild it with `darkstack observe --store {copy} --rebuild`"
    ]
    rebuilt = run_observe(CONFIG, store=copy, progress=False, rebuild=True)
    assert rebuilt.report.complete
    assert _tree(copy) == expected  # what a current observe writes, byte for byte


def test_a_reingest_that_changes_the_galaxies_is_refused(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    path = StoreLayout(copy).catalog("galaxies")
    table = pq.read_table(path)
    status = table.column("status").to_pylist()
    status[status.index("ok")] = "failed: no gas particles in the cutout"
    table = table.set_column(table.schema.get_field_index("status"), "status", pa.array(status))
    pq.write_table(table, path)
    with pytest.raises(ProvenanceError, match="the ok galaxies or their targets"):
        run_observe(CONFIG, store=copy, progress=False)


def _position_angle(image: np.ndarray) -> float:
    """Orientation of an image's light from its second moments, in degrees in [0, 180)."""
    weights = np.clip(np.nan_to_num(image), 0.0, None)
    y, x = np.indices(image.shape, dtype=np.float64)
    total = weights.sum()
    xc, yc = (weights * x).sum() / total, (weights * y).sum() / total
    xx = (weights * (x - xc) ** 2).sum() / total
    yy = (weights * (y - yc) ** 2).sum() / total
    xy = (weights * (x - xc) * (y - yc)).sum() / total
    return float(np.degrees(0.5 * np.arctan2(2 * xy, xx - yy)) % 180.0)


def test_images_and_hi_maps_share_the_view(tiny_ingested_store: Path) -> None:
    """A disk seen inclined: the stellar and HI disks' position angles agree."""
    galaxies = pd.read_parquet(StoreLayout(tiny_ingested_store).catalog("galaxies"))
    ok = galaxies[galaxies.status == "ok"].sort_values("hi_mass_msun", ascending=False)
    particles, _ = read_cutout(StoreLayout(tiny_ingested_store).cutout(int(ok.subhalo_id.iloc[0])))
    own = particles["gas"]["in_subhalo"] & (particles["gas"]["temperature_k"] < 3e4)
    spin = np.cross(
        particles["gas"]["position_kpc"][own], particles["gas"]["velocity_kms"][own]
    ).sum(axis=0)
    spin /= np.linalg.norm(spin)
    photometry = dataclasses.replace(CONFIG.photometry, noise=False, dust=False)
    # The HI disk reaches ~3x further than the stars: a field that cut it off would bias its
    # second moments toward the square's diagonal.
    hi = dataclasses.replace(CONFIG.hi, noise=False, field_of_view_arcmin=12.0)
    photometry = dataclasses.replace(photometry, field_of_view_arcmin=4.0)
    for angle_deg in (30.0, 75.0, 120.0):
        # Put the spin in the y-z plane at 70 degrees inclination, then turn the sky by angle.
        target = np.array([0.0, np.sin(np.radians(70)), np.cos(np.radians(70))])
        rotation = _rotation_between(spin, target)
        turn = np.radians(angle_deg)
        sky = np.array(
            [[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]]
        )
        observed = rotate_particles(particles, sky @ rotation)
        optical = render_sdss(
            observed["stars"], observed["gas"], distance_mpc=15.0, config=photometry,
            rng=np.random.default_rng(0),
        )  # fmt: skip
        maps = hi_moment_maps(observed["gas"], distance_mpc=15.0, config=hi, seed=0)
        stellar, gaseous = _position_angle(optical[2]), _position_angle(maps.mom0)
        difference = abs((stellar - gaseous + 90.0) % 180.0 - 90.0)
        assert difference < 15.0, (angle_deg, stellar, gaseous)
        # The disk's major axis is perpendicular to the projected spin: along angle_deg.
        assert abs((gaseous - angle_deg + 90.0) % 180.0 - 90.0) < 15.0


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix taking unit vector ``a`` to unit vector ``b`` (Rodrigues)."""
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)
