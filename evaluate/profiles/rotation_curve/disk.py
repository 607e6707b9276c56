"""Step 5 of the rotation-curve baseline: the stellar exponential disk in the g band.

The g-band image is averaged in elliptical annuli of one pixel with the same geometry as the
rotation curve; an exponential I(R) = I0 exp(-R / R_d) is fitted to the annuli beyond
``disk_fit_min_radius_kpc`` (where a bulge would dominate) out to the first whose mean has a
signal-to-noise against the sky noise of the observe config below ``disk_fit_min_snr``, each
annulus weighted by its own scatter (the paper fits AUTOPROF profiles). The disk's flux is
2 pi I0 R_d^2 cos i (a thin disk seen at inclination i covers cos i of its face-on area), which
at distance D is a g-band luminosity with the Sun's absolute magnitude M_g = 5.11 AB (Willmer
2018, ApJS 236, 47, Table 3). Dust is ignored. Its circular velocity is Freeman's (1970):
V^2 = 4 pi G Sigma_0 R_d y^2 [I0(y) K0(y) - I1(y) K1(y)], y = R / (2 R_d),
Sigma_0 = Upsilon L / (2 pi R_d^2) (Mo, van den Bosch & White 2010, eq. 11.30; the paper's
eq. 6 prints a minus sign and y = R / R_d, typos of that formula).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import i0e, i1e, k0e, k1e

from darkstack.constants import G_KPC_KMS2_PER_MSUN
from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.evaluate.profiles.rotation_curve.errors import GalaxyFitError
from darkstack.evaluate.profiles.rotation_curve.geometry import (
    DiskGeometry,
    disk_coordinates,
    sky_grid_kpc,
)

#: Absolute magnitude of the Sun in the SDSS g band, AB (Willmer 2018, ApJS 236, 47, Table 3).
SOLAR_ABSOLUTE_MAGNITUDE_G_AB: Final = 5.11
#: Each annulus' surface-brightness error is at least this fraction of its mean, so the few
#: annuli of a smooth (noise-free) image cannot take all the weight of the disk fit.
_PROFILE_FRACTIONAL_ERROR_FLOOR: Final = 0.01


@dataclass(frozen=True)
class ExponentialDisk:
    """A thin exponential stellar disk in the g band.

    Attributes
    ----------
    scale_length_kpc : float
        R_d.
    luminosity_lsun : float
        Total g-band luminosity in solar g-band luminosities.
    """

    scale_length_kpc: float
    luminosity_lsun: float


def fit_exponential_disk(
    *,
    image_nmgy: ArrayLike,
    geometry: DiskGeometry,
    pixel_kpc: float,
    distance_mpc: float,
    min_radius_kpc: float,
    min_snr: float,
    noise_nmgy_per_pixel: float,
) -> ExponentialDisk:
    """Scale length and g-band luminosity of an exponential disk fitted to an image.

    Parameters
    ----------
    image_nmgy : array_like, shape (ny, nx)
        Sky-subtracted g-band image, nanomaggies per pixel.
    geometry : DiskGeometry
        Orientation of the elliptical annuli.
    pixel_kpc : float
        Side of one pixel; also the width of the annuli along the major axis.
    distance_mpc : float
        Distance of the galaxy.
    min_radius_kpc : float
        Annuli centred closer than this are left out of the fit.
    min_snr : float
        The fit stops before the first annulus whose mean has a lower signal-to-noise against
        the sky noise (or is not positive).
    noise_nmgy_per_pixel : float
        Sky noise of one pixel (0 for a noise-free image).

    Returns
    -------
    ExponentialDisk
        R_d and L_g = 10^(-0.4 (M_g - 5.11)) of the disk flux 2 pi I0 R_d^2 cos i.

    Raises
    ------
    GalaxyFitError
        When fewer than 3 annuli qualify or the profile does not decline.
    """
    image = np.asarray(image_nmgy, dtype=np.float64)
    if not distance_mpc > 0 or not pixel_kpc > 0 or not noise_nmgy_per_pixel >= 0:
        raise ValueError("need distance_mpc > 0, pixel_kpc > 0 and noise_nmgy_per_pixel >= 0")
    x, y = sky_grid_kpc(shape=image.shape, pixel_kpc=pixel_kpc)
    radius, _ = disk_coordinates(x_kpc=x, y_kpc=y, geometry=geometry)
    annulus = np.floor(radius / pixel_kpc).astype(np.int64)
    finite = np.isfinite(image)
    radii, means, errors = [], [], []
    for index in range(int(annulus[finite].max()) + 1):
        values = image[finite & (annulus == index)]
        centre_kpc = (index + 0.5) * pixel_kpc
        if centre_kpc < min_radius_kpc or values.size < 3:
            continue
        mean = values.mean()
        if not (mean > 0 and mean >= min_snr * noise_nmgy_per_pixel / math.sqrt(values.size)):
            break
        # The weight comes from the annulus' scatter, sky noise and lumpy light alike: clumps
        # and spiral arms make an annulus a poor measure of the disk even where sky is no issue.
        error = max(
            values.std(ddof=1) / math.sqrt(values.size), _PROFILE_FRACTIONAL_ERROR_FLOOR * mean
        )
        radii.append(centre_kpc)
        means.append(mean)
        errors.append(error)
    if len(radii) < 3:
        raise GalaxyFitError(
            f"no exponential disk in the g-band image ({len(radii)} annuli beyond "
            f"{min_radius_kpc:g} kpc with S/N >= {min_snr:g}, need 3)"
        )
    r, mean_flux, error_flux = np.array(radii), np.array(means), np.array(errors)
    weight = (mean_flux / error_flux) ** 2
    design = np.stack([np.ones_like(r), r], axis=1) * np.sqrt(weight)[:, None]
    (log_i0, slope), *_ = np.linalg.lstsq(design, np.log(mean_flux) * np.sqrt(weight), rcond=None)
    if not slope < 0:
        raise GalaxyFitError(
            "no exponential disk in the g-band image (the profile does not decline)"
        )
    scale_length_kpc = -1.0 / slope
    cos_i = math.cos(math.radians(geometry.inclination_deg))
    flux_nmgy = 2.0 * math.pi * math.exp(log_i0) * (scale_length_kpc / pixel_kpc) ** 2 * cos_i
    absolute_magnitude = 22.5 - 2.5 * math.log10(flux_nmgy) - 5.0 * math.log10(distance_mpc * 1e5)
    return ExponentialDisk(
        scale_length_kpc=float(scale_length_kpc),
        luminosity_lsun=float(
            10.0 ** (-0.4 * (absolute_magnitude - SOLAR_ABSOLUTE_MAGNITUDE_G_AB))
        ),
    )


def freeman_disk_velocity_kms(
    *, r_kpc: ArrayLike, mass_msun: ArrayLike, scale_length_kpc: ArrayLike
) -> FloatArray:
    """Circular velocity of a razor-thin exponential disk (Freeman 1970).

    Parameters
    ----------
    r_kpc : array_like
        Radii in the disk plane (broadcast against the other arguments).
    mass_msun : array_like
        Total disk mass, >= 0.
    scale_length_kpc : array_like
        R_d, > 0.

    Returns
    -------
    ndarray
        V with V^2 = 2 G M / R_d y^2 [I0(y) K0(y) - I1(y) K1(y)], y = R / (2 R_d); the
        exponentially scaled Bessel functions keep the products finite at large y.
    """
    y = 0.5 * np.asarray(r_kpc, dtype=np.float64) / np.asarray(scale_length_kpc, dtype=np.float64)
    shape = i0e(y) * k0e(y) - i1e(y) * k1e(y)
    v2 = (
        2.0
        * G_KPC_KMS2_PER_MSUN
        * np.asarray(mass_msun)
        / np.asarray(scale_length_kpc)
        * y**2
        * shape
    )
    return np.sqrt(np.clip(v2, 0.0, None))
