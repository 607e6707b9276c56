"""Velocities of particles in equilibrium with the total mass of their galaxy and halo.

Pressure-supported components (halo, bulge, hot gas) get Gaussian velocities with the isotropic
Jeans dispersion; disks rotate about +z at the circular velocity. Both use the spherical
enclosed mass of every component, as is usual for mock initial conditions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_trapezoid

from darkstack import measure
from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.universe.profiles import MassComponent

FloatArray = NDArray[np.float64]

#: Points of the logarithmic radius grid on which the Jeans integral is tabulated.
_JEANS_GRID_POINTS = 1024
#: Above this many radii, v_c is interpolated from a log-grid table of this size (smooth in
#: ln r, so the error is ~1e-6) instead of evaluating every component at every particle.
_CIRCULAR_VELOCITY_TABLE_POINTS = 1024


def enclosed_total_mass_msun(components: Sequence[MassComponent], r_kpc: ArrayLike) -> FloatArray:
    """Mass of all ``components`` within radius ``r_kpc``, in Msun."""
    r = np.asarray(r_kpc, dtype=np.float64)
    return np.sum([c.enclosed_mass_msun(r) for c in components], axis=0, dtype=np.float64)


def circular_velocity_kms(components: Sequence[MassComponent], r_kpc: ArrayLike) -> FloatArray:
    """Circular velocity sqrt(G M(<r) / r) of the summed ``components``, in km/s (0 at r = 0)."""
    r = np.asarray(r_kpc, dtype=np.float64)
    return measure.circular_velocity_kms(mass_msun=enclosed_total_mass_msun(components, r), r_kpc=r)


def _tabulated_circular_velocity_kms(
    components: Sequence[MassComponent], r_kpc: FloatArray
) -> FloatArray:
    positive = r_kpc[r_kpc > 0]
    if r_kpc.size <= _CIRCULAR_VELOCITY_TABLE_POINTS or positive.size == 0:
        return circular_velocity_kms(components, r_kpc)
    grid = np.geomspace(positive.min(), positive.max(), _CIRCULAR_VELOCITY_TABLE_POINTS)
    table = circular_velocity_kms(components, grid)
    return np.where(
        r_kpc > 0, np.interp(np.log(np.maximum(r_kpc, grid[0])), np.log(grid), table), 0.0
    )


def isotropic_jeans_dispersion_kms(
    *,
    tracer: MassComponent,
    components: Sequence[MassComponent],
    r_kpc: ArrayLike,
    r_max_kpc: float,
) -> FloatArray:
    """One-dimensional velocity dispersion of ``tracer`` from the isotropic Jeans equation.

    sigma_r^2(r) = 1/rho(r) int_r^r_max rho(r') G M(<r') / r'^2 dr' (Binney & Tremaine 2008,
    eq. 4.216 with beta = 0), where rho is the tracer's density and M the mass of all
    ``components``; sigma_r = 0 at r_max, the outer boundary. The integral is tabulated by the
    trapezoidal rule on a logarithmic grid from the smallest requested radius to ``r_max_kpc``
    and interpolated (relative error ~1e-5), so ~1e6 radii cost no more than a few thousand.

    Parameters
    ----------
    tracer : MassComponent
        The population whose dispersion is wanted (it should be one of ``components`` when it
        is self-gravitating).
    components : sequence of MassComponent
        Everything that contributes to the gravitational potential.
    r_kpc : array_like
        Radii at which to evaluate; radii at or beyond ``r_max_kpc`` get 0, and radii where the
        tracer has no mass get 0.
    r_max_kpc : float
        Outer boundary of the integral.

    Returns
    -------
    ndarray
        sigma_r at each radius, km/s, with the shape of ``r_kpc``.
    """
    r = np.asarray(r_kpc, dtype=np.float64)
    positive = r[r > 0]
    # Half the smallest radius, so the grid never collapses to a point.
    r_min_kpc = 0.5 * positive.min(initial=r_max_kpc)
    grid_r = np.geomspace(r_min_kpc, r_max_kpc, _JEANS_GRID_POINTS)
    rho_grid = tracer.density_msun_per_kpc3(grid_r)
    gm_grid = G_KPC_KMS2_PER_MSUN * enclosed_total_mass_msun(components, grid_r)
    # Integrate in ln r (dr = r dln r) from r_max inwards, so the outer boundary is exactly zero.
    integrand = rho_grid * gm_grid / grid_r
    log_r = np.log(grid_r)
    outward = cumulative_trapezoid(integrand, log_r, initial=0.0)
    pressure = outward[-1] - outward
    sigma2_grid = np.divide(pressure, rho_grid, out=np.zeros_like(pressure), where=rho_grid > 0)
    # r = 0 takes the innermost value; beyond r_max the tracer is outside the boundary.
    sigma2 = np.interp(np.log(np.maximum(r, r_min_kpc)), log_r, sigma2_grid, right=0.0)
    return np.sqrt(np.maximum(sigma2, 0.0))


def sample_isotropic_velocities_kms(
    rng: np.random.Generator,
    *,
    positions_kpc: ArrayLike,
    tracer: MassComponent,
    components: Sequence[MassComponent],
    r_max_kpc: float,
) -> FloatArray:
    """Gaussian velocities with the isotropic Jeans dispersion at each particle's radius.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    positions_kpc : array_like, shape (n, 3)
        Particle positions relative to the centre of ``components``.
    tracer, components, r_max_kpc
        As in :func:`isotropic_jeans_dispersion_kms`.

    Returns
    -------
    ndarray, shape (n, 3)
        Velocities in km/s, with zero mean.
    """
    pos = np.asarray(positions_kpc, dtype=np.float64)
    sigma_kms = isotropic_jeans_dispersion_kms(
        tracer=tracer,
        components=components,
        r_kpc=np.linalg.norm(pos, axis=1),
        r_max_kpc=r_max_kpc,
    )
    return rng.normal(size=pos.shape) * sigma_kms[:, None]


def sample_disk_velocities_kms(
    rng: np.random.Generator,
    *,
    positions_kpc: ArrayLike,
    components: Sequence[MassComponent],
    dispersion_kms: ArrayLike,
    asymmetric_drift: bool,
) -> FloatArray:
    """Velocities of a disk rotating about +z (counter-clockwise seen from +z).

    The mean azimuthal velocity is the circular velocity v_c(r) at each particle's spherical
    radius r. With ``asymmetric_drift`` it is reduced to sqrt(max(v_c^2 - 2 sigma^2, 0)), a
    simple asymmetric drift for a warm stellar disk; gas, which is cold, should not use it.
    An isotropic Gaussian of dispersion ``dispersion_kms`` is added to all three components.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    positions_kpc : array_like, shape (n, 3)
        Particle positions; the disk lies in the x-y plane.
    components : sequence of MassComponent
        Everything that contributes to the gravitational potential.
    dispersion_kms : float or array_like, shape (n,)
        One-dimensional velocity dispersion, one value or one per particle.
    asymmetric_drift : bool
        Whether to lower the rotation velocity by the asymmetric drift.

    Returns
    -------
    ndarray, shape (n, 3)
        Velocities in km/s.
    """
    pos = np.asarray(positions_kpc, dtype=np.float64)
    n = pos.shape[0]
    sigma_kms = np.broadcast_to(np.asarray(dispersion_kms, dtype=np.float64), (n,))
    v_phi_kms = _tabulated_circular_velocity_kms(components, np.linalg.norm(pos, axis=1))
    if asymmetric_drift:
        v_phi_kms = np.sqrt(np.maximum(v_phi_kms**2 - 2.0 * sigma_kms**2, 0.0))
    R_kpc = np.hypot(pos[:, 0], pos[:, 1])
    # A particle on the axis has no azimuthal direction: it gets only the random motion.
    scale = np.divide(v_phi_kms, R_kpc, out=np.zeros(n), where=R_kpc > 0)
    rotation = np.column_stack((-pos[:, 1] * scale, pos[:, 0] * scale, np.zeros(n)))
    return rotation + rng.normal(size=(n, 3)) * sigma_kms[:, None]


def osipkov_merritt_los_dispersion_kms(
    *,
    tracer: MassComponent,
    components: Sequence[MassComponent],
    R_kpc: ArrayLike,
    anisotropy_radius_kpc: float,
    r_max_kpc: float,
    n_grid: int = 2048,
) -> FloatArray:
    """Line-of-sight velocity dispersion of a tracer with Osipkov-Merritt anisotropy.

    The spherical Jeans equation with beta(r) = r^2 / (r^2 + r_a^2) integrates to
    nu sigma_r^2 (r) = 1/(r^2 + r_a^2) int_r^r_max (s^2 + r_a^2) nu(s) G M(<s) / s^2 ds,
    projected as Sigma sigma_los^2 (R) = 2 int_R^r_max (1 - beta R^2/r^2) nu sigma_r^2
    r dr / sqrt(r^2 - R^2) (Binney & Mamon 1982, MNRAS 200, 361, eq. 7). The projection uses
    r = R cosh u, which removes the inverse square root, and the same integral of nu gives
    Sigma. ``anisotropy_radius_kpc = inf`` is the isotropic case.

    Parameters
    ----------
    tracer : MassComponent
        The stars (or any tracer) whose dispersion is wanted; only its density's shape matters.
    components : sequence of MassComponent
        Everything that contributes to the gravitational potential.
    R_kpc : array_like
        Projected radii, > 0 and < ``r_max_kpc``.
    anisotropy_radius_kpc : float
        r_a; inf for isotropic orbits.
    r_max_kpc : float
        Outer boundary, where sigma_r = 0.
    n_grid : int
        Points of the radial and projection grids.

    Returns
    -------
    ndarray
        sigma_los at each ``R_kpc``, km/s.
    """
    R = np.atleast_1d(np.asarray(R_kpc, dtype=np.float64))
    if np.any(R <= 0) or np.any(R >= r_max_kpc):
        raise ValueError(f"R_kpc must lie in (0, r_max_kpc={r_max_kpc}), got {R.min()}..{R.max()}")
    ra2 = anisotropy_radius_kpc**2
    grid_r = np.geomspace(1.0e-3 * R.min(), r_max_kpc, n_grid)
    log_r = np.log(grid_r)
    nu = tracer.density_msun_per_kpc3(grid_r)
    gm = G_KPC_KMS2_PER_MSUN * enclosed_total_mass_msun(components, grid_r)
    # (s^2 + r_a^2) / r_a^2, so the isotropic limit r_a -> inf is finite.
    weight = 1.0 + grid_r**2 / ra2 if np.isfinite(ra2) else np.ones_like(grid_r)
    outward = cumulative_trapezoid(weight * nu * gm / grid_r, log_r, initial=0.0)
    pressure = (outward[-1] - outward) / weight  # nu sigma_r^2
    u_max = np.arccosh(r_max_kpc / R)
    sigma2 = np.empty_like(R)
    for i, (radius, top) in enumerate(zip(R, u_max, strict=True)):
        u = np.linspace(0.0, top, n_grid)
        r = radius * np.cosh(u)
        beta = r**2 / (r**2 + ra2) if np.isfinite(ra2) else np.zeros_like(r)
        p = np.exp(np.interp(np.log(r), log_r, np.log(np.maximum(pressure, 1e-300))))
        p[r >= r_max_kpc] = 0.0
        surface = np.trapezoid(tracer.density_msun_per_kpc3(r) * r, u)
        sigma2[i] = np.trapezoid((1.0 - beta * radius**2 / r**2) * p * r, u) / surface
    return np.sqrt(sigma2)
