"""``darkstack spectra``: P(k), cross-power and r(k), bispectrum and voxel PDF of a field, on Dask.

All Fourier statistics start from the overdensity ``delta = field / mean - 1`` of the field (or
of a cubic ``--region`` of it) and its distributed FFT (:mod:`~darkstack.features.fields.fft`);
per-block numpy kernels bin the modes and a fixed-order tree sums the blocks, so results do
not depend on scheduling. Conventions are Pylians' (``Pk_library``), so the numbers compare one
to one with Pylians and with the dm2gal code that used it:

- ``k`` in h/Mpc and ``P`` in (Mpc/h)^3, the one exception to physical units (the box is
  ``box_mpc_h``, comoving); grid points at ``i L / N``; ``k_F = 2 pi / L``.
- P(k): bins of width ``k_F``, mode ``k`` in bin ``floor(|k| / k_F)``, the DC bin dropped;
  each bin reports the mean ``|k|`` of its modes and their number (independent modes only:
  half of the ``k_z = 0`` and Nyquist planes); ``P = <|delta_k|^2> (L / N^2)^3``.
- Window: each mode is divided by the mass-assignment window of the field's scheme,
  ``prod_i sinc(pi n_i / N)^p`` (:func:`~darkstack.features.deposit.mesh.window`).
- Shot noise (optional): ``V sum(m^2) / (sum m)^2`` of the deposited points, aliased as Jing
  (2005) gives it (:func:`~darkstack.features.deposit.mesh.aliased_window_squared`) and
  divided by the squared window where the window is deconvolved; never subtracted from a
  cross-power of two different fields.
- Cross-power: ``<Re(delta_a delta_b^*)>`` in the same bins; ``r(k) = P_ab / sqrt(P_a P_b)``.
- Bispectrum: the FFT shell estimator (Scoccimarro 2015, PRD 92, 083532; Sefusatti et al.
  2016, MNRAS 460, 3624): for shells ``|k| in [k_i - k_F, k_i + k_F)`` of ``k1``, ``k2`` and
  ``k3 = |k1 + k2|`` at angle ``theta`` between ``k1`` and ``k2``,
  ``B = sum_x d1 d2 d3 / sum_x I1 I2 I3 (L^2 / N^3)^3``, ``d_i`` the inverse FFT of the
  shell-filtered modes and ``I_i`` of the shell itself; ``Q = B / (P1 P2 + P1 P3 + P2 P3)``
  with the shells' own powers. Counts are triangles.
- PDF: voxel counts in log-spaced bins of the field's value (Msun), the paper's
  un-normalised PDF, with values the fraction of voxels per dex.

A ``--region`` is a cubic block of voxels, measured as if it were a periodic box of its own
side, as the dm2gal paper and code measure their test cube: its faces are not periodic, so the
jump between opposite faces adds power, mostly along the axes and at high k. Shot-noise weights
of a region are the field's, scaled to the region's mass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
from numpy.typing import NDArray

import darkstack
from darkstack.config import config_to_dict
from darkstack.features.deposit.mesh import aliased_window_squared, window, window_order
from darkstack.features.fields import layout
from darkstack.features.fields.config import SpectraConfig
from darkstack.features.fields.fft import RechunkMethod, irfftn, rfftn
from darkstack.store import SPECTRA_CATALOG, StoreLayout, write_catalog

if TYPE_CHECKING:
    from distributed import Client

#: Columns of the per-block power-spectrum sums.
_SUM_K, _SUM_AA, _SUM_BB, _SUM_AB, _MODES, _SHOT = range(6)


@dataclass(frozen=True)
class Region:
    """A cubic block of voxels ``[x0, x1) x [y0, y1) x [z0, z1)`` of a grid."""

    bounds: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

    @classmethod
    def whole(cls, grid: int) -> Region:
        """The whole grid."""
        return cls(((0, grid), (0, grid), (0, grid)))

    @classmethod
    def parse(cls, text: str | None, *, grid: int) -> Region:
        """``x0:x1,y0:y1,z0:z1`` (voxel indices, half-open), checked against the grid.

        Raises
        ------
        ValueError
            For a malformed region, one outside the grid, or one that is not a cube.
        """
        if text is None:
            return cls.whole(grid)
        parts = text.split(",")
        try:
            bounds = tuple(tuple(int(v) for v in part.split(":")) for part in parts)
        except ValueError:
            bounds = ()
        if len(bounds) != 3 or any(len(b) != 2 for b in bounds):
            raise ValueError(
                f"--region {text!r}: expected x0:x1,y0:y1,z0:z1 (integer voxel indices)"
            )
        for name, (lo, hi) in zip(layout.DIMS, bounds, strict=True):
            if not 0 <= lo < hi <= grid:
                raise ValueError(
                    f"--region {text!r}: {name} range {lo}:{hi} is outside the grid of {grid} "
                    f"voxels (expected 0 <= {name}0 < {name}1 <= {grid})"
                )
        sides = {hi - lo for lo, hi in bounds}
        if len(sides) != 1:
            raise ValueError(
                f"--region {text!r}: sides {[hi - lo for lo, hi in bounds]} differ; spectra "
                "need a cube"
            )
        return cls(bounds)  # type: ignore[arg-type]

    @property
    def side(self) -> int:
        """Voxels per side."""
        return self.bounds[0][1] - self.bounds[0][0]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Index of the region in the grid."""
        return tuple(slice(lo, hi) for lo, hi in self.bounds)  # type: ignore[return-value]

    @property
    def label(self) -> str:
        """``x0:x1,y0:y1,z0:z1``."""
        return ",".join(f"{lo}:{hi}" for lo, hi in self.bounds)


