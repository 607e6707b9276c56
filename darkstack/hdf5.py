"""Atomic HDF5 writes, shared by every stage that writes HDF5 into a simulation or a store."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py


@contextmanager
def atomic_hdf5(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Yield a new HDF5 file that appears at ``path`` only once it is complete.

    A killed writer leaves at most a hidden temporary file, never a truncated ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory, so os.replace is a rename within one filesystem; a random suffix keeps
    # concurrent writers of the same file (a rerun task on another worker) apart.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        # "earliest" gives HDF5 1.8-compatible files like TNG's, readable by any h5py.
        with h5py.File(tmp, "x", libver="earliest") as file:
            yield file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_partial_writes(folder: str | os.PathLike[str]) -> None:
    """Delete the temporary files that killed :func:`atomic_hdf5` writers left in ``folder``.

    Call it only once nothing writes there any more: a live writer's file looks the same.
    """
    for path in Path(folder).glob(".*.tmp"):
        path.unlink(missing_ok=True)
