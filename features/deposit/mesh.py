"""Mass assignment of particles to regular 2D and 3D grids: NGP, CIC and TSC.

Every particle-to-grid map of darkstack (voxel fields, and any image or phase-space map that
bins particles) deposits through :func:`deposit`, a numba kernel over one batch of particles,
so the schemes, their conventions and their Fourier windows are written once.

Conventions
-----------
Positions are first turned into *cell coordinates* by :func:`cell_coordinates`,
``u = (x - origin) / cell_size - cell_offset``, in which node ``i`` of the grid sits at
``u = i``. ``cell_offset`` says where the nodes are:

- :data:`GRID_POINTS` (0): node ``i`` at ``origin + i * cell_size``, the convention of Pylians'
  ``MAS_library`` and of the voxel fields (a particle at ``x = 0`` gives all its CIC mass to
  voxel 0);
- :data:`PIXEL_CENTRES` (1/2): pixel ``i`` covers ``[i, i + 1) * cell_size`` with its centre at
  ``(i + 1/2) * cell_size``, the convention of images (a particle at a pixel's centre gives all
  its CIC mass to that pixel).

Schemes (Hockney & Eastwood 1988, *Computer Simulation Using Particles*, §5-3), per axis, for
a particle at cell coordinate ``u``:

- ``ngp``: weight 1 to node ``floor(u + 1/2)``;
- ``cic``: weights ``1 - f`` and ``f`` to nodes ``n = floor(u)`` and ``n + 1``, ``f = u - n``;
- ``tsc``: with ``n = floor(u + 1/2)`` and ``d = u - n``, weights ``(1/2 - d)^2 / 2``,
  ``3/4 - d^2`` and ``(1/2 + d)^2 / 2`` to nodes ``n - 1``, ``n``, ``n + 1``.

The multi-dimensional weight is the product of the axes' weights; the three schemes are the
B-splines of order 1, 2 and 3, whose Fourier window is ``prod_i sinc(pi n_i / N)^p`` with
``p`` = :func:`window_order` (what spectra deconvolve). These are the formulas of Pylians'
``MAS_library`` (``MAS_c.c``), against which ``tests/features/test_mesh.py`` checks them.

Boundaries: ``periodic=True`` wraps node indices onto the grid (a periodic box);
``periodic=False`` drops the weight that falls outside it (a bounded image, or one tile of a
larger grid whose neighbours receive the rest). Sums are accumulated in float64 in the order the
particles are given, so a deposit is deterministic to the bit.
"""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

Scheme = Literal["ngp", "cic", "tsc"]

#: Stencil width per axis of each scheme, which is also the power of its sinc window.
SCHEME_ORDER: dict[str, int] = {"ngp": 1, "cic": 2, "tsc": 3}

#: ``cell_offset`` of grids whose node ``i`` sits at ``i * cell_size`` (Pylians, voxel fields).
GRID_POINTS = 0.0
#: ``cell_offset`` of grids whose pixel ``i`` is centred at ``(i + 1/2) * cell_size`` (images).
PIXEL_CENTRES = 0.5


def window_order(scheme: str) -> int:
    """Power ``p`` of the scheme's Fourier window ``sinc(pi n / N)^p`` per axis.

    Parameters
    ----------
    scheme : {"ngp", "cic", "tsc"}
        The mass-assignment scheme.

    Raises
    ------
    ValueError
        For another name, listing the known ones.
    """
    if scheme not in SCHEME_ORDER:
        raise ValueError(f"scheme {scheme!r} is not one of {sorted(SCHEME_ORDER)}")
    return SCHEME_ORDER[scheme]


def window(x: ArrayLike, *, scheme: str) -> NDArray[np.float64]:
    """The scheme's Fourier window on one axis, ``(sin x / x)^p`` with ``x = pi n / N``.

    Parameters
    ----------
    x : array_like
        ``pi * n / N`` for the integer frequency ``n`` of an ``N``-node axis (``pi k / (2
        k_Nyquist)``).
    scheme : {"ngp", "cic", "tsc"}
        The mass-assignment scheme.
    """
    return np.sinc(np.asarray(x, dtype=np.float64) / np.pi) ** window_order(scheme)


def aliased_window_squared(x: ArrayLike, *, scheme: str) -> NDArray[np.float64]:
    """``sum_m W^2(k + 2 k_N m)`` on one axis: how the scheme aliases white (shot) noise.

    Closed forms of Jing (2005, ApJ 620, 559, eq. 20), with ``s = sin x``: 1 (NGP),
    ``1 - 2 s^2 / 3`` (CIC), ``1 - s^2 + 2 s^4 / 15`` (TSC). The shot noise of a deposited
    point set is ``P_Poisson`` times the product of this over the axes (divided by the
    squared window where the window is deconvolved).

    Parameters
    ----------
    x : array_like
        ``pi * n / N`` as for :func:`window`.
    scheme : {"ngp", "cic", "tsc"}
        The mass-assignment scheme.
    """
    s2 = np.sin(np.asarray(x, dtype=np.float64)) ** 2
    order = window_order(scheme)
    if order == 1:
        return np.ones_like(s2)
    if order == 2:
        return 1.0 - 2.0 / 3.0 * s2
    return 1.0 - s2 + 2.0 / 15.0 * s2 * s2


