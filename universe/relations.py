"""Empirical galaxy scaling relations and the star-formation history of the mock galaxies.

Each relation is the published fit, quoted with its reference, vectorised over its inputs.
Masses are Msun, times Gyr unless the name says yr, star-formation rates Msun/yr.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import trapezoid

from darkstack.constants import SOLAR_OXYGEN_ABUNDANCE, Z_SUN

FloatArray = NDArray[np.float64]

#: R_d / R_half of an exponential disk, whose half-mass radius is 1.678 R_d.
half_mass_radius_to_disk_scale_length: Final = 1.0 / 1.678

#: Range of e-folding times searched for the delayed-tau history, Gyr.
DELAYED_TAU_RANGE_GYR: Final = (0.05, 100.0)
_TAU_TABLE_POINTS = 512
#: Points per side of the formation-time grid, logarithmic towards both the Big Bang and now.
_TIME_GRID_POINTS = 2048
_YR_PER_GYR = 1.0e9


def _as_float_array(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def moster13_stellar_mass_msun(m200c_msun: ArrayLike) -> FloatArray:
    """Stellar mass of a central galaxy from its halo mass, at z = 0.

    M*/M = 2 N [(M/M1)^-beta + (M/M1)^gamma]^-1 with log10 M1 = 11.590, N = 0.0351,
    beta = 1.376, gamma = 0.608 (Moster, Naab & White 2013, MNRAS 428, 3121, eq. 2 and
    Table 1, z = 0 values; halo masses M200c, Chabrier IMF).

    Parameters
    ----------
    m200c_msun : array_like
        Halo mass M200c.

    Returns
    -------
    ndarray
        Mean stellar mass, Msun (no scatter).
    """
    m = _as_float_array(m200c_msun)
    ratio = m / 10.0**11.590
    return m * 2.0 * 0.0351 / (ratio**-1.376 + ratio**0.608)


def speagle14_log_sfr(log_mstar: ArrayLike, *, cosmic_time_gyr: ArrayLike) -> FloatArray:
    """log10 SFR of the star-forming main sequence.

    log SFR = (0.84 - 0.026 t) log M* - (6.51 - 0.11 t), t the age of the Universe in Gyr
    (Speagle et al. 2014, ApJS 214, 15, eq. 28; Kroupa IMF, calibrated over 0 < z < 6).

    Parameters
    ----------
    log_mstar : array_like
        log10 of the stellar mass in Msun.
    cosmic_time_gyr : array_like
        Age of the Universe, Gyr.

    Returns
    -------
    ndarray
        log10 of the SFR in Msun/yr.
    """
    x = _as_float_array(log_mstar)
    t = _as_float_array(cosmic_time_gyr)
    return (0.84 - 0.026 * t) * x - (6.51 - 0.11 * t)


def peng10_quenched_fraction(log_mstar: ArrayLike) -> FloatArray:
    """Fraction of galaxies quenched by mass quenching, f_q = 1 - exp(-M*/M_q).

    Peng et al. (2010, ApJ 721, 193): mass quenching at a rate proportional to the SFR turns
    the star-forming Schechter function into a quenched fraction 1 - exp(-M*/M_q). We adopt
    log10 M_q = 10.6, the Schechter mass of their star-forming population.

    Parameters
    ----------
    log_mstar : array_like
        log10 of the stellar mass in Msun.

    Returns
    -------
    ndarray
        Quenched fraction in [0, 1).
    """
    return -np.expm1(-(10.0 ** (_as_float_array(log_mstar) - 10.6)))


def shen03_late_type_r50_kpc(mstar_msun: ArrayLike) -> FloatArray:
    """Median half-light radius of late-type galaxies.

    R50 = 0.1 kpc M*^0.14 (1 + M*/3.98e10)^(0.39 - 0.14) (Shen et al. 2003, MNRAS 343, 978,
    eq. 18 with their late-type parameters; SDSS z-band Petrosian half-light radii, Kroupa
    IMF). Used here as the stellar half-mass radius.

    Parameters
    ----------
    mstar_msun : array_like
        Stellar mass.

    Returns
    -------
    ndarray
        R50, kpc.
    """
    m = _as_float_array(mstar_msun)
    return 0.1 * m**0.14 * (1.0 + m / 3.98e10) ** (0.39 - 0.14)


def shen03_late_type_ln_scatter(mstar_msun: ArrayLike) -> FloatArray:
    """Scatter of ln R50 of late-type galaxies at fixed stellar mass.

    sigma_lnR = 0.34 + (0.47 - 0.34) / (1 + (M*/3.98e10)^2) (Shen et al. 2003, MNRAS 343, 978,
    eq. 19, late-type parameters). Divide by ln 10 for a scatter in dex.

    Parameters
    ----------
    mstar_msun : array_like
        Stellar mass.

    Returns
    -------
    ndarray
        Standard deviation of ln R50.
    """
    m = _as_float_array(mstar_msun)
    return 0.34 + (0.47 - 0.34) / (1.0 + (m / 3.98e10) ** 2)


def kravtsov13_half_mass_radius_kpc(r200c_kpc: ArrayLike) -> FloatArray:
    """Median stellar half-mass radius of a galaxy from the radius of its halo.

    r_1/2 = 0.015 R200c, with a log-normal scatter of :data:`KRAVTSOV13_SCATTER_DEX` (Kravtsov
    2013, ApJL 764, L31: galaxies of all morphologies, from dwarfs to giant ellipticals,
    matched to halos by abundance). Sizes then follow the halo's radius rather than its
    stars: at fixed M*, a galaxy in a larger halo is larger, as the disk-formation picture of
    Mo, Mao & White (1998), r_d ∝ λ R200, predicts.

    Parameters
    ----------
    r200c_kpc : array_like
        Halo radius R200c, kpc.

    Returns
    -------
    ndarray
        Median half-mass radius, kpc.
    """
    return 0.015 * _as_float_array(r200c_kpc)


#: Log-normal scatter of r_1/2 at fixed R200c (Kravtsov 2013), dex.
KRAVTSOV13_SCATTER_DEX: Final = 0.2


def wang16_hi_diameter_kpc(hi_mass_msun: ArrayLike) -> FloatArray:
    """Diameter of a galaxy's HI disk at the 1 Msun/pc^2 isophote from its HI mass.

    log D_HI = 0.506 log M_HI - 3.293 (Wang et al. 2016, MNRAS 460, 2143; over 500 galaxies
    from dwarfs to massive spirals, 0.06 dex scatter).

    Parameters
    ----------
    hi_mass_msun : array_like
        HI mass, Msun (> 0).

    Returns
    -------
    ndarray
        D_HI, kpc.
    """
    return 10.0 ** (0.506 * np.log10(_as_float_array(hi_mass_msun)) - 3.293)


#: Scatter of D_HI at fixed HI mass (Wang et al. 2016), dex.
WANG16_SCATTER_DEX: Final = 0.06


def exponential_scale_length_for_isophote_kpc(
    *, mass_msun: float, radius_kpc: float, surface_density_msun_pc2: float
) -> float:
    """Scale length of the exponential disk of ``mass_msun`` that reaches a surface density
    at ``radius_kpc``.

    Solves M / (2 pi h^2) exp(-R/h) = Sigma for the root h <= R/2, the more centrally
    concentrated of the two profiles (the other spreads the mass thinly to beyond R, with a
    central density below what the isophote itself requires of real HI disks). A disk cannot
    reach Sigma at R when even h = R/2, which maximises the density there, falls short; it
    then gets h = R/2.

    Parameters
    ----------
    mass_msun : float
        Disk mass, Msun (> 0).
    radius_kpc : float
        Isophotal radius, kpc (> 0).
    surface_density_msun_pc2 : float
        Surface density at that radius, Msun/pc^2 (> 0).

    Returns
    -------
    float
        Scale length h, kpc.
    """
    from scipy.optimize import brentq

    if not (mass_msun > 0 and radius_kpc > 0 and surface_density_msun_pc2 > 0):
        raise ValueError(
            "mass_msun, radius_kpc and surface_density_msun_pc2 must be > 0, got "
            f"{mass_msun}, {radius_kpc}, {surface_density_msun_pc2}"
        )
    # With u = R/h: u^2 exp(-u) = 2 pi Sigma R^2 / M, and u^2 exp(-u) falls on [2, inf).
    need = 2.0 * np.pi * surface_density_msun_pc2 * (radius_kpc * 1.0e3) ** 2 / mass_msun
    if need >= 4.0 * np.exp(-2.0):
        return 0.5 * radius_kpc
    u_max = 2.0
    while u_max * u_max * np.exp(-u_max) > need:
        u_max *= 2.0
    u = brentq(lambda x: x * x * np.exp(-x) - need, 2.0, u_max, xtol=1e-12)
    return radius_kpc / u


def bulge_to_total(log_mstar: ArrayLike) -> FloatArray:
    """Bulge-to-total stellar mass ratio, a documented heuristic rather than a fit.

    B/T = 0.05 + 0.6 / (1 + exp(-(log M* - 10.7) / 0.3)): ~0.06 at 10^9.5 Msun rising to ~0.6
    at 10^11.5 Msun, following the qualitative trend of bulge fraction with stellar mass (e.g.
    Bluck et al. 2014, MNRAS 441, 599). It is bounded by (0.05, 0.65) by construction.

    Parameters
    ----------
    log_mstar : array_like
        log10 of the stellar mass in Msun.

    Returns
    -------
    ndarray
        B/T.
    """
    return 0.05 + 0.6 / (1.0 + np.exp(-(_as_float_array(log_mstar) - 10.7) / 0.3))


def tremonti04_oxygen_abundance(log_mstar: ArrayLike) -> FloatArray:
    """Gas-phase oxygen abundance of star-forming galaxies.

    12 + log(O/H) = -1.492 + 1.847 x - 0.08026 x^2, x = log M* clipped to the fitted range
    8.5 - 11.5 (Tremonti et al. 2004, ApJ 613, 898, eq. 3; Kroupa IMF, the strong-line
    calibration of their paper).

    Parameters
    ----------
    log_mstar : array_like
        log10 of the stellar mass in Msun.

    Returns
    -------
    ndarray
        12 + log10(O/H).
    """
    x = np.clip(_as_float_array(log_mstar), 8.5, 11.5)
    return -1.492 + 1.847 * x - 0.08026 * x**2


def gas_metallicity_mass_fraction(log_mstar: ArrayLike) -> FloatArray:
    """Metal mass fraction of the star-forming gas, scaled from the oxygen abundance.

    Z = Z_sun 10^(12 + log(O/H) - 8.69), with :func:`tremonti04_oxygen_abundance` and the
    solar values of Asplund et al. (2009) that IllustrisTNG uses.

    Parameters
    ----------
    log_mstar : array_like
        log10 of the stellar mass in Msun.

    Returns
    -------
    ndarray
        Metal mass fraction (TNG's GFM_Metallicity).
    """
    return Z_SUN * 10.0 ** (tremonti04_oxygen_abundance(log_mstar) - SOLAR_OXYGEN_ABUNDANCE)


def huang12_log_hi_mass(log_mstar: ArrayLike) -> FloatArray:
    """log10 of the HI mass of a galaxy from its stellar mass.

    log M_HI = 0.712 log M* + 3.117 below log M* = 9 and 0.276 log M* + 6.885 above (Huang et
    al. 2012, ApJ 756, 113, section 4). ALFALFA is HI-selected, so these are the HI masses of
    gas-rich galaxies, biased high against an optically selected sample; the two published
    lines also do not meet at log M* = 9 (a 0.16 dex step).

    Parameters
    ----------
    log_mstar : array_like
        log10 of the stellar mass in Msun.

    Returns
    -------
    ndarray
        log10 of M_HI in Msun.
    """
    x = _as_float_array(log_mstar)
    return np.where(x < 9.0, 0.712 * x + 3.117, 0.276 * x + 6.885)


def leitner_kravtsov11_mass_loss_fraction(age_yr: ArrayLike) -> FloatArray:
    """Fraction of a stellar population's initial mass returned to the gas by age ``age_yr``.

    f_ml(t) = C0 ln(t/lambda + 1) with C0 = 0.046, lambda = 2.76e5 yr (Leitner & Kravtsov
    2011, ApJ 734, 48, their fit for a Chabrier IMF).

    Parameters
    ----------
    age_yr : array_like
        Age of the population, yr (>= 0).

    Returns
    -------
    ndarray
        Returned fraction of the initial mass.
    """
    return 0.046 * np.log1p(_as_float_array(age_yr) / 2.76e5)


def _formation_time_grid_gyr(cosmic_time_gyr: float) -> FloatArray:
    """Times from 0 to ``cosmic_time_gyr``, logarithmically dense towards both ends.

    Dense towards 0 to resolve a short-tau burst at t ~ tau, and towards now to resolve the
    mass loss of young stars, which changes over lambda ~ 3e5 yr.
    """
    offsets = np.geomspace(1.0e-6 * cosmic_time_gyr, cosmic_time_gyr, _TIME_GRID_POINTS)
    return np.unique(np.concatenate(([0.0], offsets, cosmic_time_gyr - offsets)))


def delayed_tau_specific_sfr_per_yr(tau_gyr: ArrayLike, *, cosmic_time_gyr: float) -> FloatArray:
    """Specific SFR today of a delayed-tau history psi(t) ∝ t exp(-t/tau).

    sSFR = psi(t0) / int_0^t0 psi(t) (1 - f_ml(t0 - t)) dt: the stellar mass that divides the
    SFR is what survives today, after the mass loss of
    :func:`leitner_kravtsov11_mass_loss_fraction`. It increases monotonically with tau.

    Parameters
    ----------
    tau_gyr : array_like
        E-folding time, Gyr.
    cosmic_time_gyr : float
        Age of the Universe at which the sSFR is measured (t0), Gyr.

    Returns
    -------
    ndarray
        sSFR, 1/yr, with the shape of ``tau_gyr``.
    """
    tau = _as_float_array(tau_gyr)[..., None]
    t = _formation_time_grid_gyr(cosmic_time_gyr)
    surviving = 1.0 - leitner_kravtsov11_mass_loss_fraction((cosmic_time_gyr - t) * _YR_PER_GYR)
    # Unnormalised psi: the integral, dominated by t ~ tau, never underflows, while psi(t0)
    # underflowing for tiny tau is the correct limit sSFR -> 0.
    psi = t * np.exp(-t / tau)
    stellar_mass = trapezoid(psi * surviving, t, axis=-1)
    return cosmic_time_gyr * np.exp(-cosmic_time_gyr / tau[..., 0]) / stellar_mass / _YR_PER_GYR


def delayed_tau_for_specific_sfr(*, ssfr_per_yr: ArrayLike, cosmic_time_gyr: float) -> FloatArray:
    """E-folding time of the delayed-tau history with the given specific SFR today.

    Inverts :func:`delayed_tau_specific_sfr_per_yr` over tau in :data:`DELAYED_TAU_RANGE_GYR`
    by interpolating a table in log space (relative sSFR error < 1e-3). No tau in the range
    reaches an sSFR above ~2 / (t0 x surviving fraction) (psi ∝ t, the limit tau -> inf;
    ~2.4e-10 /yr today, the main sequence below M* ~ 10^9 Msun) or below that of
    tau = 0.05 Gyr: such values are **clipped** to the ends of the range, and sSFR <= 0 gives
    the shortest tau. Compare
    ``delayed_tau_specific_sfr_per_yr(tau)`` with the request to see which galaxies were
    clipped, and take the SFR from it where the two must agree.

    Parameters
    ----------
    ssfr_per_yr : array_like
        Specific SFR (SFR over current stellar mass), 1/yr.
    cosmic_time_gyr : float
        Age of the Universe today (t0), Gyr.

    Returns
    -------
    ndarray
        tau, Gyr, with the shape of ``ssfr_per_yr``.
    """
    log_tau_table, log_ssfr_table = _log_ssfr_table(float(cosmic_time_gyr))
    with np.errstate(divide="ignore"):  # sSFR <= 0 -> ln = -inf -> the shortest tau
        log_ssfr = np.log(np.maximum(_as_float_array(ssfr_per_yr), 0.0))
    return np.exp(np.interp(log_ssfr, log_ssfr_table, log_tau_table))


@lru_cache(maxsize=16)
def _log_ssfr_table(cosmic_time_gyr: float) -> tuple[FloatArray, FloatArray]:
    # One table per epoch: the mock universe inverts it for every galaxy at the same t0.
    tau_table = np.geomspace(*DELAYED_TAU_RANGE_GYR, _TAU_TABLE_POINTS)
    ssfr_table = delayed_tau_specific_sfr_per_yr(tau_table, cosmic_time_gyr=cosmic_time_gyr)
    return np.log(tau_table), np.log(ssfr_table)


def sample_formation_times_gyr(
    rng: np.random.Generator, *, tau_gyr: float, cosmic_time_gyr: float, n: int
) -> FloatArray:
    """Draw formation times from the delayed-tau history psi(t) ∝ t exp(-t/tau), 0 < t < t0.

    The times are weighted by the mass *formed*: give every star particle the same initial
    mass, m_init = M*(t0) / sum_i (1 - f_ml(t0 - t_i)), and current mass
    m_init (1 - f_ml(t0 - t_i)), so the particles add up to the current stellar mass M*(t0).
    The closed-form CDF, [1 - (1 + x) e^-x] / [1 - (1 + x0) e^-x0] with x = t/tau and
    x0 = t0/tau, is inverted by interpolation on a grid dense towards both the Big Bang and
    now. (Its exact inverse through the Lambert W function is not used: scipy's W_-1 loses
    all accuracy near its branch point, which is where the oldest stars are.)

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    tau_gyr : float
        E-folding time, Gyr.
    cosmic_time_gyr : float
        Age of the Universe today (t0), Gyr.
    n : int
        Number of times to draw.

    Returns
    -------
    ndarray, shape (n,)
        Cosmic time of formation (time since the Big Bang), Gyr.
    """
    t = _formation_time_grid_gyr(cosmic_time_gyr)
    x = t / tau_gyr
    formed = -np.expm1(-x) - x * np.exp(-x)
    return np.interp(rng.random(n) * formed[-1], formed, t)


def lognormal_scatter(
    rng: np.random.Generator, median: ArrayLike, sigma_dex: ArrayLike
) -> FloatArray:
    """Draw values log-normally distributed about ``median`` with ``sigma_dex`` in log10.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    median : array_like
        Median of the distribution (also its geometric mean).
    sigma_dex : array_like
        Standard deviation of log10 of the values; broadcast against ``median``.

    Returns
    -------
    ndarray
        One draw per element of the broadcast inputs.
    """
    med = _as_float_array(median)
    sigma = _as_float_array(sigma_dex)
    return med * 10.0 ** (sigma * rng.standard_normal(np.broadcast_shapes(med.shape, sigma.shape)))
