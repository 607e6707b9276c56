"""Settings of the rotation-curve baseline: geometry, rings, disk fit, priors and sampler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from darkstack.cosmology import CosmologyParams


@dataclass(frozen=True, kw_only=True)
class RotationCurveConfig:
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
    ring_width_beams: float = 1.0
    wedge_half_angle_deg: float = 60.0
    min_pixels_per_ring: int = 4
    min_hi_pixels: int = 30
    velocity_min_peak_snr: float = 3.0
    min_rings: int = 4
    min_inclination_deg: float = 20.0
    max_inclination_deg: float = 85.0
    intrinsic_axis_ratio: float = 0.1
    disk_fit_min_radius_kpc: float = 1.0
    disk_fit_min_snr: float = 3.0
    velocity_fractional_error: float = 0.10
    distance_prior_fraction: float = 0.10
    inclination_prior_sigma_deg: float = 5.0
    upsilon_range: tuple[float, float] = (0.0, 20.0)
    v200_range_kms: tuple[float, float] = (10.0, 800.0)
    c200_range: tuple[float, float] = (1.0, 1000.0)
    n_walkers: int = 24
    n_steps: int = 1500
    n_burn: int = 500
    seed: int = 0
    hubble_param: float = CosmologyParams.hubble_param

    def __post_init__(self) -> None:
        if self.geometry not in ("estimated", "known"):
            raise ValueError(f"geometry must be 'estimated' or 'known', got {self.geometry!r}")
        for name in (
            "ring_width_beams",
            "disk_fit_min_snr",
            "distance_prior_fraction",
            "inclination_prior_sigma_deg",
            "hubble_param",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in (
            "disk_fit_min_radius_kpc",
            "velocity_fractional_error",
            "velocity_min_peak_snr",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.wedge_half_angle_deg <= 90:
            raise ValueError(
                f"wedge_half_angle_deg must be in (0, 90], got {self.wedge_half_angle_deg}"
            )
        if not 0 <= self.min_inclination_deg < self.max_inclination_deg < 90:
            raise ValueError(
                "need 0 <= min_inclination_deg < max_inclination_deg < 90, got "
                f"{self.min_inclination_deg} and {self.max_inclination_deg}"
            )
        if not 0 <= self.intrinsic_axis_ratio < 1:
            raise ValueError(
                f"intrinsic_axis_ratio must be in [0, 1), got {self.intrinsic_axis_ratio}"
            )
        for name, low in (("min_pixels_per_ring", 3), ("min_hi_pixels", 1), ("min_rings", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        # A zero mass-to-light ratio is a halo-only fit; a zero V200 or C200 is no halo.
        for name, zero_allowed in (
            ("upsilon_range", True),
            ("v200_range_kms", False),
            ("c200_range", False),
        ):
            low, high = getattr(self, name)
            if not ((low >= 0 if zero_allowed else low > 0) and low < high):
                bound = "0 <=" if zero_allowed else "0 <"
                raise ValueError(
                    f"{name} must be (low, high) with {bound} low < high, got {(low, high)}"
                )
        if self.n_walkers < 10 or self.n_walkers % 2:
            raise ValueError(f"n_walkers must be even and >= 10, got {self.n_walkers}")
        if not 0 <= self.n_burn < self.n_steps:
            raise ValueError(f"need 0 <= n_burn < n_steps, got {self.n_burn} and {self.n_steps}")
