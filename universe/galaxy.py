"""A mock galaxy's structure (the drawn scalars) and the mass components built from it.

The phases of the gas follow the picture TNG's galaxies have at z = 0: a cold, mostly neutral
disk at the warm-neutral-medium temperature, and a hot, collisionally ionised halo at the virial
temperature.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from darkstack.constants import HYDROGEN_MASS_FRACTION
from darkstack.gas import hi_mass_msun
from darkstack.universe import relations
from darkstack.universe.profiles import (
    BetaModelSphere,
    ExponentialDisk,
    HernquistSphere,
    MassComponent,
)

#: Cold disk gas sits at the warm-neutral-medium temperature (Wolfire et al. 2003).
COLD_GAS_TEMPERATURE_K = 1.0e4
#: Electrons per hydrogen atom in the cold disk (a few per cent ionised).
COLD_GAS_ELECTRON_ABUNDANCE = 0.02
#: Neutral fraction of hydrogen in the cold disk.
COLD_GAS_NEUTRAL_FRACTION = 0.98
#: A fully ionised H + He plasma: n_e / n_H = 1 + 2 n_He / n_H for X = 0.76.
HOT_GAS_ELECTRON_ABUNDANCE = 1.0 + 2.0 * (1.0 - HYDROGEN_MASS_FRACTION) / (
    4.0 * HYDROGEN_MASS_FRACTION
)
#: Collisional-ionisation-equilibrium neutral fraction of ~1e6 K gas (Sutherland & Dopita 1993).
HOT_GAS_NEUTRAL_FRACTION = 1.0e-5
#: A Hernquist bulge holds 2a/r of its mass beyond r; truncating it keeps its stars in the
#: galaxy (94% of the untruncated mass lies inside 30 a).
BULGE_TRUNCATION_SCALE_RADII = 30.0
#: Hot halo metallicity, in solar units (clusters show ~0.3 Zsun; Mernier et al. 2018).
HOT_GAS_METALLICITY_ZSUN = 0.3


@dataclass(frozen=True, kw_only=True)
class GalaxyStructure:
    """Drawn properties of one galaxy and its gas (physical units, galaxy frame)."""

    stellar_mass_msun: float
    initial_stellar_mass_msun: float
    sfr_msun_yr: float
    quenched: bool
    sfh_tau_gyr: float
    half_mass_radius_kpc: float
    disk_scale_length_kpc: float
    disk_scale_height_kpc: float
    bulge_fraction: float
    bulge_scale_radius_kpc: float
    gas_metallicity: float
    hi_mass_msun: float
    cold_gas_mass_msun: float
    gas_disk_scale_length_kpc: float
    gas_disk_scale_height_kpc: float
    hot_gas_mass_msun: float
    hot_gas_core_radius_kpc: float
    hot_gas_truncation_kpc: float
    dm_mass_r200_msun: float
    spin_axis: tuple[float, float, float]


@dataclass(frozen=True, kw_only=True)
class GalaxyComponents:
    """The baryonic mass components of a galaxy; absent ones are None."""

    stellar_disk: ExponentialDisk | None
    bulge: HernquistSphere | None
    gas_disk: ExponentialDisk | None
    hot_gas: BetaModelSphere | None

    def present(self) -> list[MassComponent]:
        """Every component that exists, for the total potential."""
        parts = (self.stellar_disk, self.bulge, self.gas_disk, self.hot_gas)
        return [part for part in parts if part is not None]


def galaxy_components(galaxy: GalaxyStructure) -> GalaxyComponents:
    """Build the mass components of ``galaxy``: stellar disk + bulge, cold disk, hot halo."""
    disk_mass = galaxy.stellar_mass_msun * (1.0 - galaxy.bulge_fraction)
    bulge_mass = galaxy.stellar_mass_msun * galaxy.bulge_fraction
    return GalaxyComponents(
        stellar_disk=ExponentialDisk(
            mass_msun=disk_mass,
            scale_length_kpc=galaxy.disk_scale_length_kpc,
            scale_height_kpc=galaxy.disk_scale_height_kpc,
        )
        if disk_mass > 0
        else None,
        bulge=HernquistSphere(
            mass_msun=bulge_mass,
            scale_radius_kpc=galaxy.bulge_scale_radius_kpc,
            truncation_radius_kpc=BULGE_TRUNCATION_SCALE_RADII * galaxy.bulge_scale_radius_kpc,
        )
        if bulge_mass > 0
        else None,
        gas_disk=_cold_disk(
            galaxy.cold_gas_mass_msun,
            galaxy.gas_disk_scale_length_kpc,
            galaxy.gas_disk_scale_height_kpc,
        )
        if galaxy.cold_gas_mass_msun > 0
        else None,
        hot_gas=BetaModelSphere(
            mass_msun=galaxy.hot_gas_mass_msun,
            core_radius_kpc=galaxy.hot_gas_core_radius_kpc,
            beta=2.0 / 3.0,
            truncation_radius_kpc=galaxy.hot_gas_truncation_kpc,
        )
        if galaxy.hot_gas_mass_msun > 0
        else None,
    )


def _cold_disk(
    mass_msun: float, scale_length_kpc: float, scale_height_kpc: float
) -> ExponentialDisk:
    return ExponentialDisk(
        mass_msun=mass_msun, scale_length_kpc=scale_length_kpc, scale_height_kpc=scale_height_kpc
    )


def cold_gas_mass_for_hi(
    *, hi_mass_msun: float, scale_length_kpc: float, scale_height_kpc: float
) -> float:
    """Cold-disk gas mass whose atomic hydrogen, split as ingest splits it, equals ``hi_mass_msun``.

    The molecular fraction depends on pressure and so on the disk mass itself; a fixed-point
    iteration over an equal-mass grid of the disk converges in a few steps because f_H2 grows
    sub-linearly with density.
    """
    if hi_mass_msun <= 0:
        return 0.0
    radius_unit, height_unit = _equal_mass_disk_grid()
    radius = radius_unit * scale_length_kpc
    height = height_unit * scale_height_kpc
    atomic_per_neutral = HYDROGEN_MASS_FRACTION * COLD_GAS_NEUTRAL_FRACTION
    mass = hi_mass_msun / atomic_per_neutral
    for _ in range(30):
        density = _cold_disk(mass, scale_length_kpc, scale_height_kpc).density_at_msun_per_kpc3(
            radius, height
        )
        atomic_fraction = hi_mass_msun_per_cold_mass(density)
        updated = hi_mass_msun / float(np.mean(atomic_fraction))
        if abs(updated - mass) <= 1e-6 * mass:
            return updated
        mass = updated
    return mass


@lru_cache(maxsize=1)
def _equal_mass_disk_grid(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """(R / R_d, z / z_0) at the centres of n x n equal-mass cells of an exponential sech^2 disk."""
    quantiles = (np.arange(n) + 0.5) / n
    return stats.gamma.ppf(quantiles, 2.0)[:, None], np.arctanh(2.0 * quantiles - 1.0)[None, :]


def hi_mass_msun_per_cold_mass(density_msun_per_kpc3: np.ndarray) -> np.ndarray:
    """HI mass per unit cold-disk gas mass at the given densities (cold-phase state)."""
    return hi_mass_msun(
        mass_msun=np.ones_like(density_msun_per_kpc3),
        neutral_hydrogen_abundance=COLD_GAS_NEUTRAL_FRACTION,
        density_msun_per_kpc3=density_msun_per_kpc3,
        temperature_k=COLD_GAS_TEMPERATURE_K,
        electron_abundance=COLD_GAS_ELECTRON_ABUNDANCE,
    )


def mean_mass_loss_fraction(*, tau_gyr: float, cosmic_time_gyr: float) -> float:
    """Fraction of the initial stellar mass returned to the gas by now, for a delayed-tau SFH."""
    formation = np.linspace(0.0, cosmic_time_gyr, 4097)[:-1] + cosmic_time_gyr / 8192
    weight = formation * np.exp(-formation / tau_gyr)
    loss = relations.leitner_kravtsov11_mass_loss_fraction((cosmic_time_gyr - formation) * 1.0e9)
    return float(np.sum(weight * loss) / np.sum(weight))


__all__ = [
    "COLD_GAS_ELECTRON_ABUNDANCE",
    "COLD_GAS_NEUTRAL_FRACTION",
    "COLD_GAS_TEMPERATURE_K",
    "HOT_GAS_ELECTRON_ABUNDANCE",
    "HOT_GAS_METALLICITY_ZSUN",
    "HOT_GAS_NEUTRAL_FRACTION",
    "GalaxyComponents",
    "GalaxyStructure",
    "cold_gas_mass_for_hi",
    "galaxy_components",
    "mean_mass_loss_fraction",
]