@dataclass(frozen=True)
class Measurement:
    """One measured statistic: a row of the spectra catalog."""

    statistic: str
    bins: NDArray[np.float64]
    values: NDArray[np.float64]
    counts: NDArray[np.float64]
    bins_unit: str
    values_unit: str
    k1_h_mpc: float = float("nan")
    k2_h_mpc: float = float("nan")
    shot_noise: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpectraResult:
    """What ``darkstack spectra`` measured and where it wrote it."""

    path: Path
    field: str
    region: Region
    measurements: tuple[Measurement, ...]

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"{self.field} over {self.region.label}:"]
        for m in self.measurements:
            finite = np.isfinite(m.values)
            span = f"{m.bins[0]:.3g}..{m.bins[-1]:.3g} {m.bins_unit}" if m.bins.size else "no bins"
            lines.append(
                f"  {m.statistic}: {m.bins.size} bins over {span}, {int(finite.sum())} finite"
                + (
                    f" (k1={m.k1_h_mpc:g}, k2={m.k2_h_mpc:g} h/Mpc)"
                    if np.isfinite(m.k1_h_mpc)
                    else ""
                )
            )
        return "\n".join(lines)


def run_spectra(
    config: SpectraConfig,
    *,
    store: str | Path,
    field: str,
    statistic: str,
    cross: str | None = None,
    region: str | None = None,
    client: Client | None = None,
) -> SpectraResult:
    """Measure ``statistic`` of ``field`` in ``STORE/fields.zarr`` and add it to the catalog.

    Parameters
    ----------
    config : SpectraConfig
        Window, shot noise, triangles, PDF bins and FFT settings.
    store : str or Path
        A store with ``fields.zarr``.
    field : str
        The field measured.
    statistic : {"pk", "xpk", "bk", "pdf"}
        What is measured (``xpk`` writes the cross-power and r(k)).
    cross : str, optional
        The second field of ``xpk``.
    region : str, optional
        ``x0:x1,y0:y1,z0:z1``, a cube of voxels; the whole grid by default.
    client : distributed.Client, optional
        Dask client; None computes with threads in this process.

    Raises
    ------
    FileNotFoundError
        Without ``fields.zarr``.
    ValueError
        For a field name that does not exist, a region outside the grid, or a statistic that
        needs a second field without one.
    """
    import xarray as xr

    store = Path(store)
    path = StoreLayout(store).zarr("fields")
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `darkstack fields --store {store}` first")
    dataset = xr.open_zarr(path, consolidated=False)
    names = [field] + ([cross] if cross is not None else [])
    for name in names:
        if name not in dataset.data_vars:
            raise ValueError(
                f"field {name!r} is not in {path} (present: {', '.join(sorted(dataset.data_vars))})"
            )
    if statistic == "xpk" and cross is None:
        raise ValueError("--stat xpk needs --cross, the second field")
    grid = int(dataset.attrs["grid"])
    cube = Region.parse(region, grid=grid)
    box = float(dataset.attrs["box_mpc_h"]) * cube.side / grid
    scheme = str(dataset.attrs["scheme"])
    arrays = [dataset[name].data[cube.slices] for name in names]
    measure = Spectra(config=config, box_mpc_h=box, scheme=scheme, client=client)
    if statistic == "pdf":
        measurements: tuple[Measurement, ...] = (measure.pdf(arrays[0]),)
    elif statistic == "bk":
        measurements = measure.bispectra(arrays[0])
    else:
        shot = (
            _poisson_shot_noise(dataset[field].attrs, arrays[0], box, measure)
            if (config.subtract_shot_noise and statistic == "pk")
            else 0.0
        )
        measurements = measure.power(arrays, shot_noise=shot)
    provenance = {
        "spectra": config_to_dict(config),
        "fields_zarr": str(path.resolve()),
        "fields_config": json.loads(dataset.attrs["config"]),
        "scheme": scheme,
        "format_version": layout.FORMAT_VERSION,
        "darkstack_version": darkstack.__version__,
    }
    out = _write_catalog(
        store,
        field=field,
        cross=cross or "",
        region=cube,
        box=box,
        measurements=measurements,
        provenance=provenance,
    )
    return SpectraResult(path=out, field=field, region=cube, measurements=measurements)


