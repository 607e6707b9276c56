"""A tiny mock universe at TNG's snapshot 50 (z = 1, a = 0.5), read back in physical units.

At a = 1 every sqrt(a), a/h and 1/a factor of TNG's code units is invisible; here each is worked
out by hand with h = 0.6774 and a = 0.5 (a/h = 0.7381..., sqrt(a) = 0.7071..., 1/a = 2) and
compared with what the writer stored and what ingest read. The oracles are literal numbers,
astropy's cosmology and the particles themselves, never darkstack's own conversions.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import h5py
import illustris_python as il
import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM

from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.cosmology import critical_density_msun_per_kpc3
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import ApiConfig, IngestConfig
from darkstack.ingest.cutouts import read_cutout
from darkstack.ingest.selection import SelectionConfig
from darkstack.store import StoreLayout
from darkstack.units import CodeUnits
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig

sys.path.insert(0, str(Path(__file__).parent))
from fake_tng_api import serve_fake_tng_api

SNAP = 50
H = 0.6774
A = 0.5
#: Worked out by hand: ckpc/h -> kpc is a/h, km/s sqrt(a) -> km/s is sqrt(a), GroupVel's km/s/a
#: -> km/s is 1/a, 1e10 Msun/h -> Msun is 1e10/h.
KPC_PER_CKPC_H = 0.5 / 0.6774  # 0.738116...
SQRT_A = 0.7071067811865476
INVERSE_A = 2.0
MSUN_PER_CODE_MASS = 1.0e10 / 0.6774
#: The box is 14 comoving Mpc/h, 7 physical Mpc/h at z = 1: a handful of galaxies.
UNIVERSE = UniverseConfig(
    seed=3, box_size_mpc_h=14.0, snapshot=SNAP, redshift=1.0, snapshot_files=2, groupcat_files=2
)
CONFIG = IngestConfig(snapshot=SNAP, selection=SelectionConfig(stellar_mass_min_msun=3e9))
#: Planck 2015 without radiation, as AREPO integrates TNG (critical densities), and with photons
#: and massless neutrinos, as colossus integrates it (ages).
FLAT = FlatLambdaCDM(H0=67.74, Om0=0.3089, Tcmb0=0.0)
WITH_RADIATION = FlatLambdaCDM(H0=67.74, Om0=0.3089, Tcmb0=2.7255, Neff=3.046, m_nu=0.0 * u.eV)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("z1") / "sim"
    build_universe(UNIVERSE, root, progress=False)
    return root


@pytest.fixture(scope="module")
def base(sim: Path) -> str:
    return str(sim / "output")


@pytest.fixture(scope="module")
def store(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("z1-store")
    run_ingest(CONFIG, sim=sim / "output", store=store, progress=False)
    return store


@pytest.fixture(scope="module")
def galaxies(store: Path) -> pd.DataFrame:
    table = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    assert (table.status == "ok").sum() >= 3, table.status.value_counts()
    return table


@pytest.fixture(autouse=True)
def _serial_illustris(monkeypatch: pytest.MonkeyPatch) -> None:
    # illustris_python forks a process pool when OMP_NUM_THREADS > 1; the serial path is enough.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_code_units_convert_by_hand() -> None:
    units = CodeUnits(hubble_param=H, scale_factor=A)
    assert units.length_to_kpc(1000.0) == pytest.approx(738.1163271331562, rel=1e-12)
    assert units.kpc_to_length(738.1163271331562) == pytest.approx(1000.0, rel=1e-12)
    assert units.particle_velocity_to_kms(100.0) == pytest.approx(70.71067811865476, rel=1e-12)
    assert units.group_velocity_to_kms(100.0) == pytest.approx(200.0, rel=1e-12)
    assert units.mass_to_msun(1.0) == pytest.approx(1.4762326542663124e10, rel=1e-12)
    # (1e10 Msun/h) / (ckpc/h)^3 -> Msun/kpc^3 is 1e10 h^2 / a^3.
    assert units.density_to_msun_per_kpc3(1.0) == pytest.approx(3.67096608e10, rel=1e-12)


def test_critical_density_at_z1_equals_astropys() -> None:
    for z in (0.0, 1.0, 3.0):
        expected = FLAT.critical_density(z).to_value(u.Msun / u.kpc**3)
        assert critical_density_msun_per_kpc3(z) == pytest.approx(expected, rel=1e-6)


def test_illustris_python_reads_snapshot_50(sim: Path, base: str) -> None:
    assert (sim / "output" / "snapdir_050" / "snap_050.0.hdf5").is_file()
    assert (sim / "postprocessing" / "offsets" / "offsets_050.hdf5").is_file()
    header = il.groupcat.loadHeader(base, SNAP)
    assert (header["Time"], header["Redshift"], header["BoxSize"]) == (0.5, 1.0, 14000.0)
    with h5py.File(il.snapshot.snapPath(base, SNAP), "r") as file:
        snapshot = dict(file["Header"].attrs)
    assert (snapshot["Time"], snapshot["Redshift"]) == (0.5, 1.0)
    subhalos = il.groupcat.loadSubhalos(base, SNAP, fields=["SubhaloLenType", "SubhaloGrNr"])
    assert subhalos["count"] > 10
    dm = il.snapshot.loadSubhalo(base, SNAP, 0, "dm", fields=["Coordinates"])
    assert dm.shape == (subhalos["SubhaloLenType"][0, 1], 3)
    halo = il.snapshot.loadHalo(base, SNAP, 0, "gas", fields=["Masses"])
    assert halo.size >= subhalos["SubhaloLenType"][0, 0]


def test_a_particle_reads_back_in_physical_units_by_hand(base: str, store: Path, galaxies) -> None:
    for subhalo_id in galaxies.subhalo_id[:3]:
        subhalo = il.groupcat.loadSingle(base, SNAP, subhaloID=int(subhalo_id))
        fields = ["Coordinates", "Velocities", "ParticleIDs"]
        raw = il.snapshot.loadSubhalo(base, SNAP, int(subhalo_id), "dm", fields=fields)
        particles, _ = read_cutout(StoreLayout(store).cutout(subhalo_id))
        dm = particles["dm"]
        offset_ckpc_h = raw["Coordinates"] - subhalo["SubhaloPos"]
        # The subhalo's own particles reach beyond the cutout's 100 kpc: take three inside it.
        inside = np.flatnonzero(np.linalg.norm(offset_ckpc_h, axis=1) < 90.0 / KPC_PER_CKPC_H)
        for k in inside[[0, len(inside) // 2, -1]]:
            row = int(np.flatnonzero(dm["particle_id"] == raw["ParticleIDs"][k])[0])
            np.testing.assert_allclose(
                dm["position_kpc"][row], offset_ckpc_h[k] * KPC_PER_CKPC_H, rtol=1e-5, atol=1e-4
            )
            np.testing.assert_allclose(
                dm["velocity_kms"][row],
                raw["Velocities"][k] * SQRT_A - subhalo["SubhaloVel"],
                rtol=1e-5,
                atol=1e-3,
            )
            assert dm["in_subhalo"][row]


def test_catalog_is_physical_and_matches_the_drawn_universe(sim: Path, base: str, galaxies) -> None:
    subhalos = il.groupcat.loadSubhalos(base, SNAP)
    groups = il.groupcat.loadHalos(base, SNAP)
    truth = pd.read_parquet(sim / "truth.parquet").set_index("subhalo_id")
    ids, group_ids = galaxies.subhalo_id.to_numpy(), galaxies.group_id.to_numpy()
    position = np.stack(galaxies.position_kpc.to_numpy())
    np.testing.assert_allclose(position, subhalos["SubhaloPos"][ids] * KPC_PER_CKPC_H, rtol=1e-6)
    # The generator drew the galaxies in physical kpc: the stored ckpc/h times a/h gives them back.
    drawn = np.stack(truth.loc[ids, "position_kpc"].to_numpy())
    np.testing.assert_allclose(position, drawn, atol=1e-3)
    np.testing.assert_allclose(
        galaxies.r200c_kpc, groups["Group_R_Crit200"][group_ids] * KPC_PER_CKPC_H, rtol=1e-6
    )
    np.testing.assert_allclose(
        galaxies.m200c_msun, groups["Group_M_Crit200"][group_ids] * MSUN_PER_CODE_MASS, rtol=1e-6
    )
    np.testing.assert_allclose(
        np.stack(galaxies.velocity_kms.to_numpy()), subhalos["SubhaloVel"][ids], rtol=1e-6
    )


def test_group_m200_encloses_200_times_the_critical_density_at_z1(galaxies) -> None:
    rho_crit = FLAT.critical_density(1.0).to_value(u.Msun / u.kpc**3)
    mean_density = galaxies.m200c_msun / (4.0 / 3.0 * np.pi * galaxies.r200c_kpc**3)
    # Subfind's R200 is the last particle inside which the mean density is still above: at or
    # just above 200 rho_crit(z = 1), which is 3.16 times rho_crit today.
    ratio = mean_density / (200.0 * rho_crit)
    assert np.all((ratio > 1.0 - 1e-5) & (ratio < 1.01)), ratio


def test_group_velocity_is_the_mass_weighted_particle_velocity(base: str) -> None:
    groups = il.groupcat.loadHalos(base, SNAP, fields=["GroupVel", "GroupLen"])
    with h5py.File(il.snapshot.snapPath(base, SNAP), "r") as file:
        dm_mass = file["Header"].attrs["MassTable"][1]
    for group in range(3):
        momentum, mass = np.zeros(3), 0.0
        for ptype in ("gas", "dm", "stars"):
            fields = ["Velocities", "ParticleIDs"] if ptype == "dm" else ["Velocities", "Masses"]
            data = il.snapshot.loadHalo(base, SNAP, group, ptype, fields=fields)
            if data["count"] == 0:
                continue
            masses = np.full(data["count"], dm_mass) if ptype == "dm" else data["Masses"]
            momentum += (masses[:, None] * data["Velocities"] * SQRT_A).sum(axis=0)
            mass += masses.sum()
        np.testing.assert_allclose(
            groups["GroupVel"][group] * INVERSE_A, momentum / mass, rtol=1e-4
        )


def test_cold_gas_rotates_at_the_circular_velocity_of_the_cutout(store: Path, galaxies) -> None:
    ratios = []
    for row in galaxies[galaxies.status == "ok"].itertuples():
        particles, _ = read_cutout(StoreLayout(store).cutout(row.subhalo_id))
        gas = particles["gas"]
        cold = (gas["temperature_k"] < 3e4) & gas["in_subhalo"]
        if cold.sum() < 200:
            continue
        pos, vel = gas["position_kpc"][cold], gas["velocity_kms"][cold]
        spin = np.cross(pos, vel).sum(axis=0)
        spin /= np.linalg.norm(spin)
        radius = 2.0 * row.r_half_star_kpc
        ring = np.abs(np.linalg.norm(pos, axis=1) - radius) < 0.25 * row.r_half_star_kpc
        if ring.sum() < 10:
            continue
        tangential = np.cross(spin, pos[ring])
        tangential /= np.linalg.norm(tangential, axis=1, keepdims=True)
        v_phi = np.mean(np.sum(vel[ring] * tangential, axis=1))
        enclosed = sum(
            kind["mass_msun"][np.linalg.norm(kind["position_kpc"], axis=1) < radius].sum()
            for kind in particles.values()
        )
        ratios.append(v_phi / np.sqrt(G_KPC_KMS2_PER_MSUN * enclosed / radius))
    assert len(ratios) >= 2
    # A velocity off by sqrt(a) or a length off by a/h would put the ratio near 0.7 or 1.4.
    assert abs(np.median(ratios) - 1.0) < 0.15, ratios


def test_stars_are_younger_than_the_universe_at_z1(store: Path, galaxies) -> None:
    age_z1 = WITH_RADIATION.age(1.0).to_value(u.Gyr)  # 5.86 Gyr
    for subhalo_id in galaxies.subhalo_id[:3]:
        stars = read_cutout(StoreLayout(store).cutout(subhalo_id))[0]["stars"]
        formation = stars["formation_scale_factor"]
        assert np.all((formation > 0) & (formation < A))
        expected = age_z1 - WITH_RADIATION.age(1.0 / formation[:50] - 1.0).to_value(u.Gyr)
        np.testing.assert_allclose(stars["age_gyr"][:50], expected, rtol=1e-3, atol=1e-3)
        assert 0.0 < stars["age_gyr"].max() < age_z1


def test_the_api_source_reads_snapshot_50_as_the_local_one(
    sim: Path, galaxies, tmp_path: Path
) -> None:
    key = "0123456789abcdef-fake-z1-key"
    with serve_fake_tng_api(sim, api_key=key, simulation="TNG100-1", snap=SNAP) as server:
        key_file = tmp_path / "key"
        key_file.write_text(key, encoding="utf-8")
        config = dataclasses.replace(
            CONFIG,
            source="api",
            api=ApiConfig(
                base_url=server.base_url, key_file=str(key_file), cache_dir=str(tmp_path / "c")
            ),
        )
        run_ingest(config, store=tmp_path / "store", progress=False)
    api = pd.read_parquet(StoreLayout(tmp_path / "store").catalog("galaxies"))
    assert api.subhalo_id.tolist() == galaxies.subhalo_id.tolist()
    for name in ("position_kpc", "velocity_kms", "r200c_kpc", "m200c_msun", "stellar_mass_msun"):
        expected = np.stack(galaxies[name].map(np.asarray).to_numpy())
        np.testing.assert_array_equal(np.stack(api[name].map(np.asarray).to_numpy()), expected)
