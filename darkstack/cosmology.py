"""The cosmology of a simulation, backed by colossus.

IllustrisTNG uses the Planck 2015 cosmology (Planck Collaboration 2016, A&A 594, A13, Table 4):
h = 0.6774, Omega_m = 0.3089, Omega_b = 0.0486, sigma_8 = 0.8159, n_s = 0.9667, flat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.constants import RHO_CRIT0_H2_MSUN_PER_KPC3

if TYPE_CHECKING:
    from colossus.cosmology.cosmology import Cosmology


@dataclass(frozen=True, kw_only=True)
class CosmologyParams:
    """Parameters of a flat Lambda-CDM cosmology.

    Parameters
    ----------
    hubble_param : float
        H0 / (100 km/s/Mpc).
    omega_m : float
        Matter density today in units of the critical density.
    omega_b : float
        Baryon density today in units of the critical density.
    sigma8 : float
        Linear power spectrum normalisation in 8 Mpc/h spheres.
    n_s : float
        Primordial spectral index.
    """

    hubble_param: float = 0.6774
    omega_m: float = 0.3089
    omega_b: float = 0.0486
    sigma8: float = 0.8159
    n_s: float = 0.9667

    @property
    def omega_lambda(self) -> float:
        return 1.0 - self.omega_m

    @property
    def baryon_fraction(self) -> float:
        return self.omega_b / self.omega_m


#: IllustrisTNG's cosmology (Planck 2015).
TNG_COSMOLOGY = CosmologyParams()


@lru_cache(maxsize=8)
def colossus_cosmology(params: CosmologyParams = TNG_COSMOLOGY) -> Cosmology:
    """Make ``params`` colossus' current cosmology and return it.

    colossus keeps one global cosmology that its mass-function and concentration models read,
    so this is the single place darkstack sets it.
    """
    from colossus.cosmology import cosmology

    return cosmology.setCosmology(
        f"darkstack-{hash(params) & 0xFFFFFFFF:08x}",
        params={
            "flat": True,
            "H0": 100.0 * params.hubble_param,
            "Om0": params.omega_m,
            "Ob0": params.omega_b,
            "sigma8": params.sigma8,
            "ns": params.n_s,
        },
    )


def cosmic_age_gyr(
    scale_factor: ArrayLike, params: CosmologyParams = TNG_COSMOLOGY
) -> NDArray[np.float64]:
    """Age of the Universe in Gyr at the given scale factor(s)."""
    a = np.asarray(scale_factor, dtype=np.float64)
    return np.asarray(colossus_cosmology(params).age(1.0 / a - 1.0), dtype=np.float64)


def scale_factor_at_age(
    age_gyr: ArrayLike, params: CosmologyParams = TNG_COSMOLOGY
) -> NDArray[np.float64]:
    """Scale factor at which the Universe had the given age(s) in Gyr (inverts cosmic_age_gyr)."""
    grid_a, grid_age = _age_table(params)
    return np.interp(np.asarray(age_gyr, dtype=np.float64), grid_age, grid_a)


@lru_cache(maxsize=8)
def _age_table(params: CosmologyParams) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # colossus tabulates ages up to z = 500; star formation starts much later.
    grid_a = np.geomspace(1.0 / 400.0, 1.0, 4096)
    return grid_a, cosmic_age_gyr(grid_a, params)


def hubble_ratio(
    redshift: ArrayLike, params: CosmologyParams = TNG_COSMOLOGY
) -> NDArray[np.float64]:
    """E(z) = H(z) / H0 of flat Lambda-CDM without radiation (as the critical density uses)."""
    z = np.asarray(redshift, dtype=np.float64)
    return np.sqrt(1.0 + params.omega_m * ((1.0 + z) ** 3 - 1.0))


def overdensity_radius_kpc(
    mass_msun: ArrayLike,
    *,
    overdensity: float,
    redshift: float = 0.0,
    params: CosmologyParams = TNG_COSMOLOGY,
) -> NDArray[np.float64]:
    """R_Delta in physical kpc enclosing ``overdensity`` times rho_crit(z) around M_Delta (Msun)."""
    rho = overdensity * critical_density_msun_per_kpc3(redshift, params)
    return np.cbrt(3.0 * np.asarray(mass_msun, dtype=np.float64) / (4.0 * np.pi * rho))


def critical_density_msun_per_kpc3(
    redshift: float, params: CosmologyParams = TNG_COSMOLOGY
) -> float:
    """Critical density 3 H(z)^2 / (8 pi G) in Msun per physical kpc^3.

    Flat Lambda-CDM without radiation, as AREPO integrates TNG:
    H(z)^2 = H0^2 (Omega_m (1 + z)^3 + 1 - Omega_m). Subfind's ``Group_M_Crit200`` encloses 200
    times this density at the snapshot's redshift.
    """
    # Written as 1 + Omega_m ((1 + z)^3 - 1) so that z = 0 gives exactly rho_crit,0.
    e_squared = 1.0 + params.omega_m * ((1.0 + redshift) ** 3 - 1.0)
    return RHO_CRIT0_H2_MSUN_PER_KPC3 * params.hubble_param**2 * e_squared


def stellar_age_gyr(
    formation_scale_factor: ArrayLike,
    *,
    snapshot_scale_factor: float = 1.0,
    params: CosmologyParams = TNG_COSMOLOGY,
) -> NDArray[np.float64]:
    """Age of star particles in Gyr at the snapshot, from their formation scale factor."""
    return cosmic_age_gyr(snapshot_scale_factor, params) - cosmic_age_gyr(
        formation_scale_factor, params
    )


def as_dict(params: CosmologyParams) -> dict[str, float]:
    """Plain mapping of the parameters, for metadata."""
    return asdict(params)
