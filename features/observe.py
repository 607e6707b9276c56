"""``darkstack observe``: mock SDSS images and HI moment maps of every galaxy, into zarr.

For each galaxy with status ``ok`` in ``catalogs/galaxies.parquet`` and each of N
realisations, a random orientation (uniform on the sphere) and a distance (uniform in
10-20 Mpc) are drawn from ``(seed, subhalo_id, realisation)`` alone; the cutout is rotated into
that observer frame once and handed to both the photometry renderer and MARTINI, so images and
HI maps share the view. Channels are ``sdss_u ... sdss_z, hi_mom0, hi_mom1, hi_mom2``.

Storage: ``STORE/observations.zarr`` is an xarray Dataset whose ``images(sample, channel, y,
x)`` has one chunk per sample, so parallel writers never share a chunk; the driver writes the
coordinates and ``targets(sample, radius)`` up front, tasks fill image chunks in place with
zarr region writes and leave a small completion record; ``catalogs/observations.parquet`` is
built from those records (one row per sample with its status). A rerun skips recorded samples
and writes the same bytes; a failed sample is recorded and leaves NaN images.

Recovery (:mod:`darkstack.status`): a sample that failed for an environmental reason (its
cutout missing or unreadable, a full disk) is recorded as ``retry: ...`` and observed again by
the next run, which then writes the same bytes as an uninterrupted build; a data failure stays.
Provenance (:mod:`darkstack.provenance`): ``observations.zarr`` records its config and the
galaxies it was drawn for; a rerun with another config, or after a re-ingest that changed the
usable galaxies or their targets, refuses naming what differs, unless ``rebuild``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd

import darkstack
from darkstack.atomic import atomic_path
from darkstack.config import Checked, Range, Rule, config_to_dict, dump_config, shown
from darkstack.features.hi import HIConfig, configure_numba_cache, hi_moment_maps, write_cube_fits
from darkstack.features.photometry import (
    PhotometryConfig,
    render_sdss,
    star_smoothing_length_kpc,
)
from darkstack.features.skirt import SkirtConfig
from darkstack.ingest.cutouts import read_cutout
from darkstack.provenance import describe_change, differing_keys, refuse
from darkstack.status import BuildReport, failure_status, needs_retry, summarise
from darkstack.store import (
    GALAXIES_CATALOG,
    OBSERVATIONS_CATALOG,
    OBSERVATIONS_ZARR,
    SchemaError,
    StoreLayout,
    read_catalog,
    read_metadata,
    write_catalog,
)
from darkstack.tasks import map_tasks

if TYPE_CHECKING:
    from distributed import Client

#: The image channels, in the order of ``images``: the SDSS bands in photometry's ``BANDS``
#: order (what ``render_sdss`` returns), then the HI moments.
CHANNELS = OBSERVATIONS_ZARR.labels("channel")


def _shared_grid(name: str) -> Callable[[ObserveConfig], str | None]:
    """The rule that the HI maps' ``name`` equals the images': channels of one array share
    its pixel grid."""

    def problem(config: ObserveConfig) -> str | None:
        images = getattr(config.photometry, name)
        if getattr(config.hi, name) == images:
            return None
        return f"photometry.{name}={shown(images)} (the images and the HI maps share one grid)"

    return problem


@dataclass(frozen=True, kw_only=True)
class ObserveConfig(Checked):
    """How observations are drawn and made.

    Parameters
    ----------
    seed : int
        With the subhalo ID and realisation, fixes each view's orientation, distance and noise.
    n_realisations : int
        Views per galaxy (3 in the paper).
    distance_min_mpc, distance_max_mpc : float
        Range of the uniformly drawn distance.
    photometry_backend : {"bc03", "skirt"}
        The built-in renderer, or SKIRT where its executable exists.
    photometry, skirt, hi : configs
        Settings of each step.
    keep_cube_subhalos : tuple of int
        Galaxies whose HI cubes are also written as FITS (``STORE/cubes/``).
    numba_cache_dir : str
        Where MARTINI's compiled kernels are cached; must be writable by every worker (a
        shared filesystem on a cluster), so they compile once rather than in every process.
    """

    # numpy's SeedSequence takes no negative entropy.
    seed: Annotated[int, Range(ge=0)] = 0
    n_realisations: Annotated[int, Range(ge=1)] = 3
    distance_min_mpc: Annotated[float, Range(gt=0)] = 10.0
    distance_max_mpc: Annotated[float, Range(gt=0)] = 20.0
    photometry_backend: Literal["bc03", "skirt"] = "bc03"
    photometry: PhotometryConfig = field(default_factory=PhotometryConfig)
    skirt: SkirtConfig = field(default_factory=SkirtConfig)
    hi: HIConfig = field(default_factory=HIConfig)
    keep_cube_subhalos: Annotated[tuple[int, ...], Range(ge=0)] = ()
    numba_cache_dir: str = "~/.cache/darkstack/numba"

    RULES = (
        Rule.ordered("distance_max_mpc", ">=", "distance_min_mpc"),
        Rule("hi.n_pixels", _shared_grid("n_pixels")),
        Rule("hi.field_of_view_arcmin", _shared_grid("field_of_view_arcmin")),
    )


@dataclass(frozen=True)
class View:
    """One realisation: how a galaxy is seen."""

    quaternion: tuple[float, float, float, float]
    distance_mpc: float

    @property
    def rotation(self) -> np.ndarray:
        from scipy.spatial.transform import Rotation

        return Rotation.from_quat(self.quaternion).as_matrix()


def draw_view(*, seed: int, subhalo_id: int, realisation: int, config: ObserveConfig) -> View:
    """Orientation uniform on SO(3) and a uniform distance, from (seed, galaxy, realisation)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(subhalo_id, realisation)))
    quaternion = Rotation.random(random_state=rng).as_quat()
    distance = rng.uniform(config.distance_min_mpc, config.distance_max_mpc)
    return View(quaternion=tuple(float(q) for q in quaternion), distance_mpc=float(distance))  # type: ignore[arg-type]


