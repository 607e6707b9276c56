"""Stellar phase-space maps of a dwarf galaxy (Exposito-Marquez et al. 2022, section 2).

Two 64x64 probability maps per sample: ``xy``, the projected positions within +-2 kpc, and
``rv``, the projected radius in units of the half-light radius R/R_hlr in [0, 3] by default
(``rv_max_radius_hlr``; the paper's [0, 1] leaves out half of the stars) against the
line-of-sight velocity v_los / P98(|v_los|) in [-1, 1] (v_los about the systemic velocity,
the weighted median). Each map sums to 1 over the stars inside it.

The maps divide out a dwarf's size and velocity scale, and no map holds its stellar mass: an
observer knows all three (the paper's network sees none). Each sample also carries them as
``SCALARS`` (log10 of P98(|v_los|) in km/s, of R_hlr in kpc, and of M* in Msun), which a
network may take beside the maps (``model.scalars`` of the cusp_core task).

A galaxy gives many samples: lines of sight (isotropic random rotations) times random
subsets of ``n_stars`` stars, with optional Gaussian velocity errors. The kernel here is pure
numpy on one galaxy; the observe driver maps it over galaxies on a Dask client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.config import Checked, Range
from darkstack.store import PHASE_SPACE_ZARR

if TYPE_CHECKING:
    from distributed import Client

FloatArray = NDArray[np.float64]
#: Channel names of the maps, in order.
CHANNELS = PHASE_SPACE_ZARR.labels("channel")
#: Scalars of each sample, in order (the store's ``scalars`` columns).
SCALARS = PHASE_SPACE_ZARR.labels("scalar")


@dataclass(frozen=True, kw_only=True)
class PhaseSpaceConfig(Checked):
    """How the maps are made.

    Parameters
    ----------
    n_pixels : int
        Side of each map.
    extent_kpc : float
        The xy map covers [-extent, extent] kpc on both axes.
    velocity_percentile : float
        v is scaled by this percentile of |v_los| (98 in the paper).
    rv_max_radius_hlr : float
        The rv map covers R/R_hlr in [0, this]. 1 in the paper, which leaves out the
        velocities of the half of the stars outside R_hlr; 3 here, which on the mock dwarfs
        puts 3 more points in 100 within 0.1 of the slope and calibrates the posteriors
        (docs/cusp_core.md).
    n_lines_of_sight : int
        Random projections per galaxy.
    n_subsets : int
        Random subsets of stars per projection.
    n_stars : int
        Stars per subset (real dSph samples hold ~100-2000).
    velocity_error_kms : float
        Gaussian error added to each v_los (0 for none).
    seed : int
        Seed of the projections and subsets (galaxy i uses ``SeedSequence(seed, (i,))``).
    """

    n_pixels: Annotated[int, Range(ge=1)] = 64
    extent_kpc: Annotated[float, Range(gt=0)] = 2.0
    # A percentile of 0 would scale every velocity by |v_los|'s minimum, ~0.
    velocity_percentile: Annotated[float, Range(gt=0, le=100)] = 98.0
    rv_max_radius_hlr: Annotated[float, Range(gt=0)] = 3.0
    n_lines_of_sight: Annotated[int, Range(ge=1)] = 8
    n_subsets: Annotated[int, Range(ge=1)] = 4
    n_stars: Annotated[int, Range(ge=1)] = 1000
    velocity_error_kms: Annotated[float, Range(ge=0)] = 0.0
    # numpy's SeedSequence takes no negative entropy.
    seed: Annotated[int, Range(ge=0)] = 0


def weighted_median(values: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Median of ``values`` with non-negative ``weights`` (all 1 by default)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(v)
    cumulative = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def velocity_scale_kms(
    v_los_kms: ArrayLike,
    *,
    percentile: float,
    weights: ArrayLike | None = None,
    v_sys_kms: float | None = None,
) -> float:
    """The rv map's velocity unit: ``percentile`` of |v_los - v_sys| (v_sys: weighted median)."""
    v = np.asarray(v_los_kms, dtype=np.float64)
    v_sys = weighted_median(v, weights) if v_sys_kms is None else v_sys_kms
    return float(np.percentile(np.abs(v - v_sys), percentile))


