"""The pure per-chunk kernels of a tiled deposit: tiles, and particles bucketed by tile.

A grid of ``grid³`` voxels is cut into cubic *tiles* of ``tile³`` voxels, each a whole number
of zarr *chunks*. One task deposits one tile, so its memory is a tile's, whatever the grid.

:func:`bucket` sorts one batch of particles (a piece of a snapshot chunk) by the tiles their
stencils reach. A particle within a stencil's reach of a tile's face is also given to the
neighbouring tile, the tile's *ghost cells* (its stencil's nodes across the face), with its
coordinate shifted into that tile's frame: by the tile's origin, and by a whole box where the
stencil wraps around the periodic box. Each tile then deposits its bucket with a bounded
:func:`~darkstack.features.deposit.mesh.deposit` that keeps only the nodes inside it, so no
tile writes into another and no ghost exchange is needed.

Order, and so bytes: within a bucket, particles keep their order in the piece (a stable
counting sort, two passes that read the piece in sequence). Shifting a float64 coordinate by
an integer is exact, so every voxel receives the same contributions in the same order
whatever the tile size: a tiled deposit equals the one-tile deposit bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from darkstack.features.deposit.mesh import first_node, window_order


@dataclass(frozen=True)
class Tiling:
    """How a cubic grid is cut into tiles and zarr chunks.

    Attributes
    ----------
    grid : int
        Voxels per side.
    tile : int
        Voxels per tile side (divides ``grid``).
    chunk : int
        Voxels per zarr chunk side (divides ``tile``).
    """

    grid: int
    tile: int
    chunk: int

    def __post_init__(self) -> None:
        if self.grid % self.tile or self.tile % self.chunk:
            raise ValueError(
                f"tile {self.tile} must divide grid {self.grid} and be a multiple of "
                f"chunk {self.chunk}"
            )

    @property
    def per_side(self) -> int:
        """Tiles per side."""
        return self.grid // self.tile

    @property
    def n_tiles(self) -> int:
        """Number of tiles."""
        return self.per_side**3

    def tile_index(self, tile_id: int) -> tuple[int, int, int]:
        """(i, j, k) of a tile, ids running with k fastest."""
        i, rest = divmod(tile_id, self.per_side**2)
        j, k = divmod(rest, self.per_side)
        return i, j, k

    def tile_region(self, tile_id: int) -> tuple[slice, slice, slice]:
        """The voxels of a tile in the grid."""
        return tuple(  # type: ignore[return-value]
            slice(index * self.tile, (index + 1) * self.tile) for index in self.tile_index(tile_id)
        )


@dataclass(frozen=True)
class Buckets:
    """One batch of particles sorted by tile, in each tile's frame.

    Attributes
    ----------
    cells : ndarray of float64, shape (m, 3)
        Cell coordinates relative to the receiving tile's first voxel.
    weights : ndarray of float64, shape (m,) or (1,)
        Their weights (one value when all are equal).
    offsets : ndarray of int64, shape (n_tiles + 1,)
        Rows ``offsets[t]:offsets[t + 1]`` go to tile ``t``.
    """

    cells: NDArray[np.float64]
    weights: NDArray[np.float64]
    offsets: NDArray[np.int64]


def bucket(
    cells: NDArray[np.float64],
    weights: NDArray[np.float64],
    *,
    tiling: Tiling,
    scheme: str,
) -> Buckets:
    """Sort particles (cell coordinates of the whole grid) into the tiles their stencils reach.

    Parameters
    ----------
    cells : ndarray of float64, shape (n, 3)
        Cell coordinates in the grid (node ``i`` at ``i``); any value, the box is periodic.
    weights : ndarray of float64, shape (n,) or (1,)
        Particle weights, or one weight for all.
    tiling : Tiling
        The grid's tiles and chunks.
    scheme : str
        Mass-assignment scheme, which sets the stencil's reach.

    Returns
    -------
    Buckets
    """
    cells = np.ascontiguousarray(cells, dtype=np.float64).reshape(-1, 3)
    weights = np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    order = window_order(scheme)
    per_row = weights.size > 1
    out_cells, out_weights, offsets = _bucket(
        cells, weights if per_row else np.zeros(0), order, tiling.grid, tiling.tile
    )
    return Buckets(cells=out_cells, weights=out_weights if per_row else weights, offsets=offsets)


@numba.njit(cache=True, inline="always")
def _axis_tiles(
    u: float, order: int, grid: int, home_of: NDArray[np.int64], reach_of: NDArray[np.int64]
) -> tuple[int, int, int]:
    """(home tile, tiles reached (1 or 2), whole boxes to shift by) of one coordinate."""
    first = first_node(u, order)
    wraps = 0
    if not 0 <= first < grid:  # integer division is slow: only at the box's faces
        wraps = first // grid
        first -= wraps * grid
    return home_of[first], reach_of[first], wraps


@numba.njit(cache=True)
def _bucket(
    cells: NDArray[np.float64],
    weights: NDArray[np.float64],
    order: int,
    grid: int,
    tile: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    n_tiles = (grid // tile) ** 3
    # Per node: its tile, and how many tiles its stencil reaches (tables: no division per row).
    nodes = np.arange(grid)
    home_of = nodes // tile
    reach_of = np.where(nodes % tile + order - 1 >= tile, 2, 1)
    # A stable counting sort: count the copies each tile receives, then place them, in row
    # order both times (the same walk twice).
    counts = np.zeros(n_tiles + 1, dtype=np.int64)
    none = np.empty((0, 3), dtype=np.float64)
    tables = (home_of, reach_of)
    _walk(cells, weights, order, grid, tile, tables, counts[1:], none, none[:, 0], False)
    for t in range(n_tiles):
        counts[t + 1] += counts[t]
    out_cells = np.empty((counts[n_tiles], 3), dtype=np.float64)
    out_weights = np.empty(counts[n_tiles] if weights.shape[0] else 0, dtype=np.float64)
    cursor = counts[:n_tiles].copy()
    _walk(cells, weights, order, grid, tile, tables, cursor, out_cells, out_weights, True)
    return out_cells, out_weights, counts


@numba.njit(cache=True)
def _walk(
    cells: NDArray[np.float64],
    weights: NDArray[np.float64],
    order: int,
    grid: int,
    tile: int,
    tables: tuple[NDArray[np.int64], NDArray[np.int64]],
    cursor: NDArray[np.int64],
    out_cells: NDArray[np.float64],
    out_weights: NDArray[np.float64],
    place: bool,
) -> None:
    """Visit every copy of every row, in order: count it in ``cursor`` or write it there."""
    per_side = grid // tile
    home_of, reach_of = tables
    for p in range(cells.shape[0]):
        fx = first_node(cells[p, 0], order)
        fy = first_node(cells[p, 1], order)
        fz = first_node(cells[p, 2], order)
        if 0 <= fx < grid and 0 <= fy < grid and 0 <= fz < grid:
            # Inside the box (most rows) two table lookups per axis do: 2.5x faster than
            # _axis_tiles, whose wrap branch and tuple keep numba from optimising the loop.
            hx, nx, sx = home_of[fx], reach_of[fx], 0
            hy, ny, sy = home_of[fy], reach_of[fy], 0
            hz, nz, sz = home_of[fz], reach_of[fz], 0
        else:
            hx, nx, sx = _axis_tiles(cells[p, 0], order, grid, home_of, reach_of)
            hy, ny, sy = _axis_tiles(cells[p, 1], order, grid, home_of, reach_of)
            hz, nz, sz = _axis_tiles(cells[p, 2], order, grid, home_of, reach_of)
        for a in range(nx):
            # Exact: whole boxes and tiles are integers, and float64 shifts by them are exact.
            ux = cells[p, 0] - sx * grid - (hx + a) * tile
            tx = hx + a if hx + a < per_side else 0
            for b in range(ny):
                uy = cells[p, 1] - sy * grid - (hy + b) * tile
                ty = hy + b if hy + b < per_side else 0
                for c in range(nz):
                    uz = cells[p, 2] - sz * grid - (hz + c) * tile
                    tz = hz + c if hz + c < per_side else 0
                    t = (tx * per_side + ty) * per_side + tz
                    if place:
                        q = cursor[t]
                        out_cells[q, 0] = ux
                        out_cells[q, 1] = uy
                        out_cells[q, 2] = uz
                        if weights.shape[0]:
                            out_weights[q] = weights[p]
                    cursor[t] += 1
