"""The rotation-curve baseline: dark-matter profiles from HI kinematics and g-band light.

de los Rios et al. (2023, §5.6, Fig. 9) fit the HI rotation curve of a few test galaxies with
an NFW halo plus a stellar exponential disk and compare the halo's enclosed mass with the truth
and with the network. This package repeats that analysis on the views of ``observations.zarr``,
one step per module, each of whose docstrings documents the step's choices:

1. **The view** (``view``): the HI cube of a sample made again exactly as ``darkstack observe``
   made it, with the same noise seed, and the stored g-band image.
2. **Velocity field** (``kinematics``): each pixel's peak velocity (3DBAROLO is not available),
   in the connected region covering the centre.
3. **Geometry** (``geometry``): position angle from the velocity field and inclination from the
   HI map's axis ratio (``geometry="estimated"``), or from the gas' angular momentum
   (``geometry="known"``).
4. **Rotation curve** (``kinematics``): least squares in disk-plane rings near the major axis.
5. **Stellar disk** (``disk``): an exponential fitted to the g-band image, its luminosity and
   Freeman's circular velocity.
6. **Mass model** (``nfw``, ``mass_model``): NFW halo plus stellar disk with the paper's five
   parameters and priors, sampled with emcee.

``config`` holds the settings (:class:`RotationCurveConfig`) and ``errors`` the failure of one
galaxy (:class:`GalaxyFitError`). :func:`rotation_curve_masses` (``pipeline``) runs all of this
on chosen samples, one row each; a galaxy that cannot be fitted gets a ``status`` saying why
(too few HI pixels, nearly face-on or edge-on, too few rings, no exponential disk) and NaN
results, never an exception.
"""

from __future__ import annotations

from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.evaluate.profiles.rotation_curve.config import RotationCurveConfig
from darkstack.evaluate.profiles.rotation_curve.disk import (
    SOLAR_ABSOLUTE_MAGNITUDE_G_AB,
    ExponentialDisk,
    fit_exponential_disk,
    freeman_disk_velocity_kms,
)
from darkstack.evaluate.profiles.rotation_curve.errors import GalaxyFitError
from darkstack.evaluate.profiles.rotation_curve.geometry import (
    DiskGeometry,
    disk_coordinates,
    estimate_geometry,
    sky_grid_kpc,
    true_geometry,
)
from darkstack.evaluate.profiles.rotation_curve.kinematics import (
    RotationCurve,
    central_region,
    peak_velocity_map,
    ring_rotation_curve,
)
from darkstack.evaluate.profiles.rotation_curve.mass_model import MassModelPosterior, fit_mass_model
from darkstack.evaluate.profiles.rotation_curve.nfw import (
    nfw_enclosed_mass_msun,
    nfw_r200_kpc,
    nfw_velocity_kms,
)
from darkstack.evaluate.profiles.rotation_curve.pipeline import rotation_curve_masses
from darkstack.evaluate.profiles.rotation_curve.view import (
    ObservedView,
    regenerate_view,
    require_stored_moment0,
)

__all__ = [
    "SOLAR_ABSOLUTE_MAGNITUDE_G_AB",
    "DiskGeometry",
    "ExponentialDisk",
    "FloatArray",
    "GalaxyFitError",
    "MassModelPosterior",
    "ObservedView",
    "RotationCurve",
    "RotationCurveConfig",
    "central_region",
    "disk_coordinates",
    "estimate_geometry",
    "fit_exponential_disk",
    "fit_mass_model",
    "freeman_disk_velocity_kms",
    "nfw_enclosed_mass_msun",
    "nfw_r200_kpc",
    "nfw_velocity_kms",
    "peak_velocity_map",
    "regenerate_view",
    "require_stored_moment0",
    "ring_rotation_curve",
    "rotation_curve_masses",
    "sky_grid_kpc",
    "true_geometry",
]