@dataclass(frozen=True, kw_only=True)
class Spectra:
    """The statistics of one periodic box of voxels (a field, a region, a painted cube).

    Fields may be numpy or Dask arrays (cubes); results follow the module's conventions.

    Parameters
    ----------
    config : SpectraConfig
        Window, triangles, PDF bins and FFT settings.
    box_mpc_h : float
        Side of the box in Mpc/h (comoving).
    scheme : {"ngp", "cic", "tsc"}
        The scheme the field was deposited with, whose window is deconvolved.
    client : distributed.Client, optional
        Where to compute; None uses threads in this process.
    """

    config: SpectraConfig
    box_mpc_h: float
    scheme: str
    client: Client | None = None

    @property
    def method(self) -> RechunkMethod:
        if self.config.rechunk_method != "auto":
            return self.config.rechunk_method
        return "p2p" if self.client is not None else "tasks"

    @property
    def block_bytes(self) -> float:
        return self.config.pencil_mib * 2**20

    def compute(self, *values: Any) -> tuple[Any, ...]:
        """Compute Dask values on the client, or with threads here."""
        if self.client is not None:
            return tuple(self.client.gather(self.client.compute(list(values))))
        return tuple(dask.compute(*values, scheduler="threads"))

    def overdensity_modes(self, array: da.Array | NDArray[np.floating[Any]]) -> da.Array:
        """``delta_k`` of ``array / mean - 1``, window-deconvolved if configured."""
        array = _cube(array)
        (mean,) = self.compute(array.astype(np.float64).mean())
        if not mean > 0:
            raise ValueError(f"the field's mean is {mean}; an overdensity needs a positive mean")
        precision = self.config.precision
        delta = array / np.float32(mean) - 1 if precision == "single" else array / mean - 1
        modes = rfftn(delta, precision=precision, block_bytes=self.block_bytes, method=self.method)
        if not self.config.deconvolve_window:
            return modes
        n = array.shape[0]
        order = window_order(self.scheme)
        return da.map_blocks(
            _deconvolve, modes, n=n, scheme=self.scheme, order=order, dtype=modes.dtype
        )

    def power(
        self, arrays: Sequence[da.Array | NDArray[np.floating[Any]]], *, shot_noise: float = 0.0
    ) -> tuple[Measurement, ...]:
        """P(k) of one field, or the cross-power and r(k) of two.

        Parameters
        ----------
        arrays : sequence of one or two cubes
            The field, or the two fields of a cross-power.
        shot_noise : float
            Poisson noise ``V sum(m^2) / (sum m)^2`` in (Mpc/h)^3 to subtract from an auto
            power, with the scheme's aliasing (0: none).
        """
        arrays = [_cube(array) for array in arrays]
        modes = [self.overdensity_modes(array) for array in arrays]
        n = arrays[0].shape[0]
        sums = _tree_sum(
            [
                dask.delayed(_power_block)(
                    *blocks,
                    offsets=offsets,
                    n=n,
                    scheme=self.scheme,
                    deconvolved=self.config.deconvolve_window,
                )
                for blocks, offsets in _aligned_blocks(modes)
            ]
        )
        (totals,) = self.compute(sums)
        totals = totals[1:]  # the DC bin
        kept = totals[:, _MODES] > 0
        totals = totals[kept]
        count = totals[:, _MODES]
        k_f = 2.0 * np.pi / self.box_mpc_h
        k = totals[:, _SUM_K] / count * k_f
        norm = (self.box_mpc_h / n**2) ** 3
        power_a = totals[:, _SUM_AA] / count * norm
        k_unit, p_unit = "h/Mpc", "(Mpc/h)^3"
        if len(arrays) == 1:
            shot = shot_noise * totals[:, _SHOT] / count
            return (
                Measurement("pk", k, power_a - shot, count, k_unit, p_unit, shot_noise=shot_noise),
            )
        power_b = totals[:, _SUM_BB] / count * norm
        cross = totals[:, _SUM_AB] / count * norm
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN where a field has no power
            r = cross / np.sqrt(power_a * power_b)
        return (
            Measurement("xpk", k, cross, count, k_unit, p_unit),
            Measurement("r", k, r, count, k_unit, ""),
        )

    def bispectra(self, array: da.Array | NDArray[np.floating[Any]]) -> tuple[Measurement, ...]:
        """B(k1, k2, theta) and Q of every configured triangle."""
        array = _cube(array)
        modes = self.overdensity_modes(array)
        n = array.shape[0]
        thetas = np.linspace(0.0, np.pi, self.config.n_theta)
        results = []
        for k1, k2 in self.config.triangles:
            k3 = np.sqrt((k2 * np.sin(thetas)) ** 2 + (k2 * np.cos(thetas) + k1) ** 2)
            shells = [self._shell(modes, k, n) for k in (k1, k2, *k3)]
            (d1, i1), (d2, i2) = shells[:2]
            sums = [(d * d).sum() for d, _ in shells] + [(i * i).sum() for _, i in shells]
            sums += [(d1 * d2 * d).sum() for d, _ in shells[2:]]
            sums += [(i1 * i2 * i).sum() for _, i in shells[2:]]
            values = np.asarray(self.compute(*sums), dtype=np.float64)
            count = len(shells)
            power = values[:count] / values[count : 2 * count] * (self.box_mpc_h / n**2) ** 3
            triple = values[2 * count : 2 * count + len(thetas)]
            triangles = values[2 * count + len(thetas) :]
            with np.errstate(invalid="ignore", divide="ignore"):
                b = triple / triangles * (self.box_mpc_h**2 / n**3) ** 3
                p1, p2, p3 = power[0], power[1], power[2:]
                q = b / (p1 * p2 + p1 * p3 + p2 * p3)
            counts = np.rint(triangles * float(n) ** 6)
            notes = {"k3_h_mpc": k3.tolist(), "shell_power": power.tolist()}
            for name, value, unit in (("bk", b, "(Mpc/h)^6"), ("qk", q, "")):
                results.append(
                    Measurement(
                        name,
                        thetas,
                        value,
                        counts,
                        "rad",
                        unit,
                        k1_h_mpc=k1,
                        k2_h_mpc=k2,
                        notes=notes,
                    )
                )
        return tuple(results)

    def _shell(self, modes: da.Array, k: float, n: int) -> tuple[da.Array, da.Array]:
        """Inverse FFTs of the modes in ``[k - k_F, k + k_F)`` and of that shell's indicator."""
        k_f = 2.0 * np.pi / self.box_mpc_h
        low, high = (k - k_f) / k_f, (k + k_f) / k_f
        mask = da.map_blocks(_shell_mask, modes, n=n, low=low, high=high, dtype=modes.dtype)
        settings = {
            "n": n,
            "precision": self.config.precision,
            "block_bytes": self.block_bytes,
            "method": self.method,
        }
        return irfftn(modes * mask, **settings), irfftn(mask, **settings)  # type: ignore[arg-type]

    def pdf(self, array: da.Array | NDArray[np.floating[Any]]) -> Measurement:
        """Voxel counts in log-spaced bins of the field's value."""
        array = _cube(array)
        low, high = self.config.pdf_log10_min, self.config.pdf_log10_max
        if low is None or high is None:
            positive_min, maximum = self.compute(
                da.where(array > 0, array, np.inf).min(), array.max()
            )
            if not np.isfinite(positive_min):
                raise ValueError("the field has no positive voxel; its PDF has no log bins")
            low = float(np.log10(positive_min)) if low is None else low
            high = float(np.log10(maximum)) if high is None else high
            high = max(high, low + 1e-6)
        edges = np.logspace(low, high, self.config.pdf_bins + 1)
        counts, below = self.compute(da.histogram(array, bins=edges)[0], (array < edges[0]).sum())
        width = np.diff(np.log10(edges))
        centres = 0.5 * (np.log10(edges[1:]) + np.log10(edges[:-1]))
        fraction = counts / array.size / width
        return Measurement(
            "pdf",
            centres,
            fraction,
            counts.astype(np.float64),
            "log10 Msun",
            "fraction of voxels per dex",
            notes={"edges_log10_msun": np.log10(edges).tolist(), "voxels_below": int(below)},
        )