def phase_space_maps(
    *,
    x_kpc: ArrayLike,
    y_kpc: ArrayLike,
    v_los_kms: ArrayLike,
    r_half_kpc: float,
    weights: ArrayLike | None = None,
    v_sys_kms: float | None = None,
    config: PhaseSpaceConfig = PhaseSpaceConfig(),
) -> FloatArray:
    """The ``(2, S, S)`` maps (xy, rv) of one set of stars; rows are y (or v), columns x (or R).

    Parameters
    ----------
    x_kpc, y_kpc : array_like (n,)
        Projected positions about the centre; R = sqrt(x^2 + y^2) (an elliptical radius can be
        passed by circularising x, y first).
    v_los_kms : array_like (n,)
        Line-of-sight velocities; ``v_sys_kms`` is subtracted.
    r_half_kpc : float
        Projected half-light radius.
    weights : array_like (n,), optional
        Membership probabilities.
    v_sys_kms : float, optional
        Systemic velocity; the weighted median of ``v_los_kms`` by default.
    config : PhaseSpaceConfig
        Map sizes.

    Raises
    ------
    ValueError
        If no star falls inside a map.
    """
    x = np.asarray(x_kpc, dtype=np.float64)
    y = np.asarray(y_kpc, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    v = np.asarray(v_los_kms, dtype=np.float64)
    v = v - (weighted_median(v, w) if v_sys_kms is None else v_sys_kms)
    scale = velocity_scale_kms(v, percentile=config.velocity_percentile, v_sys_kms=0.0)
    if not scale > 0:
        raise ValueError("v_los_kms has no spread about its median: the rv map needs >= 2 values")
    side = config.n_pixels
    extent = config.extent_kpc
    xy, _, _ = np.histogram2d(
        y, x, bins=side, range=[[-extent, extent], [-extent, extent]], weights=w
    )
    rv, _, _ = np.histogram2d(
        v / scale,
        np.hypot(x, y) / r_half_kpc,
        bins=side,
        range=[[-1.0, 1.0], [0.0, config.rv_max_radius_hlr]],
        weights=w,
    )
    maps = np.stack([xy, rv])
    totals = maps.sum(axis=(1, 2))
    if np.any(totals <= 0):
        empty = CHANNELS[int(np.argmin(totals))]
        raise ValueError(f"no star falls inside the {empty} map")
    return maps / totals[:, None, None]


def random_rotations(rng: np.random.Generator, n: int) -> FloatArray:
    """``n`` rotation matrices uniform on SO(3) (from normalised Gaussian quaternions)."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a, b, c, d = q.T
    return np.stack(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    ).transpose(2, 0, 1)


class SampleStars(NamedTuple):
    """One sample's stars as :func:`sample_stars` draws them."""

    x_kpc: FloatArray
    y_kpc: FloatArray
    v_los_kms: FloatArray
    #: The line of sight's projected half-light radius (all of the galaxy's stars).
    r_half_kpc: float


def sample_stars(
    rng: np.random.Generator,
    *,
    position_kpc: ArrayLike,
    velocity_kms: ArrayLike,
    config: PhaseSpaceConfig,
) -> Iterator[SampleStars]:
    """The stars of each of a galaxy's ``n_lines_of_sight * n_subsets`` samples, in order.

    For each line of sight the stars are rotated, R_hlr is the median projected radius of all
    of them (the projected half-light radius of equal-mass stars), and each subset draws
    ``n_stars`` stars without replacement, with ``velocity_error_kms`` added to v_los. The one
    place that draws them, so whatever else is measured on a sample sees the stars its maps do.
    """
    pos = np.asarray(position_kpc, dtype=np.float64)
    vel = np.asarray(velocity_kms, dtype=np.float64)
    if pos.shape[0] < config.n_stars:
        raise ValueError(
            f"the galaxy has {pos.shape[0]} stars, fewer than n_stars={config.n_stars}"
        )
    for rotation in random_rotations(rng, config.n_lines_of_sight):
        p = pos @ rotation.T
        v = vel @ rotation.T
        r_half = float(np.median(np.hypot(p[:, 0], p[:, 1])))
        for _ in range(config.n_subsets):
            pick = rng.choice(pos.shape[0], config.n_stars, replace=False)
            v_los = v[pick, 2] + config.velocity_error_kms * rng.standard_normal(config.n_stars)
            yield SampleStars(p[pick, 0], p[pick, 1], v_los, r_half)


def galaxy_samples(
    rng: np.random.Generator,
    *,
    position_kpc: ArrayLike,
    velocity_kms: ArrayLike,
    config: PhaseSpaceConfig,
) -> tuple[FloatArray, FloatArray]:
    """Maps ``(n, 2, S, S)`` of one galaxy's :func:`sample_stars`,
    ``n = n_lines_of_sight * n_subsets``, and each sample's scales ``(n, 2)``: log10
    P98(|v_los|) in km/s and log10 R_hlr in kpc."""
    samples, scales = [], []
    for stars in sample_stars(
        rng, position_kpc=position_kpc, velocity_kms=velocity_kms, config=config
    ):
        samples.append(
            phase_space_maps(
                x_kpc=stars.x_kpc,
                y_kpc=stars.y_kpc,
                v_los_kms=stars.v_los_kms,
                r_half_kpc=stars.r_half_kpc,
                config=config,
            )
        )
        v_scale = velocity_scale_kms(stars.v_los_kms, percentile=config.velocity_percentile)
        scales.append([np.log10(v_scale), np.log10(stars.r_half_kpc)])
    return np.stack(samples), np.array(scales)


def sample_scalars(scales: FloatArray, *, stellar_mass_msun: float) -> NDArray[np.float32]:
    """The ``SCALARS`` ``(n, 3)`` of a galaxy's samples from :func:`galaxy_samples`' scales
    and its stellar mass."""
    log_mass = np.full((len(scales), 1), np.log10(stellar_mass_msun))
    return np.hstack([scales, log_mass]).astype(np.float32)


def build_phase_space(
    config: PhaseSpaceConfig,
    *,
    store: str | Path,
    client: Client | None = None,
    progress: bool = True,
) -> Path:
    """Maps of every ``ok`` dwarf of ``catalogs/dwarfs.parquet`` into ``phase_space.zarr``.

    One task per dwarf (on ``client`` when given) reads its stars from the snapshot the
    catalog was measured on (:func:`darkstack.ingest.dwarfs.load_dwarf`) and returns its
    samples; the dataset is written once they are all in. A dwarf whose maps fail (too few
    stars for ``n_stars``) is left out and counted, never stopping the others.

    Returns
    -------
    Path
        The zarr dataset.
    """
    import darkstack
    from darkstack.config import config_to_dict
    from darkstack.ingest.dwarfs import TARGET_COLUMN
    from darkstack.store import DWARFS_CATALOG, PHASE_SPACE_ZARR, StoreLayout, read_catalog
    from darkstack.store.parquet import read_metadata
    from darkstack.tasks import map_tasks

    layout = StoreLayout(store)
    catalog = read_catalog(store, DWARFS_CATALOG).to_pandas()
    meta = read_metadata(layout.catalog(DWARFS_CATALOG.name))
    catalog = catalog[catalog["status"] == "ok"]
    results = map_tasks(
        _galaxy_task,
        list(catalog["subhalo_id"].astype(int)),
        client=client,
        description="phase-space maps",
        progress=progress,
        sim=meta["sim"],
        snapshot=int(meta["config"]["snapshot"]),
        config=config,
    )
    images, scalars, subhalo, line, targets = [], [], [], [], []
    per_galaxy = config.n_lines_of_sight * config.n_subsets
    columns = ["subhalo_id", TARGET_COLUMN, "stellar_mass_msun"]
    for (sid, target, stellar_mass), result in zip(
        catalog[columns].itertuples(index=False), results, strict=True
    ):
        if isinstance(result, str):
            continue
        maps, scales = result
        images.append(maps.astype(np.float32))
        scalars.append(sample_scalars(scales, stellar_mass_msun=stellar_mass))
        subhalo += [int(sid)] * per_galaxy
        line += list(np.repeat(np.arange(config.n_lines_of_sight), config.n_subsets))
        targets += [float(target)] * per_galaxy
    if not images:
        raise ValueError(f"no dwarf of {layout.catalog(DWARFS_CATALOG.name)} gave maps")
    stacked = np.concatenate(images)
    dataset = PHASE_SPACE_ZARR.build(
        coords={
            "sample": np.arange(len(stacked)),
            "channel": list(CHANNELS),
            "scalar": list(SCALARS),
            "subhalo_id": np.array(subhalo),
            "line_of_sight": np.array(line),
        },
        data_vars={
            "images": stacked,
            "scalars": np.concatenate(scalars),
            "targets": np.array(targets),
        },
        attrs={
            "config": json.dumps(config_to_dict(config)),
            "darkstack_version": darkstack.__version__,
            "n_failed": sum(isinstance(result, str) for result in results),
        },
    )
    path = layout.zarr(PHASE_SPACE_ZARR.name)
    dataset.to_zarr(path, mode="w", consolidated=False)
    return path


def _galaxy_task(
    subhalo_id: int, *, sim: str, snapshot: int, config: PhaseSpaceConfig
) -> tuple[FloatArray, FloatArray] | str:
    from darkstack.ingest.dwarfs import load_dwarf

    dwarf = load_dwarf(sim, snapshot, subhalo_id)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(subhalo_id,)))
    try:
        return galaxy_samples(
            rng,
            position_kpc=dwarf["star_position_kpc"],
            velocity_kms=dwarf["star_velocity_kms"],
            config=config,
        )
    except ValueError as error:
        return str(error)
