"""Adaptive SPH smoothing: neighbour smoothing lengths and kernel-smoothed images.

:func:`neighbour_distance_kpc` gives each particle the distance to its k-th nearest neighbour,
the smoothing length of particles that carry none (IllustrisTNG's ``StellarHsml`` for stars is
the 32nd-neighbour distance; Torrey et al. 2015, MNRAS 447, 2753), found exactly with a k-d
tree.

:func:`sph_image` projects particles with positions, weights and smoothing lengths onto a
square image. Each particle is spread by a two-dimensional Gaussian of per-axis width
σ = sqrt(0.075) h = 0.274 h (:data:`CUBIC_SPLINE_SIGMA_PER_SUPPORT`), the second moment of the
cubic-spline kernel of support h (Monaghan & Lattanzio 1985): the same width as the compact
SPH kernel, not its shape, which images at a few pixels per h cannot tell apart. σ is floored
at half a pixel. Rather than drawing a kernel per particle, particles are sorted into kernel
widths σ_j = 0.5 x 2^(j / L) pixels (L levels per octave; each particle is split between the
two levels around its own σ, linearly in log σ), cloud-in-cell deposited per level and each
level is convolved with its pixel-integrated Gaussian by FFT, so the cost does not grow with
the kernels' area. The canvas is zero-padded by 4 σ_max around the image, so no kernel wraps
around into it and particles up to 4 σ_max outside it still shine into it; what falls beyond
the image is lost (each kernel sums to the particle's weight over an unbounded image).

Pixel (iy, ix) of an image of n pixels of side s covers x in [(ix - n/2) s, (ix - n/2 + 1) s)
and y in [(iy - n/2) s, (iy - n/2 + 1) s): rows follow +y, columns +x, and the origin is the
centre of the image (the corner shared by the four central pixels when n is even).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

FloatArray = NDArray[np.float64]

#: Per-axis standard deviation of the 3D cubic-spline kernel over its support radius.
CUBIC_SPLINE_SIGMA_PER_SUPPORT = math.sqrt(0.075)
#: Smallest kernel width in pixels: cloud-in-cell deposit (variance 1/6 px^2 on average) and
#: pixel integration (1/12) already smooth a point by (1/2 px)^2.
SIGMA_FLOOR_PX = 0.5
#: Kernel widths per half-width of padding: beyond 4 σ a Gaussian holds < 1e-4 of its weight.
_PADDING_SIGMAS = 4.0


def neighbour_distance_kpc(
    *, position_kpc: ArrayLike, n_neighbours: int, workers: int = 1
) -> FloatArray:
    """Distance from each particle to its ``n_neighbours``-th nearest other particle.

    Parameters
    ----------
    position_kpc : array_like, shape (n, d)
        Particle positions (any d; 3 for smoothing lengths).
    n_neighbours : int
        k, >= 1 (32 for TNG's stellar smoothing lengths). With fewer than k other particles
        the distance is to the farthest one.
    workers : int
        Threads of the k-d tree query (-1: all cores). Leave 1 inside Dask or Ray tasks, which
        already run one task per core.

    Returns
    -------
    ndarray, shape (n,)
        Distances in the units of ``position_kpc``, exact (scipy's cKDTree); coincident
        particles are each other's neighbours at distance 0.

    Raises
    ------
    ValueError
        For a lone particle (it has no neighbour), a misshapen or non-finite position array or
        k < 1.
    """
    position = np.asarray(position_kpc, dtype=np.float64)
    if position.ndim != 2 or not np.all(np.isfinite(position)):
        raise ValueError(f"position_kpc must be a finite (n, d) array, got shape {position.shape}")
    if isinstance(n_neighbours, bool) or not isinstance(n_neighbours, int) or n_neighbours < 1:
        raise ValueError(f"n_neighbours must be an int >= 1, got {n_neighbours!r}")
    n = position.shape[0]
    if n == 0:
        return np.zeros(0)
    if n == 1:
        raise ValueError(
            "a single particle has no neighbour to set its smoothing length; give "
            "smoothing_length_kpc instead"
        )
    from scipy.spatial import cKDTree

    k = min(n_neighbours, n - 1)
    # k + 1: each particle is its own nearest neighbour.
    distance, _ = cKDTree(position).query(position, k=[k + 1], workers=workers)
    return np.asarray(distance[:, 0], dtype=np.float64)


def sph_image(
    *,
    position_kpc: ArrayLike,
    weight: ArrayLike,
    smoothing_length_kpc: ArrayLike,
    n_pixels: int,
    pixel_kpc: float,
    max_sigma_px: float | None = None,
    levels_per_octave: int = 2,
    pad_px: int | None = None,
) -> FloatArray:
    """Sum of the particles' kernel-smoothed weights in each pixel (see the module docstring).

    Parameters
    ----------
    position_kpc : array_like, shape (n, 2)
        x, y of the particles in the image plane, the origin at the image centre.
    weight : array_like, shape (n,) or (n, n_channels)
        What each particle carries (mass, flux per band, ...), one column per channel.
    smoothing_length_kpc : array_like, shape (n,)
        Support radius h of each particle's cubic-spline kernel (>= 0; 0 is a point source,
        drawn at the half-pixel floor).
    n_pixels : int
        Pixels per side of the square image.
    pixel_kpc : float
        Side of a pixel, > 0.
    max_sigma_px : float, optional
        Largest kernel width in pixels (> 0.5); wider kernels are narrowed to it. Default
        n_pixels / 8.
    levels_per_octave : int
        Kernel widths per factor 2 in σ (>= 1): σ is represented to within a factor
        2^(1 / (2 L)).
    pad_px : int, optional
        Zero padding of the FFT canvas on each side, default ceil(4 max_sigma_px). Less lets
        kernels near one edge wrap around onto the opposite edge: only for images whose
        border is itself a margin (photometry's dust map).

    Returns
    -------
    ndarray, shape (n_pixels, n_pixels) or (n_channels, n_pixels, n_pixels)
        Weight per pixel (not per area), >= 0 (FFT round-off below 0 is clipped).

    Raises
    ------
    ValueError
        For misshapen or non-finite inputs, a negative smoothing length, or settings out of
        range.
    """
    position = np.asarray(position_kpc, dtype=np.float64)
    values = np.asarray(weight, dtype=np.float64)
    smoothing = np.asarray(smoothing_length_kpc, dtype=np.float64)
    n = position.shape[0] if position.ndim else -1
    if position.shape != (n, 2) or values.shape[:1] != (n,) or values.ndim > 2:
        raise ValueError(
            f"need position_kpc (n, 2) and weight (n,) or (n, n_channels), got shapes "
            f"{position.shape} and {values.shape}"
        )
    if smoothing.shape != (n,) or np.any(smoothing < 0):
        raise ValueError(f"smoothing_length_kpc must be ({n},) and >= 0, got {smoothing.shape}")
    for name, array in (
        ("position_kpc", position),
        ("weight", values),
        ("smoothing_length_kpc", smoothing),
    ):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"sph_image: {name} holds non-finite values")
    max_sigma = n_pixels / 8.0 if max_sigma_px is None else float(max_sigma_px)
    pad = math.ceil(_PADDING_SIGMAS * max_sigma) if pad_px is None else pad_px
    if n_pixels < 1 or not pixel_kpc > 0 or not max_sigma > SIGMA_FLOOR_PX or pad < 0:
        raise ValueError(
            f"sph_image needs n_pixels >= 1, pixel_kpc > 0, max_sigma_px > {SIGMA_FLOOR_PX} and "
            f"pad_px >= 0, got {n_pixels}, {pixel_kpc}, {max_sigma}, {pad}"
        )
    if levels_per_octave < 1:
        raise ValueError(f"levels_per_octave must be >= 1, got {levels_per_octave}")
    single = values.ndim == 1
    values = values[:, None] if single else values
    n_channels = values.shape[1]
    size = n_pixels + 2 * pad
    n_levels = int(np.ceil(levels_per_octave * np.log2(max_sigma / SIGMA_FLOOR_PX))) + 1
    sigma_px = np.clip(
        CUBIC_SPLINE_SIGMA_PER_SUPPORT * smoothing / pixel_kpc, SIGMA_FLOOR_PX, max_sigma
    )
    level = levels_per_octave * np.log2(sigma_px / SIGMA_FLOOR_PX)
    lower = np.clip(np.floor(level).astype(np.int64), 0, n_levels - 2)
    upper_weight = np.clip(level - lower, 0.0, 1.0)
    index, cic_weight = cloud_in_cell(
        cell_x=position[:, 0] / pixel_kpc + n_pixels / 2 + pad,
        cell_y=position[:, 1] / pixel_kpc + n_pixels / 2 + pad,
        size=size,
    )
    # Flat index of each particle's four cells in each channel of one level's canvas.
    cells = (np.arange(n_channels) * size * size)[None, :, None] + index[:, None, :]
    halves = ((lower, 1.0 - upper_weight), (lower + 1, upper_weight))
    spectrum = np.zeros((n_channels, size, size // 2 + 1), dtype=np.complex128)
    # One level at a time: a canvas of every level at once is ~30 MB for 5 bands at 256^2.
    for j in np.unique(np.concatenate([lower, lower + 1])):
        chosen = [(level_index == j, level_weight) for level_index, level_weight in halves]
        canvas = np.bincount(
            np.concatenate([cells[on].ravel() for on, _ in chosen]),
            weights=np.concatenate(
                [
                    (values[on, :, None] * (weight[on, None] * cic_weight[on])[:, None, :]).ravel()
                    for on, weight in chosen
                ]
            ),
            minlength=n_channels * size * size,
        ).reshape(n_channels, size, size)
        if not canvas.any():
            continue
        sigma_j = SIGMA_FLOOR_PX * 2.0 ** (j / levels_per_octave)
        # The deposit and the pixels already smooth by (1/2 px)^2 (see SIGMA_FLOOR_PX).
        spectrum += scipy.fft.rfft2(canvas) * pixel_gaussian_transfer(
            sigma_px=math.sqrt(max(sigma_j**2 - SIGMA_FLOOR_PX**2, 0.0)), size=size
        )
    image = np.maximum(scipy.fft.irfft2(spectrum, s=(size, size)), 0.0)
    image = image[:, pad : pad + n_pixels, pad : pad + n_pixels]
    return image[0] if single else image


def cloud_in_cell(
    *, cell_x: FloatArray, cell_y: FloatArray, size: int
) -> tuple[NDArray[np.int64], FloatArray]:
    """Cloud-in-cell flat indices and weights (n, 4) on a (size, size) grid.

    Cell i covers [i, i + 1) in cell units; corners off the grid get weight 0 (their share is
    lost). The same indices and weights deposit particles onto the grid and read the grid
    bilinearly at the particles.

    Parameters
    ----------
    cell_x, cell_y : ndarray, shape (n,)
        Positions in cell units.
    size : int
        Cells per side.

    Returns
    -------
    index : ndarray of int64, shape (n, 4)
        Flat indices iy * size + ix of the four cells around each point.
    weight : ndarray, shape (n, 4)
        Their weights, summing to 1 where all four cells are on the grid.
    """
    x0 = np.floor(cell_x - 0.5).astype(np.int64)
    y0 = np.floor(cell_y - 0.5).astype(np.int64)
    tx = cell_x - 0.5 - x0
    ty = cell_y - 0.5 - y0
    index = np.empty((cell_x.size, 4), dtype=np.int64)
    weight = np.empty((cell_x.size, 4))
    for corner, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        xs = x0 + dx
        ys = y0 + dy
        inside = (xs >= 0) & (xs < size) & (ys >= 0) & (ys < size)
        index[:, corner] = np.where(inside, ys * size + xs, 0)
        weight[:, corner] = np.where(
            inside, (tx if dx else 1.0 - tx) * (ty if dy else 1.0 - ty), 0.0
        )
    return index, weight


def pixel_gaussian_transfer(*, sigma_px: float, size: int) -> FloatArray:
    """rfft2 of the separable 2D pixel-integrated Gaussian on a (size, size) periodic grid.

    Integrating the Gaussian over unit pixels keeps every weight positive (a sampled or
    Fourier-space Gaussian rings negative next to sub-pixel sources) and turns into a delta as
    σ -> 0. Multiply an ``rfft2`` by it to convolve.

    Parameters
    ----------
    sigma_px : float
        Per-axis standard deviation in pixels, >= 0.
    size : int
        Side of the periodic grid.

    Returns
    -------
    ndarray, shape (size, size // 2 + 1)
        The (real) transfer function.
    """
    kernel = np.zeros(size)
    if sigma_px <= 0:
        kernel[0] = 1.0
    else:
        radius = min(int(np.ceil(5.0 * sigma_px)) + 1, size // 2 - 1)
        offsets = np.arange(-radius, radius + 1)
        weights = ndtr((offsets + 0.5) / sigma_px) - ndtr((offsets - 0.5) / sigma_px)
        kernel[offsets % size] = weights / weights.sum()
    # The kernel is symmetric, so its transform is real.
    return np.outer(np.fft.fft(kernel).real, np.fft.rfft(kernel).real)
