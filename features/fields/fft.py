"""The 3D real FFT of a Dask array by pencil decomposition, and its inverse.

``dask.array.fft`` transforms only along axes held in one chunk, so a 3D transform of a field
larger than one worker would gather it whole. Here each 1D transform runs on *pencils*: the
array is rechunked so that the transformed axis is whole and the other two are cut into
blocks of about ``block_bytes``, numpy transforms every block, and the array is rechunked for
the next axis. Forward: real FFT along z, then y, then x; the result is chunked along y and z
with x whole. The inverse runs the same steps backwards. No block is ever larger than
``block_bytes`` (plus the transformed axis' rounding), so no worker holds the field.

Each rechunk moves the whole array between workers once: a forward transform of an ``n³``
field moves its ``n² (n/2 + 1)`` complex modes twice (after z and after y) and its real input
once (into z pencils). ``"tasks"`` splits and concatenates blocks in the task graph; the pieces
are results Dask manages, which workers spill to disk, so a field larger than the cluster's
memory transforms (1024³ on 2 workers of 2 GB). ``"p2p"`` moves them by Dask's peer-to-peer
shuffle, which stalled on that field (docs/fields.md, Spectra).

Conventions are numpy's (``numpy.fft.rfftn`` and ``irfftn``): unnormalised forward
transform, ``1/n³`` on the inverse, modes ``[kx, ky, kz]`` with ``kz`` in ``[0, n/2]``.
"""

from __future__ import annotations

import math
from typing import Literal

import dask.array as da
import numpy as np

Precision = Literal["double", "single"]
RechunkMethod = Literal["tasks", "p2p"]

_REAL = {"double": np.float64, "single": np.float32}
_COMPLEX = {"double": np.complex128, "single": np.complex64}


def rfftn(
    field: da.Array,
    *,
    precision: Precision = "double",
    block_bytes: float = 64 * 2**20,
    method: RechunkMethod = "tasks",
) -> da.Array:
    """The 3D real FFT of ``field``, as ``numpy.fft.rfftn`` computes it, by pencils.

    Parameters
    ----------
    field : dask.array.Array
        A real 3D array, chunked in any way.
    precision : {"double", "single"}
        float64/complex128 or float32/complex64 arithmetic.
    block_bytes : float
        Target size of one pencil block.
    method : {"tasks", "p2p"}
        How Dask rechunks between the axes (see the module docstring).

    Returns
    -------
    dask.array.Array
        Complex modes of shape ``(n0, n1, n2 // 2 + 1)``, whole along axis 0.
    """
    if field.ndim != 3:
        raise ValueError(f"rfftn transforms 3D arrays, got shape {field.shape}")
    real, complex_ = _REAL[precision], _COMPLEX[precision]
    modes = _pencils(field.astype(real), 2, block_bytes, method)
    n2 = field.shape[2]
    modes = da.map_blocks(
        np.fft.rfft,
        modes,
        axis=2,
        dtype=complex_,
        chunks=(modes.chunks[0], modes.chunks[1], (n2 // 2 + 1,)),
    )
    for axis in (1, 0):
        modes = _pencils(modes, axis, block_bytes, method)
        modes = da.map_blocks(np.fft.fft, modes, axis=axis, dtype=complex_)
    return modes


def irfftn(
    modes: da.Array,
    *,
    n: int,
    precision: Precision = "double",
    block_bytes: float = 64 * 2**20,
    method: RechunkMethod = "tasks",
) -> da.Array:
    """The inverse of :func:`rfftn`, as ``numpy.fft.irfftn(modes, s=(n0, n1, n))`` computes it.

    Parameters
    ----------
    modes : dask.array.Array
        Complex modes of shape ``(n0, n1, n // 2 + 1)``, chunked in any way.
    n : int
        Length of the real output's last axis.
    precision, block_bytes, method
        As for :func:`rfftn`.

    Returns
    -------
    dask.array.Array
        The real field, shape ``(n0, n1, n)``, whole along axis 2.
    """
    real, complex_ = _REAL[precision], _COMPLEX[precision]
    field = modes.astype(complex_)
    for axis in (0, 1):
        field = _pencils(field, axis, block_bytes, method)
        field = da.map_blocks(np.fft.ifft, field, axis=axis, dtype=complex_)
    field = _pencils(field, 2, block_bytes, method)
    return da.map_blocks(
        np.fft.irfft,
        field,
        n=n,
        axis=2,
        dtype=real,
        chunks=(field.chunks[0], field.chunks[1], (n,)),
    )


def _pencils(array: da.Array, axis: int, block_bytes: float, method: RechunkMethod) -> da.Array:
    """``array`` rechunked whole along ``axis`` and in square blocks of ``block_bytes`` across."""
    length = array.shape[axis]
    side = max(1, math.isqrt(int(block_bytes // max(length * array.dtype.itemsize, 1))))
    chunks = tuple(-1 if a == axis else min(side, array.shape[a]) for a in range(array.ndim))
    return array.rechunk(chunks, method=method)
