"""Mass assignment (features/deposit/mesh.py): closed-form weights, Pylians, windows, properties."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from darkstack.features.deposit.mesh import (
    GRID_POINTS,
    PIXEL_CENTRES,
    aliased_window_squared,
    cell_coordinates,
    deposit,
    first_nodes,
    readout,
    window,
)

SCHEMES = ("ngp", "cic", "tsc")


def test_cic_of_one_particle_is_the_trilinear_split() -> None:
    out = deposit(np.array([[1.25, 2.5, 3.75]]), 2.0, shape=(8, 8, 8), scheme="cic")
    expected = np.zeros((8, 8, 8))
    for i, wx in ((1, 0.75), (2, 0.25)):
        for j, wy in ((2, 0.5), (3, 0.5)):
            for k, wz in ((3, 0.25), (4, 0.75)):
                expected[i, j, k] = 2.0 * wx * wy * wz
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("u", "nodes"),
    [
        # TSC on a node: 1/8, 3/4, 1/8 (Hockney & Eastwood 1988, eq. 5-82).
        (3.0, {2: 0.125, 3: 0.75, 4: 0.125}),
        # Half-way between nodes: 1/2 to each, nothing to the third.
        (3.5, {3: 0.5, 4: 0.5}),
        (3.25, {2: 0.03125, 3: 0.6875, 4: 0.28125}),
    ],
)
def test_tsc_weights_on_one_axis(u: float, nodes: dict[int, float]) -> None:
    out = deposit(np.array([[u, 0.0]]), shape=(8, 1), scheme="tsc")[:, 0]
    expected = np.zeros(8)
    for node, weight in nodes.items():
        expected[node] = weight
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)


def test_ngp_rounds_half_up_as_pylians() -> None:
    cells = np.array([[2.49, 0.0], [2.5, 0.0], [7.6, 0.0]])
    out = deposit(cells, shape=(8, 1), scheme="ngp")[:, 0]
    np.testing.assert_array_equal(out, [1, 0, 1, 1, 0, 0, 0, 0])  # 7.6 wraps to node 0


def test_periodic_wraps_and_bounded_drops_what_leaves_the_grid() -> None:
    cells = np.array([[7.75, 0.0, 0.0]])
    wrapped = deposit(cells, shape=(8, 8, 8), scheme="cic", periodic=True)
    bounded = deposit(cells, shape=(8, 8, 8), scheme="cic", periodic=False)
    assert wrapped[7, 0, 0] == 0.25 and wrapped[0, 0, 0] == 0.75
    assert bounded[7, 0, 0] == 0.25 and bounded.sum() == 0.25


def test_pixel_centres_and_grid_points_conventions() -> None:
    positions = np.array([[2.5, 0.5]])  # the centre of pixel (2, 0) of unit pixels
    centred = deposit(
        cell_coordinates(positions, cell_size=1.0, cell_offset=PIXEL_CENTRES),
        shape=(4, 4),
        scheme="cic",
    )
    nodes = deposit(
        cell_coordinates(positions, cell_size=1.0, cell_offset=GRID_POINTS),
        shape=(4, 4),
        scheme="cic",
    )
    assert centred[2, 0] == 1.0 and centred.sum() == 1.0
    np.testing.assert_array_equal(nodes[2:4, 0:2], [[0.25, 0.25], [0.25, 0.25]])


def test_first_nodes_bound_the_stencil() -> None:
    cells = np.array([[3.2], [3.7]])
    np.testing.assert_array_equal(first_nodes(cells, scheme="ngp")[:, 0], [3, 4])
    np.testing.assert_array_equal(first_nodes(cells, scheme="cic")[:, 0], [3, 3])
    np.testing.assert_array_equal(first_nodes(cells, scheme="tsc")[:, 0], [2, 3])


def test_bad_input_is_one_line() -> None:
    with pytest.raises(ValueError, match="expected \\(n, 3\\)"):
        deposit(np.zeros((4, 2)), shape=(4, 4, 4))
    with pytest.raises(ValueError, match="scheme 'pcs' is not one of"):
        deposit(np.zeros((4, 3)), shape=(4, 4, 4), scheme="pcs")
    with pytest.raises(ValueError, match="3 weights for 4 particles"):
        deposit(np.zeros((4, 3)), np.ones(3), shape=(4, 4, 4))


particles = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.tuples(*[st.floats(-20.0, 30.0, allow_nan=False)] * 3), min_size=n, max_size=n),
        st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=n, max_size=n),
    )
)


@settings(max_examples=40, deadline=None)
@given(data=particles, scheme=st.sampled_from(SCHEMES), shift=st.integers(-9, 9))
def test_periodic_deposit_conserves_weight_and_commutes_with_translation(
    data: tuple[list[tuple[float, float, float]], list[float]], scheme: str, shift: int
) -> None:
    cells, weights = np.array(data[0]), np.array(data[1])
    out = deposit(cells, weights, shape=(6, 5, 7), scheme=scheme)
    np.testing.assert_allclose(out.sum(), weights.sum(), rtol=1e-12, atol=1e-12)
    moved = deposit(cells + np.array([shift, 0, 0]), weights, shape=(6, 5, 7), scheme=scheme)
    np.testing.assert_allclose(moved, np.roll(out, shift, axis=0), rtol=1e-12, atol=1e-12)
    # Deposits add: two batches into one grid equal one batch.
    half = len(weights) // 2
    batches = deposit(cells[:half], weights[:half], shape=(6, 5, 7), scheme=scheme)
    deposit(cells[half:], weights[half:], shape=(6, 5, 7), scheme=scheme, out=batches)
    np.testing.assert_allclose(batches, out, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(data=particles, scheme=st.sampled_from(SCHEMES))
def test_two_dimensional_deposit_is_the_projection_of_the_three_dimensional_one(
    data: tuple[list[tuple[float, float, float]], list[float]], scheme: str
) -> None:
    cells, weights = np.array(data[0]), np.array(data[1])
    volume = deposit(cells, weights, shape=(6, 5, 7), scheme=scheme)
    image = deposit(cells[:, :2], weights, shape=(6, 5), scheme=scheme)
    np.testing.assert_allclose(image, volume.sum(axis=2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_jing_aliasing_sums_equal_the_brute_force_sum_over_images(scheme: str) -> None:
    x = np.linspace(0.05, np.pi / 2, 9)
    images = np.arange(-4000, 4001)
    brute = np.array([np.sum(window(xi + np.pi * images, scheme=scheme) ** 2) for xi in x])
    # NGP's sinc^2 tail decays as 1/m^2: 4000 images leave ~1e-4 of it out.
    tolerance = 2e-4 if scheme == "ngp" else 1e-12
    np.testing.assert_allclose(brute, aliased_window_squared(x, scheme=scheme), atol=tolerance)


def _clustered_particles(rng: np.random.Generator, n: int, box: float) -> np.ndarray:
    """Uniform particles plus dense blobs, some straddling the box's faces."""
    uniform = rng.uniform(0.0, box, (n // 2, 3))
    centres = rng.uniform(0.0, box, (40, 3))
    centres[:8] = rng.uniform(-2.0, 2.0, (8, 3)) % box  # blobs at the faces and corners
    blobs = centres[rng.integers(0, 40, n - n // 2)] + rng.normal(0.0, 1.5, (n - n // 2, 3))
    return np.concatenate([uniform, blobs % box])


@pytest.mark.parametrize("scheme", ["cic", "tsc"])
def test_deposit_equals_pylians_mas_library(mas_library: ModuleType, scheme: str) -> None:
    """CIC and TSC of 128^3 equal ``MAS_library.MA`` (float32, as dm2gal used it) to 1e-5 of
    the mean voxel.

    The box is 128 units so that Pylians' float32 ``pos * dims / BoxSize`` is exact: both get
    the same float32 positions, and what is compared is the assignment. The particles are
    uniform: ``MA`` accumulates in float32, whose rounding in a dense voxel alone exceeds the
    tolerance (the clustered test below uses Pylians' float64 accumulation). NGP is left out:
    Pylians rounds ``u + 1/2`` in float32, which moves a whole particle to the next node for
    ``u`` within float32 rounding of a half-integer.
    """
    rng = np.random.default_rng(7)
    n, grid = 2_000_000, 128
    positions = rng.uniform(0.0, grid, (n, 3)).astype(np.float32)
    weights = rng.uniform(0.5, 2.0, n).astype(np.float32)
    theirs = np.zeros((grid,) * 3, dtype=np.float32)
    mas_library.MA(positions, theirs, float(grid), scheme.upper(), W=weights, verbose=False)
    ours = deposit(
        cell_coordinates(positions, cell_size=1.0), weights, shape=(grid,) * 3, scheme=scheme
    )
    assert np.max(np.abs(ours - theirs)) <= 1e-5 * ours.mean()


def test_cic_of_clustered_particles_equals_pylians_double_precision_cic(
    mas_library: ModuleType,
) -> None:
    """Blobs up to ~10^3 particles per voxel, some across the box's faces, against CICW_d."""
    rng = np.random.default_rng(8)
    n, grid = 3_000_000, 128
    positions = _clustered_particles(rng, n, float(grid)).astype(np.float32)
    weights = rng.uniform(0.5, 2.0, n).astype(np.float32)
    theirs = np.zeros((grid,) * 3, dtype=np.float64)
    mas_library.CICW_d(positions, theirs, float(grid), weights)
    ours = deposit(cell_coordinates(positions, cell_size=1.0), weights, shape=(grid,) * 3)
    assert theirs.max() > 500 * theirs.mean()
    assert np.max(np.abs(ours - theirs)) <= 1e-5 * ours.mean()
    np.testing.assert_allclose(ours.sum(), weights.astype(np.float64).sum(), rtol=1e-12)


@pytest.mark.parametrize("scheme", ["ngp", "cic", "tsc"])
def test_readout_is_the_transpose_of_deposit(scheme: str) -> None:
    # <deposit(c, w), g> = <w, readout(c, g)> for any weights and grid: the pair exerts no
    # self-force in a particle-mesh code.
    rng = np.random.default_rng(3)
    grid = rng.random((8, 6, 10))
    cells = rng.uniform(-4, 14, (200, 3))
    weights = rng.random(200)
    deposited = deposit(cells, weights, shape=grid.shape, scheme=scheme)
    assert np.sum(deposited * grid) == pytest.approx(
        np.sum(weights * readout(cells, grid, scheme=scheme))
    )


def test_cic_and_tsc_readouts_reproduce_linear_fields_and_constants() -> None:
    # B-splines of order >= 2 interpolate a linear function exactly away from the wrap, and
    # every scheme's weights sum to one.
    n = 16
    ramp = np.broadcast_to(np.arange(n, dtype=float)[:, None, None], (n, n, n)).copy()
    cells = np.column_stack([np.linspace(2.0, 12.0, 41), np.full(41, 3.3), np.full(41, 7.9)])
    np.testing.assert_allclose(readout(cells, ramp, scheme="cic"), cells[:, 0], rtol=1e-12)
    np.testing.assert_allclose(readout(cells, ramp, scheme="tsc"), cells[:, 0], rtol=1e-12)
    for scheme in ("ngp", "cic", "tsc"):
        np.testing.assert_allclose(readout(cells, np.full((n, n, n), 2.5), scheme=scheme), 2.5)
