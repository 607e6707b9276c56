"""Settings of ``darkstack fields`` and ``darkstack spectra``, saved with what they make."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from darkstack.config import Checked, OneOf, Range, Rule
from darkstack.features.deposit.mesh import SCHEME_ORDER
from darkstack.features.fields.layout import FIELDS_BY_NAME

#: The zarr chunk and deposit tile sides used when not set (capped at the grid).
DEFAULT_CHUNK = 64
DEFAULT_TILE = 128


def _field_names() -> list[str]:
    return sorted(FIELDS_BY_NAME)


def _grid_divides_into_chunks(config: FieldsConfig) -> str | None:
    chunk = config.chunk_size
    if config.grid % chunk == 0:
        return None
    return f"a multiple of the zarr chunk {chunk} voxels (or set chunk to a divisor of the grid)"


def _tile_divides_the_grid(config: FieldsConfig) -> str | None:
    tile, chunk = config.tile_size, config.chunk_size
    if tile % chunk == 0 and config.grid % tile == 0:
        return None
    return (
        f"a multiple of the chunk {chunk} that divides the grid {config.grid} (in effect: {tile})"
    )


def _tile_holds_the_stencil(config: FieldsConfig) -> str | None:
    stencil = SCHEME_ORDER[config.scheme]
    if config.tile_size >= stencil:
        return None
    return f">= {stencil}, the width of the {config.scheme} stencil (in effect: {config.tile_size})"


@dataclass(frozen=True, kw_only=True)
class FieldsConfig(Checked):
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

    grid: Annotated[int, Range(ge=1)] = 128
    scheme: Literal["ngp", "cic", "tsc"] = "cic"
    snapshot: Annotated[int, Range(ge=0, le=999)] = 99
    chunk: Annotated[int | None, Range(ge=1)] = None
    tile: Annotated[int | None, Range(ge=1)] = None
    particles_per_task: Annotated[int, Range(ge=1)] = 2_000_000
    memory_fraction: Annotated[float, Range(gt=0, le=1)] = 0.6
    fields: Annotated[tuple[str, ...], OneOf(_field_names)] = ()

    RULES = (
        Rule("grid", _grid_divides_into_chunks),
        Rule("tile", _tile_divides_the_grid),
        Rule("tile", _tile_holds_the_stencil),
    )

    @property
    def chunk_size(self) -> int:
        """The zarr chunk side in effect."""
        return self.chunk if self.chunk is not None else min(DEFAULT_CHUNK, self.grid)

    @property
    def tile_size(self) -> int:
        """The deposit tile side in effect."""
        return self.tile if self.tile is not None else min(DEFAULT_TILE, self.grid)


def _positive_ordered_triangles(config: SpectraConfig) -> str | None:
    # B(k1, k2, theta) is symmetric in k1 and k2: ordering them names each triangle once.
    if all(0 < k1 <= k2 < math.inf for k1, k2 in config.triangles):
        return None
    return "(k1, k2) pairs in h/Mpc with 0 < k1 <= k2"


@dataclass(frozen=True, kw_only=True)
class SpectraConfig(Checked):
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
    rechunk_method : {"tasks", "p2p", "auto"}
        How the FFT's rechunks move data: task-based splitting (default), Dask's peer-to-peer
        shuffle, or ``auto``: p2p on a distributed cluster, tasks in this process. Tasks by
        default: their pieces are memory Dask manages, so a worker spills them to disk; the
        P(k) of a 1024^3 field on 2 workers of 2 GB took 144 s and spilled 7.6 GB that way,
        while with p2p both workers grew ~1.3 GB of memory Dask does not manage, paused at
        80% of their limit with all their data on disk, and never resumed (docs/fields.md).
    """

    deconvolve_window: bool = True
    subtract_shot_noise: bool = False
    triangles: tuple[tuple[float, float], ...] = ((3.0, 4.0), (0.5, 0.6))
    n_theta: Annotated[int, Range(ge=1)] = 25
    pdf_bins: Annotated[int, Range(ge=1)] = 50
    pdf_log10_min: Annotated[float | None, Range()] = None
    pdf_log10_max: Annotated[float | None, Range()] = None
    precision: Literal["double", "single"] = "double"
    pencil_mib: Annotated[float, Range(gt=0)] = 64.0
    rechunk_method: Literal["tasks", "p2p", "auto"] = "tasks"

    RULES = (
        Rule("triangles", _positive_ordered_triangles),
        Rule.ordered("pdf_log10_max", ">", "pdf_log10_min"),
    )
