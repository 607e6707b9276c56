"""Step 1 of the rotation-curve baseline: one view of ``observations.zarr`` made again.

The HI cube of a sample is made again exactly as ``darkstack observe`` made it: the galaxy's
cutout rotated by the sample's stored orientation
(:func:`darkstack.features.observe.rotate_particles`), MARTINI at the stored distance with the
observe config of the zarr attributes (:func:`darkstack.features.hi.hi_cube`) and the same
noise seed (:func:`darkstack.features.observe.view_noise_seeds`), so its moment maps are the
stored ``hi_mom*`` channels; :func:`require_stored_moment0` refuses a view where they are not
(a store observed by another darkstack or MARTINI). The g-band image is read from the store.
The galaxy sits at the field centre at systemic velocity 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from darkstack.config import from_mapping
from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.evaluate.profiles.rotation_curve.errors import GalaxyFitError
from darkstack.features.hi import configure_numba_cache, hi_cube
from darkstack.features.observe import ObserveConfig, View, rotate_particles, view_noise_seeds
from darkstack.ingest.cutouts import read_cutout
from darkstack.store import OBSERVATIONS_ZARR, StoreLayout, open_dataset

_ARCSEC_PER_RADIAN: Final = 180.0 * 3600.0 / math.pi


@dataclass(frozen=True)
class ObservedView:
    """One sample of ``observations.zarr`` made again, with its HI cube.

    Attributes
    ----------
    sample, subhalo_id, realisation : int
        Which view.
    distance_mpc : float
        Its true distance.
    observe_config : ObserveConfig
        The config observe used (from the zarr attributes).
    cube_jy_per_beam : ndarray of float32, shape (n_channels, ny, nx)
        The HI cube as MARTINI made it for the view.
    velocities_kms : ndarray, shape (n_channels,)
        Channel centres relative to the systemic velocity, ascending.
    image_g_nmgy : ndarray, shape (ny, nx)
        The stored g-band image, nanomaggies per pixel.
    stored_mom0 : ndarray, shape (ny, nx)
        The stored HI moment 0, Jy/beam km/s.
    gas : dict of ndarray
        The cutout's gas cells in the observer frame.
    """

    sample: int
    subhalo_id: int
    realisation: int
    distance_mpc: float
    observe_config: ObserveConfig
    cube_jy_per_beam: NDArray[np.float32]
    velocities_kms: FloatArray
    image_g_nmgy: FloatArray
    stored_mom0: FloatArray
    gas: dict[str, np.ndarray] = field(repr=False)

    @property
    def pixel_kpc(self) -> float:
        """Side of one pixel at the view's distance."""
        return (
            self.observe_config.hi.pixel_size_arcsec / _ARCSEC_PER_RADIAN * 1e3 * self.distance_mpc
        )

    @property
    def beam_fwhm_kpc(self) -> float:
        """FWHM of the HI beam at the view's distance."""
        return (
            self.observe_config.hi.beam_fwhm_arcsec / _ARCSEC_PER_RADIAN * 1e3 * self.distance_mpc
        )


def regenerate_view(*, store: Path, sample: int) -> ObservedView:
    """The HI cube and g-band image of one sample of ``STORE/observations.zarr``.

    Parameters
    ----------
    store : Path
        A store written by ``darkstack observe``.
    sample : int
        Index along the zarr's ``sample`` dimension.

    Returns
    -------
    ObservedView
        The cube made again with the sample's orientation, distance, HI config and noise seed.
    """
    dataset = open_dataset(store, OBSERVATIONS_ZARR)
    n_samples = dataset.sizes["sample"]
    if not 0 <= sample < n_samples:
        raise ValueError(f"sample {sample} is outside observations.zarr's 0..{n_samples - 1}")
    config = from_mapping(ObserveConfig, json.loads(dataset.attrs["config"]), source="zarr attrs")
    view_data = dataset.isel(sample=sample)
    subhalo_id = int(view_data["subhalo_id"].values)
    realisation = int(view_data["realisation"].values)
    view = View(
        quaternion=tuple(float(q) for q in view_data["orientation"].values),  # type: ignore[arg-type]
        distance_mpc=float(view_data["distance_mpc"].values),
    )
    particles, _ = read_cutout(StoreLayout(store).cutout(subhalo_id))
    gas = rotate_particles(particles, view.rotation)["gas"]
    configure_numba_cache(Path(config.numba_cache_dir).expanduser())
    _, hi_seed = view_noise_seeds(seed=config.seed, subhalo_id=subhalo_id, realisation=realisation)
    cube, velocities = hi_cube(gas, distance_mpc=view.distance_mpc, config=config.hi, seed=hi_seed)
    # One read of the sample's image chunk for both stored channels.
    image_g, stored_mom0 = view_data["images"].sel(channel=["sdss_g", "hi_mom0"]).values
    return ObservedView(
        sample=sample,
        subhalo_id=subhalo_id,
        realisation=realisation,
        distance_mpc=view.distance_mpc,
        observe_config=config,
        cube_jy_per_beam=cube,
        velocities_kms=velocities,
        image_g_nmgy=np.asarray(image_g, dtype=np.float64),
        stored_mom0=np.asarray(stored_mom0, dtype=np.float64),
        gas=gas,
    )


def require_stored_moment0(*, rebuilt: FloatArray, stored: FloatArray) -> None:
    """Refuse a view whose rebuilt HI moment 0 is not the one ``observations.zarr`` holds.

    The rebuilt maps differ when the store was observed by another darkstack (e.g. before the
    smooth-and-clip mask, whose saved ``hi.mask_noise_sigma`` meant something else) or MARTINI;
    a fit to them would describe data the CNN never saw.

    Parameters
    ----------
    rebuilt, stored : ndarray, shape (ny, nx)
        Moment 0 in Jy/beam km/s from the rebuilt cube and from the store.

    Raises
    ------
    GalaxyFitError
        When they differ by more than float32 rounding (0.1% of the brightest pixel).
    """
    tolerance = 1e-3 * max(float(np.max(np.abs(stored))), float(np.finfo(np.float32).tiny))
    if rebuilt.shape != stored.shape or not np.allclose(rebuilt, stored, rtol=1e-3, atol=tolerance):
        raise GalaxyFitError(
            "the rebuilt HI moment 0 differs from observations.zarr's hi_mom0: the store was "
            "observed by another darkstack or MARTINI version; observe it again"
        )
