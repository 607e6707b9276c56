"""Settings of ``darkstack fields`` and ``darkstack spectra``, saved with what they make."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from darkstack.features.deposit.mesh import SCHEME_ORDER
from darkstack.features.fields.layout import FIELDS_BY_NAME

#: The zarr chunk and deposit tile sides used when not set (capped at the grid).
DEFAULT_CHUNK = 64
DEFAULT_TILE = 128


@dataclass(frozen=True, kw_only=True)
class FieldsConfig:
    """How ``darkstack fields`` grids a simulation.

    Parameters
    ----------
    grid : int
        Voxels per side of every field (``--grid``).
    scheme : {"ngp", "cic", "tsc"}
        Mass-assignment scheme (``--scheme``; dm2gal's is CIC).
    snapshot : int
        Snapshot of both runs (99 is z = 0).
    chunk : int or None
        Side of a zarr chunk; ``grid`` must be a multiple of it. None: 64 (or the grid if
        smaller), 1 MiB of float32, small enough for dm2gal's 65³ crops to read little more
        than they use.
    tile : int or None
        Side of the cube one task deposits and writes, a multiple of ``chunk`` dividing
        ``grid``. A task holds a float64 accumulator of tile³ voxels: memory per worker is set
        by this, not by the grid. None: 128 (or the grid if smaller), a 16 MiB accumulator
        that stays in cache while particles land in it in no particular order.
    particles_per_task : int
        Particles one bucketing task reads at once (snapshot chunks larger than this are read
        in slices); bounds the memory of that stage.
    memory_fraction : float
        Share of a worker's ``memory_limit`` a task may plan to use (Dask starts spilling at
        0.6); a tile that needs more is refused before any work starts.
    fields : tuple of str
        Fields to build; empty builds every field the given runs provide.
    """

    grid: int = 128
    scheme: Literal["ngp", "cic", "tsc"] = "cic"
    snapshot: int = 99
    chunk: int | None = None
    tile: int | None = None
    particles_per_task: int = 2_000_000
    memory_fraction: float = 0.6
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.grid < 1:
            raise ValueError(f"grid must be >= 1, got {self.grid}")
        if self.scheme not in SCHEME_ORDER:
            raise ValueError(f"scheme {self.scheme!r} is not one of {sorted(SCHEME_ORDER)}")
        chunk, tile = self.chunk_size, self.tile_size
        if chunk < 1 or self.grid % chunk:
            raise ValueError(
                f"grid {self.grid} does not divide into zarr chunks of {chunk} voxels: use a "
                f"grid that is a multiple of {chunk}, or set chunk to a divisor of {self.grid}"
            )
        if tile < 1 or tile % chunk or self.grid % tile:
            raise ValueError(
                f"tile {tile} must be a multiple of the chunk ({chunk}) that divides the grid "
                f"({self.grid})"
            )
        if tile < SCHEME_ORDER[self.scheme]:
            raise ValueError(f"tile {tile} is narrower than the {self.scheme} stencil")
        if self.particles_per_task < 1:
            raise ValueError(f"particles_per_task must be >= 1, got {self.particles_per_task}")
        if not 0.0 < self.memory_fraction <= 1.0:
            raise ValueError(f"memory_fraction must be in (0, 1], got {self.memory_fraction}")
        unknown = [name for name in self.fields if name not in FIELDS_BY_NAME]
        if unknown:
            raise ValueError(
                f"field {unknown[0]!r} does not exist; expected some of {sorted(FIELDS_BY_NAME)}"
            )

    @property
    def chunk_size(self) -> int:
        """The zarr chunk side in effect."""
        return self.chunk if self.chunk is not None else min(DEFAULT_CHUNK, self.grid)

    @property
    def tile_size(self) -> int:
        """The deposit tile side in effect."""
        return self.tile if self.tile is not None else min(DEFAULT_TILE, self.grid)


@dataclass(frozen=True, kw_only=True)
class SpectraConfig:
    """How ``darkstack spectra`` measures a field.

    Parameters
    ----------
    deconvolve_window : bool
        Divide every Fourier mode by the mass-assignment window of the field's scheme,
        ``prod_i sinc(pi n_i / N)^p`` (Pylians' ``MAS`` correction).
    subtract_shot_noise : bool
        Subtract the Poisson noise of the deposited points from P(k): ``V sum(m^2) /
        (sum m)^2``, aliased and deconvolved as Jing (2005, ApJ 620, 559, eq. 20) gives it.
    triangles : tuple of (k1, k2) pairs
        Bispectrum configurations in h/Mpc. Defaults: the paper's (3, 4) and its public
        code's (0.5, 0.6).
    n_theta : int
        Angles between k1 and k2, evenly spaced over [0, pi] (25 in the paper's code).
    pdf_bins : int
        Log-spaced bins of the voxel PDF.
    pdf_log10_min, pdf_log10_max : float or None
        Range of the PDF in log10 Msun; None takes the field's smallest positive and its
        largest voxel.
    precision : {"double", "single"}
        FFT precision (single halves the memory and the bytes moved, at ~1e-7 relative
        precision per mode, that of Pylians).
    pencil_mib : float
        Target size of one block of the distributed FFT, in MiB.
    rechunk_method : {"auto", "tasks", "p2p"}
        How the FFT's rechunks move data: Dask's peer-to-peer shuffle (disk-backed, for
        fields larger than the cluster's memory), task-based splitting, or ``auto``: p2p on a
        distributed cluster, tasks in this process.
    """

    deconvolve_window: bool = True
    subtract_shot_noise: bool = False
    triangles: tuple[tuple[float, float], ...] = ((3.0, 4.0), (0.5, 0.6))
    n_theta: int = 25
    pdf_bins: int = 50
    pdf_log10_min: float | None = None
    pdf_log10_max: float | None = None
    precision: Literal["double", "single"] = "double"
    pencil_mib: float = 64.0
    rechunk_method: Literal["auto", "tasks", "p2p"] = "auto"

    def __post_init__(self) -> None:
        if self.n_theta < 1:
            raise ValueError(f"n_theta must be >= 1, got {self.n_theta}")
        if self.pdf_bins < 1:
            raise ValueError(f"pdf_bins must be >= 1, got {self.pdf_bins}")
        for k1, k2 in self.triangles:
            if not (k1 > 0 and k2 > 0):
                raise ValueError(f"triangle ({k1}, {k2}): k1 and k2 must be positive (h/Mpc)")
        if not self.pencil_mib > 0:
            raise ValueError(f"pencil_mib must be positive, got {self.pencil_mib}")
