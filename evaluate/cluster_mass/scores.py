"""Scores of projected-mass maps against the truth: pure numpy on ``(sample, y, x)`` arrays.

Every statistic of the cluster_mass report is built from per-sample sums (pixel moments of the
log10 residual, cylinder masses, azimuthally averaged power spectra), so that a bootstrap over
clusters (:func:`cluster_resample_counts`) only reweights samples: a resampled cluster brings
all of its lines of sight, each weighing the number of times its cluster was drawn.

Geometry: pixel ``(i, j)`` of an ``n``-pixel map has its centre at
``((i + 0.5 - n / 2) p, (j + 0.5 - n / 2) p)`` from the map centre (``p`` the pixel in kpc),
:func:`darkstack.features.cluster_observe.pixel_radii_kpc`, the maps' own convention; a pixel
is inside a circle when its centre is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.features.cluster_observe import pixel_radii_kpc
from darkstack.train.data import bootstrap_weights

FloatArray = NDArray[np.float64]


def cylinder_sums(maps: ArrayLike, *, pixel_kpc: ArrayLike, radius_kpc: ArrayLike) -> FloatArray:
    """The integral of each map over the pixels within each radius of its centre.

    Parameters
    ----------
    maps : array, shape (n_samples, n, n)
        Surface densities (Msun kpc^-2 gives Msun; a Compton-y map gives kpc^2).
    pixel_kpc : array, shape (n_samples,)
        Pixel side of each map.
    radius_kpc : array, shape (n_samples, n_radii)
        Radii of the cylinders, per sample.

    Returns
    -------
    ndarray, shape (n_samples, n_radii)
    """
    values = np.asarray(maps, dtype=np.float64)
    pixel = np.asarray(pixel_kpc, dtype=np.float64)
    radii = np.asarray(radius_kpc, dtype=np.float64)
    n = values.shape[-1]
    sums = np.empty(radii.shape)
    for i, (image, side) in enumerate(zip(values, pixel, strict=True)):
        distance = pixel_radii_kpc(n, pixel_kpc=float(side))
        inside = distance[None] <= radii[i][:, None, None]
        sums[i] = (inside * image[None]).sum(axis=(1, 2)) * side**2
    return sums


def radial_profiles(maps: ArrayLike, *, pixel_kpc: ArrayLike, edges_kpc: ArrayLike) -> FloatArray:
    """Mean of each map in annuli around its centre, ``(n_samples, n_bins)`` (NaN if empty).

    ``edges_kpc`` is ``(n_samples, n_bins + 1)``: per-sample annulus edges (in units of each
    cluster's R200, say).
    """
    values = np.asarray(maps, dtype=np.float64)
    edges = np.asarray(edges_kpc, dtype=np.float64)
    n = values.shape[-1]
    profiles = np.full((values.shape[0], edges.shape[1] - 1), np.nan)
    for i, (image, side) in enumerate(zip(values, np.asarray(pixel_kpc), strict=True)):
        distance = pixel_radii_kpc(n, pixel_kpc=float(side)).ravel()
        which = np.digitize(distance, edges[i]) - 1
        valid = (which >= 0) & (which < profiles.shape[1])
        counts = np.bincount(which[valid], minlength=profiles.shape[1])
        totals = np.bincount(which[valid], weights=image.ravel()[valid], minlength=counts.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            profiles[i] = np.where(counts > 0, totals / counts, np.nan)
    return profiles


def power_spectra(maps: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Azimuthally averaged 2D power spectra ``|FFT(map)|^2 / n^2`` of square maps.

    Bins are unit-wide rings in integer wavenumber ``k = sqrt(kx^2 + ky^2)`` (cycles per map
    side), ``[0.5, 1.5), [1.5, 2.5), ...`` up to the Nyquist ``n / 2``; the mean (k = 0) is
    left out. The maps are transformed as they are (periodic): an edge discontinuity adds the
    same leakage to a prediction and to its truth, so ratios of the two are meaningful.

    Returns
    -------
    k : ndarray, shape (n_k,)
        Mean ``|k|`` of the modes in each ring, cycles per map side.
    power : ndarray, shape (n_samples, n_k)
    """
    values = np.asarray(maps, dtype=np.float64)
    n = values.shape[-1]
    if values.shape[-2] != n:
        raise ValueError(f"power spectra need square maps, got {values.shape[-2:]}")
    frequencies = np.fft.fftfreq(n) * n
    k = np.hypot(*np.meshgrid(frequencies, frequencies, indexing="ij")).ravel()
    ring = np.rint(k).astype(np.int64)
    kept = (ring >= 1) & (ring <= n // 2)
    counts = np.bincount(ring[kept], minlength=n // 2 + 1)[1:]
    k_mean = np.bincount(ring[kept], weights=k[kept], minlength=n // 2 + 1)[1:] / counts
    modes = np.abs(np.fft.fft2(values)) ** 2 / n**2
    flat = modes.reshape(values.shape[0], -1)[:, kept]
    power = np.stack(
        [np.bincount(ring[kept], weights=row, minlength=n // 2 + 1)[1:] / counts for row in flat]
    )
    return k_mean, power


def scored_pixels(
    true_msun_kpc2: FloatArray, *, pixel_kpc: FloatArray, pixel_radius_kpc: FloatArray
) -> NDArray[np.bool_]:
    """The pixels each statistic scores, ``(n_samples, n, n)``: centres within
    ``pixel_radius_kpc`` (per sample) of the map centre where the true Σ is positive."""
    n = true_msun_kpc2.shape[-1]
    inside = np.stack(
        [
            pixel_radii_kpc(n, pixel_kpc=float(side)) <= radius
            for side, radius in zip(pixel_kpc, pixel_radius_kpc, strict=True)
        ]
    )
    return np.asarray(inside & (true_msun_kpc2 > 0))


def substructure_maps(sigma_msun_kpc2: FloatArray, *, scored: NDArray[np.bool_]) -> FloatArray:
    """The non-axisymmetric part of ``log10 Σ`` over the scored pixels, 0 elsewhere.

    In each ring of unit pixel width about the map centre (pixel ``(i, j)`` in ring
    ``rint(r / pixel)``), the scored pixels' mean ``log10 Σ`` is subtracted. What is left is
    the clumps (satellites, a merging subcluster) and the halo's ellipticity: the structure the
    paper's "smooth" SZ and X-ray predictions miss (de Andres et al. 2023, Figs 3-4), in the
    log maps it shows, with the radial profile and its steep centre taken out. A map's
    power spectrum of it (:func:`power_spectra`) weighs a group's clumps as much as a massive
    cluster's, where the spectra of Σ itself are dominated by the few central pixels of the
    most massive clusters.
    """
    n = sigma_msun_kpc2.shape[-1]
    ring = np.rint(pixel_radii_kpc(n, pixel_kpc=1.0)).astype(np.int64)
    out = np.zeros(sigma_msun_kpc2.shape)
    for i, (image, mask) in enumerate(zip(sigma_msun_kpc2, scored, strict=True)):
        keep = mask & (image > 0)
        logs = np.log10(image[keep])
        means = np.bincount(ring[keep], weights=logs) / np.maximum(np.bincount(ring[keep]), 1)
        out[i][keep] = logs - means[ring[keep]]
    return out


def small_scale_mask(k: ArrayLike) -> NDArray[np.bool_]:
    """The upper half of the k range: rings above half the Nyquist wavenumber."""
    values = np.asarray(k, dtype=np.float64)
    return np.asarray(values > 0.5 * values.max())


def cluster_resample_counts(groups: ArrayLike, *, n_resamples: int, seed: int) -> FloatArray:
    """How often each sample's cluster is drawn in each of ``n_resamples`` bootstrap resamples.

    Each resample draws as many clusters as there are, with replacement; every line of sight of
    a drawn cluster comes along (the training bootstrap's resampling,
    :func:`darkstack.train.data.bootstrap_weights`).

    Returns
    -------
    ndarray, shape (n_resamples, n_samples)
    """
    counts = bootstrap_weights(np.asarray(groups), n_members=n_resamples, seed=seed)
    return np.asarray(counts.T, dtype=np.float64)


@dataclass(frozen=True, kw_only=True)
class SampleScores:
    """Per-sample sums of one model's maps against the truth, from which every statistic and
    its bootstrap follow (weights over samples).

    Attributes
    ----------
    pixel_count, pixel_sum, pixel_sum_squares : ndarray, shape (n_samples,)
        Over the selected pixels: their number, and the sums of ``log10(pred / true)`` and of
        its square.
    log_mass_ratio : ndarray, shape (n_samples, n_radii)
        ``log10(M_pred(<R) / M_true(<R))`` of the cylinders.
    power : ndarray, shape (n_samples, n_k)
        The predicted maps' power spectra.
    substructure_power : ndarray, shape (n_samples, n_k)
        The power spectra of the predicted maps' :func:`substructure_maps` (on the pixels
        the truth is scored on).
    """

    pixel_count: FloatArray
    pixel_sum: FloatArray
    pixel_sum_squares: FloatArray
    log_mass_ratio: FloatArray
    power: FloatArray
    substructure_power: FloatArray

    def pixel_bias_scatter(self, weights: FloatArray) -> tuple[float, float]:
        """Mean and standard deviation of the per-pixel log10 residual (dex)."""
        n = float(weights @ self.pixel_count)
        mean = float(weights @ self.pixel_sum) / n
        second = float(weights @ self.pixel_sum_squares) / n
        return mean, float(np.sqrt(max(second - mean**2, 0.0)))

    def mass_bias_scatter(self, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Mean and standard deviation over samples of ``log10(M_pred / M_true)`` per radius."""
        return weighted_mean_std(self.log_mass_ratio, weights)

    def small_scale_power_ratio(
        self,
        weights: FloatArray,
        *,
        truth: TruthScores,
        small: NDArray[np.bool_],
        substructure: bool = False,
    ) -> float:
        """The mean over the ``small`` rings of the ratio of the weighted mean spectra to the
        truth's: of Σ, or with ``substructure`` of the :func:`substructure_maps`."""
        if substructure:
            ratio = power_ratio(self.substructure_power, truth.substructure_power, weights)
        else:
            ratio = power_ratio(self.power, truth.power, weights)
        return float(np.mean(ratio[small]))


def power_ratio(power: FloatArray, truth_power: FloatArray, weights: FloatArray) -> FloatArray:
    """``<P_pred(k)> / <P_true(k)>``, means over samples with ``weights``."""
    return np.asarray((weights @ power) / (weights @ truth_power))


def weighted_mean_std(values: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Weighted mean and standard deviation over axis 0 (weights are frequency counts)."""
    total = weights.sum()
    mean = (weights @ values) / total
    variance = (weights @ (values - mean) ** 2) / total
    return np.asarray(mean), np.sqrt(variance)


@dataclass(frozen=True, kw_only=True)
class TruthScores:
    """The true maps' side of every statistic, computed once and shared by all models.

    Attributes
    ----------
    sigma_msun_kpc2 : ndarray, shape (n_samples, n, n)
        True surface densities.
    pixel_kpc : ndarray, shape (n_samples,)
        Pixel side of each map.
    scored : ndarray of bool, shape (n_samples, n, n)
        The pixels scored (:func:`scored_pixels`).
    cylinder_radius_kpc, cylinder_msun : ndarray, shape (n_samples, n_radii)
        Radii of the cylinder masses and the true masses inside them.
    k : ndarray, shape (n_k,)
        Mean wavenumber of each ring of the spectra (cycles per map side).
    power, substructure_power : ndarray, shape (n_samples, n_k)
        Spectra of the true maps and of their :func:`substructure_maps`.
    """

    sigma_msun_kpc2: FloatArray
    pixel_kpc: FloatArray
    scored: NDArray[np.bool_]
    cylinder_radius_kpc: FloatArray
    cylinder_msun: FloatArray
    k: FloatArray
    power: FloatArray
    substructure_power: FloatArray


def truth_scores(
    true_msun_kpc2: FloatArray,
    *,
    pixel_kpc: FloatArray,
    pixel_radius_kpc: FloatArray,
    cylinder_radius_kpc: FloatArray,
) -> TruthScores:
    """The truth's scored pixels, cylinder masses and spectra.

    Parameters
    ----------
    true_msun_kpc2 : ndarray, shape (n_samples, n, n)
        True surface densities.
    pixel_kpc : ndarray, shape (n_samples,)
        Pixel side of each map.
    pixel_radius_kpc : ndarray, shape (n_samples,)
        Pixels whose centres are within this radius (and whose truth is positive) are scored
        (:func:`scored_pixels`); the pixel residuals also need a positive prediction.
    cylinder_radius_kpc : ndarray, shape (n_samples, n_radii)
        Radii of the cylinder masses.
    """
    scored = scored_pixels(true_msun_kpc2, pixel_kpc=pixel_kpc, pixel_radius_kpc=pixel_radius_kpc)
    k, power = power_spectra(true_msun_kpc2)
    return TruthScores(
        sigma_msun_kpc2=true_msun_kpc2,
        pixel_kpc=pixel_kpc,
        scored=scored,
        cylinder_radius_kpc=cylinder_radius_kpc,
        cylinder_msun=cylinder_sums(
            true_msun_kpc2, pixel_kpc=pixel_kpc, radius_kpc=cylinder_radius_kpc
        ),
        k=k,
        power=power,
        substructure_power=power_spectra(substructure_maps(true_msun_kpc2, scored=scored))[1],
    )


def sample_scores(predicted_msun_kpc2: FloatArray, *, truth: TruthScores) -> SampleScores:
    """The per-sample sums of one model's predicted surface densities, ``(n_samples, n, n)``."""
    true = truth.sigma_msun_kpc2
    count = np.empty(len(true))
    sums = np.empty_like(count)
    squares = np.empty_like(count)
    for i, mask in enumerate(truth.scored):
        inside = mask & (predicted_msun_kpc2[i] > 0)
        residual = np.log10(predicted_msun_kpc2[i][inside] / true[i][inside])
        count[i], sums[i], squares[i] = residual.size, residual.sum(), (residual**2).sum()
    masses = cylinder_sums(
        predicted_msun_kpc2, pixel_kpc=truth.pixel_kpc, radius_kpc=truth.cylinder_radius_kpc
    )
    return SampleScores(
        pixel_count=count,
        pixel_sum=sums,
        pixel_sum_squares=squares,
        log_mass_ratio=np.log10(masses / truth.cylinder_msun),
        power=power_spectra(predicted_msun_kpc2)[1],
        substructure_power=power_spectra(
            substructure_maps(predicted_msun_kpc2, scored=truth.scored)
        )[1],
    )
