"""Gas-phase physics shared by the mock universe and ingest: the atomic/molecular split.

TNG tracks neutral hydrogen (``NeutralHydrogenAbundance``, HI + H2) but not its molecular part.
darkstack splits neutral hydrogen into HI and H2 with the pressure-based relation of Blitz &
Rosolowsky (2006, ApJ 650, 933): R_mol = Sigma_H2 / Sigma_HI = (P / P0)^alpha with
P0 / k_B = 4.3e4 K cm^-3 and alpha = 0.92, applied to each cell's thermal pressure
P / k_B = n T (n the total particle number density). The mock universe uses the same function
when it sets the cold gas mass from an HI scaling relation, so that ingest recovers that HI mass.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.constants import HYDROGEN_MASS_FRACTION, KPC_CM, MSUN_G, PROTON_MASS_G
from darkstack.units import mean_molecular_weight

#: Blitz & Rosolowsky (2006) reference pressure P0 / k_B in K cm^-3.
BR06_PRESSURE_K_CM3 = 4.3e4
#: Blitz & Rosolowsky (2006) power-law index.
BR06_INDEX = 0.92

_MSUN_PER_KPC3_TO_G_PER_CM3 = MSUN_G / KPC_CM**3


def hydrogen_number_density_cm3(density_msun_per_kpc3: ArrayLike) -> NDArray[np.float64]:
    """Hydrogen nuclei per cm^3 of gas with the given mass density."""
    rho_cgs = np.asarray(density_msun_per_kpc3, dtype=np.float64) * _MSUN_PER_KPC3_TO_G_PER_CM3
    return HYDROGEN_MASS_FRACTION * rho_cgs / PROTON_MASS_G


def thermal_pressure_k_cm3(
    density_msun_per_kpc3: ArrayLike, temperature_k: ArrayLike, electron_abundance: ArrayLike
) -> NDArray[np.float64]:
    """P / k_B = n T in K cm^-3, with n from the density and mean molecular weight."""
    rho_cgs = np.asarray(density_msun_per_kpc3, dtype=np.float64) * _MSUN_PER_KPC3_TO_G_PER_CM3
    n_total = rho_cgs / (mean_molecular_weight(electron_abundance) * PROTON_MASS_G)
    return n_total * np.asarray(temperature_k, dtype=np.float64)


def molecular_fraction_br06(pressure_k_cm3: ArrayLike) -> NDArray[np.float64]:
    """H2 / (HI + H2) from the Blitz & Rosolowsky (2006) pressure relation."""
    ratio = (np.asarray(pressure_k_cm3, dtype=np.float64) / BR06_PRESSURE_K_CM3) ** BR06_INDEX
    return ratio / (1.0 + ratio)


def hi_mass_msun(
    *,
    mass_msun: ArrayLike,
    neutral_hydrogen_abundance: ArrayLike,
    density_msun_per_kpc3: ArrayLike,
    temperature_k: ArrayLike,
    electron_abundance: ArrayLike,
) -> NDArray[np.float64]:
    """Atomic hydrogen mass of gas cells in Msun.

    Parameters
    ----------
    mass_msun : array_like
        Cell masses.
    neutral_hydrogen_abundance : array_like
        Neutral fraction of hydrogen (TNG's NeutralHydrogenAbundance, HI + H2).
    density_msun_per_kpc3, temperature_k, electron_abundance : array_like
        Cell state, for the pressure of the molecular split.

    Returns
    -------
    ndarray
        M_HI = m X_H x_neutral (1 - f_H2(P)).
    """
    neutral = (
        np.asarray(mass_msun, dtype=np.float64)
        * HYDROGEN_MASS_FRACTION
        * np.asarray(neutral_hydrogen_abundance, dtype=np.float64)
    )
    pressure = thermal_pressure_k_cm3(density_msun_per_kpc3, temperature_k, electron_abundance)
    return neutral * (1.0 - molecular_fraction_br06(pressure))
