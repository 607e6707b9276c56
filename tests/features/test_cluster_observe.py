"""``ingest --task cluster_mass`` then ``observe --kind cluster_maps`` on clusters-quick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy.integrate import quad

from darkstack.cli import cli
from darkstack.constants import ELECTRON_REST_ENERGY_ERG, KEV_ERG, KPC_CM, THOMSON_CROSS_SECTION_CM2
from darkstack.cosmology import TNG_COSMOLOGY
from darkstack.features.cluster_observe import (
    SAMPLES_PER_CHUNK,
    ClusterMapsConfig,
    clusters2dmaps_rotations,
    euler_rotation,
    fibonacci_rotations,
)
from darkstack.store import CLUSTER_MAPS_ZARR, StoreLayout
from darkstack.universe.clusters.preset import ClustersConfig, build_clusters, draw_clusters

#: Small maps and two views keep each build to seconds; the physics does not depend on it.
FAST = ("--set", "n_lines_of_sight=2", "--set", "oversample=2", "--set", "n_pixels=40")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clusters") / "sim"
    build_clusters(ClustersConfig(), root, progress=False)
    return root / "output"


def _run(*args: str) -> object:
    result = CliRunner().invoke(cli, list(args), obj={})
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def ingested(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    _run("ingest", "--task", "cluster_mass", "--sim", str(sim), "--store", str(store))
    return store


@pytest.fixture(scope="module")
def paper_maps(ingested: Path) -> Path:
    _run("observe", "--kind", "cluster_maps", "--store", str(ingested), *FAST)
    return ingested


def test_ingest_writes_a_cutout_and_a_row_per_cluster(ingested: Path) -> None:
    layout = StoreLayout(ingested)
    catalog = pd.read_parquet(layout.catalog("clusters"))
    assert list(catalog["status"]) == ["ok"] * ClustersConfig().n_clusters
    for group_id in catalog["group_id"]:
        assert layout.cluster_cutout(int(group_id)).is_file()
    # R500c measured from the cutout's particles agrees with the universe's truth for
    # undisturbed clusters (a subcluster inside R500 adds its mass to the measured sphere).
    relaxed = catalog[catalog["subcluster_m200c_msun"] == 0]
    assert len(relaxed) > 0
    np.testing.assert_allclose(relaxed["r500c_kpc"], relaxed["true_r500c_kpc"], rtol=0.05)


def test_a_cluster_that_fails_is_recorded_not_fatal(sim: Path, tmp_path: Path) -> None:
    from darkstack.ingest.clusters import ClusterIngestConfig, ingest_cluster

    row = ingest_cluster(
        10_000, base_path=str(sim), store=str(tmp_path), config=ClusterIngestConfig()
    )
    assert row["status"].startswith("unreadable"), row["status"]
    assert not StoreLayout(tmp_path).cluster_cutout(10_000).exists()


def test_maps_follow_the_schema_and_units(paper_maps: Path) -> None:
    path = StoreLayout(paper_maps).zarr("cluster_maps")
    CLUSTER_MAPS_ZARR.check(path)
    maps = xr.open_zarr(path, consolidated=False)
    assert maps.images.shape == (12, 3, 40, 40)
    assert maps.targets.shape == (12, 40, 40)
    # Whole samples per chunk: a training batch reads every channel and pixel of its samples.
    assert maps.images.encoding["chunks"] == (SAMPLES_PER_CHUNK, 3, 40, 40)
    assert maps.targets.encoding["chunks"] == (SAMPLES_PER_CHUNK, 40, 40)
    assert maps.attrs["framing"] == "paper"
    y, sx, stars = (maps.images.values[:, c] for c in range(3))
    # Cluster Compton-y peaks at 1e-5-1e-4 (Planck clusters), S_X is positive where gas is.
    assert 1e-6 < y.max() < 1e-3
    assert (sx > 0).mean() > 0.9
    # The stellar map is inside the total-mass map: Sigma_* <= Sigma_total almost everywhere
    # (a Gaussian-smoothed edge may differ by the smoothing of the two particle sets).
    assert np.mean(stars <= maps.targets.values * 1.01) > 0.99
    # Pixel size: 2 R200c / n_pixels in the paper's framing.
    catalog = pd.read_parquet(StoreLayout(paper_maps).catalog("clusters")).set_index("group_id")
    r200 = catalog.loc[maps.group_id.values, "r200c_kpc"].to_numpy()
    np.testing.assert_allclose(maps.pixel_kpc.values, 2.0 * r200 / 40)


def test_total_mass_map_holds_the_particles_in_the_projected_volume(paper_maps: Path) -> None:
    """Sum of the target map times the pixel area = particle mass within +-1 R200 in x and y
    (the map) and +-3 R200 along the line of sight, up to the kernels crossing the edge."""
    from darkstack.ingest.clusters import read_cluster_cutout

    maps = xr.open_zarr(StoreLayout(paper_maps).zarr("cluster_maps"), consolidated=False)
    catalog = pd.read_parquet(StoreLayout(paper_maps).catalog("clusters")).set_index("group_id")
    sample = 0
    group = int(maps.group_id.values[sample])
    r200 = float(catalog.loc[group, "r200c_kpc"])
    cutout = read_cluster_cutout(StoreLayout(paper_maps).cluster_cutout(group))
    rotation = clusters2dmaps_rotations()[int(maps.line_of_sight.values[sample])]
    position = np.concatenate([cutout[k]["position_kpc"] for k in cutout]) @ rotation
    mass = np.concatenate([cutout[k]["mass_msun"] for k in cutout])
    inside = np.all(np.abs(position[:, :2]) <= r200, axis=1) & (np.abs(position[:, 2]) <= 3 * r200)
    summed = float(maps.targets.values[sample].sum() * maps.pixel_kpc.values[sample] ** 2)
    assert summed == pytest.approx(mass[inside].sum(), rel=0.02)


def _model_y_cyl_mpc2(gas: object, *, radius_kpc: float, extent_kpc: float) -> float:
    """sigma_T/(m_e c^2) times P_e integrated over the cylinder of radius R inside the sphere
    of the cutout (shell fraction inside the cylinder: 1 - sqrt(1 - R^2/r^2) beyond R)."""

    def shell(r: float) -> float:
        fraction = 1.0 if r <= radius_kpc else 1.0 - np.sqrt(1.0 - (radius_kpc / r) ** 2)
        return float(gas.electron_pressure_kev_cm3(np.array([r]))[0]) * 4 * np.pi * r**2 * fraction  # type: ignore[attr-defined]

    inner, _ = quad(shell, 0.0, radius_kpc, limit=200, epsrel=1e-6)
    outer, _ = quad(shell, radius_kpc, extent_kpc, limit=200, epsrel=1e-6)
    # keV cm^-3 kpc^3 times sigma_T / (m_e c^2) is an area in kpc^3 cm^-1: one KPC_CM to kpc^2.
    y_kpc2 = (inner + outer) * KEV_ERG * THOMSON_CROSS_SECTION_CM2 / ELECTRON_REST_ENERGY_ERG
    return y_kpc2 * KPC_CM / 1.0e6


def test_y500_of_a_view_matches_the_gas_model(paper_maps: Path) -> None:
    observables = pd.read_parquet(StoreLayout(paper_maps).catalog("cluster_observables"))
    catalog = pd.read_parquet(StoreLayout(paper_maps).catalog("clusters")).set_index("group_id")
    clusters = draw_clusters(ClustersConfig(), TNG_COSMOLOGY)
    relaxed = catalog.index[catalog["subcluster_m200c_msun"] == 0]
    group = int(relaxed[np.argmax(catalog.loc[relaxed, "m200c_msun"])])
    r500 = float(catalog.loc[group, "r500c_kpc"])
    model = _model_y_cyl_mpc2(
        clusters[group].halo.gas(),
        radius_kpc=r500,
        extent_kpc=3.0 * float(catalog.loc[group, "r200c_kpc"]),
    )
    measured = observables.loc[observables["group_id"] == group, "y500_cyl_mpc2"].to_numpy()
    np.testing.assert_allclose(measured, model, rtol=0.05)


def test_observer_framing_is_a_fixed_aperture_on_the_bcg(ingested: Path) -> None:
    _run(
        "observe", "--kind", "cluster_maps", "--store", str(ingested), *FAST,
        "--set", "framing=observer", "--set", "aperture_kpc=2000",
    )  # fmt: skip
    maps = xr.open_zarr(StoreLayout(ingested).zarr("cluster_maps"), consolidated=False)
    assert maps.attrs["framing"] == "observer"
    # Every cluster gets the same physical pixel, whatever its R200c.
    np.testing.assert_allclose(maps.pixel_kpc.values, 2000.0 / 40)
    observables = pd.read_parquet(StoreLayout(ingested).catalog("cluster_observables"))
    assert set(observables["framing"]) == {"observer"}


def test_clusters2dmaps_rotations_are_proper_and_the_last_is_the_identity() -> None:
    rotations = clusters2dmaps_rotations()
    assert rotations.shape == (29, 3, 3)
    for r in rotations:
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(rotations[-1], np.eye(3), atol=1e-12)
    # The first row (0, -90, 0): rotate_data's Rxyz[0, 2] = cos a cos g sin b + sin a sin g = -1,
    # so the old x axis becomes the line of sight (pointing away): (1, 0, 0) @ R = (0, 0, -1).
    np.testing.assert_allclose(np.array([1.0, 0.0, 0.0]) @ euler_rotation(0, -90, 0), [0, 0, -1],
                               atol=1e-12)  # fmt: skip


def test_fibonacci_lines_of_sight_cover_the_sphere_evenly() -> None:
    rotations = fibonacci_rotations(200, seed=3)
    direction = rotations[:, :, 2]
    np.testing.assert_allclose(np.linalg.norm(direction, axis=1), 1.0)
    # An isotropic set has a mean direction ~0 and <z^2> = 1/3 along any axis.
    assert np.linalg.norm(direction.mean(axis=0)) < 0.02
    np.testing.assert_allclose((direction**2).mean(axis=0), 1.0 / 3.0, atol=0.02)


def test_more_than_29_clusters2dmaps_views_is_refused() -> None:
    with pytest.raises(ValueError, match="n_lines_of_sight=30"):
        ClusterMapsConfig(n_lines_of_sight=30)


def test_unknown_kind_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["observe", "--kind", "clusters", "--store", str(tmp_path)], obj={}
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "cluster_maps" in lines[0], result.stderr


def test_store_without_cluster_cutouts_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["observe", "--kind", "cluster_maps", "--store", str(tmp_path)], obj={}
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "darkstack ingest --task cluster_mass" in lines[0], lines[0]