def cell_coordinates(
    positions: ArrayLike,
    *,
    cell_size: float,
    origin: ArrayLike = 0.0,
    cell_offset: float = GRID_POINTS,
) -> NDArray[np.float64]:
    """Positions in cell units, node ``i`` at ``i``: ``(x - origin) / cell_size - cell_offset``.

    Parameters
    ----------
    positions : array_like, shape (n, d)
        Particle positions in any length unit.
    cell_size : float
        Side of one cell, in the unit of ``positions``.
    origin : float or array_like of shape (d,)
        Position of the grid's lower edge, in the unit of ``positions``.
    cell_offset : float
        :data:`GRID_POINTS` or :data:`PIXEL_CENTRES` (see the module docstring).

    Returns
    -------
    ndarray of float64, shape (n, d), C-contiguous
    """
    if not cell_size > 0:
        raise ValueError(f"cell_size must be positive, got {cell_size}")
    cells = (np.asarray(positions, dtype=np.float64) - np.asarray(origin, dtype=np.float64)) / (
        cell_size
    )
    cells -= cell_offset
    return np.ascontiguousarray(cells)


def first_nodes(cells: ArrayLike, *, scheme: str) -> NDArray[np.int64]:
    """Lowest node index of each particle's stencil on each axis (same shape as ``cells``).

    The stencil covers ``first_nodes(...) + [0, window_order(scheme))``; this is what a tiled
    deposit buckets particles by.
    """
    values = np.asarray(cells, dtype=np.float64)
    return _first_nodes(values.ravel(), window_order(scheme)).reshape(values.shape)


