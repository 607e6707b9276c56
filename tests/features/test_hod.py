"""The HOD baseline of dm2gal (features/fields/hod.py): fit, paint, deposit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from darkstack.config import SettingError
from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig
from darkstack.features.fields.hod import (
    Catalog,
    HodConfig,
    deposit_on_fields_grid,
    deposit_painting,
    fit_hod,
    hod_for_runs,
    matched_host_mass_msun,
    paint,
)
from darkstack.ingest.tng_local import read_dataset
from darkstack.tng_layout import subhalo_matching_path
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig

SNAP = 99
#: A synthetic occupation: centrals' log10 M* = ALPHA + BETA (log10 M_h - 12) with a lognormal
#: scatter of SIGMA dex; satellites one dex lower, a fraction DARK_FRACTION of them starless.
ALPHA, BETA, SIGMA = 10.0, 1.5, 0.2
DARK_FRACTION = 0.3
LOG_HOST_RANGE = (11.0, 13.0)


def _synthetic(rng: np.random.Generator, n_halos: int) -> dict[str, np.ndarray]:
    log_host = rng.uniform(*LOG_HOST_RANGE, size=n_halos)
    n_sat = rng.poisson(3.0, size=n_halos)
    host = np.concatenate([log_host, np.repeat(log_host, n_sat)])
    central = np.concatenate([np.ones(n_halos, bool), np.zeros(n_sat.sum(), bool)])
    level = ALPHA + BETA * (host - 12.0) - np.where(central, 0.0, 1.0)
    stars = 10 ** (level + SIGMA * rng.standard_normal(host.size))
    stars[~central & (rng.random(host.size) < DARK_FRACTION)] = 0.0
    return {"host_mass_msun": 10**host, "central": central, "stellar_mass_msun": stars}


def _expected_mean(low: float, high: float, *, offset: float, lit: float) -> float:
    """Mean M* over log10 M_h uniform in [low, high): the power law's integral, the lognormal's
    mean factor exp((sigma ln 10)^2 / 2), times the fraction with stars."""
    ln10 = np.log(10.0)
    integral = (10 ** (BETA * (high - 12.0)) - 10 ** (BETA * (low - 12.0))) / (BETA * ln10)
    return float(
        lit * 10 ** (ALPHA - offset) * integral / (high - low) * np.exp((SIGMA * ln10) ** 2 / 2)
    )


def test_fit_recovers_a_known_occupation() -> None:
    rng = np.random.default_rng(1)
    hod = fit_hod(**_synthetic(rng, 20_000), n_bins=5)
    edges = hod.edges_log10_msun
    assert edges[0] == pytest.approx(LOG_HOST_RANGE[0], abs=1e-3)
    assert edges[-1] == pytest.approx(LOG_HOST_RANGE[1], abs=1e-3)
    for role, offset, lit in (("central", 0.0, 1.0), ("satellite", 1.0, 1 - DARK_FRACTION)):
        means = hod.mean_msun(role)  # type: ignore[arg-type]
        for b, pool in enumerate(hod.pool(role)):  # type: ignore[arg-type]
            expected = _expected_mean(edges[b], edges[b + 1], offset=offset, lit=lit)
            error = pool.std() / np.sqrt(pool.size)
            assert abs(means[b] - expected) < 4 * error, (role, b, means[b], expected)
    starless = np.concatenate(hod.satellites) == 0
    assert starless.mean() == pytest.approx(DARK_FRACTION, abs=0.01)
    assert (np.concatenate(hod.centrals) > 0).all()


def test_mean_painting_puts_the_hydro_mass_of_every_bin_into_the_dark_run() -> None:
    rng = np.random.default_rng(2)
    hydro = _synthetic(rng, 3_000)
    hod = fit_hod(**hydro, n_bins=10)
    # The Dark run: the same halos, twice as many satellites (no baryonic disruption).
    central = hydro["central"]
    hosts = hydro["host_mass_msun"]
    satellites = np.repeat(hosts[~central], 2)
    dark_host = np.concatenate([hosts[central], satellites])
    dark_central = np.concatenate([np.ones(central.sum(), bool), np.zeros(satellites.size, bool)])
    painted = paint(
        hod,
        host_mass_msun=dark_host,
        central=dark_central,
        scatter=False,
        satellite_rescale=True,
        rng=rng,
    )
    assert painted.sum() == pytest.approx(hydro["stellar_mass_msun"].sum(), rel=1e-12)
    assert painted[dark_central].sum() == pytest.approx(
        hydro["stellar_mass_msun"][central].sum(), rel=1e-12
    )
    # Without the rescaling the surplus of Dark satellites paints twice their mass.
    unscaled = paint(
        hod,
        host_mass_msun=dark_host,
        central=dark_central,
        scatter=False,
        satellite_rescale=False,
        rng=rng,
    )
    ratio = unscaled[~dark_central].sum() / hydro["stellar_mass_msun"][~central].sum()
    assert ratio == pytest.approx(2.0, rel=1e-12)


def test_random_painting_reproduces_the_stellar_mass_function() -> None:
    rng = np.random.default_rng(5)
    hydro = _synthetic(rng, 20_000)
    hod = fit_hod(**hydro, n_bins=10)
    painted = paint(
        hod,
        host_mass_msun=hydro["host_mass_msun"],
        central=hydro["central"],
        scatter=True,
        satellite_rescale=True,
        rng=rng,
    )
    edges = np.arange(7.0, 13.0, 0.25)
    stars = hydro["stellar_mass_msun"]
    true_counts = np.histogram(np.log10(stars[stars > 0]), edges)[0]
    counts = np.histogram(np.log10(painted[painted > 0]), edges)[0]
    # Both are Poisson draws of one function: 4 sigma of their difference in every bin.
    assert (np.abs(counts - true_counts) <= 4 * np.sqrt(counts + true_counts + 1)).all()
    shifted = np.histogram(np.log10(painted[painted > 0]) + 0.1, edges)[0]
    assert not (np.abs(shifted - true_counts) <= 4 * np.sqrt(shifted + true_counts + 1)).all()


def test_random_painting_is_set_by_its_seed_and_draws_from_the_bin() -> None:
    hod = fit_hod(**_synthetic(np.random.default_rng(3), 500), n_bins=4)
    hosts = 10 ** np.random.default_rng(4).uniform(*LOG_HOST_RANGE, size=400)
    central = np.arange(400) % 3 == 0

    def drawn(seed: int) -> np.ndarray:
        return paint(
            hod,
            host_mass_msun=hosts,
            central=central,
            scatter=True,
            satellite_rescale=False,
            rng=np.random.default_rng(seed),
        )

    first = drawn(7)
    assert np.array_equal(first, drawn(7))
    assert not np.array_equal(first, drawn(8))
    bins = hod.bin_of(hosts)
    for i in range(0, 400, 37):
        pool = hod.pool("central" if central[i] else "satellite")[bins[i]]
        assert first[i] in pool


def test_bad_input_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="host masses must be > 0 Msun"):
        fit_hod(
            host_mass_msun=[1e12, 0.0], central=[True, True], stellar_mass_msun=[1, 1], n_bins=2
        )
    with pytest.raises(ValueError, match="must be 1D and of one length"):
        fit_hod(host_mass_msun=[1e12], central=[True, False], stellar_mass_msun=[1], n_bins=2)
    with pytest.raises(SettingError, match="n_bins"):
        HodConfig(n_bins=0)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny hydro run, its gravity-only twin and the truth's field on a 16³ grid."""
    root = tmp_path_factory.mktemp("hod")
    config = UniverseConfig(seed=5, box_size_mpc_h=8.0, snapshot_files=2, groupcat_files=1)
    build_universe(config, root / "sim", dark_twin=root / "dark", progress=False)
    sim, dark = root / "sim" / "output", root / "dark" / "output"
    fields = FieldsConfig(grid=16, fields=("hydro_stellar_mass_subhalo",))
    run_fields(fields, sim=sim, store=root / "store", progress=False)
    return sim, dark, root / "store"


