"""The cosmic web (``darkstack.universe.web``): field, displacement, halos, mass; tiny boxes."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from colossus.cosmology import cosmology as colossus

from darkstack.config import ConfigError, load_config
from darkstack.cosmology import TNG_COSMOLOGY
from darkstack.features.deposit.mesh import cell_coordinates, deposit
from darkstack.tng_layout import linear_field_path, snapshot_path
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig, WebConfig
from darkstack.universe.web import realise

#: Planck 2015 as TNG quotes it (Nelson et al. 2019, table 1), given to colossus directly so
#: the expected P(k) does not come through darkstack's cosmology module.
PLANCK15_TNG = {
    "flat": True,
    "H0": 67.74,
    "Om0": 0.3089,
    "Ob0": 0.0486,
    "sigma8": 0.8159,
    "ns": 0.9667,
}
#: rho_crit,0 / h^2 in Msun / Mpc^3 (2.775e11, e.g. Mo, van den Bosch & White 2010, eq. 3.63).
RHO_CRIT_H2_MSUN_MPC3 = 2.77536627e11


def _modes(n: int, box: float) -> np.ndarray:
    f = np.fft.fftfreq(n, 1.0 / n)
    fz = np.fft.rfftfreq(n, 1.0 / n)
    return (2 * np.pi / box) * np.sqrt(
        f[:, None, None] ** 2 + f[None, :, None] ** 2 + fz[None, None, :] ** 2
    )


def test_gaussian_field_has_the_colossus_power_spectrum() -> None:
    n, box = 64, 300.0
    web = realise(
        WebConfig(enabled=True, lattice=n, second_order=False),
        box_mpc_h=box,
        redshift=0.0,
        cosmology=TNG_COSMOLOGY,
        seed=3,
    )
    modes = np.fft.rfftn(web.delta.astype(np.float64))
    k = _modes(n, box)
    # Modes below half the Nyquist frequency, kz > 0 (independent ones, no plane counted twice).
    sel = (k > 0) & (k < 0.5 * np.pi * n / box)
    sel[:, :, 0] = False
    measured = np.abs(modes[sel]) ** 2 * (box / n**2) ** 3
    expected = colossus.setCosmology("planck15_tng_test", **PLANCK15_TNG).matterPowerSpectrum(
        k[sel], z=0.0
    )
    ratio = measured / expected
    # |delta_k|^2 / P is exponential with mean 1: the mean of N is 1 +- 1/sqrt(N).
    assert abs(ratio.mean() - 1.0) < 4.0 / np.sqrt(ratio.size)
    # and per octave in k (the shape, not just the normalisation)
    for lo in (0.04, 0.08, 0.16):
        band = (k[sel] >= lo) & (k[sel] < 2 * lo)
        assert abs(ratio[band].mean() - 1.0) < 4.0 / np.sqrt(band.sum()), lo


def test_displaced_lattice_follows_the_linear_field() -> None:
    """The particles' CIC density correlates with the linear field on large scales.

    Lagrangian perturbation theory damps the cross-correlation as exp(-k^2 sigma_psi^2 / 2)
    (sigma_psi ~ 6 Mpc/h at z = 0, e.g. Crocce & Scoccimarro 2006): ~0.99 below 0.05 h/Mpc.
    """
    n, box = 48, 400.0
    web = realise(
        WebConfig(enabled=True, lattice=n),
        box_mpc_h=box,
        redshift=0.0,
        cosmology=TNG_COSMOLOGY,
        seed=1,
    )
    positions, _ = web.particles(np.arange(n**3), box)  # "kpc" with box_kpc = box: Mpc/h
    grid = deposit(cell_coordinates(positions, cell_size=box / n), 1.0, shape=(n,) * 3)
    density = np.fft.rfftn(grid / grid.mean() - 1.0)
    linear = np.fft.rfftn(web.delta.astype(np.float64))
    sel = (_modes(n, box) > 0) & (_modes(n, box) < 0.05)
    r = np.sum((density * np.conj(linear)).real[sel]) / np.sqrt(
        np.sum(np.abs(density[sel]) ** 2) * np.sum(np.abs(linear[sel]) ** 2)
    )
    assert r > 0.98
    # -div(psi) is delta to first order: compare the Zel'dovich part's divergence directly
    za = realise(
        WebConfig(enabled=True, lattice=n, second_order=False),
        box_mpc_h=box,
        redshift=0.0,
        cosmology=TNG_COSMOLOGY,
        seed=1,
    )
    h = box / n
    divergence = sum(
        (np.roll(za.psi[a], -1, axis=a) - np.roll(za.psi[a], 1, axis=a)) / (2 * h) for a in range(3)
    )
    corr = np.corrcoef(-divergence.ravel(), za.delta.ravel())[0, 1]
    assert corr > 0.6  # finite differences damp the smallest scales; sign and link are what count


def test_halo_draws_avoid_voids() -> None:
    """Lognormal intensity exp(b d - b^2 s^2 / 2): its mean d is b s^2 (a Gaussian identity)."""
    n, box = 64, 100.0
    web = realise(
        WebConfig(enabled=True, lattice=n, halo_sampling_grid=64),
        box_mpc_h=box,
        redshift=0.0,
        cosmology=TNG_COSMOLOGY,
        seed=2,
    )
    rng = np.random.default_rng(0)
    mass = 10**13.45  # the middle of a 0.1 dex intensity bin
    from colossus.lss import bias

    b_l = float(bias.haloBias(mass * 0.6774, 0.0, "200c", model="tinker10")) - 1.0
    assert b_l > 0.3
    smoothed = web._smoothed(float(web.lagrangian_radius_mpc_h(mass)), 64)
    draws = np.array([web.draw_halo(rng, i, mass, box) for i in range(4000)])
    assert draws.shape == (4000, 3)
    cells = np.array([web.lagrangian_mpc_h[i] for i in range(4000)]) // (box / 64)
    at_halos = smoothed[tuple(cells.astype(int).T)]
    sigma2 = smoothed.var()
    assert at_halos.mean() == pytest.approx(b_l * sigma2, rel=0.15)
    # Voids (below -1 sigma of the smoothed field) hold 16% of the volume and far fewer halos.
    void = smoothed < -np.sqrt(sigma2)
    assert void.mean() > 0.1
    assert np.mean(at_halos < -np.sqrt(sigma2)) < 0.5 * void.mean()


@pytest.fixture(scope="module")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, UniverseConfig]:
    root = tmp_path_factory.mktemp("web")
    config = load_config(
        UniverseConfig,
        overrides=[
            "box_size_mpc_h=12.0",
            "halo_mass_min_msun=3e11",
            "web.enabled=true",
            "web.lattice=40",
            "web.particle_mesh_steps=4",  # the presets' gravity, through the whole build
            "snapshot_files=2",
            "groupcat_files=1",
        ],
    )
    build_universe(config, root / "sim", progress=False, dark_twin=root / "dark")
    return root / "sim", root / "dark", config


def _snapshot(root: Path, ptype: int) -> tuple[np.ndarray, float]:
    """Coordinates and total mass (1e10 Msun/h) of one particle type over all files."""
    positions, total, index = [], 0.0, 0
    while snapshot_path(root / "output", 99, index).exists():
        with h5py.File(snapshot_path(root / "output", 99, index), "r") as f:
            group = f.get(f"PartType{ptype}")
            if group is not None:
                positions.append(group["Coordinates"][()])
                table = f["Header"].attrs["MassTable"][ptype]
                total += len(positions[-1]) * table if table > 0 else group["Masses"][()].sum()
        index += 1
    return np.concatenate(positions), float(total)


def test_total_mass_is_omega_m_rho_crit_v(web_run: tuple[Path, Path, UniverseConfig]) -> None:
    sim, dark, config = web_run
    expected = PLANCK15_TNG["Om0"] * RHO_CRIT_H2_MSUN_MPC3 * config.box_size_mpc_h**3 / 1e10
    for root in (sim, dark):
        total = sum(_snapshot(root, p)[1] for p in (0, 1, 4) if root == sim or p == 1)
        assert total == pytest.approx(expected, rel=1e-3), root
    assert linear_field_path(sim).exists()
    delta = xr.open_zarr(linear_field_path(sim), consolidated=False)["delta"]
    assert delta.shape == (40, 40, 40)
    assert abs(float(delta.mean())) < 1e-5


def test_dark_twin_has_the_same_unbound_lattice(
    web_run: tuple[Path, Path, UniverseConfig],
) -> None:
    sim, dark, _ = web_run
    hydro, _ = _snapshot(sim, 1)
    twin, _ = _snapshot(dark, 1)
    # The hydro run's lattice particles are its last (outer fuzz after every group's);
    # the twin holds every one of them at the same place.
    lattice = hydro[-1000:]
    found = {tuple(p) for p in np.round(twin, 3)}
    assert all(tuple(p) in found for p in np.round(lattice, 3))


def test_quick_preset_has_no_web() -> None:
    config = load_config(UniverseConfig, preset=PRESETS["quick"])
    assert not config.web.enabled
    assert config.stellar_mass_concentration_correlation == 0.0
    for name in ("small", "paper"):
        preset = load_config(UniverseConfig, preset=PRESETS[name])
        assert preset.web.enabled
        assert preset.box_size_mpc_h >= 50.0


def test_gravity_and_alpt_are_one_or_the_other() -> None:
    expected = r"web\.particle_mesh_steps=10; expected None when collapse_scale_mpc_h is set"
    with pytest.raises(ConfigError, match=expected):
        load_config(
            UniverseConfig, preset=PRESETS["small"], overrides=["web.collapse_scale_mpc_h=3"]
        )
