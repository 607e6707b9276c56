"""Periodic crops of ``fields.zarr`` around sample centres, read a storage chunk at a time.

The public code cuts every crop once into its own ``.npy`` file (millions of them at 2048³).
Here crops are cut on demand from the fields: :func:`read_crops` is the random-access
reference (one read per crop), :func:`read_chunk_crops` the streaming reader (the centres of
one storage chunk share one read of that chunk plus a halo of half a crop, wrapped
periodically, and their crops are sliced out of it in memory).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def _wrapped(start: int, length: int, grid: int) -> NDArray[np.int64]:
    return (np.arange(start, start + length) % grid).astype(np.int64)


def read_crops(arrays: list[Any], centres: NDArray[np.int64], *, side: int) -> NDArray[np.float32]:
    """Crops ``(n, len(arrays), side, side, side)`` of ``(n, 3)`` voxel ``centres``, one read each.

    Parameters
    ----------
    arrays : list of zarr.Array
        Cubic fields of one grid (the channels).
    centres : ndarray (n, 3)
        Voxel indices of the crops' central voxels.
    side : int
        Odd crop side; a crop wraps around the box's periodic edges.
    """
    grid = arrays[0].shape[0]
    half = side // 2
    out = np.empty((len(centres), len(arrays), side, side, side), dtype=np.float32)
    for row, centre in enumerate(np.asarray(centres, dtype=np.int64)):
        index = tuple(_wrapped(int(c) - half, side, grid) for c in centre)
        for channel, array in enumerate(arrays):
            out[row, channel] = array.get_orthogonal_selection(index)
    return out


def chunk_of(centres: NDArray[np.int64], *, chunk: int, grid: int) -> NDArray[np.int64]:
    """Label of the storage chunk holding each of ``(n, 3)`` centres."""
    per_side = -(-grid // chunk)
    block = np.asarray(centres, dtype=np.int64).reshape(-1, 3) // chunk
    return np.asarray((block[:, 0] * per_side + block[:, 1]) * per_side + block[:, 2])


def read_chunk_crops(
    arrays: list[Any], centres: NDArray[np.int64], *, side: int
) -> NDArray[np.float32]:
    """As :func:`read_crops`, for centres of one storage chunk: one read of the chunk and halo.

    Raises
    ------
    ValueError
        When the centres span more than one storage chunk.
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 3)
    grid, chunk = arrays[0].shape[0], arrays[0].chunks[0]
    blocks = np.unique(centres // chunk, axis=0)
    if len(blocks) != 1:
        raise ValueError(f"centres span {len(blocks)} storage chunks; expected one")
    half = side // 2
    origin = blocks[0] * chunk - half
    extent = [min(chunk, grid - int(b) * chunk) + 2 * half for b in blocks[0]]
    index = tuple(_wrapped(int(o), n, grid) for o, n in zip(origin, extent, strict=True))
    halo = np.stack([array.get_orthogonal_selection(index) for array in arrays])
    out = np.empty((len(centres), len(arrays), side, side, side), dtype=np.float32)
    for row, (x, y, z) in enumerate(centres - origin - half):
        out[row] = halo[:, x : x + side, y : y + side, z : z + side]
    return out
