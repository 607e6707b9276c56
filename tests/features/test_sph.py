"""Adaptive SPH smoothing against known values: lattice distances, kernel moments, flat fields."""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkstack.features.deposit.sph import (
    CUBIC_SPLINE_SIGMA_PER_SUPPORT,
    neighbour_distance_kpc,
    pixel_gaussian_transfer,
    sph_image,
)


def _cubic_lattice(n_side: int, spacing: float) -> np.ndarray:
    axis = np.arange(n_side) * spacing
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def _support_for_sigma(sigma_px: float, pixel_kpc: float) -> float:
    return sigma_px * pixel_kpc / CUBIC_SPLINE_SIGMA_PER_SUPPORT


# --------------------------------------------------------------------------- neighbours


@pytest.mark.parametrize(
    ("k", "distance_in_spacings"),
    # Shells of a simple cubic lattice: 6 at 1, 12 at sqrt 2, 8 at sqrt 3, 6 at 2 spacings.
    [(6, 1.0), (18, math.sqrt(2.0)), (26, math.sqrt(3.0)), (32, 2.0)],
)
def test_kth_neighbour_on_a_cubic_lattice(k: int, distance_in_spacings: float) -> None:
    spacing = 0.7
    position = _cubic_lattice(9, spacing)
    index = np.rint(position / spacing).astype(int)
    interior = np.all((index >= 2) & (index <= 6), axis=1)
    distance = neighbour_distance_kpc(position_kpc=position, n_neighbours=k)
    np.testing.assert_allclose(distance[interior], distance_in_spacings * spacing, rtol=1e-12)
    threaded = neighbour_distance_kpc(position_kpc=position, n_neighbours=k, workers=2)
    np.testing.assert_array_equal(threaded, distance)


def test_with_fewer_than_k_others_the_farthest_one_counts() -> None:
    position = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    distance = neighbour_distance_kpc(position_kpc=position, n_neighbours=32)
    np.testing.assert_allclose(distance, [3.0, math.sqrt(10.0), math.sqrt(10.0)])


def test_lone_and_bad_particles_are_refused() -> None:
    assert neighbour_distance_kpc(position_kpc=np.zeros((0, 3)), n_neighbours=32).size == 0
    with pytest.raises(ValueError, match="smoothing_length_kpc"):
        neighbour_distance_kpc(position_kpc=np.zeros((1, 3)), n_neighbours=32)
    with pytest.raises(ValueError, match="finite"):
        neighbour_distance_kpc(position_kpc=[[0.0, np.nan, 0.0], [1.0, 0.0, 0.0]], n_neighbours=1)
    with pytest.raises(ValueError, match="n_neighbours"):
        neighbour_distance_kpc(position_kpc=np.zeros((2, 3)), n_neighbours=0)


# --------------------------------------------------------------------------- images


def test_a_single_kernel_integrates_to_its_weight_with_the_kernel_variance() -> None:
    n, pixel = 64, 0.5
    # sigma = 4 px is one of the kernel levels 0.5 x 2^(j/2), so no two widths are mixed.
    sigma = 4.0
    image = sph_image(
        position_kpc=[[0.0, 0.0]],
        weight=[3.0],
        smoothing_length_kpc=[_support_for_sigma(sigma, pixel)],
        n_pixels=n,
        pixel_kpc=pixel,
    )
    assert image.shape == (n, n)
    assert image.sum() == pytest.approx(3.0, rel=1e-9)
    centre = np.arange(n) + 0.5 - n / 2
    var_x = np.sum(image.sum(axis=0) * centre**2) / image.sum()
    var_y = np.sum(image.sum(axis=1) * centre**2) / image.sum()
    # A Gaussian of variance sigma^2 integrated over unit pixels has variance sigma^2 + 1/12.
    assert var_x == pytest.approx(sigma**2 + 1.0 / 12.0, rel=1e-3)
    assert var_y == pytest.approx(sigma**2 + 1.0 / 12.0, rel=1e-3)


def test_a_point_source_fills_the_pixel_it_lies_in() -> None:
    # x in [0, 1) px and y in [-2, -1) px: column n/2, row n/2 - 2 (rows follow +y).
    image = sph_image(
        position_kpc=[[0.25, -0.75]],
        weight=[2.0],
        smoothing_length_kpc=[0.0],
        n_pixels=16,
        pixel_kpc=0.5,
    )
    expected = np.zeros((16, 16))
    expected[6, 8] = 2.0
    np.testing.assert_allclose(image, expected, atol=1e-12)


