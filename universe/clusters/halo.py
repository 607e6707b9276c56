"""One cluster's mass model: NFW total matter, a central galaxy, and its hot gas.

The dark matter plus gas follow an NFW profile of M200c with the Diemer & Joyce (2019)
concentration (colossus, ``diemer19``); the central galaxy is a Hernquist sphere of the
Kravtsov et al. (2018) stellar mass. The total mass (NFW + galaxy) is the potential the gas
sits in (:class:`~darkstack.universe.clusters.icm.ClusterGas`); the dark matter is what is left
of the NFW mass once the gas is taken out. True M500c, R500c, R200c and R200m are measured on
that total, not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from darkstack.cosmology import (
    TNG_COSMOLOGY,
    CosmologyParams,
    critical_density_msun_per_kpc3,
    overdensity_radius_kpc,
)
from darkstack.universe.clusters.gas_fraction import vikhlinin09_gas_fraction
from darkstack.universe.clusters.icm import ClusterGas
from darkstack.universe.clusters.nonthermal import NELSON14_B
from darkstack.universe.clusters.vikhlinin06 import VIKHLININ06, Vikhlinin06Shape
from darkstack.universe.plan import median_concentration
from darkstack.universe.profiles import DoublePowerLawHalo, HernquistSphere

FloatArray = NDArray[np.float64]

#: Effective radius of a central galaxy over R200c (Kravtsov 2013's 0.015 for half-mass radii).
_CENTRAL_SIZE_R200 = 0.015
#: Half-mass radius of a Hernquist sphere is (1 + sqrt 2) a.
_HERNQUIST_HALF_MASS = 1.0 + np.sqrt(2.0)


@dataclass(frozen=True, kw_only=True)
class ClusterHalo:
    """Mass model of one cluster.

    Parameters
    ----------
    m200c_msun : float
        M200c of the NFW profile (dark matter plus gas).
    concentration : float
        c200c of the NFW profile.
    stellar_mass_msun : float
        Mass of the central galaxy.
    extent_r200 : float
        The NFW profile and the gas end at this many R200c.
    gas_amplitude : float
        Factor on the gas density and pressure (the cluster-to-cluster scatter).
    gas_shape : Vikhlinin06Shape
        Shape of the gas density in r / R500 (a cool core is a small core radius).
    nonthermal_b : float
        Radius (in R200m) where the non-thermal pressure fraction rises (:mod:`.nonthermal`).
    cosmology : CosmologyParams
        Sets the critical and mean densities (z = 0).
    """

    m200c_msun: float
    concentration: float
    stellar_mass_msun: float
    extent_r200: float = 3.0
    gas_amplitude: float = 1.0
    gas_shape: Vikhlinin06Shape = VIKHLININ06
    nonthermal_b: float = NELSON14_B
    cosmology: CosmologyParams = TNG_COSMOLOGY

    @cached_property
    def nfw_r200c_kpc(self) -> float:
        return float(
            overdensity_radius_kpc(self.m200c_msun, overdensity=200.0, params=self.cosmology)
        )

    @cached_property
    def nfw(self) -> DoublePowerLawHalo:
        return DoublePowerLawHalo.from_mass(
            mass_msun=self.m200c_msun,
            radius_kpc=self.nfw_r200c_kpc,
            concentration=self.concentration,
            alpha=1.0,
            beta=3.0,
            gamma=1.0,
            truncation_radius_kpc=self.extent_r200 * self.nfw_r200c_kpc,
        )

    @cached_property
    def central(self) -> HernquistSphere:
        r_half = _CENTRAL_SIZE_R200 * self.nfw_r200c_kpc
        return HernquistSphere(
            mass_msun=self.stellar_mass_msun,
            scale_radius_kpc=r_half / _HERNQUIST_HALF_MASS,
            truncation_radius_kpc=self.nfw_r200c_kpc,
        )

    def total_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        """Enclosed total mass M(<r) in Msun."""
        r = np.asarray(r_kpc, dtype=np.float64)
        return self.nfw.enclosed_mass_msun(r) + self.central.enclosed_mass_msun(r)

    def _radius(self, overdensity: float, reference_density: float) -> float:
        def excess(r: float) -> float:
            mass = float(self.total_mass_msun(np.array([r]))[0])
            return mass - 4.0 / 3.0 * np.pi * r**3 * overdensity * reference_density

        r200 = self.nfw_r200c_kpc
        # Beyond the extent the mass is constant, so the mean density keeps falling: R200m of a
        # halo truncated at R200c lies at (rho_c / rho_m)^(1/3) R200c, inside 5 R200c.
        return float(brentq(excess, 0.05 * r200, 5.0 * r200, xtol=1e-6 * r200))

    @cached_property
    def r200c_kpc(self) -> float:
        return self._radius(200.0, critical_density_msun_per_kpc3(0.0, self.cosmology))

    @cached_property
    def r500c_kpc(self) -> float:
        return self._radius(500.0, critical_density_msun_per_kpc3(0.0, self.cosmology))

    @cached_property
    def r200m_kpc(self) -> float:
        rho_m = critical_density_msun_per_kpc3(0.0, self.cosmology) * self.cosmology.omega_m
        return self._radius(200.0, rho_m)

    @property
    def true_m200c_msun(self) -> float:
        return float(self.total_mass_msun(np.array([self.r200c_kpc]))[0])

    @property
    def m500c_msun(self) -> float:
        return float(self.total_mass_msun(np.array([self.r500c_kpc]))[0])

    def gas(self, *, nonthermal: bool = True) -> ClusterGas:
        """The hot gas in hydrostatic equilibrium in this halo."""
        m500 = self.m500c_msun
        return ClusterGas(
            m500_msun=m500,
            r500_kpc=self.r500c_kpc,
            r200m_kpc=self.r200m_kpc,
            gas_fraction=float(vikhlinin09_gas_fraction(m500, cap=self.cosmology.baryon_fraction)),
            amplitude=self.gas_amplitude,
            total_mass_msun=self.total_mass_msun,
            shape=self.gas_shape,
            nonthermal=nonthermal,
            nonthermal_b=self.nonthermal_b,
        )


def cluster_halo(
    *,
    m200c_msun: float,
    concentration: float | None = None,
    stellar_mass_msun: float | None = None,
    gas_amplitude: float = 1.0,
    extent_r200: float = 3.0,
    cosmology: CosmologyParams = TNG_COSMOLOGY,
) -> ClusterHalo:
    """A cluster with median concentration and central stellar mass unless given."""
    from darkstack.universe.clusters.shmr import kravtsov18_central_stellar_mass_msun

    c = (
        float(median_concentration(m200c_msun, model="diemer19", cosmology=cosmology))
        if concentration is None
        else concentration
    )
    mstar = (
        float(kravtsov18_central_stellar_mass_msun(m200c_msun))
        if stellar_mass_msun is None
        else stellar_mass_msun
    )
    return ClusterHalo(
        m200c_msun=m200c_msun,
        concentration=c,
        stellar_mass_msun=mstar,
        gas_amplitude=gas_amplitude,
        extent_r200=extent_r200,
        cosmology=cosmology,
    )


__all__ = ["ClusterHalo", "cluster_halo"]
