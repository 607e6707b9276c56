"""The gravity-only twin (``darkstack universe --dark-twin``), read back as TNG-Dark would be."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import illustris_python as il
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig
from darkstack.ingest.tng_local import SimulationError
from darkstack.universe.build import UniverseOutputError, build_universe
from darkstack.universe.config import UniverseConfig
from darkstack.universe.dark import log_hydro_to_dmo_mass_ratio

SNAP = 99
H = 0.6774
#: TNG's Planck 2015 Omega_m and Omega_b (Nelson et al. 2019, table 1).
OMEGA_M, OMEGA_B = 0.3089, 0.0486
#: log10(M_hydro/M_DMO) of Velliscig et al. 2014's M200c fit (eq. 2, table 1, AGN 8.0: A =
#: -0.1077, B = 0, C = -13.5715, D = 0.2786) at M_DMO = 1e11, 1e12, 1e13, 1e14 Msun, worked
#: out by hand: the paper's "up to 20 per cent" below 1e13 Msun, ~4 per cent at 1e14.
PAPER_LOG_M_DMO = [11.0, 12.0, 13.0, 14.0]
PAPER_LOG_RATIO = [-0.1077, -0.1073, -0.0954, -0.0190]
CONFIG = ["box_size_mpc_h=8.0", "snapshot_files=3", "groupcat_files=2", "seed=5"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny hydro run and its twin, written by the CLI."""
    root = tmp_path_factory.mktemp("pair")
    args = ["universe", "--out", str(root / "sim"), "--dark-twin", str(root / "dark")]
    result = CliRunner().invoke(cli, [*args, *[x for s in CONFIG for x in ("--set", s)]])
    assert result.exit_code == 0, result.output
    assert "gravity-only twin:" in result.output
    return root / "sim", root / "dark"


def _header(sim: Path) -> dict[str, np.ndarray]:
    return dict(il.groupcat.loadHeader(str(sim / "output"), SNAP)) | {
        "snapshot": dict(h5py.File(sim / "output/snapdir_099/snap_099.0.hdf5")["Header"].attrs)
    }


def test_illustris_python_reads_the_twin(pair: tuple[Path, Path]) -> None:
    sim, dark = pair
    base = str(dark / "output")
    hydro_snap, dark_snap = _header(sim)["snapshot"], _header(dark)["snapshot"]
    for key in ("BoxSize", "HubbleParam", "Omega0", "OmegaLambda", "OmegaBaryon", "Redshift"):
        assert dark_snap[key] == hydro_snap[key], key
    assert list(dark_snap["NumPart_Total"][[0, 2, 3, 4, 5]]) == [0] * 5
    n_dm = int(dark_snap["NumPart_Total"][1])
    # TNG-Dark's particle mass is the hydro run's DM mass times Omega_m / (Omega_m - Omega_b);
    # the twin's is within 1/(2N) of it so that its total mass is exactly the hydro run's.
    m_dark = dark_snap["MassTable"][1] * 1e10 / H
    assert m_dark == pytest.approx(1e8 * OMEGA_M / (OMEGA_M - OMEGA_B), rel=1.0 / n_dm)
    with h5py.File(dark / "output/snapdir_099/snap_099.0.hdf5") as chunk:
        assert [name for name in chunk if name.startswith("PartType")] == ["PartType1"]

    groups = il.groupcat.loadHalos(base, SNAP)
    subhalos = il.groupcat.loadSubhalos(base, SNAP)
    assert "SubhaloSFR" not in subhalos and "SubhaloFlag" not in subhalos
    assert groups["count"] > 5 and subhalos["count"] > groups["GroupNsubs"].astype(bool).sum()
    assert (groups["GroupLenType"][:, [0, 4]] == 0).all()
    for sub_id in (0, int(subhalos["count"]) - 1):
        particles = il.snapshot.loadSubhalo(base, SNAP, sub_id, "dm", fields=["Coordinates"])
        assert len(particles) == subhalos["SubhaloLenType"][sub_id, 1] > 0
        # The subhalo's particles sit around its position (periodic box in ckpc/h).
        delta = particles - subhalos["SubhaloPos"][sub_id]
        delta -= dark_snap["BoxSize"] * np.round(delta / dark_snap["BoxSize"])
        assert np.median(np.linalg.norm(delta, axis=1)) < 300.0
    halo = il.snapshot.loadHalo(base, SNAP, 0, 1, fields=["Coordinates"])
    assert len(halo) == groups["GroupLenType"][0, 1]
    all_dm = il.snapshot.loadSubset(base, SNAP, "dm", fields=["ParticleIDs"])
    assert len(all_dm) == n_dm and len(np.unique(all_dm)) == n_dm


def test_the_twin_weighs_what_the_hydro_run_weighs(pair: tuple[Path, Path]) -> None:
    sim, dark = pair
    base = str(sim / "output")
    header = _header(sim)["snapshot"]
    hydro = header["MassTable"][1] * header["NumPart_Total"][1]
    for part in ("gas", "stars"):
        hydro += il.snapshot.loadSubset(base, SNAP, part, fields=["Masses"]).sum(dtype=np.float64)
    twin = _header(dark)["snapshot"]
    assert twin["MassTable"][1] * twin["NumPart_Total"][1] == pytest.approx(hydro, rel=1e-6)


