"""Step 6 of the rotation-curve baseline: the NFW + stellar-disk mass model, sampled with emcee.

V^2 = V_NFW^2(V200, C200) + V_disk^2(Upsilon), with the paper's five free parameters and
priors: Upsilon flat in [0, 20], V200 flat in [10, 800] km/s, C200 flat in [1, 1000], a
Gaussian on the distance D around the true one and on the inclination around the value
measured in step 3. Changing D to D' moves the ring radii and R_d by D'/D and the disk
luminosity by (D'/D)^2, so V_disk scales by sqrt(D'/D); changing i to i' scales the observed
velocities and errors by sin(i) / sin(i') (Li et al. 2018, A&A 615, A3; the paper's eq. 8). As
in the paper, gas and bulge are not modelled (their mass ends up in the halo, so the halo's
inner mass is overestimated where they matter) and a 10 per cent uncertainty is added in
quadrature to every velocity; a 10 per cent uncertainty on the stellar profile's normalisation
would be degenerate with the free Upsilon and is not added. The halo is that of
:mod:`darkstack.evaluate.profiles.rotation_curve.nfw`. The posterior is sampled with emcee after a
Nelder-Mead start; the enclosed dark-matter mass log10 M_NFW(<r) at the store's radii is
summarised by its 16th, 50th and 84th percentiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.evaluate.profiles.rotation_curve.config import RotationCurveConfig
from darkstack.evaluate.profiles.rotation_curve.disk import (
    ExponentialDisk,
    freeman_disk_velocity_kms,
)
from darkstack.evaluate.profiles.rotation_curve.errors import GalaxyFitError
from darkstack.evaluate.profiles.rotation_curve.kinematics import RotationCurve
from darkstack.evaluate.profiles.rotation_curve.nfw import nfw_enclosed_mass_msun, nfw_velocity_kms


@dataclass(frozen=True)
class MassModelPosterior:
    """emcee's posterior of the NFW + disk model.

    Attributes
    ----------
    samples : ndarray, shape (n, 5)
        Samples after burn-in, columns :attr:`PARAMETERS`.
    log10_mdm_percentiles : ndarray, shape (3, n_radii)
        16th, 50th and 84th percentiles of log10 M_NFW(<r) (Msun) at the requested radii.
    acceptance_fraction : float
        Mean acceptance fraction of the walkers.
    """

    PARAMETERS: ClassVar[tuple[str, ...]] = (
        "v200_kms",
        "c200",
        "upsilon",
        "distance_mpc",
        "inclination_deg",
    )

    samples: FloatArray
    log10_mdm_percentiles: FloatArray
    acceptance_fraction: float

    def median(self, name: str) -> float:
        """Posterior median of one parameter of :attr:`PARAMETERS`."""
        return float(np.median(self.samples[:, self.PARAMETERS.index(name)]))


def fit_mass_model(
    *,
    curve: RotationCurve,
    disk: ExponentialDisk,
    distance_mpc: float,
    inclination_deg: float,
    radii_kpc: ArrayLike,
    config: RotationCurveConfig,
) -> MassModelPosterior:
    """Sample the NFW + stellar-disk model of a rotation curve with emcee.

    Parameters
    ----------
    curve : RotationCurve
        Measured at ``distance_mpc`` and ``inclination_deg``.
    disk : ExponentialDisk
        The g-band disk, measured at ``distance_mpc``.
    distance_mpc : float
        Centre of the Gaussian distance prior (the true distance).
    inclination_deg : float
        Centre of the Gaussian inclination prior (the measured inclination), in (0, 90).
    radii_kpc : array_like
        Where the enclosed dark-matter mass is reported.
    config : RotationCurveConfig
        Priors, error floor and sampler settings.

    Returns
    -------
    MassModelPosterior
        Samples and the 16/50/84 percentiles of log10 M_NFW(<r).
    """
    import emcee
    from scipy.optimize import minimize

    if curve.radius_kpc.size == 0:
        raise GalaxyFitError("the rotation curve is empty")
    if not 0 < inclination_deg < 90 or not distance_mpc > 0:
        raise ValueError(
            f"need 0 < inclination_deg < 90 and distance_mpc > 0, got {inclination_deg} "
            f"and {distance_mpc}"
        )
    radius = curve.radius_kpc
    v_obs = curve.v_rot_kms
    v_err = np.hypot(curve.v_err_kms, config.velocity_fractional_error * v_obs)
    if not np.all(v_err > 0):
        raise GalaxyFitError("rotation-curve errors must be > 0")
    sin_ref = math.sin(math.radians(inclination_deg))
    distance_sigma = config.distance_prior_fraction * distance_mpc
    low = np.array(
        [config.v200_range_kms[0], config.c200_range[0], config.upsilon_range[0], 0.0, 0.0]
    )
    high = np.array(
        [config.v200_range_kms[1], config.c200_range[1], config.upsilon_range[1], np.inf, 90.0]
    )

    def log_posterior(theta: FloatArray) -> FloatArray:
        theta = np.atleast_2d(theta)
        v200, c200, upsilon, distance, inclination = theta.T
        inside = np.all((theta >= low) & (theta <= high), axis=1) & (distance > 0)
        inside &= inclination > 0
        result = np.full(theta.shape[0], -np.inf)
        if not inside.any():
            return result
        v200, c200, upsilon = v200[inside, None], c200[inside, None], upsilon[inside, None]
        distance, inclination = distance[inside, None], inclination[inside, None]
        scale = distance / distance_mpc
        r = radius[None, :] * scale
        deprojection = sin_ref / np.sin(np.radians(inclination))
        observed, error = v_obs * deprojection, v_err * deprojection
        v_disk = freeman_disk_velocity_kms(
            r_kpc=r,
            mass_msun=disk.luminosity_lsun * scale**2,
            scale_length_kpc=disk.scale_length_kpc * scale,
        )
        v_halo = nfw_velocity_kms(
            r_kpc=r, v200_kms=v200, c200=c200, hubble_param=config.hubble_param
        )
        model = np.sqrt(v_halo**2 + upsilon * v_disk**2)
        log_like = -0.5 * (((observed - model) / error) ** 2).sum(axis=1) - np.log(error).sum(
            axis=1
        )
        log_prior = -0.5 * ((distance[:, 0] - distance_mpc) / distance_sigma) ** 2
        log_prior -= (
            0.5 * ((inclination[:, 0] - inclination_deg) / config.inclination_prior_sigma_deg) ** 2
        )
        result[inside] = log_like + log_prior
        return result

    start = np.array(
        [
            np.clip(np.max(v_obs), low[0] * 1.01, high[0] * 0.99),
            10.0,
            1.0,
            distance_mpc,
            inclination_deg,
        ]
    )
    best = minimize(
        lambda theta: -float(log_posterior(theta)[0]),
        start,
        method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-4, "fatol": 1e-6},
    )
    centre = best.x if np.isfinite(best.fun) else start
    # A small ball around the optimum, reflected off the prior's edges so that no walker
    # starts outside it and no two share a boundary value (emcee needs independent walkers).
    rng = np.random.default_rng(config.seed)
    spread = 0.01 * np.maximum(np.abs(centre), [10.0, 1.0, 0.1, 1.0, 1.0])
    walkers = centre + spread * rng.standard_normal((config.n_walkers, centre.size))
    walkers = np.where(walkers < low, 2.0 * low - walkers, walkers)
    walkers = np.where(walkers > high, 2.0 * high - walkers, walkers)
    sampler = emcee.EnsembleSampler(config.n_walkers, centre.size, log_posterior, vectorize=True)
    sampler.random_state = np.random.RandomState(config.seed).get_state()
    sampler.run_mcmc(walkers, config.n_steps, progress=False)
    samples = sampler.get_chain(discard=config.n_burn, flat=True)
    mass = nfw_enclosed_mass_msun(
        r_kpc=np.asarray(radii_kpc, dtype=np.float64)[None, :],
        v200_kms=samples[:, :1],
        c200=samples[:, 1:2],
        hubble_param=config.hubble_param,
    )
    return MassModelPosterior(
        samples=samples,
        log10_mdm_percentiles=np.percentile(np.log10(mass), [16.0, 50.0, 84.0], axis=0),
        acceptance_fraction=float(np.mean(sampler.acceptance_fraction)),
    )
