"""IllustrisTNG code units and their conversion to darkstack's physical units.

TNG stores lengths in ckpc/h (times a/h: physical kpc), masses in 1e10 Msun/h, particle
velocities in km/s * sqrt(a) (times sqrt(a): peculiar km/s), group-catalog subhalo velocities in
peculiar km/s, group velocities in km/s / a (divided by a: peculiar km/s), densities in
(1e10 Msun/h) / (ckpc/h)^3 and internal energies in (km/s)^2 (Nelson et al. 2019,
Comput. Astrophys. Cosmol. 6, 2, and the data specifications). darkstack works in physical
kpc, Msun, km/s and yr past the reader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.constants import (
    BOLTZMANN_ERG_PER_K,
    GAMMA_IDEAL_GAS,
    HYDROGEN_MASS_FRACTION,
    KMS_CM_S,
    PROTON_MASS_G,
)

#: TNG's mass unit, in Msun/h.
MASS_UNIT_MSUN_PER_H = 1.0e10

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class CodeUnits:
    """Conversions between TNG code units and physical units at one snapshot.

    Parameters
    ----------
    hubble_param : float
        h of the simulation (Header/HubbleParam).
    scale_factor : float
        a of the snapshot (Header/Time).
    """

    hubble_param: float
    scale_factor: float

    def length_to_kpc(self, value: ArrayLike) -> FloatArray:
        """ckpc/h -> physical kpc."""
        return np.asarray(value, dtype=np.float64) * self.scale_factor / self.hubble_param

    def kpc_to_length(self, value_kpc: ArrayLike) -> FloatArray:
        """Physical kpc -> ckpc/h."""
        return np.asarray(value_kpc, dtype=np.float64) * self.hubble_param / self.scale_factor

    def mass_to_msun(self, value: ArrayLike) -> FloatArray:
        """1e10 Msun/h -> Msun."""
        return np.asarray(value, dtype=np.float64) * MASS_UNIT_MSUN_PER_H / self.hubble_param

    def msun_to_mass(self, value_msun: ArrayLike) -> FloatArray:
        """Msun -> 1e10 Msun/h."""
        return np.asarray(value_msun, dtype=np.float64) * self.hubble_param / MASS_UNIT_MSUN_PER_H

    def particle_velocity_to_kms(self, value: ArrayLike) -> FloatArray:
        """Snapshot velocities (km/s sqrt(a)) -> peculiar km/s."""
        return np.asarray(value, dtype=np.float64) * np.sqrt(self.scale_factor)

    def kms_to_particle_velocity(self, value_kms: ArrayLike) -> FloatArray:
        """Peculiar km/s -> snapshot velocities (km/s sqrt(a))."""
        return np.asarray(value_kms, dtype=np.float64) / np.sqrt(self.scale_factor)

    def group_velocity_to_kms(self, value: ArrayLike) -> FloatArray:
        """GroupVel (km/s / a) -> peculiar km/s: divide by a.

        The data specifications: "the peculiar velocity is obtained by multiplying this value
        by 1/a"; AREPO averages its internal velocities a^2 dx/dt = a v_pec over the group.
        """
        return np.asarray(value, dtype=np.float64) / self.scale_factor

    def kms_to_group_velocity(self, value_kms: ArrayLike) -> FloatArray:
        """Peculiar km/s -> GroupVel units (km/s / a): multiply by a."""
        return np.asarray(value_kms, dtype=np.float64) * self.scale_factor

    def density_to_msun_per_kpc3(self, value: ArrayLike) -> FloatArray:
        """(1e10 Msun/h)/(ckpc/h)^3 -> Msun / physical kpc^3."""
        factor = MASS_UNIT_MSUN_PER_H * self.hubble_param**2 / self.scale_factor**3
        return np.asarray(value, dtype=np.float64) * factor

    def msun_per_kpc3_to_density(self, value: ArrayLike) -> FloatArray:
        """Msun / physical kpc^3 -> (1e10 Msun/h)/(ckpc/h)^3."""
        factor = MASS_UNIT_MSUN_PER_H * self.hubble_param**2 / self.scale_factor**3
        return np.asarray(value, dtype=np.float64) / factor


def mean_molecular_weight(electron_abundance: ArrayLike) -> FloatArray:
    """Mean molecular weight from TNG's ElectronAbundance (electrons per hydrogen atom)."""
    x_e = np.asarray(electron_abundance, dtype=np.float64)
    return 4.0 / (1.0 + 3.0 * HYDROGEN_MASS_FRACTION + 4.0 * HYDROGEN_MASS_FRACTION * x_e)


def temperature_k(internal_energy_kms2: ArrayLike, electron_abundance: ArrayLike) -> FloatArray:
    """Gas temperature in K from InternalEnergy ((km/s)^2) and ElectronAbundance.

    The conversion documented for TNG: T = (gamma - 1) u / k_B * mu m_p.
    """
    u_cgs = np.asarray(internal_energy_kms2, dtype=np.float64) * KMS_CM_S**2
    mu = mean_molecular_weight(electron_abundance)
    return (GAMMA_IDEAL_GAS - 1.0) * u_cgs / BOLTZMANN_ERG_PER_K * mu * PROTON_MASS_G


def internal_energy_kms2(temperature: ArrayLike, electron_abundance: ArrayLike) -> FloatArray:
    """Inverse of :func:`temperature_k`: InternalEnergy in (km/s)^2."""
    mu = mean_molecular_weight(electron_abundance)
    t = np.asarray(temperature, dtype=np.float64)
    u_cgs = t * BOLTZMANN_ERG_PER_K / ((GAMMA_IDEAL_GAS - 1.0) * mu * PROTON_MASS_G)
    return u_cgs / KMS_CM_S**2
