"""Per-cluster maps of the three views of de Andres et al. (2023): Compton-y, X-ray, stars.

Pure per-cluster kernels on physical-unit particle arrays (the reader converts TNG's fields),
deposited with the shared SPH projection (:func:`darkstack.features.deposit.sph.sph_image`):

- thermal SZ: each gas particle carries sigma_T / (m_e c^2) N_e k T (an area), so the
  image summed per pixel area is y = sigma_T / (m_e c^2) int n_e k T dl;
- X-ray: each gas particle carries its luminosity n_e n_H Lambda(T, Z) m / rho (erg/s), so
  the image per pixel area is S_X in erg s^-1 kpc^-2. Given the gas metallicity, Lambda is
  the Sutherland & Dopita (1993) CIE cooling function with metal lines
  (:mod:`darkstack.features.xray_cooling`); without it, thermal bremsstrahlung of a fully
  ionised H + He plasma (Rybicki & Lightman 1979 eq. 5.15b, mean Gaunt factor 1.2), the
  closed form of the analytic beta-model checks. Star-forming gas is left out, as in the
  paper's code;
- stellar mass: each star particle carries its mass; the image is Msun kpc^-2.

The maps are projections along the z axis of the given (already rotated) positions, through
+-``depth_kpc`` of the centre.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.constants import (
    BOLTZMANN_ERG_PER_K,
    ELECTRON_REST_ENERGY_ERG,
    HYDROGEN_MASS_FRACTION,
    KPC_CM,
    MSUN_G,
    PROTON_MASS_G,
    THOMSON_CROSS_SECTION_CM2,
)
from darkstack.features.deposit.sph import neighbour_distance_kpc, sph_image
from darkstack.features.xray_cooling import sd93_cooling_erg_cm3_s

FloatArray = NDArray[np.float64]

#: Free-free emissivity coefficient (erg s^-1 cm^3 K^-1/2) and mean Gaunt factor.
_BREMSSTRAHLUNG_COEFFICIENT = 1.42e-27
_GAUNT_FACTOR = 1.2
#: Helium nuclei per hydrogen nucleus of TNG's primordial mix.
_HE_PER_H = (1.0 - HYDROGEN_MASS_FRACTION) / (4.0 * HYDROGEN_MASS_FRACTION)
#: Neighbours setting a particle's smoothing length, as TNG's StellarHsml.
N_NEIGHBOURS = 32


def bremsstrahlung_cooling_erg_cm3_s(temperature_k: ArrayLike) -> FloatArray:
    """Lambda(T) with emissivity = n_e n_H Lambda: free-free of H+ and He++ (Z^2 = 4)."""
    t = np.asarray(temperature_k, dtype=np.float64)
    return _BREMSSTRAHLUNG_COEFFICIENT * _GAUNT_FACTOR * np.sqrt(t) * (1.0 + 4.0 * _HE_PER_H)


def gas_weights(
    *,
    mass_msun: ArrayLike,
    density_msun_per_kpc3: ArrayLike,
    temperature_k: ArrayLike,
    electron_abundance: ArrayLike,
    metallicity: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Per-particle Compton-y area (kpc^2) and bolometric luminosity (erg/s).

    ``metallicity`` (metal mass fraction) selects the SD93 cooling function; None, free-free.
    """
    mass_g = np.asarray(mass_msun, dtype=np.float64) * MSUN_G
    rho_cgs = np.asarray(density_msun_per_kpc3, dtype=np.float64) * MSUN_G / KPC_CM**3
    t = np.asarray(temperature_k, dtype=np.float64)
    x_e = np.asarray(electron_abundance, dtype=np.float64)
    n_h_per_g = HYDROGEN_MASS_FRACTION / PROTON_MASS_G
    electrons = x_e * n_h_per_g * mass_g
    y_area_cm2 = (
        THOMSON_CROSS_SECTION_CM2 / ELECTRON_REST_ENERGY_ERG * electrons * BOLTZMANN_ERG_PER_K * t
    )
    n_h = n_h_per_g * rho_cgs
    cooling = (
        bremsstrahlung_cooling_erg_cm3_s(t)
        if metallicity is None
        else sd93_cooling_erg_cm3_s(t, metallicity)
    )
    luminosity = x_e * n_h * n_h * cooling * mass_g / rho_cgs
    return y_area_cm2 / KPC_CM**2, luminosity