def test_matched_hosts_are_the_dark_masses_of_the_twins_groups(
    pair: tuple[Path, Path, Path],
) -> None:
    sim, dark, _ = pair
    hydro, twin = Catalog.read(sim, SNAP), Catalog.read(dark, SNAP)
    match = read_dataset(
        subhalo_matching_path(sim), "Snapshot_99/SubhaloIndexDark_LHaloTree"
    ).astype(np.int64)
    host, found = matched_host_mass_msun(hydro, twin, match)
    # The twin keeps the hydro run's group order: a hydro subhalo's Dark host is its group's.
    assert found.all()
    assert np.array_equal(host, twin.group_mass_msun[hydro.group_number])


def test_the_painted_dark_run_has_the_hydro_stellar_mass_function(
    pair: tuple[Path, Path, Path],
) -> None:
    sim, dark, store = pair
    hydro = Catalog.read(sim, SNAP)
    edges = np.arange(8.0, 12.5, 0.5)
    stars = hydro.stellar_mass_msun
    true_counts = np.histogram(np.log10(stars[stars > 0]), edges)[0]
    painting = hod_for_runs(HodConfig(seed=11), sim=sim, dark=dark)
    painted = painting.stellar_mass_msun
    counts = np.histogram(np.log10(painted[painted > 0]), edges)[0]
    # Poisson errors of both counts, 3 sigma.
    assert (np.abs(counts - true_counts) <= 3 * np.sqrt(counts + true_counts + 1)).all(), (
        counts,
        true_counts,
    )
    # The mean painting puts the hydro run's whole stellar mass into the Dark run: the twin's
    # centrals are the hydro centrals' twins, and satellites are rescaled by the counts.
    mean = hod_for_runs(HodConfig(scatter=False), sim=sim, dark=dark).stellar_mass_msun
    assert mean.sum() == pytest.approx(stars.sum(), rel=1e-9)
    grid = deposit_on_fields_grid(painting, store=store)
    assert grid.shape == (16,) * 3
    assert grid.sum() == pytest.approx(painted.sum(), rel=1e-12)


