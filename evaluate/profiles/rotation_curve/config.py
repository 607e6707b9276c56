"""Settings of the rotation-curve baseline: geometry, rings, disk fit, priors and sampler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from darkstack.config import Checked, Increasing, Range, Rule
from darkstack.cosmology import CosmologyParams


@dataclass(frozen=True, kw_only=True)
class RotationCurveConfig(Checked):
    """Settings of the rotation-curve baseline (defaults: a quick run; paper priors).

    Parameters
    ----------
    geometry : {"estimated", "known"}
        Measure the position angle and inclination from the data, or take them from the
        galaxy's HI angular momentum.
    ring_width_beams : float
        Width of the rotation-curve rings in HI beam FWHMs.
    wedge_half_angle_deg : float
        Pixels within this angle of the major axis (in the disk plane) enter the rings.
    min_pixels_per_ring : int
        Rings with fewer usable pixels are dropped (>= 3: the error needs a scatter).
    min_hi_pixels : int
        Fewer velocity-field pixels in the central HI region fail the galaxy.
    velocity_min_peak_snr : float
        A pixel enters the velocity field when its brightest masked channel reaches this many
        noise rms. The moment maps' smoothed mask reaches far into the faint outer disk, where
        a single pixel's spectrum is too noisy to place its line; 3 as for THINGS's velocity
        fields (de Blok et al. 2008, AJ 136, 2648).
    min_rings : int
        Fewer rings with data fail the galaxy.
    min_inclination_deg, max_inclination_deg : float
        Nearly face-on disks show no rotation, nearly edge-on ones cannot be deprojected.
    intrinsic_axis_ratio : float
        q0, the thickness of the HI disk used to turn its axis ratio into an inclination.
    disk_fit_min_radius_kpc : float
        Inner edge of the exponential fit to the g-band profile.
    disk_fit_min_snr : float
        The fit stops at the first annulus with a lower signal-to-noise.
    velocity_fractional_error : float
        Fractional uncertainty added in quadrature to each ring's error (paper: 10 per cent).
    distance_prior_fraction : float
        Width of the Gaussian distance prior over the true distance.
    inclination_prior_sigma_deg : float
        Width of the Gaussian inclination prior around the measured inclination.
    upsilon_range : tuple of 2 float
        Flat prior on the g-band stellar mass-to-light ratio (Msun/Lsun).
    v200_range_kms : tuple of 2 float
        Flat prior on V200.
    c200_range : tuple of 2 float
        Flat prior on C200.
    n_walkers : int
        emcee walkers (>= 10, twice the 5 parameters).
    n_steps : int
        Steps per walker.
    n_burn : int
        Steps discarded from the start of each walker.
    seed : int
        Seed of the walkers' start and of emcee.
    hubble_param : float
        h of the critical density defining V200 (TNG's Planck 2015 value).
    """

    geometry: Literal["estimated", "known"] = "estimated"
    ring_width_beams: Annotated[float, Range(gt=0)] = 1.0
    wedge_half_angle_deg: Annotated[float, Range(gt=0, le=90)] = 60.0
    # A ring's error is the scatter of its pixels, which needs three.
    min_pixels_per_ring: Annotated[int, Range(ge=3)] = 4
    min_hi_pixels: Annotated[int, Range(ge=1)] = 30
    velocity_min_peak_snr: Annotated[float, Range(ge=0)] = 3.0
    min_rings: Annotated[int, Range(ge=1)] = 4
    min_inclination_deg: Annotated[float, Range(ge=0, lt=90)] = 20.0
    max_inclination_deg: Annotated[float, Range(gt=0, lt=90)] = 85.0
    intrinsic_axis_ratio: Annotated[float, Range(ge=0, lt=1)] = 0.1
    disk_fit_min_radius_kpc: Annotated[float, Range(ge=0)] = 1.0
    disk_fit_min_snr: Annotated[float, Range(gt=0)] = 3.0
    velocity_fractional_error: Annotated[float, Range(ge=0)] = 0.10
    distance_prior_fraction: Annotated[float, Range(gt=0)] = 0.10
    inclination_prior_sigma_deg: Annotated[float, Range(gt=0)] = 5.0
    # A zero mass-to-light ratio is a halo-only fit; a zero V200 or C200 is no halo.
    upsilon_range: Annotated[tuple[float, float], Range(ge=0), Increasing()] = (0.0, 20.0)
    v200_range_kms: Annotated[tuple[float, float], Range(gt=0), Increasing()] = (10.0, 800.0)
    c200_range: Annotated[tuple[float, float], Range(gt=0), Increasing()] = (1.0, 1000.0)
    # emcee's stretch move needs at least twice the 5 parameters, in two equal halves.
    n_walkers: Annotated[int, Range(ge=10)] = 24
    n_steps: Annotated[int, Range(ge=1)] = 1500
    n_burn: Annotated[int, Range(ge=0)] = 500
    # numpy's SeedSequence takes no negative entropy.
    seed: Annotated[int, Range(ge=0)] = 0
    hubble_param: Annotated[float, Range(gt=0)] = CosmologyParams.hubble_param

    RULES = (
        Rule.ordered("max_inclination_deg", ">", "min_inclination_deg"),
        Rule("n_walkers", lambda c: "an even number" if c.n_walkers % 2 else None),
        Rule.ordered("n_burn", "<", "n_steps"),
    )
