"""The written mock universe, read back with illustris_python and checked against its physics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import illustris_python as il
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.cosmology import TNG_COSMOLOGY, cosmic_age_gyr
from darkstack.gas import hi_mass_msun
from darkstack.tng_layout import group_catalog_path, offsets_path, output_dir, snapshot_path
from darkstack.units import CodeUnits, temperature_k
from darkstack.universe import relations
from darkstack.universe.build import UniverseOutputError, build_universe
from darkstack.universe.config import PRESETS, SatelliteConfig, UniverseConfig
from darkstack.universe.plan import draw_plan, median_concentration

SNAP = 99
H = TNG_COSMOLOGY.hubble_param
UNITS = CodeUnits(hubble_param=H, scale_factor=1.0)
# Generous satellite settings so a small box still has sub-satellites and flagged clumps.
TEST_CONFIG = UniverseConfig(
    seed=7,
    box_size_mpc_h=10.0,
    snapshot_files=4,
    groupcat_files=3,
    max_particles_per_batch=100_000,
    tiny_group_fraction=0.3,
    satellites=SatelliteConfig(subsatellite_fraction=0.5, spurious_fraction=0.2),
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    build_universe(TEST_CONFIG, root, progress=False)
    return root


@pytest.fixture(scope="module")
def catalog(sim: Path) -> dict[str, dict[str, np.ndarray]]:
    base = str(sim / "output")
    return {
        "subhalos": il.groupcat.loadSubhalos(base, SNAP),
        "groups": il.groupcat.loadHalos(base, SNAP),
    }


@pytest.fixture(scope="module")
def truth(sim: Path) -> pd.DataFrame:
    return pd.read_parquet(sim / "truth.parquet")


def test_writes_tng_layout(sim: Path) -> None:
    for index in range(TEST_CONFIG.snapshot_files):
        assert snapshot_path(output_dir(sim), SNAP, index).is_file()
    for index in range(TEST_CONFIG.groupcat_files):
        assert group_catalog_path(output_dir(sim), SNAP, index).is_file()
    assert offsets_path(output_dir(sim), SNAP) == sim / "postprocessing/offsets/offsets_099.hdf5"
    assert offsets_path(output_dir(sim), SNAP).is_file()
    assert (sim / "output/snapdir_099/snap_099.0.hdf5").is_file()
    assert (sim / "output/groups_099/fof_subhalo_tab_099.0.hdf5").is_file()
    assert (sim / "truth.parquet").is_file()
    assert not (sim / ".darkstack-fragments").exists()


def test_catalog_structure_has_what_selection_must_handle(catalog) -> None:
    subhalos, groups = catalog["subhalos"], catalog["groups"]
    n_subs = groups["GroupNsubs"]
    assert n_subs.sum() == subhalos["count"]
    has_subs = n_subs > 0
    assert np.array_equal(
        groups["GroupFirstSub"][has_subs], np.concatenate([[0], np.cumsum(n_subs)[:-1]])[has_subs]
    )
    assert np.all(groups["GroupFirstSub"][~has_subs] == -1), "tiny groups have no subhalo"
    assert (~has_subs).any()
    assert np.all(np.diff(subhalos["SubhaloGrNr"]) >= 0)
    centrals = groups["GroupFirstSub"][has_subs]
    satellites = np.setdiff1d(np.arange(subhalos["count"]), centrals)
    assert np.all(subhalos["SubhaloParent"][centrals] == 0)
    # Satellites of the central also have parent 0: the reason selection checks GroupFirstSub.
    assert (subhalos["SubhaloParent"][satellites] == 0).any()
    assert (subhalos["SubhaloParent"][satellites] > 0).any(), "sub-satellites exist"
    assert (subhalos["SubhaloFlag"][satellites] == 0).any(), "flagged clumps exist"
    assert np.all(subhalos["SubhaloFlag"][centrals] == 1)
    gas_free = subhalos["SubhaloLenType"][satellites, 0] == 0
    assert gas_free.any() and (~gas_free).any()
    # Groups are ordered by length, as Subfind orders them.
    assert np.all(np.diff(groups["GroupLen"]) <= 0)


def test_loaded_particle_counts_agree_with_len_type(sim: Path, catalog) -> None:
    base = str(sim / "output")
    for ptype in (0, 1, 4):
        for subhalo_id in range(catalog["subhalos"]["count"]):
            loaded = il.snapshot.loadSubhalo(base, SNAP, subhalo_id, ptype, fields=["ParticleIDs"])
            expected = catalog["subhalos"]["SubhaloLenType"][subhalo_id, ptype]
            assert (loaded.size if expected else loaded["count"]) == expected
        for group_id in range(catalog["groups"]["count"]):
            loaded = il.snapshot.loadHalo(base, SNAP, group_id, ptype, fields=["ParticleIDs"])
            expected = catalog["groups"]["GroupLenType"][group_id, ptype]
            assert (loaded.size if expected else loaded["count"]) == expected


def test_straddling_subhalo_loads_across_files(sim: Path, catalog) -> None:
    base = str(sim / "output")
    with h5py.File(offsets_path(output_dir(sim), SNAP), "r") as offsets:
        sub_offsets = offsets["Subhalo/SnapByType"][()]
        file_offsets = offsets["FileOffsets/SnapByType"][()]
    lengths = catalog["subhalos"]["SubhaloLenType"]
    boundaries = file_offsets[1:, 1]
    start, stop = sub_offsets[:, 1], sub_offsets[:, 1] + lengths[:, 1]
    straddling = [
        s for s in range(len(start)) if np.any((boundaries > start[s]) & (boundaries < stop[s]))
    ]
    assert straddling, "chunk boundaries should fall inside some subhalo"
    subhalo = straddling[0]
    loaded = il.snapshot.loadSubhalo(
        base, SNAP, subhalo, "dm", fields=["Coordinates", "ParticleIDs"]
    )
    # An independent read of the raw chunk files, concatenated in order.
    raw = np.concatenate(
        [
            h5py.File(snapshot_path(output_dir(sim), SNAP, index), "r")["PartType1/Coordinates"][()]
            for index in range(TEST_CONFIG.snapshot_files)
        ]
    )
    np.testing.assert_array_equal(loaded["Coordinates"], raw[start[subhalo] : stop[subhalo]])
    assert loaded["count"] == lengths[subhalo, 1]


def test_snapshot_totals_and_dark_matter_mass_table(sim: Path) -> None:
    base = str(sim / "output")
    with h5py.File(snapshot_path(output_dir(sim), SNAP, 0), "r") as file:
        header = dict(file["Header"].attrs)
    totals = il.snapshot.getNumPart(header)
    for ptype in (0, 1, 4):
        ids = il.snapshot.loadSubset(base, SNAP, ptype, fields=["ParticleIDs"])
        assert ids.size == totals[ptype]
    dm = il.snapshot.loadSubset(base, SNAP, "dm")
    assert "Masses" not in dm
    assert header["MassTable"][1] == pytest.approx(
        TEST_CONFIG.dm_particle_mass_msun * H / 1e10, rel=1e-12
    )
    all_ids = np.concatenate(
        [il.snapshot.loadSubset(base, SNAP, p, fields=["ParticleIDs"]) for p in (0, 1, 4)]
    )
    assert np.unique(all_ids).size == all_ids.size


def _centrals(catalog) -> np.ndarray:
    groups = catalog["groups"]
    return groups["GroupFirstSub"][groups["GroupNsubs"] > 0]


def test_enclosed_dark_matter_matches_analytic_profile(sim: Path, catalog, truth) -> None:
    base = str(sim / "output")
    radii_kpc = np.array([2.0, 5.0, 10.0, 20.0, 50.0])
    pulls = []
    for subhalo_id in _centrals(catalog):
        row = truth.loc[truth.subhalo_id == subhalo_id].iloc[0]
        centre = UNITS.length_to_kpc(catalog["subhalos"]["SubhaloPos"][subhalo_id])
        positions = UNITS.length_to_kpc(
            il.snapshot.loadSubhalo(base, SNAP, int(subhalo_id), "dm", fields=["Coordinates"])
        )
        radius = np.linalg.norm(positions - centre, axis=1)
        inside = radii_kpc[radii_kpc < row.r200c_kpc]
        measured = np.array([(radius < r).sum() for r in inside])
        expected = 10 ** np.interp(
            np.log10(inside), np.log10(row.radii_kpc), row.log10_mdm_enclosed
        )
        expected_counts = expected / TEST_CONFIG.dm_particle_mass_msun
        pulls.extend((measured - expected_counts) / np.sqrt(expected_counts + 1.0))
    pulls = np.asarray(pulls)
    assert len(pulls) > 50
    assert abs(np.mean(pulls)) < 0.5
    assert np.std(pulls) < 1.6  # Poisson noise, correlated between radii of one halo


def test_cold_gas_rotates_at_the_circular_velocity(sim: Path, catalog) -> None:
    base = str(sim / "output")
    ratios = []
    for subhalo_id in _centrals(catalog):
        sub = {
            key: catalog["subhalos"][key][subhalo_id]
            for key in catalog["subhalos"]
            if key != "count"
        }
        gas = il.snapshot.loadSubhalo(base, SNAP, int(subhalo_id), "gas")
        if gas["count"] < 200 or sub["SubhaloLenType"][4] < 100:
            continue
        centre = UNITS.length_to_kpc(sub["SubhaloPos"])
        cold = temperature_k(gas["InternalEnergy"], gas["ElectronAbundance"]) < 3e4
        pos = UNITS.length_to_kpc(gas["Coordinates"][cold]) - centre
        vel = UNITS.particle_velocity_to_kms(gas["Velocities"][cold]) - sub["SubhaloVel"]
        spin = np.cross(pos, vel).sum(axis=0)
        spin /= np.linalg.norm(spin)
        r_half = UNITS.length_to_kpc(sub["SubhaloHalfmassRadType"][4])
        radius = np.linalg.norm(pos, axis=1)
        ring = np.abs(radius - 2.0 * r_half) < 0.25 * r_half
        if ring.sum() < 10:
            continue
        tangential = np.cross(spin, pos[ring])
        tangential /= np.linalg.norm(tangential, axis=1, keepdims=True)
        v_phi = np.mean(np.sum(vel[ring] * tangential, axis=1))
        group = catalog["subhalos"]["SubhaloGrNr"][subhalo_id]
        enclosed = _group_mass_within(base, int(group), centre, 2.0 * r_half)
        ratios.append(v_phi / np.sqrt(G_KPC_KMS2_PER_MSUN * enclosed / (2.0 * r_half)))
    assert len(ratios) >= 5
    assert abs(np.median(ratios) - 1.0) < 0.15


def _group_mass_within(base: str, group: int, centre: np.ndarray, radius_kpc: float) -> float:
    total = 0.0
    with h5py.File(il.snapshot.snapPath(base, SNAP), "r") as file:
        dm_mass = UNITS.mass_to_msun(file["Header"].attrs["MassTable"][1])
    for ptype in ("gas", "dm", "stars"):
        # Two fields, so illustris_python returns a dict even for dark matter.
        fields = ["Coordinates", "ParticleIDs"] if ptype == "dm" else ["Coordinates", "Masses"]
        data = il.snapshot.loadHalo(base, SNAP, group, ptype, fields=fields)
        if data["count"] == 0:
            continue
        inside = (
            np.linalg.norm(UNITS.length_to_kpc(data["Coordinates"]) - centre, axis=1) < radius_kpc
        )
        masses = (
            dm_mass * np.ones(inside.size) if ptype == "dm" else UNITS.mass_to_msun(data["Masses"])
        )
        total += masses[inside].sum()
    return total


def test_catalog_values_are_the_drawn_galaxies(sim: Path, catalog, truth) -> None:
    base = str(sim / "output")
    subhalos = catalog["subhalos"]
    checked_hi = 0
    for row in truth.itertuples():
        n_stars = subhalos["SubhaloLenType"][row.subhalo_id, 4]
        if n_stars >= 200:
            stellar = UNITS.mass_to_msun(subhalos["SubhaloMassType"][row.subhalo_id, 4])
            assert stellar == pytest.approx(row.stellar_mass_msun, rel=0.1)
        gas = il.snapshot.loadSubhalo(base, SNAP, int(row.subhalo_id), "gas")
        if row.cold_gas_mass_msun > 0 and gas["count"]:
            assert subhalos["SubhaloSFR"][row.subhalo_id] == pytest.approx(
                row.sfr_msun_yr, rel=1e-4
            )
        if row.hi_mass_msun > 200 * TEST_CONFIG.baryon_particle_mass_msun:
            hi = hi_mass_msun(
                mass_msun=UNITS.mass_to_msun(gas["Masses"]),
                neutral_hydrogen_abundance=gas["NeutralHydrogenAbundance"],
                density_msun_per_kpc3=UNITS.density_to_msun_per_kpc3(gas["Density"]),
                temperature_k=temperature_k(gas["InternalEnergy"], gas["ElectronAbundance"]),
                electron_abundance=gas["ElectronAbundance"],
            ).sum()
            assert hi == pytest.approx(row.hi_mass_msun, rel=0.1)
            checked_hi += 1
    assert checked_hi >= 5


def test_stars_have_ages_and_some_are_wind(sim: Path) -> None:
    stars = il.snapshot.loadSubset(str(sim / "output"), SNAP, "stars")
    wind = stars["GFM_StellarFormationTime"] < 0
    assert wind.any() and (~wind).mean() > 0.99
    formation = stars["GFM_StellarFormationTime"][~wind]
    assert formation.min() > 0 and formation.max() <= 1.0
    assert np.all(stars["GFM_InitialMass"] >= stars["Masses"])
    assert np.all(stars["GFM_Metallicity"] > 0)


@pytest.fixture(scope="module")
def quick_plan():
    return draw_plan(UniverseConfig(**{k: v for k, v in PRESETS["quick"].items()}), TNG_COSMOLOGY)


def test_drawn_galaxies_follow_the_documented_relations(quick_plan) -> None:
    centrals = [group.subhalos[0] for group in quick_plan.groups if group.subhalos]
    halo = np.array([c.infall_mass_msun for c in centrals])
    mstar = np.array([c.galaxy.stellar_mass_msun for c in centrals])
    sfr = np.array([c.galaxy.sfr_msun_yr for c in centrals])
    quenched = np.array([c.galaxy.quenched for c in centrals])
    hi = np.array([c.galaxy.hi_mass_msun for c in centrals])
    shmr_residual = np.log10(mstar / relations.moster13_stellar_mass_msun(halo))
    assert abs(shmr_residual.mean()) < 0.03
    assert 0.12 < shmr_residual.std() < 0.18
    t0 = float(cosmic_age_gyr(1.0))
    sfms_residual = np.log10(sfr) - relations.speagle14_log_sfr(np.log10(mstar), cosmic_time_gyr=t0)
    assert abs(sfms_residual[~quenched].mean()) < 0.05
    assert 0.15 < sfms_residual[~quenched].std() < 0.25
    assert sfms_residual[quenched].mean() == pytest.approx(-1.5, abs=0.1)
    massive = mstar > 10**10.8
    assert quenched[massive].mean() > quenched[~massive].mean()
    hi_residual = np.log10(hi[~quenched]) - relations.huang12_log_hi_mass(
        np.log10(mstar[~quenched])
    )
    assert abs(hi_residual.mean()) < 0.06
    gammas = np.array([c.gamma for c in centrals])
    assert gammas.std() > 0.1, "inner slopes respond to M*/Mhalo"
    config = quick_plan.config
    c_residual = np.log10(
        np.array([c.concentration_dmo for c in centrals])
        / median_concentration(halo, model=config.concentration_model, cosmology=TNG_COSMOLOGY)
    )
    sfr_c = np.corrcoef(sfms_residual[~quenched], c_residual[~quenched])[0, 1]
    assert sfr_c == pytest.approx(config.sfr_concentration_correlation, abs=0.1)
    r_half = np.array([c.galaxy.half_mass_radius_kpc for c in centrals])
    r200 = np.array([c.r200_kpc for c in centrals])
    size_residual = np.log10(r_half / relations.kravtsov13_half_mass_radius_kpc(r200))
    assert abs(size_residual.mean()) < 0.03
    assert size_residual.std() == pytest.approx(relations.KRAVTSOV13_SCATTER_DEX, abs=0.03)
    hi_scale = np.array([c.galaxy.gas_disk_scale_length_kpc for c in centrals])
    star_scale = np.array([c.galaxy.disk_scale_length_kpc for c in centrals])
    assert np.all(hi_scale >= star_scale)
    # Where the stellar disk does not set it, the HI disk reaches the observed HI radius
    # at 2-6 scale lengths.
    from_hi = (hi > 0) & (hi_scale > star_scale)
    assert from_hi[~quenched].mean() > 0.9
    hi_radius = 0.5 * relations.wang16_hi_diameter_kpc(hi[from_hi])
    scale_lengths = hi_radius / hi_scale[from_hi]
    assert np.all(scale_lengths >= 2.0 * 10 ** (-4 * relations.WANG16_SCATTER_DEX))
    assert 2.0 < np.median(scale_lengths) < 6.0


def test_galaxies_can_be_drawn_independently_of_their_halo_beyond_stellar_mass() -> None:
    config = UniverseConfig(
        **PRESETS["quick"], sfr_concentration_correlation=0.0, galaxy_size_model="shen03"
    )
    plan = draw_plan(config, TNG_COSMOLOGY)
    centrals = [group.subhalos[0] for group in plan.groups if group.subhalos]
    halo = np.array([c.infall_mass_msun for c in centrals])
    mstar = np.array([c.galaxy.stellar_mass_msun for c in centrals])
    r_half = np.array([c.galaxy.half_mass_radius_kpc for c in centrals])
    size_residual = np.log(r_half / relations.shen03_late_type_r50_kpc(mstar))
    assert abs(size_residual.mean()) < 0.05
    halo_residual = np.log10(
        halo / np.interp(mstar, relations.moster13_stellar_mass_msun(HALO_GRID), HALO_GRID)
    )
    assert abs(np.corrcoef(size_residual, halo_residual)[0, 1]) < 0.1
    sfr = np.array([c.galaxy.sfr_msun_yr for c in centrals])
    c_residual = np.log10(
        np.array([c.concentration_dmo for c in centrals])
        / median_concentration(halo, model=config.concentration_model, cosmology=TNG_COSMOLOGY)
    )
    assert abs(np.corrcoef(np.log10(sfr / mstar), c_residual)[0, 1]) < 0.1


HALO_GRID = np.geomspace(1e10, 1e15, 1001)


def test_dm_response_none_keeps_nfw() -> None:
    config = dataclasses.replace(TEST_CONFIG, dm_response="none")
    plan = draw_plan(config, TNG_COSMOLOGY)
    shapes = {(s.alpha, s.beta, s.gamma) for g in plan.groups for s in g.subhalos}
    assert shapes == {(1.0, 3.0, 1.0)}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_same_seed_same_bytes_serial_and_on_dask(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    config = dataclasses.replace(TEST_CONFIG, box_size_mpc_h=6.0, max_particles_per_batch=20_000)
    build_universe(config, tmp_path / "a", progress=False)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        build_universe(config, tmp_path / "b", progress=False, client=client)
    build_universe(dataclasses.replace(config, seed=8), tmp_path / "c", progress=False)
    first, second, other = (_tree_bytes(tmp_path / name) for name in "abc")
    assert first.keys() == second.keys()
    assert len(first) > 5
    assert all(first[name] == second[name] for name in first)
    assert first["truth.parquet"] != other["truth.parquet"]


def test_refuses_bad_output_paths(tmp_path: Path, sim: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(UniverseOutputError, match="is a file"):
        build_universe(TEST_CONFIG, a_file, progress=False)
    with pytest.raises(UniverseOutputError, match="already holds a simulation"):
        build_universe(TEST_CONFIG, sim, progress=False)


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["universe", "--out", str(tmp_path), "--preset", "huge"])
    assert result.exit_code == 2
    assert "'huge' is not one of 'quick', 'small', 'paper'" in result.output
    result = runner.invoke(cli, ["universe", "--out", str(tmp_path), "--set", "box_size=5"])
    assert result.exit_code == 2
    assert "unknown key box_size" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(cli, ["universe", "--out", str(tmp_path), "--set", "seed=abc"])
    assert result.exit_code == 2
    assert "seed='abc'; expected int" in result.output
    result = runner.invoke(cli, ["universe", "--help"])
    assert result.exit_code == 0 and "--preset" in result.output


def test_cli_writes_and_summarises(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["universe", "--out", str(tmp_path / "sim"), "--set", "box_size_mpc_h=6", "--seed", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "central galaxies pass the paper's selection" in result.output
    written = (tmp_path / "sim" / "universe.yaml").read_text()
    assert "seed: 3" in written and "box_size_mpc_h: 6.0" in written
