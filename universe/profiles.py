"""Spherical and axisymmetric mass components of the mock galaxies and their halos.

Every component satisfies :class:`MassComponent`: a total mass, the mass enclosed in a sphere,
a spherically averaged density (what the Jeans equation needs) and a way to draw particle
positions centred on the origin. Disks lie in the x-y plane. Lengths are physical kpc, masses
Msun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_trapezoid
from scipy.special import hyp2f1

FloatArray = NDArray[np.float64]

#: Points of the logarithmic radius grids that tabulate M(<r) for interpolation and sampling.
_TABLE_POINTS = 4096
#: Innermost tabulated radius, in units of the component's scale radius.
_TABLE_INNER_FRACTION = 1.0e-4
#: Range of log10(M*/Mhalo) over which Di Cintio et al. (2014a, b) fitted their relations.
_DICINTIO_LOG_RATIO_RANGE = (-4.1, -1.3)


class MassComponent(Protocol):
    """What the kinematics and the particle generator need from a mass component."""

    @property
    def total_mass_msun(self) -> float:
        """Mass out to the component's truncation (or in total if it has none), in Msun."""
        ...

    def enclosed_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        """Mass within a sphere of radius ``r_kpc``, in Msun."""
        ...

    def density_msun_per_kpc3(self, r_kpc: ArrayLike) -> FloatArray:
        """Spherically averaged density at radius ``r_kpc``, in Msun/kpc^3."""
        ...

    def sample_positions_kpc(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Draw ``n`` positions (shape ``(n, 3)``, kpc) distributed like the mass."""
        ...


def _require_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def _power_law_interp(x: FloatArray, xp: FloatArray, fp: FloatArray) -> FloatArray:
    """Linear interpolation that continues the first segment below ``xp[0]`` and clamps above.

    Applied to logarithms, this is piecewise power-law interpolation whose inward continuation
    is the innermost power law: a cusp or core keeps its slope all the way to the centre.
    """
    inner_slope = (fp[1] - fp[0]) / (xp[1] - xp[0])
    return np.where(x < xp[0], fp[0] + inner_slope * (x - xp[0]), np.interp(x, xp, fp))


class _LogMassTable:
    """M(<r) tabulated on a logarithmic radius grid, for interpolation and inverse-CDF sampling.

    Interpolation is linear in (ln r, ln M), exact for power laws, so a tabulation starting at
    a small fraction of the scale radius resolves the cusp or core.

    Parameters
    ----------
    r_kpc : ndarray
        Increasing radii; the last one is the truncation radius.
    mass_msun : ndarray
        Strictly increasing, positive enclosed masses at ``r_kpc``.
    """

    def __init__(self, r_kpc: FloatArray, mass_msun: FloatArray) -> None:
        self._log_r = np.log(r_kpc)
        self._log_mass = np.log(mass_msun)

    @property
    def total_mass_msun(self) -> float:
        return float(np.exp(self._log_mass[-1]))

    def enclosed_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        with np.errstate(divide="ignore"):  # r = 0 maps to ln r = -inf and so to M = 0
            log_r = np.log(np.asarray(r_kpc, dtype=np.float64))
        return np.exp(_power_law_interp(log_r, self._log_r, self._log_mass))

    def sample_radii_kpc(self, rng: np.random.Generator, n: int) -> FloatArray:
        # 1 - random() lies in (0, 1], so its logarithm is finite.
        log_mass = np.log1p(-rng.random(n)) + self._log_mass[-1]
        return np.exp(_power_law_interp(log_mass, self._log_mass, self._log_r))


def _log_radius_grid_kpc(*, scale_radius_kpc: float, truncation_radius_kpc: float) -> FloatArray:
    inner_kpc = _TABLE_INNER_FRACTION * min(scale_radius_kpc, truncation_radius_kpc)
    return np.geomspace(inner_kpc, truncation_radius_kpc, _TABLE_POINTS)


def _isotropic_positions_kpc(rng: np.random.Generator, r_kpc: FloatArray) -> FloatArray:
    """Place particles at radii ``r_kpc`` in directions uniform on the sphere."""
    cos_theta = rng.uniform(-1.0, 1.0, r_kpc.size)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    phi = rng.uniform(0.0, 2.0 * np.pi, r_kpc.size)
    return r_kpc[:, None] * np.column_stack(
        (sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta)
    )


def _double_power_law_unit_mass(
    x_scaled: ArrayLike, *, alpha: float, beta: float, gamma: float
) -> FloatArray:
    """M(<x r_s) / (4 pi rho_s r_s^3) of the (alpha, beta, gamma) profile, in closed form."""
    x = np.asarray(x_scaled, dtype=np.float64)
    a = (3.0 - gamma) / alpha
    return (
        x ** (3.0 - gamma) / (3.0 - gamma) * hyp2f1(a, (beta - gamma) / alpha, a + 1.0, -(x**alpha))
    )


@dataclass(frozen=True, kw_only=True)
class DoublePowerLawHalo:
    """Dark-matter halo with an (alpha, beta, gamma) density profile.

    rho(r) = rho_s / ((r/r_s)^gamma (1 + (r/r_s)^alpha)^((beta - gamma)/alpha)) inside the
    truncation radius and zero beyond (Zhao 1996, MNRAS 278, 488; Di Cintio et al. 2014,
    MNRAS 441, 2986). NFW is (alpha, beta, gamma) = (1, 3, 1).

    Parameters
    ----------
    alpha : float
        Sharpness of the transition between the inner and outer slopes (> 0).
    beta : float
        Outer logarithmic slope.
    gamma : float
        Inner logarithmic slope (< 3 so the central mass is finite).
    scale_radius_kpc : float
        r_s.
    rho_s_msun_per_kpc3 : float
        Density normalisation rho_s.
    truncation_radius_kpc : float
        Radius beyond which the density is zero.
    """

    alpha: float
    beta: float
    gamma: float
    scale_radius_kpc: float
    rho_s_msun_per_kpc3: float
    truncation_radius_kpc: float

    def __post_init__(self) -> None:
        _require_positive(
            alpha=self.alpha,
            scale_radius_kpc=self.scale_radius_kpc,
            rho_s_msun_per_kpc3=self.rho_s_msun_per_kpc3,
            truncation_radius_kpc=self.truncation_radius_kpc,
        )
        if not self.gamma < 3.0:
            raise ValueError(f"gamma must be < 3 for a finite central mass, got {self.gamma!r}")

    @classmethod
    def from_mass(
        cls,
        *,
        mass_msun: float,
        radius_kpc: float,
        concentration: float,
        alpha: float,
        beta: float,
        gamma: float,
        truncation_radius_kpc: float,
    ) -> DoublePowerLawHalo:
        """Halo with ``mass_msun`` inside ``radius_kpc`` and concentration ``radius_kpc / r_-2``.

        r_-2, where the logarithmic density slope is -2, is converted to the scale radius with
        r_s = r_-2 / ((2 - gamma)/(beta - 2))^(1/alpha) (Di Cintio et al. 2014b, MNRAS 437, 415,
        eq. 5), which needs gamma < 2 < beta.

        Parameters
        ----------
        mass_msun : float
            Mass enclosed within ``radius_kpc`` (e.g. M200c).
        radius_kpc : float
            The radius that defines the mass and the concentration (e.g. R200c).
        concentration : float
            radius_kpc / r_-2.
        alpha, beta, gamma : float
            Profile shape, see the class.
        truncation_radius_kpc : float
            Radius beyond which the density is zero.

        Returns
        -------
        DoublePowerLawHalo
        """
        _require_positive(mass_msun=mass_msun, radius_kpc=radius_kpc, concentration=concentration)
        if not gamma < 2.0 < beta:
            raise ValueError(f"r_-2 needs gamma < 2 < beta, got gamma={gamma!r}, beta={beta!r}")
        r_minus2_kpc = radius_kpc / concentration
        scale_radius_kpc = r_minus2_kpc / ((2.0 - gamma) / (beta - 2.0)) ** (1.0 / alpha)
        unit_mass = _double_power_law_unit_mass(
            radius_kpc / scale_radius_kpc, alpha=alpha, beta=beta, gamma=gamma
        )
        return cls(
            alpha=alpha,
            beta=beta,
            gamma=gamma,
            scale_radius_kpc=scale_radius_kpc,
            rho_s_msun_per_kpc3=float(mass_msun / (4.0 * np.pi * scale_radius_kpc**3 * unit_mass)),
            truncation_radius_kpc=truncation_radius_kpc,
        )

    @property
    def total_mass_msun(self) -> float:
        return float(self.enclosed_mass_msun(self.truncation_radius_kpc))

    def enclosed_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        """Mass within radius ``r_kpc`` (closed form with the Gauss hypergeometric function).

        M(<r) = 4 pi rho_s r_s^3 x^(3-gamma)/(3-gamma)
        2F1((3-gamma)/alpha, (beta-gamma)/alpha; (3-gamma+alpha)/alpha; -x^alpha), x = r/r_s,
        constant beyond the truncation radius.
        """
        r = np.minimum(np.asarray(r_kpc, dtype=np.float64), self.truncation_radius_kpc)
        unit_mass = _double_power_law_unit_mass(
            r / self.scale_radius_kpc, alpha=self.alpha, beta=self.beta, gamma=self.gamma
        )
        return 4.0 * np.pi * self.rho_s_msun_per_kpc3 * self.scale_radius_kpc**3 * unit_mass

    def density_msun_per_kpc3(self, r_kpc: ArrayLike) -> FloatArray:
        """rho(r) of the class docstring, zero beyond the truncation radius."""
        r = np.asarray(r_kpc, dtype=np.float64)
        x = r / self.scale_radius_kpc
        with np.errstate(divide="ignore"):  # a cusp is infinite at r = 0
            rho = self.rho_s_msun_per_kpc3 / (
                x**self.gamma * (1.0 + x**self.alpha) ** ((self.beta - self.gamma) / self.alpha)
            )
        return np.where(r <= self.truncation_radius_kpc, rho, 0.0)

    def log_slope(self, r_kpc: ArrayLike) -> FloatArray:
        """d ln rho / d ln r = -(gamma + (beta - gamma) x^alpha / (1 + x^alpha)), x = r/r_s.

        Negative for a cusp, 0 for a flat core; the truncation is ignored.
        """
        x_alpha = (np.asarray(r_kpc, dtype=np.float64) / self.scale_radius_kpc) ** self.alpha
        return -(self.gamma + (self.beta - self.gamma) * x_alpha / (1.0 + x_alpha))

    @cached_property
    def _mass_table(self) -> _LogMassTable:
        r_kpc = _log_radius_grid_kpc(
            scale_radius_kpc=self.scale_radius_kpc,
            truncation_radius_kpc=self.truncation_radius_kpc,
        )
        return _LogMassTable(r_kpc, self.enclosed_mass_msun(r_kpc))

    def sample_positions_kpc(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Isotropic positions, radii by inverse CDF of the tabulated M(<r)."""
        return _isotropic_positions_kpc(rng, self._mass_table.sample_radii_kpc(rng, n))


def _clip_dicintio_log_ratio(log_mstar_over_mhalo: float) -> float:
    return float(np.clip(log_mstar_over_mhalo, *_DICINTIO_LOG_RATIO_RANGE))


def dicintio14_shape(log_mstar_over_mhalo: float) -> tuple[float, float, float]:
    """Inner dark-matter profile shape set by the galaxy's star-formation efficiency.

    Di Cintio et al. (2014, MNRAS 441, 2986), eq. 3, with X = log10(M*/Mhalo) clipped to the
    range of their simulations, [-4.1, -1.3]:
    alpha = 2.94 - log10[(10^(X+2.33))^-1.08 + (10^(X+2.33))^2.29],
    beta = 4.23 + 1.34 X + 0.26 X^2,
    gamma = -0.06 + log10[(10^(X+2.56))^-0.68 + 10^(X+2.56)].
    Feedback cores the profile most (gamma ~ 0.2) near X = -2.7; the profile is NFW-like at
    both ends of the range.

    Parameters
    ----------
    log_mstar_over_mhalo : float
        log10 of the stellar-to-halo mass ratio.

    Returns
    -------
    alpha, beta, gamma : float
        Shape parameters for :class:`DoublePowerLawHalo`.
    """
    x = _clip_dicintio_log_ratio(log_mstar_over_mhalo)
    y_alpha = 10.0 ** (x + 2.33)
    y_gamma = 10.0 ** (x + 2.56)
    alpha = 2.94 - math.log10(y_alpha**-1.08 + y_alpha**2.29)
    beta = 4.23 + 1.34 * x + 0.26 * x**2
    gamma = -0.06 + math.log10(y_gamma**-0.68 + y_gamma)
    return alpha, beta, gamma


def dicintio14_concentration(c_dmo: float, log_mstar_over_mhalo: float) -> float:
    """Concentration of the hydrodynamical halo from its dark-matter-only counterpart.

    c = c_DMO (1 + 0.00001 exp(3.4 (X + 4.5))) (Di Cintio et al. 2014b, MNRAS 437, 415, eq. 6),
    X = log10(M*/Mhalo) clipped to [-4.1, -1.3]. The concentration is R_vir / r_-2.

    Parameters
    ----------
    c_dmo : float
        Concentration of the same halo in a dark-matter-only simulation.
    log_mstar_over_mhalo : float
        log10 of the stellar-to-halo mass ratio.

    Returns
    -------
    float
    """
    x = _clip_dicintio_log_ratio(log_mstar_over_mhalo)
    return c_dmo * (1.0 + 1.0e-5 * math.exp(3.4 * (x + 4.5)))


@dataclass(frozen=True, kw_only=True)
class ExponentialDisk:
    """Exponential disk in the x-y plane with an isothermal (sech^2) vertical profile.

    rho(R, z) = M / (2 pi R_d^2) exp(-R/R_d) sech^2(z/z_0) / (2 z_0).

    Parameters
    ----------
    mass_msun : float
        Total mass.
    scale_length_kpc : float
        Radial scale length R_d.
    scale_height_kpc : float
        Vertical scale height z_0.
    """

    mass_msun: float
    scale_length_kpc: float
    scale_height_kpc: float

    def __post_init__(self) -> None:
        _require_positive(
            mass_msun=self.mass_msun,
            scale_length_kpc=self.scale_length_kpc,
            scale_height_kpc=self.scale_height_kpc,
        )

    @property
    def total_mass_msun(self) -> float:
        return self.mass_msun

    def surface_density_msun_per_kpc2(self, R_kpc: ArrayLike) -> FloatArray:
        """Face-on surface density at cylindrical radius ``R_kpc``, in Msun/kpc^2."""
        R = np.asarray(R_kpc, dtype=np.float64)
        rd = self.scale_length_kpc
        return self.mass_msun / (2.0 * np.pi * rd**2) * np.exp(-R / rd)

    def density_at_msun_per_kpc3(self, R_kpc: ArrayLike, z_kpc: ArrayLike) -> FloatArray:
        """Three-dimensional density at cylindrical radius ``R_kpc`` and height ``z_kpc``."""
        z0 = self.scale_height_kpc
        # sech^2(u) = 4 e^-2|u| / (1 + e^-2|u|)^2, which cannot overflow far from the plane.
        decay = np.exp(-2.0 * np.abs(np.asarray(z_kpc, dtype=np.float64)) / z0)
        vertical = 2.0 * decay / (z0 * (1.0 + decay) ** 2)
        return self.surface_density_msun_per_kpc2(R_kpc) * vertical

    def enclosed_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        """Mass within radius ``r_kpc`` in the spherical approximation.

        Uses the thin disk's cylindrical mass M [1 - (1 + x) e^-x], x = r/R_d, as if it were the
        mass inside a sphere: this overestimates the true spherical mass slightly at r ~ z_0 and
        ignores the non-spherical potential, the usual simplification for rotation curves of
        thin disks.
        """
        x = np.asarray(r_kpc, dtype=np.float64) / self.scale_length_kpc
        return self.mass_msun * (-np.expm1(-x) - x * np.exp(-x))

    def density_msun_per_kpc3(self, r_kpc: ArrayLike) -> FloatArray:
        """dM/dr / (4 pi r^2) of :meth:`enclosed_mass_msun`, so Jeans integrals stay consistent.

        Equals M exp(-r/R_d) / (4 pi R_d^2 r): the disk's mass spread over spherical shells.
        """
        r = np.asarray(r_kpc, dtype=np.float64)
        rd = self.scale_length_kpc
        with np.errstate(divide="ignore"):  # the shell-averaged disk diverges as 1/r
            return self.mass_msun * np.exp(-r / rd) / (4.0 * np.pi * rd**2 * r)

    def sample_positions_kpc(self, rng: np.random.Generator, n: int) -> FloatArray:
        """R ~ Gamma(2, R_d) (the face-on mass per unit R), z = z_0 artanh(2u - 1), phi uniform."""
        R = rng.gamma(2.0, self.scale_length_kpc, n)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        # random() can return exactly 0, where artanh(-1) is infinite.
        t = np.maximum(2.0 * rng.random(n) - 1.0, np.nextafter(-1.0, 0.0))
        z = self.scale_height_kpc * np.arctanh(t)
        return np.column_stack((R * np.cos(phi), R * np.sin(phi), z))


@dataclass(frozen=True, kw_only=True)
class HernquistSphere:
    """Hernquist (1990, ApJ 356, 359) sphere, rho = M a / (2 pi r (r + a)^3); used for bulges.

    Parameters
    ----------
    mass_msun : float
        Mass within the truncation radius (the total mass when untruncated).
    scale_radius_kpc : float
        a; the half-mass radius of the untruncated sphere is (1 + sqrt 2) a.
    truncation_radius_kpc : float, optional
        Radius beyond which the density is zero. The untruncated default puts a fraction ~2a/r
        of the mass beyond r, so the outermost of 1e5 particles lies near 1e5 a; set a
        truncation to keep a bulge's particles inside its halo.
    """

    mass_msun: float
    scale_radius_kpc: float
    truncation_radius_kpc: float = math.inf

    def __post_init__(self) -> None:
        _require_positive(
            mass_msun=self.mass_msun,
            scale_radius_kpc=self.scale_radius_kpc,
            truncation_radius_kpc=self.truncation_radius_kpc,
        )

    @property
    def total_mass_msun(self) -> float:
        return self.mass_msun

    @property
    def _untruncated_mass_msun(self) -> float:
        return self.mass_msun * (1.0 + self.scale_radius_kpc / self.truncation_radius_kpc) ** 2

    def enclosed_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        """M(<r) = M r^2 / (r + a)^2, constant beyond the truncation radius."""
        r = np.minimum(np.asarray(r_kpc, dtype=np.float64), self.truncation_radius_kpc)
        return self._untruncated_mass_msun * (r / (r + self.scale_radius_kpc)) ** 2

    def density_msun_per_kpc3(self, r_kpc: ArrayLike) -> FloatArray:
        """M a / (2 pi r (r + a)^3) with the untruncated M, zero beyond the truncation."""
        r = np.asarray(r_kpc, dtype=np.float64)
        a = self.scale_radius_kpc
        with np.errstate(divide="ignore"):  # the 1/r cusp is infinite at r = 0
            rho = self._untruncated_mass_msun * a / (2.0 * np.pi * r * (r + a) ** 3)
        return np.where(r <= self.truncation_radius_kpc, rho, 0.0)

    def sample_positions_kpc(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Isotropic positions, radii from the analytic inverse CDF r = a sqrt(u) / (1 - sqrt(u)).

        Written as a (sqrt(u) + u) / (1 - u), with u below the truncated CDF's maximum < 1, so
        the denominator never vanishes even where sqrt(u) rounds towards 1.
        """
        u = rng.random(n) * (self.mass_msun / self._untruncated_mass_msun)
        r = self.scale_radius_kpc * (np.sqrt(u) + u) / (1.0 - u)
        return _isotropic_positions_kpc(rng, np.minimum(r, self.truncation_radius_kpc))


@dataclass(frozen=True, kw_only=True)
class BetaModelSphere:
    """Hot gas halo with a beta-model density, rho = rho_0 (1 + (r/r_c)^2)^(-3 beta/2).

    Cavaliere & Fusco-Femiano (1976, A&A 49, 137). Truncated at ``truncation_radius_kpc``;
    M(<r) is integrated numerically on a logarithmic grid since beta is free.

    Parameters
    ----------
    mass_msun : float
        Mass within the truncation radius.
    core_radius_kpc : float
        r_c.
    beta : float, optional
        Outer slope parameter, 2/3 by default (rho ~ r^-2 outside the core).
    truncation_radius_kpc : float
        Radius beyond which the density is zero.
    """

    mass_msun: float
    core_radius_kpc: float
    beta: float = 2.0 / 3.0
    truncation_radius_kpc: float

    def __post_init__(self) -> None:
        _require_positive(
            mass_msun=self.mass_msun,
            core_radius_kpc=self.core_radius_kpc,
            beta=self.beta,
            truncation_radius_kpc=self.truncation_radius_kpc,
        )

    @property
    def total_mass_msun(self) -> float:
        return self.mass_msun

    def _shape(self, r_kpc: FloatArray) -> FloatArray:
        return (1.0 + (r_kpc / self.core_radius_kpc) ** 2) ** (-1.5 * self.beta)

    @cached_property
    def _unit_density_table(self) -> _LogMassTable:
        """M(<r) for rho_0 = 1 Msun/kpc^3."""
        r = _log_radius_grid_kpc(
            scale_radius_kpc=self.core_radius_kpc,
            truncation_radius_kpc=self.truncation_radius_kpc,
        )
        shape = self._shape(r)
        # The innermost sphere lies deep in the core, where the density is uniform.
        inner_mass = 4.0 / 3.0 * np.pi * r[0] ** 3 * shape[0]
        shells = cumulative_trapezoid(4.0 * np.pi * r**3 * shape, np.log(r), initial=0.0)
        return _LogMassTable(r, inner_mass + shells)

    @property
    def central_density_msun_per_kpc3(self) -> float:
        """rho_0, set by ``mass_msun``."""
        return self.mass_msun / self._unit_density_table.total_mass_msun

    def enclosed_mass_msun(self, r_kpc: ArrayLike) -> FloatArray:
        """M(<r), interpolated in the numerically integrated table (relative error ~1e-5)."""
        unit_mass = self._unit_density_table.enclosed_mass_msun(r_kpc)
        return self.central_density_msun_per_kpc3 * unit_mass

    def density_msun_per_kpc3(self, r_kpc: ArrayLike) -> FloatArray:
        """rho_0 (1 + (r/r_c)^2)^(-3 beta/2), zero beyond the truncation radius."""
        r = np.asarray(r_kpc, dtype=np.float64)
        rho = self.central_density_msun_per_kpc3 * self._shape(r)
        return np.where(r <= self.truncation_radius_kpc, rho, 0.0)

    def sample_positions_kpc(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Isotropic positions, radii by inverse CDF of the tabulated M(<r)."""
        return _isotropic_positions_kpc(rng, self._unit_density_table.sample_radii_kpc(rng, n))
