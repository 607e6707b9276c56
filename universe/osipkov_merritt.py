"""Stars drawn from an Osipkov-Merritt distribution function in a spherical total potential.

Jeans-equation velocities are Gaussian at every radius; a distribution function f(Q),
Q = Psi - v_r^2/2 - (1 + r^2/r_a^2) v_t^2/2 (Osipkov 1979; Merritt 1985; Binney & Tremaine
2008, Sect. 4.3.2), gives each radius its true, non-Gaussian velocity distribution, whose
kurtosis carries what the cusp-core network reads.

f(Q) is Eddington's inversion of rho_Q(r) = (1 + r^2/r_a^2) nu(r), nu the tracer's density, in
the total potential; it is tabulated once per population with vectorised Gauss-Legendre
quadrature (:func:`osipkov_merritt_df`), and stars are drawn from the table
(:func:`sample_osipkov_merritt`). The model is galpy's (Bovy 2015,
:class:`galpy.df.osipkovmerrittdf`, kept here as the reference, :func:`galpy_osipkov_merritt_df`):
the tracer's untruncated (alpha, beta, gamma) density in the potential of the components' mass
inside ``r_max`` (Keplerian beyond), Phi(inf) = 0, f = 0 for Q < Psi(r_max), radii drawn from
the tracer's mass inside ``r_max``. galpy evaluates each f(Q) with nested adaptive ``quad``
through its unit wrappers (4-16 CPU-s per dwarf of ``dwarfs-small``); the table and the draw
take ~0.1 CPU-s (``benchmarks/bench_dwarfs.py``).
A negative f (small r_a) means the model does not exist: :func:`check_non_negative` raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_simpson, trapezoid
from scipy.interpolate import CubicSpline, PchipInterpolator

from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.universe.kinematics import enclosed_total_mass_msun
from darkstack.universe.profiles import DoublePowerLawHalo, MassComponent

FloatArray = NDArray[np.float64]

#: galpy's velocity unit in the reference (km/s); lengths are kpc. Dwarfs' dispersions are
#: ~10 km/s.
VELOCITY_UNIT_KMS = 100.0
#: f(Q) may dip below zero by this fraction of its maximum from the numerical inversion alone.
_NEGATIVE_TOLERANCE = 1.0e-6
#: Points of the radius grid of the interpolated total potential.
_POTENTIAL_GRID_POINTS = 1001
#: Innermost radius of the potential table and of the tabulated f(Q), in tracer scale radii:
#: the tracer's mass inside 1e-4 b is ~1e-11 of its total for gamma* <= 0.3, so no star is
#: drawn deeper (a star there takes f at the table's edge).
_INNER_RADIUS_SCALES = 1.0e-4
#: Energies of the f(Q) table (Psi at log-spaced radii from the inner radius to r_max).
_TABLE_ENERGIES = 256
#: Gauss-Legendre nodes of each of the two pieces of the Eddington integral (inside and
#: outside r_max, where the total density jumps to zero).
_QUADRATURE_NODES = 96
#: The Eddington integral stops at this multiple of r_max: beyond it nu ~ r^-5 and rho_Q ~ r^-3
#: in a Keplerian potential leave < 1e-6 of f.
_OUTER_RADIUS_FACTOR = 1.0e3
#: Points of each star's inverse-CDF table of |w| (see :func:`sample_osipkov_merritt`).
_SPEED_GRID_POINTS = 256
#: Stars whose speed tables are built at once (bounds memory at ~ this x 256 x 8 bytes x 3).
_SAMPLE_BLOCK = 8192


class NegativeDistributionError(ValueError):
    """The Osipkov-Merritt f(Q) is negative: no such equilibrium exists."""


@dataclass(frozen=True)
class OsipkovMerrittStars:
    """A sampled stellar population: positions (kpc) and velocities (km/s), centred, (n, 3)."""

    position_kpc: FloatArray
    velocity_kms: FloatArray


@dataclass(frozen=True)
class _Potential:
    """Relative potential Psi = -Phi (km^2/s^2), Phi(inf) = 0, of the mass inside r_max.

    A cubic spline in ln r inside ``r_max`` (G M(<r) / r^2 integrated by Simpson's rule on
    4 x ``_POTENTIAL_GRID_POINTS`` log-spaced radii), Keplerian beyond.
    """

    spline: CubicSpline
    r_min_kpc: float
    r_max_kpc: float
    gm_max: float
    components: Sequence[MassComponent]

    @classmethod
    def build(
        cls, components: Sequence[MassComponent], *, r_min_kpc: float, r_max_kpc: float
    ) -> _Potential:
        r = np.geomspace(r_min_kpc, r_max_kpc, 4 * _POTENTIAL_GRID_POINTS + 1)
        gm = G_KPC_KMS2_PER_MSUN * enclosed_total_mass_msun(components, r)
        # Psi(r) = G M(r_max)/r_max + int_r^r_max G M(s)/s^2 ds, the integral in ln s.
        outward = cumulative_simpson(gm / r, x=np.log(r), initial=0.0)
        psi = gm[-1] / r_max_kpc + outward[-1] - outward
        return cls(
            spline=CubicSpline(np.log(r), psi),
            r_min_kpc=r_min_kpc,
            r_max_kpc=r_max_kpc,
            gm_max=float(gm[-1]),
            components=components,
        )

    def psi(self, r_kpc: FloatArray) -> FloatArray:
        r = np.asarray(r_kpc, dtype=np.float64)
        inside = self.spline(np.log(np.clip(r, self.r_min_kpc, self.r_max_kpc)))
        return np.where(r <= self.r_max_kpc, inside, self.gm_max / r)

    def gm(self, r_kpc: FloatArray) -> FloatArray:
        """G M(<r), km^2/s^2 kpc, constant beyond r_max."""
        r = np.minimum(r_kpc, self.r_max_kpc)
        return G_KPC_KMS2_PER_MSUN * enclosed_total_mass_msun(self.components, r)

    def four_pi_g_rho(self, r_kpc: FloatArray) -> FloatArray:
        """4 pi G rho_total(r), zero beyond r_max."""
        rho = np.sum([c.density_msun_per_kpc3(r_kpc) for c in self.components], axis=0)
        return np.where(r_kpc <= self.r_max_kpc, 4.0 * np.pi * G_KPC_KMS2_PER_MSUN * rho, 0.0)


def _augmented_density_derivatives(
    tracer: DoublePowerLawHalo, r_kpc: FloatArray, anisotropy_radius_kpc: float
) -> tuple[FloatArray, FloatArray]:
    """d rho_Q/dr and d^2 rho_Q/dr^2 of rho_Q = (1 + r^2/r_a^2) nu, nu the untruncated tracer.

    nu'/nu = s/r and nu''/nu = (s^2 - s + r ds/dr)/r^2 with s = d ln nu / d ln r, closed form
    for the Zhao profile; nu is normalised to unit mass (f's amplitude is irrelevant).
    """
    alpha, beta, gamma = tracer.alpha, tracer.beta, tracer.gamma
    r = r_kpc
    x = r / tracer.scale_radius_kpc
    x_alpha = x**alpha
    nu = (tracer.rho_s_msun_per_kpc3 / tracer.total_mass_msun) / (
        x**gamma * (1.0 + x_alpha) ** ((beta - gamma) / alpha)
    )
    slope = -(gamma + (beta - gamma) * x_alpha / (1.0 + x_alpha))
    dslope_dr = -(beta - gamma) * alpha * x_alpha / (r * (1.0 + x_alpha) ** 2)
    d1 = nu * slope / r
    d2 = nu * (slope * slope - slope + r * dslope_dr) / r**2
    if np.isinf(anisotropy_radius_kpc):
        return d1, d2
    ra2 = anisotropy_radius_kpc**2
    weight = 1.0 + r**2 / ra2
    return (
        weight * d1 + 2.0 * r / ra2 * nu,
        weight * d2 + 4.0 * r / ra2 * d1 + 2.0 / ra2 * nu,
    )


def eddington_f(
    *,
    tracer: DoublePowerLawHalo,
    potential: _Potential,
    anisotropy_radius_kpc: float,
    r_q_kpc: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Q = Psi(r_Q) and f(Q) by quadrature, for radii r_Q in [r_min, r_max] of ``potential``.

    f(Q) = 1/(sqrt(8) pi^2) int_0^Q d^2 rho_Q/d Psi^2 d Psi / sqrt(Q - Psi) (Binney & Tremaine
    2008, Sect. 4.3.1; the boundary term d rho_Q / d Psi at Psi = 0 vanishes for an outer slope
    beta* > 3), written over r outwards from r_Q with r = r_Q exp(t^2), which removes the
    inverse square root, in two Gauss-Legendre pieces split at r_max (where the total density
    drops to zero). f is normalised to a tracer of unit mass: kpc^-3 (km/s)^-3.
    """
    pot = potential
    log_rq = np.log(np.atleast_1d(np.asarray(r_q_kpc, dtype=np.float64)))
    q = pot.spline(log_rq)
    t_split = np.sqrt(np.maximum(np.log(pot.r_max_kpc) - log_rq, 0.0))
    t_end = np.sqrt(np.log(_OUTER_RADIUS_FACTOR * pot.r_max_kpc) - log_rq)
    nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)
    total = np.zeros(log_rq.size)
    for lo, hi in ((np.zeros_like(t_split), t_split), (t_split, t_end)):
        half = 0.5 * (hi - lo)
        t = (lo + half)[:, None] + half[:, None] * nodes[None, :]
        r = np.exp(log_rq[:, None] + t**2)
        gm = pot.gm(r)
        slope = -gm / r**2  # dPsi/dr
        dslope = 2.0 * gm / r**3 - pot.four_pi_g_rho(r)
        d1, d2 = _augmented_density_derivatives(tracer, r, anisotropy_radius_kpc)
        g = (d2 * slope - d1 * dslope) / slope**3  # d^2 rho_Q / d Psi^2
        # Q - Psi(r) from the same spline as Q, so it is positive for t > 0.
        gap = np.maximum(q[:, None] - pot.psi(r), 1e-300)
        # dPsi = slope dr and dr = 2 t r dt; -slope makes the integral run from 0 to Q.
        integrand = g * (-slope) * 2.0 * t * r / np.sqrt(gap)
        total += half * (integrand @ weights)
    return q, total / (np.sqrt(8.0) * np.pi**2)


