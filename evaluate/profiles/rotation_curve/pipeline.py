"""The rotation-curve baseline run on chosen samples of a store, one row each.

A galaxy that cannot be fitted gets a ``status`` saying why (too few HI pixels, nearly face-on
or edge-on, too few rings, no exponential disk) and NaN results, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from darkstack.evaluate.profiles.rotation_curve._types import FloatArray
from darkstack.evaluate.profiles.rotation_curve.config import RotationCurveConfig
from darkstack.evaluate.profiles.rotation_curve.disk import fit_exponential_disk
from darkstack.evaluate.profiles.rotation_curve.errors import GalaxyFitError
from darkstack.evaluate.profiles.rotation_curve.geometry import estimate_geometry, true_geometry
from darkstack.evaluate.profiles.rotation_curve.kinematics import (
    central_region,
    peak_velocity_map,
    ring_rotation_curve,
)
from darkstack.evaluate.profiles.rotation_curve.mass_model import fit_mass_model
from darkstack.evaluate.profiles.rotation_curve.view import regenerate_view, require_stored_moment0
from darkstack.features.hi import emission_moments
from darkstack.features.observe import ObserveConfig
from darkstack.features.photometry import BANDS, sky_noise_nanomaggies_per_pixel
from darkstack.store import (
    OBSERVATIONS_CATALOG,
    OBSERVATIONS_ZARR,
    StoreLayout,
    open_dataset,
    read_catalog,
)


def rotation_curve_masses(
    *, store: Path, samples: Sequence[int], config: RotationCurveConfig
) -> pd.DataFrame:
    """Enclosed dark-matter masses of chosen samples from their rotation curves (§5.6).

    Parameters
    ----------
    store : Path
        A store written by ``darkstack ingest`` and ``darkstack observe``.
    samples : sequence of int
        Indices along ``observations.zarr``'s ``sample`` dimension (a few: each fit takes
        seconds).
    config : RotationCurveConfig
        Geometry, ring, disk-fit, prior and sampler settings.

    Returns
    -------
    pandas.DataFrame
        One row per sample: ``sample``, ``subhalo_id``, ``realisation``, ``distance_mpc``,
        ``status`` (``ok`` or why it failed), ``n_hi_pixels``, the geometry used
        (``position_angle_deg``, ``inclination_deg``) and the true one
        (``position_angle_true_deg``, ``inclination_true_deg``), the rotation curve
        (``rc_radius_kpc``, ``rc_v_kms``, ``rc_v_err_kms``, lists), the disk
        (``disk_scale_length_kpc``, ``disk_luminosity_lsun_g``), posterior medians
        (``v200_kms``, ``c200``, ``upsilon``, ``distance_fit_mpc``, ``inclination_fit_deg``),
        ``acceptance_fraction`` and ``log10_mdm_median``, ``log10_mdm_p16``,
        ``log10_mdm_p84`` (lists over the store's radii, log10 Msun); NaN where not reached.
    """
    store = Path(store)
    dataset = open_dataset(store, OBSERVATIONS_ZARR)
    radii_kpc = np.asarray(dataset["radius"].values, dtype=np.float64)
    n_samples = dataset.sizes["sample"]
    bad = [s for s in samples if not (isinstance(s, int | np.integer) and 0 <= s < n_samples)]
    if bad:
        raise ValueError(f"samples {bad} are not indices of observations.zarr (0..{n_samples - 1})")
    observed_status = _observe_statuses(store)
    rows = []
    for sample in samples:
        row = _empty_row(
            sample=int(sample),
            subhalo_id=int(dataset["subhalo_id"].values[sample]),
            realisation=int(dataset["realisation"].values[sample]),
            distance_mpc=float(dataset["distance_mpc"].values[sample]),
            n_radii=radii_kpc.size,
        )
        status = observed_status.get(int(sample), "ok")
        if status != "ok":
            row["status"] = f"failed: observation {status}"
        else:
            try:
                _analyse(row, store=store, radii_kpc=radii_kpc, config=config)
                row["status"] = "ok"
            except GalaxyFitError as failure:
                row["status"] = f"failed: {failure}"
            except Exception as error:  # one galaxy's failure must not lose the others
                row["status"] = f"failed: {type(error).__name__}: {error}"
        rows.append(row)
    return pd.DataFrame(rows)


def _g_band_noise_nmgy(config: ObserveConfig) -> float:
    if not config.photometry.noise:
        return 0.0
    return float(sky_noise_nanomaggies_per_pixel(config.photometry)[BANDS.index("g")])


def _observe_statuses(store: Path) -> dict[int, str]:
    if not StoreLayout(store).catalog(OBSERVATIONS_CATALOG.name).is_file():
        return {}
    table = read_catalog(store, OBSERVATIONS_CATALOG, columns=["sample", "status"]).to_pandas()
    return dict(zip(table["sample"].astype(int), table["status"], strict=True))


def _empty_row(
    *, sample: int, subhalo_id: int, realisation: int, distance_mpc: float, n_radii: int
) -> dict[str, Any]:
    nan = float("nan")
    return {
        "sample": sample,
        "subhalo_id": subhalo_id,
        "realisation": realisation,
        "distance_mpc": distance_mpc,
        "status": "",
        "n_hi_pixels": 0,
        "position_angle_deg": nan,
        "inclination_deg": nan,
        "position_angle_true_deg": nan,
        "inclination_true_deg": nan,
        "rc_radius_kpc": [],
        "rc_v_kms": [],
        "rc_v_err_kms": [],
        "disk_scale_length_kpc": nan,
        "disk_luminosity_lsun_g": nan,
        "v200_kms": nan,
        "c200": nan,
        "upsilon": nan,
        "distance_fit_mpc": nan,
        "inclination_fit_deg": nan,
        "acceptance_fraction": nan,
        "log10_mdm_median": [nan] * n_radii,
        "log10_mdm_p16": [nan] * n_radii,
        "log10_mdm_p84": [nan] * n_radii,
    }


def _analyse(
    row: dict[str, Any], *, store: Path, radii_kpc: FloatArray, config: RotationCurveConfig
) -> None:
    """Fill ``row`` step by step; a :class:`GalaxyFitError` leaves the later steps NaN."""
    view = regenerate_view(store=store, sample=row["sample"])
    hi_config = view.observe_config.hi
    mask, mom0, _, _ = emission_moments(
        view.cube_jy_per_beam, view.velocities_kms, config=hi_config
    )
    require_stored_moment0(rebuilt=mom0, stored=view.stored_mom0)
    noise_jy_per_beam = hi_config.noise_jy_per_beam if hi_config.noise else 0.0
    velocity = peak_velocity_map(
        cube=view.cube_jy_per_beam,
        velocities_kms=view.velocities_kms,
        mask=mask,
        min_peak_jy_per_beam=config.velocity_min_peak_snr * noise_jy_per_beam,
    )
    # The shape comes from all of the galaxy's HI, the velocities from the connected part of its
    # bright pixels: faint patches beyond it, seen through an inclined disk, deproject to radii
    # far outside the disk.
    region = central_region(mom0 > 0)
    bright = region & np.isfinite(velocity)
    velocity_region = central_region(bright)
    velocity = np.where(velocity_region, velocity, np.nan)
    row["n_hi_pixels"] = int(velocity_region.sum())
    own = np.asarray(view.gas["in_subhalo"], dtype=bool)
    truth = true_geometry(
        {
            name: np.asarray(view.gas[name])[own]
            for name in ("position_kpc", "velocity_kms", "hi_mass_msun")
        }
    )
    row["position_angle_true_deg"] = truth.position_angle_deg
    row["inclination_true_deg"] = truth.inclination_deg
    if row["n_hi_pixels"] < config.min_hi_pixels:
        raise GalaxyFitError(
            f"too few bright HI pixels connected to the centre ({row['n_hi_pixels']} < "
            f"{config.min_hi_pixels}; {int(bright.sum())} bright of {int(region.sum())} HI pixels)"
        )
    geometry = (
        truth
        if config.geometry == "known"
        else estimate_geometry(
            mom0=np.where(region, mom0, 0.0),
            velocity_map_kms=velocity,
            pixel_kpc=view.pixel_kpc,
            beam_fwhm_kpc=view.beam_fwhm_kpc,
            intrinsic_axis_ratio=config.intrinsic_axis_ratio,
        )
    )
    row["position_angle_deg"] = geometry.position_angle_deg
    row["inclination_deg"] = geometry.inclination_deg
    if not config.min_inclination_deg <= geometry.inclination_deg <= config.max_inclination_deg:
        raise GalaxyFitError(
            f"inclination {geometry.inclination_deg:.1f} deg outside "
            f"[{config.min_inclination_deg:g}, {config.max_inclination_deg:g}]"
        )
    curve = ring_rotation_curve(
        velocity_map_kms=velocity,
        geometry=geometry,
        pixel_kpc=view.pixel_kpc,
        ring_width_kpc=config.ring_width_beams * view.beam_fwhm_kpc,
        wedge_half_angle_deg=config.wedge_half_angle_deg,
        min_pixels_per_ring=config.min_pixels_per_ring,
        beam_area_pixels=hi_config.beam_area_pixels,
    )
    row["rc_radius_kpc"] = curve.radius_kpc.tolist()
    row["rc_v_kms"] = curve.v_rot_kms.tolist()
    row["rc_v_err_kms"] = curve.v_err_kms.tolist()
    if curve.radius_kpc.size < config.min_rings:
        raise GalaxyFitError(
            f"too few rings with HI ({curve.radius_kpc.size} < {config.min_rings})"
        )
    disk = fit_exponential_disk(
        image_nmgy=view.image_g_nmgy,
        geometry=geometry,
        pixel_kpc=view.pixel_kpc,
        distance_mpc=view.distance_mpc,
        min_radius_kpc=config.disk_fit_min_radius_kpc,
        min_snr=config.disk_fit_min_snr,
        noise_nmgy_per_pixel=_g_band_noise_nmgy(view.observe_config),
    )
    row["disk_scale_length_kpc"] = disk.scale_length_kpc
    row["disk_luminosity_lsun_g"] = disk.luminosity_lsun
    posterior = fit_mass_model(
        curve=curve,
        disk=disk,
        distance_mpc=view.distance_mpc,
        inclination_deg=geometry.inclination_deg,
        radii_kpc=radii_kpc,
        config=config,
    )
    row["v200_kms"] = posterior.median("v200_kms")
    row["c200"] = posterior.median("c200")
    row["upsilon"] = posterior.median("upsilon")
    row["distance_fit_mpc"] = posterior.median("distance_mpc")
    row["inclination_fit_deg"] = posterior.median("inclination_deg")
    row["acceptance_fraction"] = posterior.acceptance_fraction
    p16, p50, p84 = posterior.log10_mdm_percentiles
    row["log10_mdm_median"] = p50.tolist()
    row["log10_mdm_p16"] = p16.tolist()
    row["log10_mdm_p84"] = p84.tolist()
