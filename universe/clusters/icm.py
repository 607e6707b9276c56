"""The intracluster medium of one cluster: density, pressure, temperature, hydrostatic mass.

The gas density has the shape of Vikhlinin et al. (2006) in r / R500 (:mod:`.vikhlinin06`) and
holds f_gas(M500) M500 inside R500 (Vikhlinin et al. 2009, :mod:`.gas_fraction`), times a
log-normal factor (the cluster-to-cluster scatter). The gas is in hydrostatic equilibrium in
the cluster's total mass profile M(r) under its *total* pressure, thermal plus non-thermal:

    dP_tot / dr = -G M(r) rho_gas(r) / r^2,   P_tot -> 0 far outside,
    P_th = (1 - f_nt(r)) P_tot,               f_nt of Nelson et al. (2014, :mod:`.nonthermal`).

So the model is consistent by construction (the true mass is what the gas feels), and the
temperature T = P_th / (n k) follows from pressure and density. An observer who assumes
thermal equilibrium, M_HSE = -r^2 / (G rho) dP_th/dr, underestimates the mass: the
hydrostatic mass bias b = 1 - M_HSE / M_true, reported by :meth:`ClusterGas.hse_bias`.
The electron pressure comes out close to Arnaud et al. (2010)'s universal profile, which is
how it is checked (docs/cluster_mass.md); its amplitude scatters with the density factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_trapezoid

from darkstack.constants import (
    BOLTZMANN_ERG_PER_K,
    G_KPC_KMS2_PER_MSUN,
    HYDROGEN_MASS_FRACTION,
    KEV_ERG,
    KMS_CM_S,
    KPC_CM,
    MSUN_G,
    PROTON_MASS_G,
)
from darkstack.units import mean_molecular_weight
from darkstack.universe.clusters import vikhlinin06
from darkstack.universe.clusters.nonthermal import NELSON14_B, nelson14_fraction

FloatArray = NDArray[np.float64]

#: Electrons per hydrogen nucleus of fully ionised hydrogen and helium (metals neglected).
FULLY_IONISED_ELECTRON_ABUNDANCE = 1.0 + (1.0 - HYDROGEN_MASS_FRACTION) / (
    2.0 * HYDROGEN_MASS_FRACTION
)
#: Msun (km/s)^2 / kpc^3 in erg / cm^3.
_PRESSURE_CGS = MSUN_G * KMS_CM_S**2 / KPC_CM**3
_DENSITY_CGS = MSUN_G / KPC_CM**3
#: The pressure table spans these multiples of R500; the gas ends well inside its outer edge.
_GRID_X = (1.0e-4, 30.0)
_GRID_POINTS = 4000


@dataclass(frozen=True, kw_only=True)
class ClusterGas:
    """Hot gas of one cluster in hydrostatic equilibrium.

    Parameters
    ----------
    m500_msun, r500_kpc : float
        True M500c and R500c of the cluster (of ``total_mass_msun``).
    r200m_kpc : float
        R200 about the mean matter density, the scale of the non-thermal fraction.
    gas_fraction : float
        Gas mass inside R500 over M500 before ``amplitude`` (e.g. Vikhlinin et al. 2009).
    amplitude : float
        Factor on the gas density (and so on the pressure); log-normal from cluster to cluster.
    total_mass_msun : callable
        Total enclosed mass M(<r) in Msun at radii in kpc (dark matter, gas and stars).
    shape : Vikhlinin06Shape
        Density shape in r / R500.
    nonthermal : bool
        Include the Nelson et al. (2014) non-thermal pressure (False: purely thermal gas).
    nonthermal_b : float
        Radius (in R200m) where the non-thermal fraction rises: their fit's B, or this
        cluster's draw about it.
    """

    m500_msun: float
    r500_kpc: float
    r200m_kpc: float
    gas_fraction: float
    amplitude: float = 1.0
    total_mass_msun: Callable[[FloatArray], FloatArray] = field(repr=False)
    shape: vikhlinin06.Vikhlinin06Shape = vikhlinin06.VIKHLININ06
    nonthermal: bool = True
    nonthermal_b: float = NELSON14_B

    @cached_property
    def _density_norm(self) -> float:
        x = np.geomspace(_GRID_X[0], 1.0, _GRID_POINTS)
        shell = 4.0 * np.pi * x**3 * vikhlinin06.density_shape(x, shape=self.shape)
        unit_mass = float(np.trapezoid(shell, np.log(x))) * self.r500_kpc**3
        return self.gas_fraction * self.m500_msun / unit_mass

    def gas_density_msun_per_kpc3(self, r_kpc: ArrayLike) -> FloatArray:
        """rho_gas(r) in Msun / kpc^3."""
        x = np.asarray(r_kpc, dtype=np.float64) / self.r500_kpc
        return self.amplitude * self._density_norm * vikhlinin06.density_shape(x, shape=self.shape)

    def gas_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        """Gas mass inside r (Msun), from the tabulated profile."""
        r, _, mass = self._table
        return np.interp(np.asarray(r_kpc, dtype=np.float64), r, mass)

    def nonthermal_fraction(self, r_kpc: ArrayLike) -> FloatArray:
        """P_nt / P_tot at r (0 when ``nonthermal`` is False)."""
        r = np.asarray(r_kpc, dtype=np.float64)
        if not self.nonthermal:
            return np.zeros_like(r)
        return nelson14_fraction(r / self.r200m_kpc, b=self.nonthermal_b)

    @cached_property
    def _table(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Radii (kpc), total pressure (Msun (km/s)^2 / kpc^3) and gas mass on a log grid."""
        r = np.geomspace(_GRID_X[0], _GRID_X[1], _GRID_POINTS) * self.r500_kpc
        rho = self.gas_density_msun_per_kpc3(r)
        # dP/d ln r = -G M rho / r, integrated inward from the (negligible) outer edge.
        dp = G_KPC_KMS2_PER_MSUN * self.total_mass_msun(r) * rho / r
        outward = cumulative_trapezoid(dp, np.log(r), initial=0.0)
        pressure = outward[-1] - outward
        shell = 4.0 * np.pi * r**3 * rho
        # The innermost shell's mass, as if rho were constant inside it, starts the sum.
        mass = cumulative_trapezoid(shell, np.log(r), initial=0.0) + shell[0] / 3.0
        return r, pressure, mass

    def total_pressure_kev_cm3(self, r_kpc: ArrayLike) -> FloatArray:
        """Thermal plus non-thermal pressure in keV cm^-3."""
        r, pressure, _ = self._table
        # The outermost entry is the zero boundary; extrapolating its log would give -inf.
        log_p = np.interp(
            np.log(np.asarray(r_kpc, dtype=np.float64)), np.log(r[:-1]), np.log(pressure[:-1])
        )
        return np.exp(log_p) * _PRESSURE_CGS / KEV_ERG

    def thermal_pressure_kev_cm3(self, r_kpc: ArrayLike) -> FloatArray:
        """Gas (ions and electrons) thermal pressure in keV cm^-3."""
        return (1.0 - self.nonthermal_fraction(r_kpc)) * self.total_pressure_kev_cm3(r_kpc)

    def electron_density_cm3(self, r_kpc: ArrayLike) -> FloatArray:
        """n_e in cm^-3 of fully ionised gas."""
        rho = self.gas_density_msun_per_kpc3(r_kpc) * _DENSITY_CGS
        return FULLY_IONISED_ELECTRON_ABUNDANCE * HYDROGEN_MASS_FRACTION * rho / PROTON_MASS_G

    def particle_density_cm3(self, r_kpc: ArrayLike) -> FloatArray:
        """Total (ion plus electron) number density in cm^-3."""
        rho = self.gas_density_msun_per_kpc3(r_kpc) * _DENSITY_CGS
        return rho / (mean_molecular_weight(FULLY_IONISED_ELECTRON_ABUNDANCE) * PROTON_MASS_G)

    def temperature_kev(self, r_kpc: ArrayLike) -> FloatArray:
        """k T = P_th / n in keV."""
        return self.thermal_pressure_kev_cm3(r_kpc) / self.particle_density_cm3(r_kpc)

    def temperature_k(self, r_kpc: ArrayLike) -> FloatArray:
        """T in K."""
        return self.temperature_kev(r_kpc) * KEV_ERG / BOLTZMANN_ERG_PER_K

    def electron_pressure_kev_cm3(self, r_kpc: ArrayLike) -> FloatArray:
        """P_e = n_e k T in keV cm^-3 (the pressure the SZ effect and Arnaud et al. measure)."""
        return self.electron_density_cm3(r_kpc) * self.temperature_kev(r_kpc)

    def hse_mass_msun(self, r_kpc: ArrayLike, *, thermal_only: bool = True) -> FloatArray:
        """M_HSE(<r) = -r^2 / (G rho) dP/dr from the thermal (or total) pressure."""
        r = np.asarray(r_kpc, dtype=np.float64)
        step = 1.0e-3
        pressure = self.thermal_pressure_kev_cm3 if thermal_only else self.total_pressure_kev_cm3
        dlnp = (np.log(pressure(r * np.exp(step))) - np.log(pressure(r * np.exp(-step)))) / (
            2.0 * step
        )
        p_internal = pressure(r) * KEV_ERG / _PRESSURE_CGS
        return -dlnp * p_internal * r / (G_KPC_KMS2_PER_MSUN * self.gas_density_msun_per_kpc3(r))

    def hse_bias(self, r_kpc: float | None = None) -> float:
        """b = 1 - M_HSE,thermal(<r) / M_true(<r), at R500 unless ``r_kpc`` is given."""
        r = self.r500_kpc if r_kpc is None else r_kpc
        true = float(self.total_mass_msun(np.array([r]))[0])
        return 1.0 - float(self.hse_mass_msun(np.array([r]))[0]) / true


__all__ = ["FULLY_IONISED_ELECTRON_ABUNDANCE", "ClusterGas"]
