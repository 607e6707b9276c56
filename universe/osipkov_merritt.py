"""Stars drawn from an Osipkov-Merritt distribution function in a spherical total potential.

Jeans-equation velocities are Gaussian at every radius; a distribution function f(Q),
Q = -E - L^2 / (2 r_a^2) (Osipkov 1979; Merritt 1985), gives each radius its true,
non-Gaussian velocity distribution, whose kurtosis carries what the cusp-core network reads.
galpy (Bovy 2015) inverts the tracer density in the total potential by Eddington's formula and
samples it (:class:`galpy.df.osipkovmerrittdf`); this module only converts units and checks
that the inverted f is non-negative (small r_a makes it negative: the model then does not
exist).

galpy works in natural units; here its length unit is 1 kpc and its velocity unit
:data:`VELOCITY_UNIT_KMS`, so its mass unit is VELOCITY_UNIT_KMS^2 kpc / G.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import trapezoid

from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.universe.kinematics import enclosed_total_mass_msun
from darkstack.universe.profiles import DoublePowerLawHalo, MassComponent

FloatArray = NDArray[np.float64]

#: galpy's velocity unit here (km/s); lengths are kpc. Dwarfs' dispersions are ~10 km/s.
VELOCITY_UNIT_KMS = 100.0
#: f(Q) may dip below zero by this fraction of its maximum from the numerical inversion alone.
_NEGATIVE_TOLERANCE = 1.0e-6
#: Points of the radius grid of the interpolated total potential.
_POTENTIAL_GRID_POINTS = 1001


class NegativeDistributionError(ValueError):
    """The Osipkov-Merritt f(Q) is negative: no such equilibrium exists."""


@dataclass(frozen=True)
class OsipkovMerrittStars:
    """A sampled stellar population: positions (kpc) and velocities (km/s), centred, (n, 3)."""

    position_kpc: FloatArray
    velocity_kms: FloatArray


def _zhao_tracer_density(tracer: DoublePowerLawHalo) -> Any:
    """The tracer's (alpha, beta, gamma) density as a galpy spherical density object.

    galpy's Eddington inversion needs rho and its first two radial derivatives, and its
    sampler M(<r); all are closed-form for the Zhao profile (d ln rho / d ln r = s(r), see
    :meth:`DoublePowerLawHalo.log_slope`). Its amplitude is irrelevant to f's shape.
    """
    from galpy.potential.SphericalPotential import SphericalPotential

    alpha, beta, gamma = tracer.alpha, tracer.beta, tracer.gamma
    r_s = tracer.scale_radius_kpc
    norm = 1.0 / tracer.total_mass_msun
    rho_s = norm * tracer.rho_s_msun_per_kpc3
    power = (beta - gamma) / alpha

    class _ZhaoDensity(SphericalPotential):
        def __init__(self) -> None:
            SphericalPotential.__init__(self, amp=1.0)
            self.hasC = False

        def _rdens(self, r: Any, t: float = 0.0) -> Any:
            # Called ~1e6 times per DF with scalars: the bare formula, no truncation (galpy
            # integrates only inside r_max, which is the truncation radius).
            x = r / r_s
            return rho_s / (x**gamma * (1.0 + x**alpha) ** power)

        def _mass(self, R: Any, z: Any = None, t: float = 0.0) -> Any:
            r = R if z is None else np.sqrt(R**2 + z**2)
            return norm * tracer.enclosed_mass_msun(r)

        def _rforce(self, r: Any, t: float = 0.0) -> Any:
            return -self._mass(r) / r**2

        def _revaluate(self, r: Any, t: float = 0.0) -> Any:
            raise NotImplementedError("the tracer only supplies a density")

        def _ddensdr(self, r: Any, t: float = 0.0) -> Any:
            x_alpha = (r / r_s) ** alpha
            slope = -(gamma + (beta - gamma) * x_alpha / (1.0 + x_alpha))
            return self._rdens(r) * slope / r

        def _d2densdr2(self, r: Any, t: float = 0.0) -> Any:
            x_alpha = (r / r_s) ** alpha
            slope = -(gamma + (beta - gamma) * x_alpha / (1.0 + x_alpha))
            dslope_dr = -(beta - gamma) * alpha * x_alpha / (r * (1.0 + x_alpha) ** 2)
            return self._rdens(r) * (slope * slope - slope + r * dslope_dr) / r**2

    return _ZhaoDensity()


def _galpy_potential(
    components: Sequence[MassComponent], *, r_min_kpc: float, r_max_kpc: float
) -> Any:
    from galpy.potential import interpSphericalPotential

    mass_unit_msun = VELOCITY_UNIT_KMS**2 / G_KPC_KMS2_PER_MSUN
    grid = np.geomspace(r_min_kpc, r_max_kpc, _POTENTIAL_GRID_POINTS)

    def radial_force(r: FloatArray) -> FloatArray:
        return -enclosed_total_mass_msun(components, r) / mass_unit_msun / np.asarray(r) ** 2

    # galpy sets Phi(r_min) = Phi0 (0 by default); Phi(inf) = 0 needs the full integral, with
    # all the mass inside r_max beyond it.
    fine = np.geomspace(r_min_kpc, r_max_kpc, 8 * _POTENTIAL_GRID_POINTS)
    inner = trapezoid(-radial_force(fine) * fine, np.log(fine))
    outer = enclosed_total_mass_msun(components, r_max_kpc) / mass_unit_msun / r_max_kpc
    return interpSphericalPotential(rforce=radial_force, rgrid=grid, Phi0=-(inner + outer))


def osipkov_merritt_df(
    *,
    tracer: DoublePowerLawHalo,
    components: Sequence[MassComponent],
    anisotropy_radius_kpc: float,
    r_max_kpc: float,
) -> Any:
    """galpy's Osipkov-Merritt DF of a Plummer tracer in the potential of ``components``.

    Parameters
    ----------
    tracer : PlummerSphere
        The stars' density (its mass only scales f).
    components : sequence of MassComponent
        Everything that makes the potential (the tracer included if it self-gravitates).
    anisotropy_radius_kpc : float
        r_a; ``inf`` gives the isotropic (Eddington) DF.
    r_max_kpc : float
        Outer edge: the DF is cut off at E = Phi(r_max).

    Returns
    -------
    galpy.df.osipkovmerrittdf or galpy.df.isotropicPlummerdf-like
        A galpy DF with ``sample``.
    """
    from galpy.df import eddingtondf, osipkovmerrittdf

    b_kpc = tracer.scale_radius_kpc
    potential = _galpy_potential(components, r_min_kpc=1.0e-3 * b_kpc, r_max_kpc=r_max_kpc)
    density = _zhao_tracer_density(tracer)
    if np.isinf(anisotropy_radius_kpc):
        return eddingtondf(pot=potential, denspot=density, rmax=r_max_kpc, scale=b_kpc)
    return osipkovmerrittdf(
        pot=potential, denspot=density, ra=anisotropy_radius_kpc, rmax=r_max_kpc, scale=b_kpc
    )


def check_non_negative(df: Any, *, tracer: DoublePowerLawHalo, n_points: int = 32) -> float:
    """Smallest f(Q) over the occupied range relative to the largest; raise if negative.

    Evaluates f at Q = -Phi(r) for r from 0.01 b (the inner 1e-6 of the Plummer mass) to the
    outer edge; deeper, Eddington's integral is dominated by round-off and holds no stars.

    Raises
    ------
    NegativeDistributionError
        If min f < -1e-6 max f, naming the anisotropy radius.
    """
    edf = df._edf if hasattr(df, "_edf") else df
    radii = np.geomspace(0.01 * tracer.scale_radius_kpc, edf._rmax, n_points, endpoint=False)
    from galpy.potential import evaluatePotentials

    energies = evaluatePotentials(edf._pot, radii, np.zeros_like(radii), use_physical=False)
    values = np.asarray(edf.fE(energies), dtype=np.float64)
    ratio = float(values.min() / values.max())
    if ratio < -_NEGATIVE_TOLERANCE:
        radius = getattr(df, "_ra", np.inf)
        raise NegativeDistributionError(
            f"Osipkov-Merritt f(Q) < 0 (min/max = {ratio:.3g}) at anisotropy radius "
            f"{radius:.3g} kpc: no such equilibrium; use a larger anisotropy radius"
        )
    return ratio


def sample_osipkov_merritt(
    rng: np.random.Generator,
    *,
    n: int,
    tracer: DoublePowerLawHalo,
    components: Sequence[MassComponent],
    anisotropy_radius_kpc: float,
    r_max_kpc: float,
) -> OsipkovMerrittStars:
    """Draw ``n`` stars from the Osipkov-Merritt DF (see :func:`osipkov_merritt_df`).

    galpy draws from numpy's global random state; it is seeded from ``rng`` and restored, so
    the same ``rng`` gives the same stars and the caller's global state is untouched.

    Returns
    -------
    OsipkovMerrittStars
    """
    df = osipkov_merritt_df(
        tracer=tracer,
        components=components,
        anisotropy_radius_kpc=anisotropy_radius_kpc,
        r_max_kpc=r_max_kpc,
    )
    check_non_negative(df, tracer=tracer)
    state = np.random.get_state()  # noqa: NPY002 (galpy draws from it)
    np.random.seed(int(rng.integers(2**32)))  # noqa: NPY002
    try:
        orbits = df.sample(n=n)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    position = np.column_stack(
        [orbits.x(use_physical=False), orbits.y(use_physical=False), orbits.z(use_physical=False)]
    )
    velocity = VELOCITY_UNIT_KMS * np.column_stack(
        [
            orbits.vx(use_physical=False),
            orbits.vy(use_physical=False),
            orbits.vz(use_physical=False),
        ]
    )
    return OsipkovMerrittStars(position_kpc=position, velocity_kms=velocity)
