"""The samples the trainer consumes: normalised crops and targets, streamed by storage chunk."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
from numpy.typing import NDArray

from darkstack.errors import InputError
from darkstack.store import StoreLayout
from darkstack.train.tasks.dm2gal.crops import chunk_of, cut_crops, read_halo
from darkstack.train.tasks.dm2gal.samples import (
    INPUT_FIELDS,
    TARGET_FIELD,
    Standardise,
    log1p10,
)


def open_fields(store: Path) -> Any:
    """``STORE/fields.zarr`` as a zarr group; a one-line error when it or a field is missing."""
    import zarr

    path = StoreLayout(store).zarr("fields")
    if not path.exists():
        raise InputError(f"{path} not found: run `darkstack fields --store {store}` first")
    group = zarr.open_group(path, mode="r")
    missing = [name for name in (*INPUT_FIELDS, TARGET_FIELD) if name not in group]
    if missing:
        raise InputError(
            f"{path} lacks {', '.join(missing)}; dm2gal needs {', '.join(INPUT_FIELDS)} (from "
            f"--dark) and {TARGET_FIELD}"
        )
    return group


def box_and_scheme(group: Any, *, store: Path) -> tuple[float, str]:
    """The box side (Mpc/h) and deposit scheme ``darkstack fields`` recorded on ``fields.zarr``
    (``group``, of ``store``); a one-line error when either is missing."""
    missing = [key for key in ("box_mpc_h", "scheme") if key not in group.attrs]
    if missing:
        raise InputError(f"{StoreLayout(store).zarr('fields')} lacks attributes {missing}")
    return float(group.attrs["box_mpc_h"]), str(group.attrs["scheme"])


@dataclass(frozen=True, kw_only=True)
class Dm2galSamples:
    """The sample centres of a ``fields.zarr`` and their region.

    Attributes
    ----------
    samples : ndarray of int
        Flat voxel index (``x * n² + y * n + z``) of each centre outside the guard band.
    labels : ndarray of int
        Region of each (:data:`~darkstack.train.tasks.dm2gal.regions.TRAIN`, ...).
    targets_msun : ndarray of float32
        The target voxel's stellar mass.
    dark_subhalo_msun : ndarray of float32
        The centre voxel's ``dark_subhalo_mass`` (an input, which ``samples.weight_field =
        "dark_subhalo_mass"`` weights the sampler by).
    grid : int
        Voxels per side.
    """

    samples: NDArray[np.int64]
    labels: NDArray[np.int64]
    targets_msun: NDArray[np.float32]
    dark_subhalo_msun: NDArray[np.float32]
    grid: int
    group_name: str = "voxel"

    @property
    def groups(self) -> NDArray[np.int64]:
        """Every centre is its own group (bootstrap resamples draw voxels)."""
        return self.samples

    def centres(self, samples: NDArray[np.int64]) -> NDArray[np.int64]:
        """``(n, 3)`` voxel indices of flat ``samples``."""
        return np.stack(np.unravel_index(samples, (self.grid,) * 3), axis=1).astype(np.int64)


class CropSource:
    """Normalised crops and targets of centres, read one storage chunk (plus halo) at a time.

    The last ``cached`` chunks read stay decoded (least recently used first out): the stream
    visits the chunks of a shuffle window (``data.shuffle_chunks``) in every batch of that
    window, and a batch may straddle two windows, so a cache of two windows' chunks (the
    task's choice) reads each chunk and its halo about once per epoch instead of once per
    batch. Each costs ``2 (chunk + crop)³`` float32 (7 MiB at 64 and 33).

    Parameters
    ----------
    arrays : list of zarr.Array
        The input fields.
    centres : ndarray (n, 3)
        Voxel index of each sample.
    targets : ndarray (n, 1)
        Targets, ``log10(1 + M*)``.
    side : int
        Crop side.
    inputs : Standardise
        The inputs' transform.
    cached : int
        Decoded chunks (with halo) kept between reads.
    """

    def __init__(
        self,
        *,
        arrays: list[Any],
        centres: NDArray[np.int64],
        targets: NDArray[np.float32],
        side: int,
        inputs: Standardise,
        cached: int = 1,
    ) -> None:
        self.arrays = arrays
        self.centres = centres
        self.targets = targets
        self.side = side
        self.inputs = inputs
        self.cached = cached
        self.chunk = chunk_of(centres, chunk=arrays[0].chunks[0], grid=arrays[0].shape[0])
        #: Chunks read with their halo so far (a chunk evicted and read again counts twice).
        self.halo_reads = 0
        self._halos: OrderedDict[int, NDArray[np.float32]] = OrderedDict()
        self._lock = Lock()

    def _halo(self, label: int, block: NDArray[np.int64]) -> NDArray[np.float32]:
        with self._lock:
            if label in self._halos:
                self._halos.move_to_end(label)
                return self._halos[label]
            halo = read_halo(self.arrays, block, side=self.side)
            self.halo_reads += 1
            self._halos[label] = halo
            while len(self._halos) > self.cached:
                self._halos.popitem(last=False)
            return halo

    def read(self, positions: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
        centres = self.centres[positions]
        chunk = self.arrays[0].chunks[0]
        blocks = np.unique(centres // chunk, axis=0)
        if len(blocks) != 1:
            raise ValueError(f"positions span {len(blocks)} storage chunks; expected one")
        halo = self._halo(int(self.chunk[positions[0]]), blocks[0])
        crops = cut_crops(halo, blocks[0], centres, side=self.side, chunk=chunk)
        return self.inputs(crops, axis=1), self.targets[positions]


def crop_source(
    group: Any,
    dataset: Dm2galSamples,
    normalisation: Mapping[str, Any],
    *,
    samples: NDArray[np.int64],
    side: int,
    cached: int = 1,
) -> CropSource:
    """The :class:`CropSource` of ``samples``."""
    rows = np.searchsorted(dataset.samples, samples)
    # Targets in their own units, log10(1 + M*): the task's Regressor holds the target
    # standardisation (as for every regression task), so the source must not apply it again.
    target = log1p10(dataset.targets_msun[rows])
    return CropSource(
        arrays=[group[name] for name in INPUT_FIELDS],
        centres=dataset.centres(dataset.samples[rows]),
        targets=target.astype(np.float32).reshape(-1, 1),
        side=side,
        inputs=Standardise(
            mean=tuple(normalisation["input_mean"]), std=tuple(normalisation["input_std"])
        ),
        cached=cached,
    )
