"""darkstack ingest on a mock universe: selection, cutouts, targets, robustness, errors."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import h5py
import illustris_python as il
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.cosmology import TNG_COSMOLOGY
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import CutoutConfig, IngestConfig
from darkstack.ingest.cutouts import particles_in_spheres, read_cutout
from darkstack.ingest.tng_local import SimulationError
from darkstack.store import StoreLayout, column_units, read_metadata
from darkstack.units import CodeUnits
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig

SNAP = 99
UNITS = CodeUnits(hubble_param=TNG_COSMOLOGY.hubble_param, scale_factor=1.0)
UNIVERSE = UniverseConfig(seed=11, box_size_mpc_h=10.0, snapshot_files=5, groupcat_files=2)
CONFIG = IngestConfig()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    build_universe(UNIVERSE, root, progress=False)
    return root


@pytest.fixture(scope="module")
def store(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    run_ingest(CONFIG, sim=sim / "output", store=store, progress=False)
    return store


@pytest.fixture(scope="module")
def galaxies(store: Path) -> pd.DataFrame:
    return pd.read_parquet(StoreLayout(store).catalog("galaxies"))


def test_selection_equals_an_independent_illustris_python_selection(sim, galaxies) -> None:
    base = str(sim / "output")
    subhalos = il.groupcat.loadSubhalos(base, SNAP)
    groups = il.groupcat.loadHalos(base, SNAP)
    h = il.groupcat.loadHeader(base, SNAP)["HubbleParam"]
    mstar = subhalos["SubhaloMassType"][:, 4] * 1e10 / h
    expected = [
        i
        for i in range(subhalos["count"])
        if 1e10 <= mstar[i] <= 1e12
        and subhalos["SubhaloSFR"][i] >= 0.1
        and subhalos["SubhaloParent"][i] == 0
        and groups["GroupFirstSub"][subhalos["SubhaloGrNr"][i]] == i
        and subhalos["SubhaloFlag"][i] == 1
    ]
    assert len(expected) >= 5
    assert galaxies["subhalo_id"].tolist() == expected
    np.testing.assert_allclose(galaxies["stellar_mass_msun"], mstar[expected], rtol=1e-6)


def test_catalog_has_the_contract_columns_with_units(store, galaxies) -> None:
    contract = [
        "subhalo_id", "group_id", "snap", "stellar_mass_msun", "sfr_msun_yr", "m200c_msun",
        "r200c_kpc", "r_half_star_kpc", "log10_mdm_enclosed", "radii_kpc", "status",
    ]  # fmt: skip
    assert set(contract) <= set(galaxies.columns)
    units = column_units(StoreLayout(store).catalog("galaxies"))
    assert units["stellar_mass_msun"] == "Msun" and units["log10_mdm_enclosed"] == "log10 Msun"
    metadata = read_metadata(StoreLayout(store).catalog("galaxies"))
    np.testing.assert_allclose(metadata["radii_kpc"], np.geomspace(1, 100, 20))
    assert metadata["config"]["selection"]["sfr_min_msun_yr"] == 0.1
    assert metadata["format_version"] == 1
    assert all(len(radii) == 20 for radii in galaxies["radii_kpc"])
    assert StoreLayout(store).ingest_config.is_file()


def _brute_force_sphere(sim: Path, ptype: int, centre: np.ndarray, radius: float) -> np.ndarray:
    """IDs of all particles of a type within ``radius`` of ``centre`` (periodic), from raw HDF5."""
    ids, positions = [], []
    for index in range(UNIVERSE.snapshot_files):
        with h5py.File(sim / f"output/snapdir_099/snap_099.{index}.hdf5", "r") as file:
            box = file["Header"].attrs["BoxSize"]
            if f"PartType{ptype}" in file:
                ids.append(file[f"PartType{ptype}/ParticleIDs"][()])
                positions.append(file[f"PartType{ptype}/Coordinates"][()])
    delta = np.concatenate(positions) - centre
    delta -= box * np.round(delta / box)
    return np.sort(np.concatenate(ids)[np.linalg.norm(delta, axis=1) < radius])


def test_cutouts_equal_a_brute_force_periodic_sphere(sim, store, galaxies) -> None:
    subhalos = il.groupcat.loadSubhalos(str(sim / "output"), SNAP, fields=["SubhaloPos"])
    radius = UNITS.kpc_to_length(CONFIG.cutout.radius_kpc)
    for subhalo_id in galaxies["subhalo_id"][:6]:
        particles, attrs = read_cutout(StoreLayout(store).cutout(subhalo_id))
        assert attrs["subhalo_id"] == subhalo_id
        for kind, ptype in (("gas", 0), ("dm", 1)):
            expected = _brute_force_sphere(sim, ptype, subhalos[subhalo_id], radius)
            np.testing.assert_array_equal(particles[kind]["particle_id"], expected)
        stars = _brute_force_sphere(sim, 4, subhalos[subhalo_id], radius)
        assert set(particles["stars"]["particle_id"]) <= set(stars)  # minus wind cells
        assert np.all(np.linalg.norm(particles["dm"]["position_kpc"], axis=1) < 100.0 + 1e-3)


def test_cutouts_wrap_the_periodic_box_and_cross_chunk_files(sim, tmp_path) -> None:
    """A sphere large enough to cross the box edge for every galaxy, and chunk boundaries."""
    config = dataclasses.replace(CONFIG, cutout=CutoutConfig(min_radius_kpc=2500.0))
    store = tmp_path / "store"
    run_ingest(config, sim=sim / "output", store=store, progress=False)
    table = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    subhalos = il.groupcat.loadSubhalos(str(sim / "output"), SNAP, fields=["SubhaloPos"])
    box = il.groupcat.loadHeader(str(sim / "output"), SNAP)["BoxSize"]
    radius = UNITS.kpc_to_length(2500.0)
    near_edge = [
        s
        for s in table["subhalo_id"]
        if np.any((subhalos[s] < radius) | (subhalos[s] > box - radius))
    ]
    assert near_edge
    for subhalo_id in near_edge[:2]:
        particles, _ = read_cutout(StoreLayout(store).cutout(subhalo_id))
        expected = _brute_force_sphere(sim, 1, subhalos[subhalo_id], radius)
        np.testing.assert_array_equal(particles["dm"]["particle_id"], expected)
        # The sphere crosses the edge: some particles came from the far side of the box.
        assert np.ptp(UNITS.kpc_to_length(particles["dm"]["position_kpc"][:, 0])) < 2 * radius + 1


def test_particles_in_spheres_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 100, size=(5000, 3))
    centres = np.array([[1.0, 50.0, 99.0], [50.0, 50.0, 50.0], [0.0, 0.0, 0.0]])
    sphere, particle = particles_in_spheres(positions, centres, 7.5, 100.0)
    for index, centre in enumerate(centres):
        delta = positions - centre
        delta -= 100.0 * np.round(delta / 100.0)
        expected = np.flatnonzero(np.linalg.norm(delta, axis=1) < 7.5)
        np.testing.assert_array_equal(np.sort(particle[sphere == index]), expected)


def test_targets_match_the_analytic_profiles(sim, galaxies) -> None:
    truth = pd.read_parquet(sim / "truth.parquet").set_index("subhalo_id")
    ok = galaxies[galaxies.status == "ok"]
    assert len(ok) >= 5
    pulls = []
    for row in ok.itertuples():
        own = np.asarray(row.log10_mdm_enclosed_subhalo)
        total = np.asarray(row.log10_mdm_enclosed)
        assert np.all(np.diff(total) >= 0) and np.all(np.diff(own) >= 0), "profiles are monotonic"
        assert np.all(total >= own - 1e-9), "neighbours only add mass"
        analytic = np.asarray(truth.loc[row.subhalo_id, "log10_mdm_enclosed"])
        expected_n = 10**analytic / UNIVERSE.dm_particle_mass_msun
        measured_n = 10**own / UNIVERSE.dm_particle_mass_msun
        resolved = expected_n > 20
        pulls.extend((measured_n[resolved] - expected_n[resolved]) / np.sqrt(expected_n[resolved]))
    pulls = np.asarray(pulls)
    assert abs(np.median(pulls)) < 1.0
    assert np.mean(np.abs(pulls) < 4) > 0.95


def test_baseline_profiles_are_consistent(galaxies) -> None:
    ok = galaxies[galaxies.status == "ok"]
    for row in ok.itertuples():
        stars = np.asarray(row.mstar_enclosed_msun)
        assert np.all(np.diff(stars) >= 0)
        assert stars[-1] >= 0.5 * row.stellar_mass_msun
        assert row.r_half_star_cutout_kpc == pytest.approx(row.r_half_star_kpc, rel=0.05)
        assert 30 < row.v_rot_2rhalf_kms < 500


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_rerun_is_idempotent_and_resumes_interrupted_builds(sim, store, tmp_path) -> None:
    before = _tree(store)
    run_ingest(CONFIG, sim=sim / "output", store=store, progress=False)
    assert _tree(store) == before
    # An interrupted build: the catalog and half the cutouts are missing.
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    StoreLayout(copy).catalog("galaxies").unlink()
    for path in sorted(StoreLayout(copy).cutouts.glob("*.hdf5"))[::2]:
        path.unlink()
    run_ingest(CONFIG, sim=sim / "output", store=copy, progress=False)
    assert _tree(copy) == before


def test_a_failing_galaxy_is_recorded_and_the_rest_built(sim, tmp_path) -> None:
    broken = tmp_path / "sim"
    shutil.copytree(sim, broken)
    subhalos = il.groupcat.loadSubhalos(str(sim / "output"), SNAP, fields=["SubhaloPos"])
    reference = pd.read_parquet(_ingest(sim, tmp_path / "reference"))
    victim = int(reference["subhalo_id"].iloc[0])
    # Poison the density of the gas cells around one galaxy in every chunk.
    for path in (broken / "output/snapdir_099").glob("*.hdf5"):
        with h5py.File(path, "r+") as file:
            if "PartType0" not in file:
                continue
            delta = file["PartType0/Coordinates"][()] - subhalos[victim]
            near = np.linalg.norm(delta, axis=1) < UNITS.kpc_to_length(5.0)
            density = file["PartType0/Density"][()]
            density[near] = np.nan
            file["PartType0/Density"][...] = density
    table = pd.read_parquet(_ingest(broken, tmp_path / "store"))
    status = dict(zip(table.subhalo_id, table.status, strict=True))
    assert status[victim].startswith("failed: non-finite values in gas/")
    others = table[table.subhalo_id != victim]
    assert (others.status == reference[reference.subhalo_id != victim].status.values).all()


def _ingest(sim: Path, store: Path) -> Path:
    run_ingest(CONFIG, sim=sim / "output", store=store, progress=False)
    return StoreLayout(store).catalog("galaxies")


def test_bad_inputs_give_clear_errors(sim, tmp_path) -> None:
    with pytest.raises(SimulationError, match="does not exist"):
        run_ingest(CONFIG, sim=tmp_path / "nowhere", store=tmp_path / "s", progress=False)
    with pytest.raises(SimulationError, match=r"snapdir_099 not found.*did you mean --sim"):
        run_ingest(CONFIG, sim=sim, store=tmp_path / "s", progress=False)  # SIM, not SIM/output
    broken = tmp_path / "sim"
    shutil.copytree(sim, broken)
    (broken / "postprocessing/offsets/offsets_099.hdf5").unlink()
    with pytest.raises(SimulationError, match="has no offsets file"):
        run_ingest(CONFIG, sim=broken / "output", store=tmp_path / "s", progress=False)
    shutil.copytree(sim / "postprocessing", broken / "postprocessing", dirs_exist_ok=True)
    chunk = broken / "output/snapdir_099/snap_099.2.hdf5"
    chunk.write_bytes(chunk.read_bytes()[:5000])
    with pytest.raises(SimulationError, match=r"snap_099\.2\.hdf5 is not a readable HDF5 file"):
        run_ingest(CONFIG, sim=broken / "output", store=tmp_path / "s2", progress=False)
    shutil.copy(sim / "output/snapdir_099/snap_099.2.hdf5", chunk)
    with h5py.File(broken / "output/snapdir_099/snap_099.3.hdf5", "r+") as file:
        del file["PartType0/Density"]
    with pytest.raises(
        SimulationError, match=r"snap_099\.3\.hdf5: field PartType0/Density missing"
    ):
        run_ingest(CONFIG, sim=broken / "output", store=tmp_path / "s3", progress=False)


def test_cli_ingest_and_query(sim, tmp_path) -> None:
    runner = CliRunner()
    store = tmp_path / "store"
    result = runner.invoke(cli, ["ingest", "--sim", str(sim / "output"), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "galaxies ok" in result.output.strip().splitlines()[-1]
    result = runner.invoke(
        cli,
        ["query", "--store", str(store), "SELECT count(*) AS n FROM galaxies", "--format", "csv"],
    )
    assert result.exit_code == 0, result.output
    assert int(result.output.strip().splitlines()[-1]) == len(
        pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    )
    result = runner.invoke(cli, ["ingest", "--sim", str(tmp_path / "nope"), "--store", str(store)])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_killing_a_worker_mid_build_gives_identical_outputs(sim, store, tmp_path) -> None:
    import os
    import signal
    import threading
    import time

    from distributed import Client, LocalCluster

    target = tmp_path / "store"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        errors: list[BaseException] = []

        def build() -> None:
            try:
                run_ingest(CONFIG, sim=sim / "output", store=target, client=client, progress=False)
            except BaseException as error:  # surfaced by the assertion below
                errors.append(error)

        thread = threading.Thread(target=build)
        thread.start()
        deadline = time.monotonic() + 60
        while not list(StoreLayout(target).cutouts_work.glob("chunk_*.hdf5")):
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.02)
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive() and not errors, errors
    assert _tree(target) == _tree(store)