@dataclass(frozen=True)
class OsipkovMerrittDF:
    """An Osipkov-Merritt f(Q) of a Zhao tracer, tabulated; build it with
    :func:`osipkov_merritt_df`. Q in km^2/s^2, f as in :func:`eddington_f`.

    The table is PCHIP in sqrt(Q - Psi(r_max)): the total density's drop to zero at r_max
    gives f a sqrt(Q - Psi(r_max)) term, smooth in that variable and not in Q.
    """

    tracer: DoublePowerLawHalo
    potential: _Potential
    anisotropy_radius_kpc: float
    table: PchipInterpolator
    q_range: tuple[float, float]

    def __call__(self, q: ArrayLike) -> FloatArray:
        """f(Q) from the table; 0 below Psi(r_max), the innermost value above the table."""
        q = np.asarray(q, dtype=np.float64)
        lo, hi = self.q_range
        return np.where(q > lo, self.table(np.sqrt(np.clip(q, lo, hi) - lo)), 0.0)


def osipkov_merritt_df(
    *,
    tracer: DoublePowerLawHalo,
    components: Sequence[MassComponent],
    anisotropy_radius_kpc: float,
    r_max_kpc: float,
) -> OsipkovMerrittDF:
    """Tabulate the Osipkov-Merritt f(Q) of ``tracer`` in the potential of ``components``.

    Parameters
    ----------
    tracer : DoublePowerLawHalo
        The stars' (alpha, beta, gamma) density (its mass only scales f).
    components : sequence of MassComponent
        Everything that makes the potential (the tracer included if it self-gravitates).
    anisotropy_radius_kpc : float
        r_a; ``inf`` gives the isotropic (Eddington) DF.
    r_max_kpc : float
        Outer edge: the DF is cut off at Q = Psi(r_max); mass beyond it does not pull.

    Returns
    -------
    OsipkovMerrittDF
    """
    r_min = _INNER_RADIUS_SCALES * tracer.scale_radius_kpc
    potential = _Potential.build(components, r_min_kpc=r_min, r_max_kpc=r_max_kpc)
    q, f = eddington_f(
        tracer=tracer,
        potential=potential,
        anisotropy_radius_kpc=anisotropy_radius_kpc,
        r_q_kpc=np.geomspace(r_max_kpc, r_min, _TABLE_ENERGIES),
    )
    return OsipkovMerrittDF(
        tracer=tracer,
        potential=potential,
        anisotropy_radius_kpc=anisotropy_radius_kpc,
        table=PchipInterpolator(np.sqrt(q - q[0]), f),
        q_range=(float(q[0]), float(q[-1])),
    )


