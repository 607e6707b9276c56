"""Atomic HDF5 writes, shared by every stage that writes HDF5 into a simulation or a store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import h5py

from darkstack.atomic import atomic_path


@contextmanager
def atomic_hdf5(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Yield a new HDF5 file that appears at ``path`` only once it is complete.

    A killed writer leaves at most a hidden temporary file, never a truncated ``path``.
    """
    with atomic_path(path) as temporary:
        # "earliest" gives HDF5 1.8-compatible files like TNG's, readable by any h5py.
        with h5py.File(temporary, "x", libver="earliest") as file:
            yield file