def view_noise_seeds(
    *, seed: int, subhalo_id: int, realisation: int
) -> tuple[np.random.SeedSequence, int]:
    """The noise seeds of one view: the optical images' SeedSequence and MARTINI's HI seed."""
    noise_seed = np.random.SeedSequence(seed, spawn_key=(subhalo_id, realisation, 1))
    return noise_seed, int(noise_seed.generate_state(1)[0])


def rotate_particles(
    particles: dict[str, dict[str, np.ndarray]], rotation: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """The cutout in the observer frame: x, y on the sky, z along the line of sight (away)."""
    rotated = {}
    for kind, fields in particles.items():
        fields = dict(fields)
        for name in ("position_kpc", "velocity_kms"):
            fields[name] = np.asarray(fields[name], dtype=np.float64) @ rotation.T
        rotated[kind] = fields
    return rotated


@dataclass(frozen=True)
class _GalaxyJob:
    subhalo_id: int
    first_sample: int


@dataclass(frozen=True)
class ObserveSummary:
    """What an observe run wrote."""

    store: Path
    report: BuildReport

    @property
    def n_samples(self) -> int:
        return self.report.n_items

    @property
    def n_ok(self) -> int:
        return self.report.n_ok


def run_observe(
    config: ObserveConfig,
    *,
    store: str | Path,
    client: Client | None = None,
    progress: bool = True,
    rebuild: bool = False,
) -> ObserveSummary:
    """Observe every usable galaxy of ``store``; see the module docstring.

    Parameters
    ----------
    config : ObserveConfig
        Realisations, photometry and HI settings.
    store : str or Path
        A store written by ``darkstack ingest``.
    client : distributed.Client, optional
        Dask client; None works in this process.
    progress : bool
        Show progress bars.
    rebuild : bool
        Replace an ``observations.zarr`` made with another config or for other galaxies
        instead of refusing it.

    Raises
    ------
    ProvenanceError
        ``observations.zarr`` was made differently and ``rebuild`` is false.
    """
    store = Path(store)
    layout = StoreLayout(store)
    galaxies = read_catalog(store, GALAXIES_CATALOG).to_pandas()
    galaxies = galaxies[galaxies["status"] == "ok"].sort_values("subhalo_id")
    radii = np.asarray(
        read_metadata(layout.catalog(GALAXIES_CATALOG.name))["radii_kpc"], dtype=np.float64
    )
    n_real = config.n_realisations
    jobs = [
        _GalaxyJob(subhalo_id=int(sid), first_sample=index * n_real)
        for index, sid in enumerate(galaxies["subhalo_id"])
    ]
    records = layout.work(OBSERVATIONS_ZARR.name)
    _initialise_zarr(layout, galaxies, radii, config, rebuild=rebuild)
    pending = [job for job in jobs if not _job_done(records, job, n_real)]
    map_tasks(
        _observe_galaxy,
        pending,
        client=client,
        description="observe galaxies",
        progress=progress,
        store=store,
        config=config,
    )
    rows = [
        _read_record(records, job, realisation=r, config=config)
        for job in jobs
        for r in range(n_real)
    ]
    columns = {
        column.name: [row[column.name] for row in rows] for column in OBSERVATIONS_CATALOG.columns
    }
    metadata = {"config": config_to_dict(config), "channels": list(CHANNELS)}
    write_catalog(store, OBSERVATIONS_CATALOG, columns, metadata=metadata)
    dump_config(config, layout.observe_config)
    report = summarise((row["status"] for row in rows), build="observe", unit="samples")
    return ObserveSummary(store=store, report=report)


#: Settings that do not change what observe writes.
_NOT_PROVENANCE = ("numba_cache_dir",)


def _initialise_zarr(
    layout: StoreLayout,
    galaxies: pd.DataFrame,
    radii_kpc: np.ndarray,
    config: ObserveConfig,
    *,
    rebuild: bool,
) -> None:
    """Write coordinates, targets and the empty chunked image array, once per config."""
    import dask.array as da

    settings = config_to_dict(config)
    provenance = json.dumps(settings, sort_keys=True)
    targets = np.stack(galaxies["log10_mdm_enclosed"].to_numpy()).astype(np.float32)
    drawn_for = _galaxies_fingerprint(galaxies["subhalo_id"].to_numpy(np.int64), targets)
    path = layout.zarr(OBSERVATIONS_ZARR.name)
    if path.exists():
        try:
            existing = OBSERVATIONS_ZARR.check(path).attrs
        except SchemaError:
            # Another format (an older darkstack's) or a damaged dataset: only --rebuild
            # replaces it, since its images cannot be kept.
            if not rebuild:
                raise
        else:
            saved = json.loads(existing.get("config", "{}"))
            keys = differing_keys(saved, settings, ignore=_NOT_PROVENANCE)
            change = describe_change(saved, settings, keys)
            if existing.get("galaxies", drawn_for) != drawn_for:
                change = ", ".join(
                    filter(None, [change, "the ok galaxies or their targets (re-ingested since)"])
                )
            if not change:
                return
            if not rebuild:
                raise refuse(path, change, what="observe again")
        shutil.rmtree(path)
        shutil.rmtree(layout.work(OBSERVATIONS_ZARR.name), ignore_errors=True)
    n_real = config.n_realisations
    n_pixels = config.photometry.n_pixels
    subhalo = np.repeat(galaxies["subhalo_id"].to_numpy(np.int64), n_real)
    realisation = np.tile(np.arange(n_real, dtype=np.int64), len(galaxies))
    views = [
        draw_view(seed=config.seed, subhalo_id=int(s), realisation=int(r), config=config)
        for s, r in zip(subhalo, realisation, strict=True)
    ]
    targets = np.repeat(targets, n_real, axis=0)
    n_samples = len(views)
    images = da.full(
        (n_samples, len(CHANNELS), n_pixels, n_pixels),
        np.nan,
        dtype=np.float32,
        chunks=(1, len(CHANNELS), n_pixels, n_pixels),
    )
    dataset = OBSERVATIONS_ZARR.build(
        data_vars={"images": images, "targets": targets},
        coords={
            "sample": np.arange(n_samples),
            "channel": CHANNELS,
            "radius": radii_kpc,
            "subhalo_id": subhalo,
            "realisation": realisation,
            "distance_mpc": [v.distance_mpc for v in views],
            "orientation": [v.quaternion for v in views],
        },
        attrs={
            "config": provenance,
            "galaxies": drawn_for,
            "darkstack_version": darkstack.__version__,
        },
    )
    # compute=False defers only the dask-backed images; coordinates and targets are written.
    dataset.to_zarr(path, mode="w", compute=False, consolidated=False)


def _galaxies_fingerprint(subhalo_ids: np.ndarray, targets: np.ndarray) -> str:
    """What the samples were drawn for: the usable galaxies and their float32 targets."""
    digest = hashlib.sha256(np.ascontiguousarray(subhalo_ids, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(targets, dtype="<f4").tobytes())
    return digest.hexdigest()[:16]


def _record_path(records: Path, sample: int) -> Path:
    return records / f"sample_{sample:08d}.json"


def _job_done(records: Path, job: _GalaxyJob, n_real: int) -> bool:
    """Every view of the galaxy is recorded, none with an environmental failure to retry."""
    for realisation in range(n_real):
        path = _record_path(records, job.first_sample + realisation)
        if not path.exists() or needs_retry(json.loads(path.read_text())["status"]):
            return False
    return True


def _read_record(
    records: Path, job: _GalaxyJob, *, realisation: int, config: ObserveConfig
) -> dict[str, Any]:
    """A sample's record; a lost task's missing one reads as a failure to retry."""
    path = _record_path(records, job.first_sample + realisation)
    if path.exists():
        record: dict[str, Any] = json.loads(path.read_text())
        return record
    lost = FileNotFoundError(f"no completion record {path.name}: its task did not finish")
    view = draw_view(
        seed=config.seed, subhalo_id=job.subhalo_id, realisation=realisation, config=config
    )
    return _new_record(job, realisation=realisation, view=view, config=config) | {
        "status": failure_status(lost)
    }


def _new_record(
    job: _GalaxyJob, *, realisation: int, view: View, config: ObserveConfig
) -> dict[str, Any]:
    """A sample's record before it is observed: its view, no fluxes, no status yet."""
    return {
        "sample": job.first_sample + realisation,
        "subhalo_id": job.subhalo_id,
        "realisation": realisation,
        "distance_mpc": view.distance_mpc,
        "orientation_quaternion": list(view.quaternion),
        "photometry_backend": config.photometry_backend,
        "r_band_flux_nanomaggies": float("nan"),
        "hi_flux_jy_kms": float("nan"),
    }


def _observe_galaxy(job: _GalaxyJob, *, store: Path, config: ObserveConfig) -> None:
    """One task: every realisation of one galaxy (its cutout is read once)."""
    import zarr

    configure_numba_cache(Path(config.numba_cache_dir).expanduser())
    layout = StoreLayout(store)
    images = zarr.open_array(layout.zarr(OBSERVATIONS_ZARR.name) / "images", mode="r+")
    records = layout.work(OBSERVATIONS_ZARR.name)
    records.mkdir(exist_ok=True)
    try:
        particles, _ = read_cutout(layout.cutout(job.subhalo_id))
        stars = particles["stars"]
        if config.photometry_backend == "bc03" and "smoothing_length_kpc" not in stars:
            # 3D neighbour distances do not depend on the view: found once for all of them.
            stars["smoothing_length_kpc"] = star_smoothing_length_kpc(
                position_kpc=stars["position_kpc"],
                n_neighbours=config.photometry.kernel_neighbours,
            )
        error = None
    except Exception as exc:  # recorded per sample below
        particles, error = {}, exc
    for realisation in range(config.n_realisations):
        sample = job.first_sample + realisation
        view = draw_view(
            seed=config.seed, subhalo_id=job.subhalo_id, realisation=realisation, config=config
        )
        record = _new_record(job, realisation=realisation, view=view, config=config)
        try:
            if error is not None:
                raise error
            stack = _observe(
                particles, view, job=job, realisation=realisation, store=store, config=config
            )
            images[sample] = stack
            record["r_band_flux_nanomaggies"] = float(np.sum(stack[2]))
            # Moment 0 is per beam: summing pixels counts each beam beam_area_pixels times.
            record["hi_flux_jy_kms"] = float(np.sum(stack[5]) / config.hi.beam_area_pixels)
            record["status"] = "ok"
        except Exception as exc:  # one view's failure must not lose the build
            record["status"] = failure_status(exc)
        _write_record(_record_path(records, sample), record)


def _observe(
    particles: dict[str, dict[str, np.ndarray]],
    view: View,
    *,
    job: _GalaxyJob,
    realisation: int,
    store: Path,
    config: ObserveConfig,
) -> np.ndarray:
    """The 8 channels of one view."""
    observed = rotate_particles(particles, view.rotation)
    noise_seed, hi_seed = view_noise_seeds(
        seed=config.seed, subhalo_id=job.subhalo_id, realisation=realisation
    )
    if config.photometry_backend == "skirt":
        optical = _skirt_images(
            observed, view, store=store, config=config, sample=job.first_sample + realisation
        )
    else:
        optical = render_sdss(
            observed["stars"],
            observed["gas"],
            distance_mpc=view.distance_mpc,
            config=config.photometry,
            rng=np.random.default_rng(noise_seed),
        )
    keep_cube = job.subhalo_id in config.keep_cube_subhalos
    maps = hi_moment_maps(
        observed["gas"],
        distance_mpc=view.distance_mpc,
        config=config.hi,
        seed=hi_seed,
        keep_cube=keep_cube,
    )
    if keep_cube:
        write_cube_fits(
            StoreLayout(store).hi_cube(job.subhalo_id, realisation),
            maps,
            distance_mpc=view.distance_mpc,
            config=config.hi,
        )
    return np.concatenate(
        [np.asarray(optical, dtype=np.float32), np.stack([maps.mom0, maps.mom1, maps.mom2])]
    ).astype(np.float32)


def _skirt_images(
    observed: dict[str, dict[str, np.ndarray]],
    view: View,
    *,
    store: Path,
    config: ObserveConfig,
    sample: int,
) -> np.ndarray:
    from darkstack.features.photometry import (
        apply_psf_and_noise,
        band_flux_nanomaggies_from_spectrum,
    )
    from darkstack.features.skirt import read_skirt_frame, run_skirt, write_skirt_inputs

    run = write_skirt_inputs(
        StoreLayout(store).skirt_run(sample),
        stars=observed["stars"],
        gas=observed["gas"],
        distance_mpc=view.distance_mpc,
        config=config.skirt,
    )
    wavelength, f_lambda = read_skirt_frame(run_skirt(run, config=config.skirt))
    fluxes = band_flux_nanomaggies_from_spectrum(wavelength, np.moveaxis(f_lambda, 0, -1))
    noise_seed = np.random.SeedSequence(config.seed, spawn_key=(sample, 2))
    return apply_psf_and_noise(
        np.moveaxis(fluxes, -1, 0), config=config.photometry, rng=np.random.default_rng(noise_seed)
    )


def _write_record(path: Path, record: dict[str, Any]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(record, sort_keys=True))
