"""The observer's baseline: a projected NFW whose mass comes from the measured SZ signal.

What an observer without a network does with a Compton-y map (docs/cluster_mass.md, "The
baseline"):

1. **Y500 and M500 together.** R500 is unknown, so Y and M are iterated: M500 -> R500 (500
   times the critical density) -> Y_cyl(<R500) summed on the tsz_y map inside R500 around the
   map centre -> the M500 whose Arnaud et al. (2010) model predicts that Y_cyl -> ... until M500
   changes by less than ``tolerance_dex``. The model is the universal pressure profile of
   :mod:`darkstack.universe.clusters.arnaud10` (eq. 13 with the running slope) integrated over
   the cylinder of radius R500 through a sphere of 5 R500 (Y_cyl, their §6.3: the aperture of
   a map, not the spherical Y_sph of their eq. 22-25; Y_sph(R500) = 0.83 Y_cyl(R500)), at
   z = 0 (E(z) = 1) with the store's Hubble parameter in h70.
2. **M200c and c200c.** The NFW of that M500c: M200c with the Diemer & Joyce (2019) median
   concentration c(M200c) (colossus ``diemer19``, as the ``clusters`` universe draws its
   haloes) such that colossus' ``changeMassDefinition`` of (M200c, c) to 500c gives M500c.
3. **The map.** colossus' analytic projected NFW surface density (untruncated along the line of
   sight) at each pixel centre's distance from the map centre.

Physics in plain functions; :func:`baseline_maps` applies them to a batch of test maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import numpy as np
from numpy.typing import NDArray

from darkstack.config import Checked, Range
from darkstack.cosmology import TNG_COSMOLOGY, CosmologyParams, colossus_cosmology
from darkstack.cosmology import overdensity_radius_kpc as _overdensity_radius_kpc
from darkstack.evaluate.cluster_mass.scores import cylinder_sums
from darkstack.features.cluster_observe import pixel_radii_kpc
from darkstack.universe.clusters.arnaud10 import y_cyl_mpc2
from darkstack.universe.plan import median_concentration

FloatArray = NDArray[np.float64]
#: The c(M) relation of the ``clusters`` universe (:mod:`darkstack.universe.clusters.halo`).
CONCENTRATION_MODEL = "diemer19"
#: M500c range of the tabulated Arnaud Y_cyl-M relation, log10 Msun.
_LOG_M500_RANGE = (11.5, 16.0)


@dataclass(frozen=True, kw_only=True)
class BaselineConfig(Checked):
    """Settings of the Y-M iteration.

    Parameters
    ----------
    tolerance_dex : float
        The iteration stops when log10 M500 changes by less than this.
    max_iterations : int
        An aperture that has not converged by then keeps its last M500 (and is counted).
    initial_m500c_msun : float
        The first guess of every cluster.
    """

    tolerance_dex: Annotated[float, Range(gt=0)] = 1e-4
    max_iterations: Annotated[int, Range(ge=1)] = 100
    initial_m500c_msun: Annotated[float, Range(gt=0)] = 3e14


def r500c_kpc(m500c_msun: FloatArray, *, cosmology: CosmologyParams = TNG_COSMOLOGY) -> FloatArray:
    """R500c (physical kpc, z = 0) of M500c."""
    return np.asarray(_overdensity_radius_kpc(m500c_msun, overdensity=500.0, params=cosmology))


@lru_cache(maxsize=4)
def _arnaud_table(cosmology: CosmologyParams) -> tuple[FloatArray, FloatArray]:
    log_m = np.linspace(*_LOG_M500_RANGE, 91)
    log_y = np.log10(
        [
            y_cyl_mpc2(
                m500_msun=10.0**m,
                r500_kpc=float(r500c_kpc(np.asarray(10.0**m), cosmology=cosmology)),
                hubble_ratio=1.0,
                hubble_param=cosmology.hubble_param,
            )
            for m in log_m
        ]
    )
    return log_m, log_y


def m500c_from_y_cyl_msun(
    y_cyl_mpc2: FloatArray, *, cosmology: CosmologyParams = TNG_COSMOLOGY
) -> FloatArray:
    """The M500c whose Arnaud et al. (2010) Y_cyl(<R500) (5 R500 deep, z = 0) is ``y_cyl_mpc2``.

    Inverted from a table of the model over 10^11.5-10^16 Msun (monotonic; log-log linear
    interpolation, exact to < 1e-4 dex); NaN for a non-positive Y.
    """
    log_m, log_y = _arnaud_table(cosmology)
    y = np.asarray(y_cyl_mpc2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_measured = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
    return np.asarray(10.0 ** np.interp(log_measured, log_y, log_m, left=np.nan, right=np.nan))


@dataclass(frozen=True, kw_only=True)
class YMSolution:
    """The converged Y-M iteration of each map."""

    m500c_msun: FloatArray
    r500c_kpc: FloatArray
    y_cyl_mpc2: FloatArray
    iterations: NDArray[np.int64]
    converged: NDArray[np.bool_]


def iterate_y500_m500(
    tsz_y: FloatArray,
    *,
    pixel_kpc: FloatArray,
    config: BaselineConfig | None = None,
    cosmology: CosmologyParams = TNG_COSMOLOGY,
) -> YMSolution:
    """Solve M500 -> R500 -> Y_cyl(<R500) on the map -> M500 for each Compton-y map.

    Parameters
    ----------
    tsz_y : ndarray, shape (n_samples, n, n)
        Compton-y maps (dimensionless), centred on the cluster.
    pixel_kpc : ndarray, shape (n_samples,)
        Pixel side of each map.
    config : BaselineConfig, optional
        Tolerance, iterations and first guess.
    cosmology : CosmologyParams
        Sets R500c and h70 of the Arnaud relation.
    """
    config = config or BaselineConfig()
    n_samples = len(tsz_y)
    mass = np.full(n_samples, config.initial_m500c_msun)
    iterations = np.zeros(n_samples, dtype=np.int64)
    converged = np.zeros(n_samples, dtype=bool)
    y = np.zeros(n_samples)
    for _ in range(config.max_iterations):
        active = ~converged
        if not active.any():
            break
        radius = r500c_kpc(mass[active], cosmology=cosmology)
        y[active] = (
            cylinder_sums(tsz_y[active], pixel_kpc=pixel_kpc[active], radius_kpc=radius[:, None])[
                :, 0
            ]
            / 1.0e6
        )
        updated = m500c_from_y_cyl_msun(y[active], cosmology=cosmology)
        step = np.abs(np.log10(updated / mass[active]))
        mass[active] = updated
        iterations[active] += 1
        converged[np.flatnonzero(active)[step < config.tolerance_dex]] = True
    return YMSolution(
        m500c_msun=mass,
        r500c_kpc=r500c_kpc(mass, cosmology=cosmology),
        y_cyl_mpc2=y,
        iterations=iterations,
        converged=converged,
    )


def nfw_from_m500c(
    m500c_msun: float, *, cosmology: CosmologyParams = TNG_COSMOLOGY
) -> tuple[float, float]:
    """(M200c in Msun, c200c): the NFW with the median diemer19 c(M200c) and this M500c.

    A fixed point of M200c <- M200c M500c / M500c(M200c, c(M200c)), M500c(...) from colossus'
    ``changeMassDefinition``; converges to 1e-8 in a few steps (M500/M200 varies slowly).
    """
    from colossus.halo import mass_defs

    colossus_cosmology(cosmology)
    h = cosmology.hubble_param
    m200 = m500c_msun / 0.7
    for _ in range(50):
        c = float(median_concentration(m200, model=CONCENTRATION_MODEL, cosmology=cosmology))
        m500_h, _, _ = mass_defs.changeMassDefinition(m200 * h, c, 0.0, "200c", "500c")
        ratio = m500c_msun / (float(m500_h) / h)
        m200 *= ratio
        if abs(ratio - 1.0) < 1e-8:
            break
    c = float(median_concentration(m200, model=CONCENTRATION_MODEL, cosmology=cosmology))
    return m200, c


def projected_nfw_msun_kpc2(
    radius_kpc: FloatArray,
    *,
    m200c_msun: float,
    c200c: float,
    cosmology: CosmologyParams = TNG_COSMOLOGY,
) -> FloatArray:
    """Surface density (Msun kpc^-2) of the NFW at projected radius ``radius_kpc`` (z = 0).

    colossus' analytic projection (Bartelmann 1996; Wright & Brainerd 2000), untruncated; its
    units are h-scaled (Msun h / (kpc/h)^2 = h Msun kpc^-2), hence the factor h.
    """
    from colossus.halo import profile_nfw

    colossus_cosmology(cosmology)
    h = cosmology.hubble_param
    profile = profile_nfw.NFWProfile(M=m200c_msun * h, c=c200c, z=0.0, mdef="200c")
    radius = np.asarray(radius_kpc, dtype=np.float64)
    return (
        np.asarray(profile.surfaceDensity(radius.ravel() * h), dtype=np.float64).reshape(
            radius.shape
        )
        * h
    )


@dataclass(frozen=True, kw_only=True)
class BaselineMaps:
    """The baseline's maps and the quantities behind them, per test map."""

    sigma_msun_kpc2: FloatArray
    solution: YMSolution
    m200c_msun: FloatArray
    c200c: FloatArray