def check_non_negative(df: OsipkovMerrittDF, *, n_points: int = 32) -> float:
    """Smallest f(Q) over the occupied range relative to the largest; raise if negative.

    Evaluates f by quadrature at Q = Psi(r) for r from 0.01 b (the tracer's inner ~1e-5 of its
    mass) to the outer edge; deeper, no stars are drawn.

    Raises
    ------
    NegativeDistributionError
        If min f < -1e-6 max f, naming the anisotropy radius.
    """
    pot = df.potential
    radii = np.geomspace(0.01 * df.tracer.scale_radius_kpc, pot.r_max_kpc, n_points, endpoint=False)
    _, values = eddington_f(
        tracer=df.tracer,
        potential=pot,
        anisotropy_radius_kpc=df.anisotropy_radius_kpc,
        r_q_kpc=radii,
    )
    ratio = float(values.min() / values.max())
    if ratio < -_NEGATIVE_TOLERANCE:
        raise NegativeDistributionError(
            f"Osipkov-Merritt f(Q) < 0 (min/max = {ratio:.3g}) at anisotropy radius "
            f"{df.anisotropy_radius_kpc:.3g} kpc: no such equilibrium; use a larger anisotropy "
            "radius"
        )
    return ratio


def _perpendicular_basis(unit: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Two unit vectors perpendicular to each row of ``unit`` and to each other."""
    # Cross with the axis least aligned with each row, so the product never vanishes.
    axis = np.zeros_like(unit)
    axis[np.arange(unit.shape[0]), np.argmin(np.abs(unit), axis=1)] = 1.0
    first = np.cross(unit, axis)
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    return first, np.cross(unit, first)


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

    Radii follow the tracer's mass inside ``r_max_kpc``. At radius r, with
    w = (v_r, sqrt(1 + r^2/r_a^2) v_t), Q = Psi(r) - |w|^2/2 and d^3v is d^3w up to a constant,
    so w is isotropic with |w| distributed as w^2 f(Psi(r) - w^2/2) on [0, sqrt(2 (Psi(r) -
    Psi(r_max)))]; each star's |w| is drawn by inverse CDF on ``_SPEED_GRID_POINTS`` points.
    Checks f >= 0 first (:func:`check_non_negative`).

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
    check_non_negative(df)
    truncated = DoublePowerLawHalo(
        alpha=tracer.alpha,
        beta=tracer.beta,
        gamma=tracer.gamma,
        scale_radius_kpc=tracer.scale_radius_kpc,
        rho_s_msun_per_kpc3=tracer.rho_s_msun_per_kpc3,
        truncation_radius_kpc=min(r_max_kpc, tracer.truncation_radius_kpc),
    )
    position = truncated.sample_positions_kpc(rng, n)
    r = np.linalg.norm(position, axis=1)
    psi = df.potential.psi(r)
    w_max = np.sqrt(2.0 * np.maximum(psi - df.q_range[0], 0.0))
    x = np.linspace(0.0, 1.0, _SPEED_GRID_POINTS)
    speed_fraction = np.empty(n)
    for lo in range(0, n, _SAMPLE_BLOCK):
        block = slice(lo, min(n, lo + _SAMPLE_BLOCK))
        w = w_max[block, None] * x[None, :]
        density = np.maximum(x[None, :] ** 2 * df(psi[block, None] - 0.5 * w**2), 0.0)
        # Trapezoid CDF per star; the draw inverts it linearly within a cell.
        cdf = np.concatenate(
            [np.zeros((w.shape[0], 1)), np.cumsum(0.5 * (density[:, 1:] + density[:, :-1]), 1)],
            axis=1,
        )
        target = rng.uniform(size=w.shape[0]) * cdf[:, -1]
        cell = np.clip((cdf < target[:, None]).sum(axis=1) - 1, 0, x.size - 2)
        rows = np.arange(w.shape[0])
        low, high = cdf[rows, cell], cdf[rows, cell + 1]
        within = np.divide(target - low, high - low, out=np.zeros_like(low), where=high > low)
        speed_fraction[block] = x[cell] + within * (x[1] - x[0])
    speed = speed_fraction * w_max
    cos_theta = rng.uniform(-1.0, 1.0, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    psi_angle = rng.uniform(0.0, 2.0 * np.pi, n)
    stretch = (
        np.ones(n)
        if np.isinf(anisotropy_radius_kpc)
        else np.sqrt(1.0 + (r / anisotropy_radius_kpc) ** 2)
    )
    v_r = speed * cos_theta
    v_t = speed * sin_theta / stretch
    radial = position / np.maximum(r, 1e-300)[:, None]
    first, second = _perpendicular_basis(radial)
    velocity = (
        v_r[:, None] * radial
        + (v_t * np.cos(psi_angle))[:, None] * first
        + (v_t * np.sin(psi_angle))[:, None] * second
    )
    return OsipkovMerrittStars(position_kpc=position, velocity_kms=velocity)


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


def galpy_osipkov_merritt_df(
    *,
    tracer: DoublePowerLawHalo,
    components: Sequence[MassComponent],
    anisotropy_radius_kpc: float,
    r_max_kpc: float,
) -> Any:
    """galpy's Osipkov-Merritt DF of the same model: the reference for tests and benchmarks.

    galpy works in natural units; here its length unit is 1 kpc and its velocity unit
    :data:`VELOCITY_UNIT_KMS`, so its f is ours times VELOCITY_UNIT_KMS^3.

    Parameters
    ----------
    tracer : DoublePowerLawHalo
        The stars' density (its mass only scales f).
    components : sequence of MassComponent
        Everything that makes the potential (the tracer included if it self-gravitates).
    anisotropy_radius_kpc : float
        r_a; ``inf`` gives the isotropic (Eddington) DF.
    r_max_kpc : float
        Outer edge: the DF is cut off at E = Phi(r_max).

    Returns
    -------
    galpy.df.osipkovmerrittdf or galpy.df.eddingtondf
        A galpy DF with ``fQ`` / ``fE`` and ``sample`` (which draws from numpy's global state).
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