def test_twin_halo_masses_follow_velliscig14(pair: tuple[Path, Path]) -> None:
    sim, dark = pair
    fields = ["Group_M_Crit200", "GroupNsubs"]
    hydro = il.groupcat.loadHalos(str(sim / "output"), SNAP, fields=fields)
    twin = il.groupcat.loadHalos(str(dark / "output"), SNAP, fields=fields)
    # Groups below Subfind's resolution have no halo to map (and no subhalos).
    resolved = (hydro["GroupNsubs"] > 0) & (hydro["Group_M_Crit200"] > 0)
    assert resolved.sum() >= 8
    log_dmo = np.log10(twin["Group_M_Crit200"][resolved] * 1e10 / H)
    log_ratio = np.log10(hydro["Group_M_Crit200"][resolved] / twin["Group_M_Crit200"][resolved])
    expected = np.interp(log_dmo, PAPER_LOG_M_DMO, PAPER_LOG_RATIO)
    assert np.abs(log_ratio - expected).max() < 0.02


def test_the_relation_is_the_papers() -> None:
    np.testing.assert_allclose(
        log_hydro_to_dmo_mass_ratio(10.0 ** np.array(PAPER_LOG_M_DMO)), PAPER_LOG_RATIO, atol=2e-4
    )


def test_matching_maps_hydro_subhalos_to_their_dark_twins(pair: tuple[Path, Path]) -> None:
    sim, dark = pair
    path = sim / "postprocessing" / "subhalo_matching_to_dark.hdf5"
    with h5py.File(path) as file:
        assert list(file) == ["Snapshot_99"]
        lhalotree = file["Snapshot_99/SubhaloIndexDark_LHaloTree"][()]
        sublink = file["Snapshot_99/SubhaloIndexDark_SubLink"][()]
    assert lhalotree.dtype == np.int32 and np.array_equal(lhalotree, sublink)
    hydro = il.groupcat.loadSubhalos(str(sim / "output"), SNAP)
    twin = il.groupcat.loadSubhalos(str(dark / "output"), SNAP)
    assert len(lhalotree) == hydro["count"]
    # Baryonic clumps (SubhaloFlag 0) have no dark twin; every other subhalo has its own.
    assert np.array_equal(lhalotree == -1, hydro["SubhaloFlag"] == 0)
    matched = lhalotree[lhalotree >= 0]
    assert matched.max() < twin["count"] and len(np.unique(matched)) == len(matched)
    assert len(matched) == twin["count"]
    hydro_ids = np.flatnonzero(lhalotree >= 0)
    assert np.array_equal(hydro["SubhaloGrNr"][hydro_ids], twin["SubhaloGrNr"][matched])
    # Positions differ by the jitter only: 2 kpc per axis for the group and the subhalo.
    box = _header(sim)["snapshot"]["BoxSize"]
    delta = twin["SubhaloPos"][matched] - hydro["SubhaloPos"][hydro_ids]
    distance_kpc = np.linalg.norm(delta - box * np.round(delta / box), axis=1) / H
    assert 0 < np.median(distance_kpc) < 10 and distance_kpc.max() < 25
    # Satellites carry their hydro mass, baryons folded in, to within one particle.
    satellite = ~np.isin(
        matched, il.groupcat.loadHalos(str(dark / "output"), SNAP)["GroupFirstSub"]
    )
    m_dark = _header(dark)["snapshot"]["MassTable"][1]
    assert satellite.sum() >= 3
    np.testing.assert_allclose(
        twin["SubhaloMass"][matched[satellite]],
        hydro["SubhaloMass"][hydro_ids[satellite]],
        rtol=1e-6,
        atol=0.5 * m_dark,
    )


def test_the_same_seed_gives_the_same_twin(pair: tuple[Path, Path], tmp_path: Path) -> None:
    _, dark = pair
    config = UniverseConfig(
        **{k: float(v) if "." in v else int(v) for k, v in (s.split("=") for s in CONFIG)},
        max_particles_per_batch=5_000,  # other batches than the CLI's: same bytes
    )
    build_universe(config, tmp_path / "sim", dark_twin=tmp_path / "dark", progress=False)
    files = sorted(p.relative_to(dark) for p in (dark / "output").rglob("*.hdf5"))
    assert len(files) == 3 + 2
    for name in files:
        assert (tmp_path / "dark" / name).read_bytes() == (dark / name).read_bytes(), name


def test_fields_reads_the_pair(pair: tuple[Path, Path], tmp_path: Path) -> None:
    sim, dark = pair
    store = tmp_path / "store"
    args = ["fields", "--sim", str(sim / "output"), "--dark", str(dark / "output")]
    result = CliRunner().invoke(cli, [*args, "--store", str(store), "--grid", "16"])
    assert result.exit_code == 0, result.output
    fields = xr.open_zarr(store / "fields.zarr", consolidated=False)
    twin = _header(dark)["snapshot"]
    total_msun = twin["MassTable"][1] * twin["NumPart_Total"][1] * 1e10 / H
    deposited = fields["dark_dm_mass"].values.sum(dtype=np.float64)
    assert deposited == pytest.approx(total_msun, rel=1e-5)


def test_a_twin_of_another_cosmology_is_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    sim, dark = pair
    other = tmp_path / "other"
    shutil.copytree(dark, other)
    for chunk in (other / "output" / "snapdir_099").glob("*.hdf5"):
        with h5py.File(chunk, "r+") as file:
            file["Header"].attrs["Omega0"] = 0.25
    with pytest.raises(SimulationError, match=r"Omega0 0\.25 differs from the hydro run's 0\.3089"):
        run_fields(
            FieldsConfig(grid=16), sim=sim / "output", dark=other / "output", store=tmp_path / "s"
        )


def test_the_twin_needs_a_folder_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(UniverseOutputError, match=r"--dark-twin .* is --out itself"):
        build_universe(UniverseConfig(), tmp_path / "sim", dark_twin=tmp_path / "sim")