def baseline_maps(
    tsz_y: FloatArray,
    *,
    pixel_kpc: FloatArray,
    config: BaselineConfig | None = None,
    cosmology: CosmologyParams = TNG_COSMOLOGY,
) -> BaselineMaps:
    """The projected-NFW Σ map of each Compton-y map (module docstring); NaN maps where the
    Y-M relation has no solution (no SZ signal)."""
    solution = iterate_y500_m500(tsz_y, pixel_kpc=pixel_kpc, config=config, cosmology=cosmology)
    n = tsz_y.shape[-1]
    maps = np.full(tsz_y.shape, np.nan)
    m200 = np.full(len(tsz_y), np.nan)
    c200 = np.full(len(tsz_y), np.nan)
    for i, m500 in enumerate(solution.m500c_msun):
        if not np.isfinite(m500):
            continue
        m200[i], c200[i] = nfw_from_m500c(float(m500), cosmology=cosmology)
        maps[i] = projected_nfw_msun_kpc2(
            pixel_radii_kpc(n, pixel_kpc=float(pixel_kpc[i])),
            m200c_msun=float(m200[i]),
            c200c=float(c200[i]),
            cosmology=cosmology,
        )
    return BaselineMaps(sigma_msun_kpc2=maps, solution=solution, m200c_msun=m200, c200c=c200)
