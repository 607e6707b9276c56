"""``observe --kind cluster_maps``: every cluster along many lines of sight, into a zarr dataset.

For each cluster cut out by ``ingest --task cluster_mass`` and each line of sight, the
particles are rotated (line of sight along the rotated z), projected through +-``depth_r200``
R200c with the shared SPH deposit (:mod:`darkstack.features.cluster_maps`) at a native
resolution ``oversample`` times finer than the map, smoothed by a Gaussian and binned
(block-averaged) to ``n_pixels``, as de Andres et al. (2023)'s code makes 640 px images and
bins them to 80. Channels: Compton-y, bolometric S_X, stellar surface density; the target
is the total surface density (dark matter + gas + stars).

Two framings (``framing``):

- ``paper``: centred on the group centre, ``2 half_width_r200`` R200c across (80 px over
  2 R200c), smoothing FWHM ``smoothing_fwhm_r200`` R200c: it uses the true R200c;
- ``observer``: centred on the brightest cluster galaxy (the group's first subhalo), a fixed
  ``aperture_kpc`` across, smoothing FWHM ``smoothing_fwhm_kpc``: it needs no truth.

S_X uses the Sutherland & Dopita (1993) CIE cooling function at each particle's metallicity.
Lines of sight: the 29 rotations of the public clusters2dmaps code (shipped as
``data/clusters2dmaps_29_rotations.txt``), or ``n_lines_of_sight`` Fibonacci directions
turned by one seeded random rotation. ``catalogs/cluster_observables.parquet`` holds per view
Y_cyl, L_X and the projected mass within the catalog's R500c around the map centre, summed
from the maps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

from darkstack.config import Checked, OneOf, Range, Rule
from darkstack.store.schema import CLUSTER_MAPS_ZARR

if TYPE_CHECKING:
    from distributed import Client

FloatArray = NDArray[np.float64]
#: Image channels, in order, as the store schema names them (with their units).
CHANNELS = CLUSTER_MAPS_ZARR.labels("channel")
#: The clusters2dmaps rotations.
ROTATIONS_FILE = "clusters2dmaps_29_rotations.txt"
#: Samples per zarr chunk of ``images`` and ``targets`` (1.5 MB of images at 64 px).
SAMPLES_PER_CHUNK = 16
#: FWHM of a Gaussian over its sigma.
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True, kw_only=True)
class ClusterMapsConfig(Checked):
    """How the cluster maps are made.

    Parameters
    ----------
    framing : str
        ``paper`` (true R200c sets the field and the smoothing) or ``observer`` (a fixed
        physical aperture on the BCG).
    n_pixels : int
        Side of each map (80 in the paper).
    half_width_r200 : float
        Paper framing: the map spans +-this many R200c (1: 2 R200c across).
    aperture_kpc : float
        Observer framing: the map's full width.
    depth_r200 : float
        Particles within +-this many R200c along the line of sight are projected.
    smoothing_fwhm_r200 : float
        Paper framing: FWHM of the Gaussian smoothing at native resolution, in R200c.
    smoothing_fwhm_kpc : float
        Observer framing: the same in kpc.
    oversample : int
        Native pixels per map pixel (8: the paper's 640 px binned to 80).
    lines_of_sight : str
        ``clusters2dmaps`` (the paper code's 29 rotations, the first ``n_lines_of_sight``) or
        ``fibonacci``.
    n_lines_of_sight : int
        Views per cluster (at most 29 for ``clusters2dmaps``).
    seed : int
        Seed of the random rotation of the Fibonacci directions.
    """

    framing: Annotated[str, OneOf(("paper", "observer"))] = "paper"
    n_pixels: Annotated[int, Range(ge=2)] = 80
    half_width_r200: Annotated[float, Range(gt=0)] = 1.0
    aperture_kpc: Annotated[float, Range(gt=0)] = 3000.0
    depth_r200: Annotated[float, Range(gt=0)] = 3.0
    smoothing_fwhm_r200: Annotated[float, Range(ge=0)] = 0.01
    smoothing_fwhm_kpc: Annotated[float, Range(ge=0)] = 15.0
    oversample: Annotated[int, Range(ge=1)] = 8
    lines_of_sight: Annotated[str, OneOf(("clusters2dmaps", "fibonacci"))] = "clusters2dmaps"
    n_lines_of_sight: Annotated[int, Range(ge=1)] = 29
    seed: Annotated[int, Range(ge=0)] = 0

    RULES = (
        Rule(
            key="n_lines_of_sight",
            problem=lambda c: (
                "<= 29 with lines_of_sight=clusters2dmaps (fibonacci gives more)"
                if c.lines_of_sight == "clusters2dmaps" and c.n_lines_of_sight > 29
                else None
            ),
        ),
    )


def euler_rotation(alpha_deg: float, beta_deg: float, gamma_deg: float) -> FloatArray:
    """Rxyz of clusters2dmaps' ``rotate_data``: rotated positions are ``pos @ Rxyz``."""
    sa, ca = np.sin(np.radians(alpha_deg)), np.cos(np.radians(alpha_deg))
    sb, cb = np.sin(np.radians(beta_deg)), np.cos(np.radians(beta_deg))
    sg, cg = np.sin(np.radians(gamma_deg)), np.cos(np.radians(gamma_deg))
    return np.array(
        [
            [cb * cg, cg * sa * sb - ca * sg, ca * cg * sb + sa * sg],
            [cb * sg, ca * cg + sa * sb * sg, ca * sb * sg - cg * sa],
            [-sb, cb * sa, ca * cb],
        ]
    )


def clusters2dmaps_rotations() -> FloatArray:
    """The 29 matrices R (positions @ R) of the paper's lines of sight."""
    text = (files("darkstack.features") / "data" / ROTATIONS_FILE).read_text()
    angles = np.loadtxt(text.splitlines(), ndmin=2)
    return np.stack([euler_rotation(*row) for row in angles])


def fibonacci_rotations(n: int, *, seed: int) -> FloatArray:
    """``n`` matrices R whose third column (the line of sight) is a Fibonacci-sphere direction.

    The whole set is turned by one random rotation (uniform on SO(3), seeded) so that no view
    sits on a simulation axis.
    """
    from scipy.spatial.transform import Rotation

    k = np.arange(n) + 0.5
    cos_theta = 1.0 - 2.0 * k / n
    phi = np.pi * (1.0 + np.sqrt(5.0)) * k
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    direction = np.column_stack((sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta))
    direction = direction @ Rotation.random(random_state=seed).as_matrix().T
    matrices = []
    for z in direction:
        helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        x = np.cross(helper, z)
        x /= np.linalg.norm(x)
        matrices.append(np.column_stack((x, np.cross(z, x), z)))
    return np.stack(matrices)


def view_rotations(config: ClusterMapsConfig) -> FloatArray:
    """The (n_lines_of_sight, 3, 3) matrices of ``config``."""
    if config.lines_of_sight == "clusters2dmaps":
        return clusters2dmaps_rotations()[: config.n_lines_of_sight]
    return fibonacci_rotations(config.n_lines_of_sight, seed=config.seed)


def frame(
    config: ClusterMapsConfig, *, r200c_kpc: float, bcg_offset_kpc: FloatArray
) -> tuple[FloatArray, float, float]:
    """Centre (kpc from the group centre, unrotated), half-width and smoothing FWHM (kpc)."""
    if config.framing == "paper":
        return (
            np.zeros(3),
            config.half_width_r200 * r200c_kpc,
            config.smoothing_fwhm_r200 * r200c_kpc,
        )
    return (
        np.asarray(bcg_offset_kpc, dtype=np.float64),
        0.5 * config.aperture_kpc,
        (config.smoothing_fwhm_kpc),
    )


def smooth_and_bin(image: FloatArray, *, sigma_px: float, factor: int) -> FloatArray:
    """Gaussian-smooth a native-resolution surface-density image, then block-average it."""
    if sigma_px > 0:
        # Only the two image axes: leading axes (channels) must not be mixed.
        sigma = (0.0,) * (image.ndim - 2) + (sigma_px, sigma_px)
        image = gaussian_filter(image, sigma, mode="constant")
    n = image.shape[-1] // factor
    return image.reshape(*image.shape[:-2], n, factor, n, factor).mean(axis=(-3, -1))


def cluster_views(
    cutout: dict[str, dict[str, FloatArray]],
    *,
    rotations: FloatArray,
    r200c_kpc: float,
    bcg_offset_kpc: FloatArray,
    config: ClusterMapsConfig,
) -> tuple[FloatArray, FloatArray, float]:
    """Images (view, channel, y, x), targets (view, y, x) and the map pixel (kpc) of a cluster.

    ``cutout`` holds the ``gas``, ``dm`` and ``stars`` arrays of
    :func:`darkstack.ingest.clusters.read_cluster_cutout`, positions from the group centre.
    """
    from darkstack.features.cluster_maps import (
        cluster_maps,
        smoothing_lengths_kpc,
        surface_density_map,
    )

    centre, half_width, fwhm = frame(config, r200c_kpc=r200c_kpc, bcg_offset_kpc=bcg_offset_kpc)
    native = config.n_pixels * config.oversample
    sigma_px = fwhm / _FWHM_PER_SIGMA / (2.0 * half_width / native)
    depth = config.depth_r200 * r200c_kpc
    gas, stars = cutout["gas"], cutout["stars"]
    h = {kind: smoothing_lengths_kpc(cutout[kind]["position_kpc"]) for kind in cutout}
    everything = np.concatenate([cutout[kind]["position_kpc"] for kind in cutout])
    all_mass = np.concatenate([cutout[kind]["mass_msun"] for kind in cutout])
    all_h = np.concatenate([h[kind] for kind in cutout])
    images, targets = [], []
    for rotation in rotations:
        maps = cluster_maps(
            gas_position_kpc=(gas["position_kpc"] - centre) @ rotation,
            gas_mass_msun=gas["mass_msun"],
            gas_density_msun_per_kpc3=gas["density_msun_per_kpc3"],
            gas_temperature_k=gas["temperature_k"],
            gas_electron_abundance=gas["electron_abundance"],
            gas_sfr_msun_per_yr=gas["sfr_msun_yr"],
            gas_metallicity=gas["metallicity"],
            star_position_kpc=(stars["position_kpc"] - centre) @ rotation,
            star_mass_msun=stars["mass_msun"],
            n_pixels=native,
            half_width_kpc=half_width,
            depth_kpc=depth,
            gas_smoothing_length_kpc=h["gas"],
            star_smoothing_length_kpc=h["stars"],
        )
        total = surface_density_map(
            position_kpc=(everything - centre) @ rotation,
            mass_msun=all_mass,
            n_pixels=native,
            half_width_kpc=half_width,
            depth_kpc=depth,
            smoothing_length_kpc=all_h,
        )
        stack = np.stack([maps[channel] for channel in CHANNELS] + [total])
        binned = smooth_and_bin(stack, sigma_px=sigma_px, factor=config.oversample)
        images.append(binned[:-1])
        targets.append(binned[-1])
    return np.stack(images), np.stack(targets), 2.0 * half_width / config.n_pixels


def pixel_radii_kpc(n_pixels: int, *, pixel_kpc: float) -> FloatArray:
    """Distance of each pixel centre of an ``n_pixels``-square map from its centre, kpc.

    The maps' convention: pixel ``(i, j)`` has its centre at ``((i + 0.5 - n / 2) p,
    (j + 0.5 - n / 2) p)``; a pixel is inside a circle when its centre is.
    """
    centres = (np.arange(n_pixels) + 0.5 - 0.5 * n_pixels) * pixel_kpc
    return np.asarray(np.hypot(*np.meshgrid(centres, centres, indexing="ij")))


def aperture_sums(
    images: FloatArray, targets: FloatArray, *, pixel_kpc: float, radius_kpc: float
) -> dict[str, FloatArray]:
    """Per view: Y_cyl (Mpc^2), L_X (erg/s) and projected mass (Msun) within ``radius_kpc``
    of the map centre (pixels whose centres are inside)."""
    inside = pixel_radii_kpc(images.shape[-1], pixel_kpc=pixel_kpc) <= radius_kpc
    area = pixel_kpc**2
    return {
        "y500_cyl_mpc2": images[:, 0][:, inside].sum(axis=1) * area / 1.0e6,
        "lx500_cyl_erg_s": images[:, 1][:, inside].sum(axis=1) * area,
        "mass500_cyl_msun": targets[:, inside].sum(axis=1) * area,
    }


def _cluster_task(
    row: dict[str, Any], *, store: str, rotations: FloatArray, config: ClusterMapsConfig
) -> tuple[FloatArray, FloatArray, float] | str:
    from darkstack.ingest.clusters import read_cluster_cutout
    from darkstack.store import StoreLayout

    path = StoreLayout(store).cluster_cutout(int(row["group_id"]))
    try:
        cutout = read_cluster_cutout(path)
    except (OSError, KeyError) as error:
        return f"{path}: {error}"
    offset = np.array([row[f"bcg_offset_{axis}_kpc"] for axis in "xyz"])
    try:
        return cluster_views(
            cutout,
            rotations=rotations,
            r200c_kpc=float(row["r200c_kpc"]),
            bcg_offset_kpc=offset,
            config=config,
        )
    except ValueError as error:
        # A degenerate cutout (non-finite positions, ...) fails alone.
        return f"{path}: {error}"


def build_cluster_maps(
    config: ClusterMapsConfig,
    *,
    store: str | Path,
    client: Client | None = None,
    progress: bool = True,
) -> Path:
    """Maps of every ``ok`` cluster of ``catalogs/clusters.parquet`` into ``cluster_maps.zarr``.

    One task per cluster (on ``client`` when given) reads its cutout and returns all its
    views; a cluster whose cutout cannot be read is left out and counted (``n_failed``),
    never stopping the others. Also writes ``catalogs/cluster_observables.parquet``.

    Returns
    -------
    Path
        The zarr dataset.
    """
    import darkstack
    from darkstack.config import config_to_dict
    from darkstack.store import (
        CLUSTER_OBSERVABLES_CATALOG,
        CLUSTERS_CATALOG,
        StoreLayout,
        read_catalog,
        write_catalog,
    )
    from darkstack.tasks import map_tasks

    layout = StoreLayout(store)
    catalog = read_catalog(store, CLUSTERS_CATALOG).to_pandas()
    catalog = catalog[catalog["status"] == "ok"]
    if catalog.empty:
        raise ValueError(
            f"{layout.catalog(CLUSTERS_CATALOG.name)}: no cluster with status ok; run "
            "`darkstack ingest --task cluster_mass` on a run with clusters"
        )
    rows = catalog.to_dict("records")
    rotations = view_rotations(config)
    results = map_tasks(
        _cluster_task,
        rows,
        client=client,
        description="cluster maps",
        progress=progress,
        store=str(store),
        rotations=rotations,
        config=config,
    )
    n_views = len(rotations)
    images: list[FloatArray] = []
    targets: list[FloatArray] = []
    group: list[int] = []
    line: list[int] = []
    pixel: list[float] = []
    observables: dict[str, list[Any]] = {c.name: [] for c in CLUSTER_OBSERVABLES_CATALOG.columns}
    for row, result in zip(rows, results, strict=True):
        if isinstance(result, str):
            continue
        view_images, view_targets, pixel_kpc = result
        sums = aperture_sums(
            view_images, view_targets, pixel_kpc=pixel_kpc, radius_kpc=float(row["r500c_kpc"])
        )
        first = len(group)
        images.append(view_images)
        targets.append(view_targets)
        group += [int(row["group_id"])] * n_views
        line += list(range(n_views))
        pixel += [pixel_kpc] * n_views
        observables["sample"] += list(range(first, first + n_views))
        observables["group_id"] += [int(row["group_id"])] * n_views
        observables["line_of_sight"] += list(range(n_views))
        observables["framing"] += [config.framing] * n_views
        observables["aperture_kpc"] += [pixel_kpc * config.n_pixels] * n_views
        for name, values in sums.items():
            observables[name] += list(values)
    if not images:
        raise ValueError(
            f"no cluster of {layout.catalog(CLUSTERS_CATALOG.name)} gave maps: "
            + "; ".join(r for r in results if isinstance(r, str))[:300]
        )
    stacked = np.concatenate(images)
    dataset = CLUSTER_MAPS_ZARR.build(
        coords={
            "sample": np.arange(len(stacked)),
            "channel": list(CHANNELS),
            "group_id": np.array(group),
            "line_of_sight": np.array(line),
            "pixel_kpc": np.array(pixel),
        },
        data_vars={"images": stacked, "targets": np.concatenate(targets)},
        attrs={
            "config": json.dumps(config_to_dict(config)),
            "darkstack_version": darkstack.__version__,
            "framing": config.framing,
            "n_failed": sum(isinstance(result, str) for result in results),
        },
    )
    path = layout.zarr(CLUSTER_MAPS_ZARR.name)
    # Whole samples per chunk: training reads a batch of samples with every channel and pixel.
    # zarr's automatic chunks (900 samples x 1 channel x 16 x 16 pixels on the scaled preset)
    # made each batch of 16 decompress tens of MB, 6x the U-Net's own step time.
    side = (config.n_pixels, config.n_pixels)
    dataset.to_zarr(
        path,
        mode="w",
        consolidated=False,
        encoding={
            "images": {"chunks": (SAMPLES_PER_CHUNK, len(CHANNELS), *side)},
            "targets": {"chunks": (SAMPLES_PER_CHUNK, *side)},
        },
    )
    write_catalog(
        store,
        CLUSTER_OBSERVABLES_CATALOG,
        observables,
        metadata={"config": config_to_dict(config)},
    )
    return path


__all__ = [
    "CHANNELS",
    "ClusterMapsConfig",
    "aperture_sums",
    "build_cluster_maps",
    "cluster_views",
    "clusters2dmaps_rotations",
    "euler_rotation",
    "fibonacci_rotations",
    "frame",
    "pixel_radii_kpc",
    "smooth_and_bin",
    "view_rotations",
]