def test_the_deposit_is_the_fields_deposit_of_the_truth(pair: tuple[Path, Path, Path]) -> None:
    sim, _, store = pair
    hydro = Catalog.read(sim, SNAP)
    grid = deposit_painting(
        hydro.position_ckpc_h,
        hydro.stellar_mass_msun,
        box_ckpc_h=hydro.box_ckpc_h,
        grid=16,
        scheme="cic",
    )
    truth = zarr.open_group(store / "fields.zarr", mode="r")["hydro_stellar_mass_subhalo"][:]
    np.testing.assert_allclose(grid, truth, rtol=1e-6, atol=1e-6 * float(truth.max()))


def test_host_mass_modes_bin_by_the_dark_or_the_hydro_group_mass(
    pair: tuple[Path, Path, Path],
) -> None:
    sim, dark, _ = pair
    hydro, twin = Catalog.read(sim, SNAP), Catalog.read(dark, SNAP)
    own = hod_for_runs(HodConfig(host_mass="own"), sim=sim, dark=dark).hod
    matched = hod_for_runs(HodConfig(), sim=sim, dark=dark).hod
    hydro_hosts = np.log10(hydro.host_mass_msun)
    dark_hosts = np.log10(twin.group_mass_msun[hydro.group_number])
    np.testing.assert_allclose(
        own.edges_log10_msun[[0, -1]], [hydro_hosts.min(), hydro_hosts.max()]
    )
    np.testing.assert_allclose(
        matched.edges_log10_msun[[0, -1]], [dark_hosts.min(), dark_hosts.max()]
    )
    assert not np.allclose(own.edges_log10_msun, matched.edges_log10_msun)