def deposit(
    cells: ArrayLike,
    weights: ArrayLike | float = 1.0,
    *,
    shape: tuple[int, ...],
    scheme: str = "cic",
    periodic: bool = True,
    out: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Assign particles to a 2D or 3D grid with NGP, CIC or TSC.

    Parameters
    ----------
    cells : array_like, shape (n, d)
        Cell coordinates (:func:`cell_coordinates`), ``d = len(shape)``.
    weights : array_like of shape (n,) or float
        What each particle carries (a mass, a luminosity); a scalar for equal weights.
    shape : tuple of int
        The grid, 2 or 3 axes, in the order of the coordinates' columns.
    scheme : {"ngp", "cic", "tsc"}
        Mass-assignment scheme (see the module docstring).
    periodic : bool
        Wrap stencils across the grid's faces (True) or drop what falls outside (False).
    out : ndarray of float64, optional
        C-contiguous grid of ``shape`` to add to (a running sum over batches); a new zero grid
        otherwise.

    Returns
    -------
    ndarray of float64
        ``out``, holding the previous content plus this batch's weights.
    """
    order = window_order(scheme)
    if len(shape) not in (2, 3):
        raise ValueError(f"deposit works on 2D or 3D grids, got shape {shape}")
    points = np.ascontiguousarray(cells, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != len(shape):
        raise ValueError(
            f"cells have shape {points.shape}; expected (n, {len(shape)}) for a grid of {shape}"
        )
    values = np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    if values.size != 1 and values.size != points.shape[0]:
        raise ValueError(f"{values.size} weights for {points.shape[0]} particles")
    if out is None:
        out = np.zeros(shape, dtype=np.float64)
    elif out.shape != tuple(shape) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {shape}")
    if points.shape[0]:
        kernel = _deposit_3d if len(shape) == 3 else _deposit_2d
        kernel(points, values, out, order, periodic)
    return out


def readout(
    cells: ArrayLike,
    grid: NDArray[np.float64],
    *,
    scheme: str = "cic",
) -> NDArray[np.float64]:
    """Interpolate a periodic 3D grid at particles with NGP, CIC or TSC, the transpose of
    :func:`deposit`.

    Each particle reads the weighted sum of the nodes its stencil covers, with the same nodes
    and weights as it would deposit to: a particle-mesh code that deposits and reads out with
    one scheme exerts no self-force (Hockney & Eastwood 1988, §5-3).

    Parameters
    ----------
    cells : array_like, shape (n, 3)
        Cell coordinates (:func:`cell_coordinates`).
    grid : ndarray of float64, shape (nx, ny, nz)
        The periodic grid's values at its nodes.
    scheme : {"ngp", "cic", "tsc"}
        Interpolation scheme.

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    order = window_order(scheme)
    points = np.ascontiguousarray(cells, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or np.ndim(grid) != 3:
        raise ValueError(
            f"readout takes cells (n, 3) and a 3D grid, got {points.shape}, {np.shape(grid)}"
        )
    values = np.ascontiguousarray(grid, dtype=np.float64)
    out = np.empty(points.shape[0], dtype=np.float64)
    _readout(points, values, out, order)
    return out


@numba.njit(cache=True, inline="always")
def first_node(u: float, order: int) -> int:
    """The lowest node a stencil of ``order`` (:func:`window_order`) reaches from ``u`` (numba).

    NGP and TSC are centred on the nearest node, CIC starts at the node below.
    """
    if order == 2:
        return int(np.floor(u))
    return int(np.floor(u + 0.5)) - (order - 1) // 2


@numba.njit(cache=True)
def _first_nodes(values: NDArray[np.float64], order: int) -> NDArray[np.int64]:
    nodes = np.empty(values.shape[0], dtype=np.int64)
    for i in range(values.shape[0]):
        nodes[i] = first_node(values[i], order)
    return nodes


@numba.njit(cache=True, inline="always")
def _axis_stencil(
    u: float, size: int, order: int, periodic: bool
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """Nodes and weights of one axis (unused slots padded); off a bounded grid a node is -1."""
    first = first_node(u, order)
    if order == 1:
        weights = (1.0, 0.0, 0.0)
    elif order == 2:
        f = u - first
        weights = (1.0 - f, f, 0.0)
    else:
        d = u - (first + 1)
        weights = (0.5 * (0.5 - d) * (0.5 - d), 0.75 - d * d, 0.5 * (0.5 + d) * (0.5 + d))
    if periodic:
        # Positions inside the box need no modulo (an integer division) but at its faces.
        n0 = first if 0 <= first < size else first % size
        n1 = n0 + 1 if n0 + 1 < size else 0
        n2 = n1 + 1 if n1 + 1 < size else 0
        return (n0, n1, n2), weights
    n1, n2 = first + 1, first + 2
    return (
        (
            first if 0 <= first < size else -1,
            n1 if 0 <= n1 < size else -1,
            n2 if 0 <= n2 < size else -1,
        ),
        weights,
    )


# The body takes the order (and whether the grid is planar) as arguments but is inlined into
# the kernels with both constant, so the stencil loops unroll (twice as fast as a runtime
# order); numba caches module-level kernels on disk, not closures made by a factory.
@numba.njit(cache=True, inline="always")
def _body(
    cells: NDArray[np.float64],
    weights: NDArray[np.float64],
    out: NDArray[np.float64],
    order: int,
    periodic: bool,
    planar: bool,
) -> None:
    """Deposit into ``out`` (nx, ny, nz); a planar grid has nz = 1 and 2D cells."""
    nx, ny, nz = out.shape
    constant = weights.shape[0] == 1
    depth = 1 if planar else order
    for p in range(cells.shape[0]):
        ix, wx = _axis_stencil(cells[p, 0], nx, order, periodic)
        iy, wy = _axis_stencil(cells[p, 1], ny, order, periodic)
        if planar:
            iz, wz = (0, -1, -1), (1.0, 0.0, 0.0)
        else:
            iz, wz = _axis_stencil(cells[p, 2], nz, order, periodic)
        mass = weights[0] if constant else weights[p]
        for a in range(order):
            if ix[a] < 0:
                continue
            wa = mass * wx[a]
            for b in range(order):
                if iy[b] < 0:
                    continue
                wab = wa * wy[b]
                for c in range(depth):
                    if iz[c] >= 0:
                        out[ix[a], iy[b], iz[c]] += wab * wz[c]


@numba.njit(cache=True)
def _deposit_3d(cells, weights, out, order, periodic):
    # A constant order in each branch: the inlined body's stencil loops unroll.
    if order == 1:
        _body(cells, weights, out, 1, periodic, False)
    elif order == 2:
        _body(cells, weights, out, 2, periodic, False)
    else:
        _body(cells, weights, out, 3, periodic, False)


@numba.njit(cache=True)
def _deposit_2d(cells, weights, out, order, periodic):
    # A planar grid is a 3D grid one node deep, which every particle lands on.
    grid = out.reshape((out.shape[0], out.shape[1], 1))
    if order == 1:
        _body(cells, weights, grid, 1, periodic, True)
    elif order == 2:
        _body(cells, weights, grid, 2, periodic, True)
    else:
        _body(cells, weights, grid, 3, periodic, True)


@numba.njit(cache=True, inline="always")
def _readout_body(cells, grid, out, order):
    nx, ny, nz = grid.shape
    for p in range(cells.shape[0]):
        ix, wx = _axis_stencil(cells[p, 0], nx, order, True)
        iy, wy = _axis_stencil(cells[p, 1], ny, order, True)
        iz, wz = _axis_stencil(cells[p, 2], nz, order, True)
        total = 0.0
        for a in range(order):
            for b in range(order):
                wab = wx[a] * wy[b]
                for c in range(order):
                    total += wab * wz[c] * grid[ix[a], iy[b], iz[c]]
        out[p] = total


@numba.njit(cache=True)
def _readout(cells, grid, out, order):
    # A constant order in each branch, as in _deposit_3d: the stencil loops unroll.
    if order == 1:
        _readout_body(cells, grid, out, 1)
    elif order == 2:
        _readout_body(cells, grid, out, 2)
    else:
        _readout_body(cells, grid, out, 3)