def test_a_uniform_lattice_smooths_to_a_flat_image() -> None:
    n, pixel, spacing_px, sigma = 64, 1.0, 1.5, 4.0
    # The lattice fills the canvas (the image and its 4 x n/8 = 32 px padding), so every pixel
    # sees a complete neighbourhood; its offset puts particles anywhere within pixels.
    axis = np.arange(-n / 2 - 32, n / 2 + 32, spacing_px) + 0.37
    x, y = np.meshgrid(axis, axis)
    position = np.c_[x.ravel(), y.ravel()] * pixel
    image = sph_image(
        position_kpc=position,
        weight=np.full((len(position), 2), [1.0, 5.0]),
        smoothing_length_kpc=np.full(len(position), _support_for_sigma(sigma, pixel)),
        n_pixels=n,
        pixel_kpc=pixel,
    )
    # The deposit repeats every 3 px: a Gaussian leaves a ripple exp(-2 pi^2 sigma^2 / 3^2) ~ 1e-15,
    # its truncation at 5 sigma ~1e-8.
    np.testing.assert_allclose(image[0], 1.0 / spacing_px**2, rtol=1e-7)
    np.testing.assert_allclose(image[1], 5.0 / spacing_px**2, rtol=1e-7)


def test_channels_are_independent_and_linear() -> None:
    rng = np.random.default_rng(0)
    position = rng.normal(0.0, 3.0, (200, 2))
    smoothing = rng.uniform(0.0, 4.0, 200)
    weight = rng.uniform(0.0, 1.0, (200, 3))
    common = {"position_kpc": position, "smoothing_length_kpc": smoothing}
    stacked = sph_image(**common, weight=weight, n_pixels=32, pixel_kpc=0.5)
    for channel in range(3):
        single = sph_image(**common, weight=weight[:, channel], n_pixels=32, pixel_kpc=0.5)
        np.testing.assert_allclose(stacked[channel], single, rtol=1e-12, atol=1e-15)


def test_light_from_outside_the_image_shines_in_without_wrapping_around() -> None:
    n, pixel, sigma = 32, 1.0, 4.0
    common = {"n_pixels": n, "pixel_kpc": pixel, "max_sigma_px": 4.0}
    h = [_support_for_sigma(sigma, pixel)]
    # 2 sigma beyond the right edge: ndtr(-2) = 2.3 % of its weight falls into the image,
    # all of it in the right-hand columns.
    image = sph_image(
        position_kpc=[[n / 2 + 2 * sigma, 0.0]], weight=[1.0], smoothing_length_kpc=h, **common
    )
    assert image.sum() == pytest.approx(0.02275, rel=0.01)
    assert image[:, : n // 2].sum() < 1e-12
    # Beyond the 4 sigma_max padding, nothing arrives.
    far = sph_image(
        position_kpc=[[n / 2 + 17, 0.0]], weight=[1.0], smoothing_length_kpc=h, **common
    )
    assert far.sum() == 0.0


def test_bad_images_are_refused() -> None:
    with pytest.raises(ValueError, match="position_kpc"):
        sph_image(
            position_kpc=[[0, 0, 0]],
            weight=[1.0],
            smoothing_length_kpc=[1.0],
            n_pixels=8,
            pixel_kpc=1.0,
        )
    with pytest.raises(ValueError, match=">= 0"):
        sph_image(
            position_kpc=[[0, 0]],
            weight=[1.0],
            smoothing_length_kpc=[-1.0],
            n_pixels=8,
            pixel_kpc=1.0,
        )
    with pytest.raises(ValueError, match="non-finite"):
        sph_image(
            position_kpc=[[0, 0]],
            weight=[np.inf],
            smoothing_length_kpc=[1.0],
            n_pixels=8,
            pixel_kpc=1.0,
        )
    with pytest.raises(ValueError, match="max_sigma_px"):
        sph_image(
            position_kpc=[[0, 0]],
            weight=[1.0],
            smoothing_length_kpc=[1.0],
            n_pixels=8,
            pixel_kpc=1.0,
            max_sigma_px=0.5,
        )


def test_a_zero_width_transfer_is_the_identity() -> None:
    np.testing.assert_array_equal(pixel_gaussian_transfer(sigma_px=0.0, size=8), np.ones((8, 5)))
