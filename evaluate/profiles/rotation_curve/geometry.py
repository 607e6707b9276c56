"""Step 3 of the rotation-curve baseline: the disk's orientation on the sky, and its coordinates.

By default (``geometry="estimated"``) it is measured from the data: the position angle is the
direction of the velocity field's gradient (a plane fitted to it, which points to the receding
half of the major axis), the inclination comes from the axis ratio q of the moment-0 map's
second moments about the centre, with the beam's variance removed and an intrinsically thick
disk of axis ratio q0: cos^2 i = (q^2 - q0^2) / (1 - q0^2) (Hubble 1926). ``geometry="known"``
uses the plane normal to the HI-weighted angular momentum of the subhalo's own gas instead,
isolating the geometry's share of the error. Position angles are counter-clockwise from the
image's +x axis (columns) towards +y (rows); inclination 0 is face-on. Both are reported for
every sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.evaluate.profiles.rotation_curve.errors import GalaxyFitError

_FWHM_PER_SIGMA: Final = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class DiskGeometry:
    """Orientation of a disk on the sky.

    Attributes
    ----------
    position_angle_deg : float
        Direction of the receding half of the major axis, counter-clockwise from the image's
        +x axis towards +y, in [0, 360).
    inclination_deg : float
        Angle between the disk's normal and the line of sight, 0 (face-on) to 90 (edge-on).
    """

    position_angle_deg: float
    inclination_deg: float


def sky_grid_kpc(*, shape: tuple[int, int], pixel_kpc: float) -> tuple[FloatArray, FloatArray]:
    """Sky coordinates of pixel centres, the galaxy at the corner of the four central pixels.

    Parameters
    ----------
    shape : tuple of 2 int
        (ny, nx) of the image.
    pixel_kpc : float
        Side of one pixel.

    Returns
    -------
    x_kpc, y_kpc : ndarray, shape (ny, nx)
        Columns follow +x, rows +y (the convention of :mod:`darkstack.features.photometry`).
    """
    ny, nx = shape
    x = (np.arange(nx) - 0.5 * nx + 0.5) * pixel_kpc
    y = (np.arange(ny) - 0.5 * ny + 0.5) * pixel_kpc
    y_kpc, x_kpc = np.meshgrid(y, x, indexing="ij")
    return x_kpc, y_kpc


def disk_coordinates(
    *, x_kpc: ArrayLike, y_kpc: ArrayLike, geometry: DiskGeometry
) -> tuple[FloatArray, FloatArray]:
    """Disk-plane radius and azimuth of sky positions.

    Parameters
    ----------
    x_kpc, y_kpc : array_like
        Sky positions relative to the galaxy.
    geometry : DiskGeometry
        Orientation of the disk (inclination < 90 degrees).

    Returns
    -------
    radius_kpc : ndarray
        R = sqrt(x'^2 + (y' / cos i)^2).
    cos_theta : ndarray
        x' / R, 1 on the receding major axis (0 at R = 0).
    """
    phi = math.radians(geometry.position_angle_deg)
    cos_i = math.cos(math.radians(geometry.inclination_deg))
    if not cos_i > 0:
        raise ValueError(f"inclination_deg must be < 90, got {geometry.inclination_deg}")
    x = np.asarray(x_kpc, dtype=np.float64)
    y = np.asarray(y_kpc, dtype=np.float64)
    along = x * math.cos(phi) + y * math.sin(phi)
    across = (-x * math.sin(phi) + y * math.cos(phi)) / cos_i
    radius = np.hypot(along, across)
    cos_theta = np.divide(along, radius, out=np.zeros_like(radius), where=radius > 0)
    return radius, cos_theta


def true_geometry(gas: Mapping[str, ArrayLike]) -> DiskGeometry:
    """The disk plane normal to the HI-weighted angular momentum of gas in the observer frame.

    Parameters
    ----------
    gas : mapping of array_like
        ``position_kpc`` and ``velocity_kms`` (n, 3) relative to the galaxy, ``hi_mass_msun``;
        x, y on the sky, z away from the observer.

    Returns
    -------
    DiskGeometry
        A point at position p on the disk moves along n x p, so its v_z = p . (z x n) and the
        receding major axis points along z x n = (-n_y, n_x, 0).
    """
    position = np.asarray(gas["position_kpc"], dtype=np.float64).reshape(-1, 3)
    velocity = np.asarray(gas["velocity_kms"], dtype=np.float64).reshape(-1, 3)
    weight = np.asarray(gas["hi_mass_msun"], dtype=np.float64)
    spin = (weight[:, None] * np.cross(position, velocity)).sum(axis=0)
    norm = np.linalg.norm(spin)
    if not norm > 0:
        raise GalaxyFitError("no HI angular momentum to define the disk plane")
    nx, ny, nz = spin / norm
    return DiskGeometry(
        position_angle_deg=float(np.degrees(np.arctan2(nx, -ny)) % 360.0),
        inclination_deg=float(np.degrees(np.arccos(min(abs(nz), 1.0)))),
    )


def estimate_geometry(
    *,
    mom0: ArrayLike,
    velocity_map_kms: ArrayLike,
    pixel_kpc: float,
    beam_fwhm_kpc: float,
    intrinsic_axis_ratio: float,
) -> DiskGeometry:
    """Position angle from the velocity field, inclination from the HI map's axis ratio.

    Parameters
    ----------
    mom0 : array_like, shape (ny, nx)
        Integrated HI intensity, 0 outside the usable region.
    velocity_map_kms : array_like, shape (ny, nx)
        Line-of-sight velocities, NaN outside the usable region.
    pixel_kpc : float
        Side of one pixel.
    beam_fwhm_kpc : float
        FWHM of the beam, whose variance is removed from the second moments (0: none).
    intrinsic_axis_ratio : float
        q0 of the disk, in [0, 1).

    Returns
    -------
    DiskGeometry
        The receding direction of the fitted velocity plane and arccos of the thickness- and
        beam-corrected axis ratio (see the module docstring).
    """
    intensity = np.clip(np.nan_to_num(np.asarray(mom0, dtype=np.float64)), 0.0, None)
    velocity = np.asarray(velocity_map_kms, dtype=np.float64)
    x, y = sky_grid_kpc(shape=intensity.shape, pixel_kpc=pixel_kpc)
    kinematic = np.isfinite(velocity)
    if kinematic.sum() < 3 or not intensity.sum() > 0:
        raise GalaxyFitError("too few HI pixels to measure the disk's geometry")
    design = np.stack([x[kinematic], y[kinematic]], axis=1)
    (gradient_x, gradient_y), *_ = np.linalg.lstsq(design, velocity[kinematic], rcond=None)
    position_angle = float(np.degrees(np.arctan2(gradient_y, gradient_x)) % 360.0)
    total = intensity.sum()
    covariance = np.array(
        [
            [(intensity * x * x).sum(), (intensity * x * y).sum()],
            [(intensity * x * y).sum(), (intensity * y * y).sum()],
        ]
    ) / total - (beam_fwhm_kpc / _FWHM_PER_SIGMA) ** 2 * np.eye(2)
    minor, major = np.linalg.eigvalsh(covariance)
    if not major > 0:
        raise GalaxyFitError("the HI map is not resolved by the beam")
    q2 = max(minor, 0.0) / major
    q0_2 = intrinsic_axis_ratio**2
    cos_i = math.sqrt(min(max((q2 - q0_2) / (1.0 - q0_2), 0.0), 1.0))
    return DiskGeometry(
        position_angle_deg=position_angle, inclination_deg=float(np.degrees(np.arccos(cos_i)))
    )