def cluster_maps(
    *,
    gas_position_kpc: ArrayLike,
    gas_mass_msun: ArrayLike,
    gas_density_msun_per_kpc3: ArrayLike,
    gas_temperature_k: ArrayLike,
    gas_electron_abundance: ArrayLike,
    gas_sfr_msun_per_yr: ArrayLike,
    star_position_kpc: ArrayLike,
    star_mass_msun: ArrayLike,
    n_pixels: int,
    half_width_kpc: float,
    depth_kpc: float,
    gas_smoothing_length_kpc: ArrayLike | None = None,
    star_smoothing_length_kpc: ArrayLike | None = None,
    gas_metallicity: ArrayLike | None = None,
) -> dict[str, FloatArray]:
    """Compton-y, S_X (erg s^-1 kpc^-2) and Sigma_* (Msun kpc^-2) maps, z-projected.

    Positions are relative to the map centre. Smoothing lengths default to the distance to the
    32nd neighbour among the particles inside the depth; pass them (computed once in 3D) when
    one cluster is projected along many lines of sight; ``gas_metallicity`` (metal mass
    fraction) selects the SD93 X-ray cooling function (free-free without it). Returns
    ``{"tsz_y", "xray_bol", "stellar_mass"}``, each (n_pixels, n_pixels), rows along +y.
    """
    pixel = 2.0 * half_width_kpc / n_pixels
    gas = np.asarray(gas_position_kpc, dtype=np.float64)
    hot = (np.abs(gas[:, 2]) <= depth_kpc) & (np.asarray(gas_sfr_msun_per_yr) <= 0.0)
    y_area, luminosity = gas_weights(
        mass_msun=np.asarray(gas_mass_msun)[hot],
        density_msun_per_kpc3=np.asarray(gas_density_msun_per_kpc3)[hot],
        temperature_k=np.asarray(gas_temperature_k)[hot],
        electron_abundance=np.asarray(gas_electron_abundance)[hot],
        metallicity=None if gas_metallicity is None else np.asarray(gas_metallicity)[hot],
    )
    gas_images = _project(
        gas[hot],
        np.column_stack((y_area, luminosity)),
        n_pixels,
        pixel,
        None if gas_smoothing_length_kpc is None else np.asarray(gas_smoothing_length_kpc)[hot],
    )
    stars = np.asarray(star_position_kpc, dtype=np.float64)
    near = np.abs(stars[:, 2]) <= depth_kpc
    stellar = _project(
        stars[near],
        np.asarray(star_mass_msun, dtype=np.float64)[near],
        n_pixels,
        pixel,
        None if star_smoothing_length_kpc is None else np.asarray(star_smoothing_length_kpc)[near],
    )
    area = pixel**2
    return {
        "tsz_y": gas_images[0] / area,
        "xray_bol": gas_images[1] / area,
        "stellar_mass": stellar / area,
    }


def surface_density_map(
    *,
    position_kpc: ArrayLike,
    mass_msun: ArrayLike,
    n_pixels: int,
    half_width_kpc: float,
    depth_kpc: float,
    smoothing_length_kpc: ArrayLike | None = None,
) -> FloatArray:
    """Sigma (Msun kpc^-2) of particles within +-``depth_kpc`` along z, SPH-deposited.

    The total-mass target: dark matter, gas and stars together, each with its own smoothing
    lengths (by default the 32nd-neighbour distance among the particles inside the depth).
    """
    pixel = 2.0 * half_width_kpc / n_pixels
    position = np.asarray(position_kpc, dtype=np.float64)
    near = np.abs(position[:, 2]) <= depth_kpc
    h = None if smoothing_length_kpc is None else np.asarray(smoothing_length_kpc)[near]
    mass = np.asarray(mass_msun, dtype=np.float64)[near]
    return _project(position[near], mass, n_pixels, pixel, h) / pixel**2


def smoothing_lengths_kpc(position_kpc: ArrayLike) -> FloatArray:
    """Each particle's kernel support: the distance to its 32nd neighbour (0 for < 2 particles)."""
    position = np.asarray(position_kpc, dtype=np.float64)
    if len(position) < 2:
        return np.zeros(len(position))
    return neighbour_distance_kpc(position_kpc=position, n_neighbours=N_NEIGHBOURS)


def _project(
    position: FloatArray,
    weight: FloatArray,
    n_pixels: int,
    pixel: float,
    smoothing_length_kpc: FloatArray | None = None,
) -> FloatArray:
    shape = (n_pixels, n_pixels) if weight.ndim == 1 else (weight.shape[1], n_pixels, n_pixels)
    if len(position) < 2:
        return np.zeros(shape)
    h = smoothing_length_kpc
    if h is None:
        h = neighbour_distance_kpc(position_kpc=position, n_neighbours=N_NEIGHBOURS)
    return sph_image(
        position_kpc=position[:, :2],
        weight=weight,
        smoothing_length_kpc=h,
        n_pixels=n_pixels,
        pixel_kpc=pixel,
    )


__all__ = [
    "bremsstrahlung_cooling_erg_cm3_s",
    "cluster_maps",
    "gas_weights",
    "smoothing_lengths_kpc",
    "surface_density_map",
]