def _cube(array: da.Array | NDArray[np.floating[Any]]) -> da.Array:
    """A cubic Dask array (numpy arrays are wrapped whole)."""
    cube = array if isinstance(array, da.Array) else da.from_array(np.asarray(array))
    if cube.ndim != 3 or len(set(cube.shape)) != 1:
        raise ValueError(f"spectra need a cube of voxels, got shape {cube.shape}")
    return cube


def _frequencies(start: int, stop: int, n: int) -> NDArray[np.int64]:
    """Signed integer frequencies of indices ``[start, stop)`` of an FFT axis (Pylians')."""
    index = np.arange(start, stop)
    return np.where(index > n // 2, index - n, index)


def _block_frequencies(
    shape: tuple[int, ...], offsets: Sequence[int], n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    kx = _frequencies(offsets[0], offsets[0] + shape[0], n)[:, None, None]
    ky = _frequencies(offsets[1], offsets[1] + shape[1], n)[None, :, None]
    kz = np.arange(offsets[2], offsets[2] + shape[2])[None, None, :]
    return kx, ky, kz


def _block_offsets(block_info: dict[Any, Any] | None) -> list[int]:
    assert block_info is not None
    return [start for start, _ in block_info[0]["array-location"]]


def _deconvolve(
    block: NDArray[np.complex128],
    *,
    n: int,
    scheme: str,
    order: int,
    block_info: dict[Any, Any] | None = None,
) -> NDArray[np.complex128]:
    """Modes divided by the scheme's window (``order`` is part of the key: it changes bytes)."""
    kx, ky, kz = _block_frequencies(block.shape, _block_offsets(block_info), n)
    factor = 1.0 / (
        window(np.pi * kx / n, scheme=scheme)
        * window(np.pi * ky / n, scheme=scheme)
        * window(np.pi * kz / n, scheme=scheme)
    )
    return (block * factor).astype(block.dtype)


def _shell_mask(
    block: NDArray[np.complex128],
    *,
    n: int,
    low: float,
    high: float,
    block_info: dict[Any, Any] | None = None,
) -> NDArray[np.complex128]:
    """1 for modes with ``low <= |k| / k_F < high``, 0 elsewhere."""
    kx, ky, kz = _block_frequencies(block.shape, _block_offsets(block_info), n)
    k = np.sqrt((kx * kx + ky * ky + kz * kz).astype(np.float64))
    return ((k >= low) & (k < high)).astype(block.dtype)


def _aligned_blocks(
    arrays: Sequence[da.Array],
) -> list[tuple[list[Any], tuple[int, int, int]]]:
    """The blocks of equally chunked arrays, side by side, with their first indices."""
    first = arrays[0]
    starts = [np.concatenate(([0], np.cumsum(chunks)[:-1])) for chunks in first.chunks]
    delayed = [array.rechunk(first.chunks).to_delayed() for array in arrays]
    return [
        (
            [d[index] for d in delayed],
            (int(starts[0][index[0]]), int(starts[1][index[1]]), int(starts[2][index[2]])),
        )
        for index in np.ndindex(*first.numblocks)
    ]


def _power_block(
    *blocks: NDArray[np.complexfloating[Any, Any]],
    offsets: tuple[int, int, int],
    n: int,
    scheme: str,
    deconvolved: bool,
) -> NDArray[np.float64]:
    """Per-bin sums of one block of modes: the pure kernel of P(k) and the cross-power.

    Returns an array of shape ``(n_bins, 6)``: sum of ``|k| / k_F``, of ``|a|^2``, of
    ``|b|^2``, of ``Re(a b^*)``, the number of independent modes, and the sum of the shot-noise
    shape (aliased, over the squared window if deconvolved).
    """
    a = blocks[0]
    b = blocks[1] if len(blocks) > 1 else a
    kx, ky, kz = _block_frequencies(a.shape, offsets, n)
    middle = n // 2
    even = n % 2 == 0
    plane = (kz == 0) | ((kz == middle) & even)
    line = (kx == 0) | ((kx == middle) & even)
    independent = ~(plane & ((kx < 0) | (line & (ky < 0))))
    independent = np.broadcast_to(independent, a.shape)
    k = np.sqrt((kx * kx + ky * ky + kz * kz).astype(np.float64))
    k = np.broadcast_to(k, a.shape)[independent]
    n_bins = int(np.sqrt(3.0) * middle) + 1
    index = k.astype(np.int64)
    aa = (a.real.astype(np.float64) ** 2 + a.imag.astype(np.float64) ** 2)[independent]
    out = np.zeros((n_bins, 6))
    out[:, _SUM_K] = np.bincount(index, weights=k, minlength=n_bins)
    out[:, _SUM_AA] = np.bincount(index, weights=aa, minlength=n_bins)
    if len(blocks) > 1:
        bb = (b.real.astype(np.float64) ** 2 + b.imag.astype(np.float64) ** 2)[independent]
        ab = (a.real.astype(np.float64) * b.real + a.imag.astype(np.float64) * b.imag)[independent]
        out[:, _SUM_BB] = np.bincount(index, weights=bb, minlength=n_bins)
        out[:, _SUM_AB] = np.bincount(index, weights=ab, minlength=n_bins)
    out[:, _MODES] = np.bincount(index, minlength=n_bins)
    shape: Any = 1.0
    for kv in (kx, ky, kz):
        x = np.pi * kv / n
        aliased = aliased_window_squared(x, scheme=scheme)
        shape = shape * (aliased / window(x, scheme=scheme) ** 2 if deconvolved else aliased)
    shot = np.broadcast_to(shape, a.shape)[independent]
    out[:, _SHOT] = np.bincount(index, weights=shot, minlength=n_bins)
    return out


def _tree_sum(values: Sequence[Any]) -> Any:
    """Pairwise sum of delayed values in a fixed order (deterministic, log depth)."""
    level = list(values)
    while len(level) > 1:
        level = [
            level[i] + level[i + 1] if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


def _poisson_shot_noise(
    attrs: dict[str, Any], array: da.Array, box: float, measure: Spectra
) -> float:
    """``V sum(m^2) / (sum m)^2`` in (Mpc/h)^3; a region's from its own mass (see module)."""
    if "weight_sq_sum_msun2" not in attrs:
        raise ValueError("the field's attributes lack the weight sums shot noise needs")
    (region_mass,) = measure.compute(array.astype(np.float64).sum())
    mass_sq = (
        float(attrs["weight_sq_sum_msun2"]) * float(region_mass) / float(attrs["weight_sum_msun"])
    )
    return box**3 * mass_sq / float(region_mass) ** 2


def _write_catalog(
    store: Path,
    *,
    field: str,
    cross: str,
    region: Region,
    box: float,
    measurements: Sequence[Measurement],
    provenance: dict[str, Any],
) -> Path:
    """One more file of the ``spectra`` catalog, one row per measurement."""
    rows = len(measurements)
    columns = {
        "field": [field] * rows,
        "cross": [cross] * rows,
        "region": [region.label] * rows,
        "statistic": [m.statistic for m in measurements],
        "bins": [m.bins.tolist() for m in measurements],
        "values": [m.values.tolist() for m in measurements],
        "counts": [m.counts.tolist() for m in measurements],
        "bins_unit": [m.bins_unit for m in measurements],
        "values_unit": [m.values_unit for m in measurements],
        "k1_h_mpc": [m.k1_h_mpc for m in measurements],
        "k2_h_mpc": [m.k2_h_mpc for m in measurements],
        "box_mpc_h": [box] * rows,
        "grid": [region.side] * rows,
        "shot_noise": [m.shot_noise for m in measurements],
        "config": [json.dumps({**provenance, **m.notes}, sort_keys=True) for m in measurements],
    }
    return write_catalog(store, SPECTRA_CATALOG, columns, metadata=provenance)
