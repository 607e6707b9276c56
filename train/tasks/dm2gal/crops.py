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


def _pieces(start: int, length: int, grid: int) -> list[slice]:
    """Slices of ``[start, start + length)`` wrapped periodically into ``[0, grid)``, in order."""
    pieces = []
    position = start % grid
    while length > 0:
        take = min(length, grid - position)
        pieces.append(slice(position, position + take))
        length -= take
        position = 0
    return pieces


def read_wrapped(array: Any, starts: Any, lengths: Any) -> NDArray[np.float32]:
    """The block ``[start, start + length)`` on each axis of a periodic cubic ``array``.

    Zarr reads basic slices far faster than integer-array selections, so a block that wraps
    is read as at most eight slabs and joined.
    """
    axes = [_pieces(int(s), int(n), array.shape[0]) for s, n in zip(starts, lengths, strict=True)]
    return np.concatenate(
        [
            np.concatenate(
                [np.concatenate([array[x, y, z] for z in axes[2]], axis=2) for y in axes[1]],
                axis=1,
            )
            for x in axes[0]
        ],
        axis=0,
    ).astype(np.float32, copy=False)


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
    half = side // 2
    out = np.empty((len(centres), len(arrays), side, side, side), dtype=np.float32)
    for row, centre in enumerate(np.asarray(centres, dtype=np.int64)):
        for channel, array in enumerate(arrays):
            out[row, channel] = read_wrapped(array, centre - half, (side,) * 3)
    return out


def chunk_of(centres: NDArray[np.int64], *, chunk: int, grid: int) -> NDArray[np.int64]:
    """Label of the storage chunk holding each of ``(n, 3)`` centres."""
    per_side = -(-grid // chunk)
    block = np.asarray(centres, dtype=np.int64).reshape(-1, 3) // chunk
    return np.asarray((block[:, 0] * per_side + block[:, 1]) * per_side + block[:, 2])


def read_halo(arrays: list[Any], block: NDArray[np.int64], *, side: int) -> NDArray[np.float32]:
    """Storage chunk ``block`` (its ``(3,)`` chunk coordinates) of every array, with a halo of
    half a crop on each side (wrapped periodically): ``(len(arrays), c + 2h, c + 2h, c + 2h)``."""
    grid, chunk = arrays[0].shape[0], arrays[0].chunks[0]
    half = side // 2
    extent = [min(chunk, grid - int(b) * chunk) + 2 * half for b in block]
    return np.stack([read_wrapped(array, block * chunk - half, extent) for array in arrays])


def cut_crops(
    halo: NDArray[np.float32],
    block: NDArray[np.int64],
    centres: NDArray[np.int64],
    *,
    side: int,
    chunk: int,
) -> NDArray[np.float32]:
    """Crops of ``centres`` (all in storage chunk ``block``) sliced out of its :func:`read_halo`."""
    out = np.empty((len(centres), halo.shape[0], side, side, side), dtype=np.float32)
    for row, (x, y, z) in enumerate(centres - block * chunk):
        out[row] = halo[:, x : x + side, y : y + side, z : z + side]
    return out


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
    chunk = arrays[0].chunks[0]
    blocks = np.unique(centres // chunk, axis=0)
    if len(blocks) != 1:
        raise ValueError(f"centres span {len(blocks)} storage chunks; expected one")
    halo = read_halo(arrays, blocks[0], side=side)
    return cut_crops(halo, blocks[0], centres, side=side, chunk=chunk)
