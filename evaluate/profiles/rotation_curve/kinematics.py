"""Steps 2 and 4 of the rotation-curve baseline: the velocity field and its rotation curve.

**Velocity field.** The paper fits the cube with 3DBAROLO, which is not available. Instead,
each pixel's line-of-sight velocity is the cube's *peak* velocity (the brightest channel,
refined by a parabola through it and its neighbours), kept where that channel reaches the
moment-map mask threshold; only the connected region of such pixels that covers the centre is
used, so neighbours and satellites in the field drop out. The peak is less biased than the
moment-1 velocity by beam smearing and by line wings clipped at the band edges.

**Rotation curve.** Pixels are deprojected onto the disk plane: with (x', y') the sky
coordinates along and across the receding major axis, R = sqrt(x'^2 + (y' / cos i)^2) and
cos(theta) = x' / R, and v_los = V(R) sin(i) cos(theta). In rings of ``ring_width_beams``
beams, V is the least-squares solution over the ring's pixels within ``wedge_half_angle_deg``
of the major axis (near the minor axis v_los carries no information on V); its error is the
residual scatter over sqrt(sum cos^2 theta) and sin i, inflated by sqrt(beam area in pixels)
because pixels within a beam are not independent. No beam-smearing correction is made: within
about two beams (and SPH kernels) of the centre, where the rotation curve changes within a
beam, the ring velocities are distorted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.evaluate.profiles.rotation_curve.geometry import (
    DiskGeometry,
    disk_coordinates,
    sky_grid_kpc,
)


@dataclass(frozen=True)
class RotationCurve:
    """A rotation curve in rings.

    Attributes
    ----------
    radius_kpc : ndarray
        Mean disk-plane radius of each ring's pixels.
    v_rot_kms : ndarray
        Rotation velocity.
    v_err_kms : ndarray
        Its statistical error.
    n_pixels : ndarray of int
        Pixels used per ring.
    """

    radius_kpc: FloatArray
    v_rot_kms: FloatArray
    v_err_kms: FloatArray
    n_pixels: NDArray[np.int64]


def peak_velocity_map(
    *,
    cube: ArrayLike,
    velocities_kms: ArrayLike,
    mask: ArrayLike | None = None,
    min_peak_jy_per_beam: float = 0.0,
) -> FloatArray:
    """Line-of-sight velocity of each pixel's brightest masked channel, refined by a parabola.

    Parameters
    ----------
    cube : array_like, shape (n_channels, ny, nx)
        Flux density in Jy/beam.
    velocities_kms : array_like, shape (n_channels,)
        Evenly spaced, ascending channel centres.
    mask : array_like of bool, shape (n_channels, ny, nx), optional
        The emission voxels (:func:`darkstack.features.hi.emission_mask`) the peak is sought
        among; pixels without one are NaN. All voxels when omitted.
    min_peak_jy_per_beam : float
        Pixels whose brightest masked voxel is fainter are NaN too.

    Returns
    -------
    ndarray, shape (ny, nx)
        Peak velocities in km/s; the offset from the brightest channel is the vertex of the
        parabola through it and its two neighbours (none at the band's edges), within half a
        channel.
    """
    data = np.asarray(cube, dtype=np.float64)
    velocity = np.asarray(velocities_kms, dtype=np.float64)
    if data.ndim != 3 or velocity.shape != data.shape[:1] or velocity.size < 3:
        raise ValueError(
            f"cube must be (n_channels >= 3, ny, nx) matching velocities_kms {velocity.shape}, "
            f"got {data.shape}"
        )
    steps = np.diff(velocity)
    if not (steps[0] > 0 and np.allclose(steps, steps[0], rtol=1e-6, atol=0.0)):
        raise ValueError("velocities_kms must be ascending and evenly spaced")
    emission = np.ones(data.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if emission.shape != data.shape:
        raise ValueError(f"mask must have the cube's shape {data.shape}, got {emission.shape}")
    masked = np.where(emission, data, -np.inf)
    peak = np.argmax(masked, axis=0)
    inner = np.clip(peak, 1, velocity.size - 2)
    below, centre, above = (
        np.take_along_axis(data, (inner + offset)[None], axis=0)[0] for offset in (-1, 0, 1)
    )
    curvature = below - 2.0 * centre + above
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(curvature < 0, 0.5 * (below - above) / curvature, 0.0)
    at_edge = peak != inner
    offset = np.where(at_edge, 0.0, np.clip(vertex, -0.5, 0.5))
    result = velocity[peak] + offset * steps[0]
    peak_flux = np.take_along_axis(masked, peak[None], axis=0)[0]
    return np.where(peak_flux >= min_peak_jy_per_beam, result, np.nan)


def central_region(mask: ArrayLike) -> NDArray[np.bool_]:
    """The connected part of ``mask`` that covers or encloses the image centre.

    A component counts when it, with its holes filled, covers one of the four pixels around the
    centre, so an HI ring around a central hole (common in disks whose centre is molecular or
    ionised) is kept whole, while patches detached from the disk are dropped.

    Parameters
    ----------
    mask : array_like of bool, shape (ny, nx)
        Usable pixels.

    Returns
    -------
    ndarray of bool
        ``mask`` restricted to the component(s) at the centre (empty if none covers or encloses
        it).
    """
    from scipy import ndimage

    usable = np.asarray(mask, dtype=bool)
    labels, _ = ndimage.label(ndimage.binary_fill_holes(usable))
    ny, nx = usable.shape
    central = labels[(ny - 1) // 2 : ny // 2 + 1, (nx - 1) // 2 : nx // 2 + 1]
    keep = np.unique(central[central > 0])
    return usable & np.isin(labels, keep)


def ring_rotation_curve(
    *,
    velocity_map_kms: ArrayLike,
    geometry: DiskGeometry,
    pixel_kpc: float,
    ring_width_kpc: float,
    wedge_half_angle_deg: float,
    min_pixels_per_ring: int,
    beam_area_pixels: float,
) -> RotationCurve:
    """V_rot(R) from a velocity field by least squares in disk-plane rings.

    Parameters
    ----------
    velocity_map_kms : array_like, shape (ny, nx)
        Line-of-sight velocities relative to the systemic one, NaN where unusable.
    geometry : DiskGeometry
        Orientation of the disk.
    pixel_kpc : float
        Side of one pixel.
    ring_width_kpc : float
        Width of the rings, the first starting at R = 0.
    wedge_half_angle_deg : float
        Only pixels with |cos theta| >= cos(this) enter.
    min_pixels_per_ring : int
        Rings with fewer usable pixels are dropped.
    beam_area_pixels : float
        Pixels per beam; errors are inflated by its square root (at least 1).

    Returns
    -------
    RotationCurve
        Rings with data, in increasing radius.
    """
    velocity = np.asarray(velocity_map_kms, dtype=np.float64)
    if not ring_width_kpc > 0 or not pixel_kpc > 0:
        raise ValueError("ring_width_kpc and pixel_kpc must be > 0")
    x, y = sky_grid_kpc(shape=velocity.shape, pixel_kpc=pixel_kpc)
    radius, cos_theta = disk_coordinates(x_kpc=x, y_kpc=y, geometry=geometry)
    sin_i = math.sin(math.radians(geometry.inclination_deg))
    usable = np.isfinite(velocity) & (
        np.abs(cos_theta) >= math.cos(math.radians(wedge_half_angle_deg)) - 1e-12
    )
    ring = np.floor(radius / ring_width_kpc).astype(np.int64)
    correlation = math.sqrt(max(beam_area_pixels, 1.0))
    rows = []
    for index in np.unique(ring[usable]):
        chosen = usable & (ring == index)
        n = int(chosen.sum())
        if n < min_pixels_per_ring:
            continue
        c, v = cos_theta[chosen], velocity[chosen]
        projected = (c * v).sum() / (c * c).sum()
        scatter = math.sqrt(((v - projected * c) ** 2).sum() / (n - 1))
        error = correlation * scatter / math.sqrt((c * c).sum())
        rows.append((radius[chosen].mean(), projected / sin_i, error / sin_i, n))
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return RotationCurve(
        radius_kpc=table[:, 0],
        v_rot_kms=table[:, 1],
        v_err_kms=table[:, 2],
        n_pixels=table[:, 3].astype(np.int64),
    )
