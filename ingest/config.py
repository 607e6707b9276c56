"""Configuration of ``darkstack ingest`` (defaults: de los Rios et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from darkstack.ingest.selection import SelectionConfig
from darkstack.ingest.tng_api import DEFAULT_BASE_URL

ARCMIN_RAD = np.pi / (180.0 * 60.0)


@dataclass(frozen=True, kw_only=True)
class CutoutConfig:
    """Size of the particle sphere cut around each galaxy.

    Parameters
    ----------
    field_of_view_arcmin : float
        Side of the mock images (17.2 arcmin in the paper).
    max_distance_mpc : float
        Largest distance the observations draw (20 Mpc by default).
    min_radius_kpc : float
        The sphere never ends inside this (the outermost target radius by default).
    """

    field_of_view_arcmin: float = 17.2
    max_distance_mpc: float = 20.0
    min_radius_kpc: float = 100.0

    @property
    def radius_kpc(self) -> float:
        """Covers the image's half-diagonal at the largest distance and the targets."""
        half_diagonal = (
            np.sqrt(2.0)
            / 2.0
            * self.field_of_view_arcmin
            * ARCMIN_RAD
            * self.max_distance_mpc
            * 1e3
        )
        return float(max(half_diagonal, self.min_radius_kpc))


@dataclass(frozen=True, kw_only=True)
class TargetConfig:
    """Radii of the enclosed-mass targets: n log-spaced radii (paper: 20 from 1 to 100 kpc)."""

    n_radii: int = 20
    r_min_kpc: float = 1.0
    r_max_kpc: float = 100.0

    def __post_init__(self) -> None:
        if self.n_radii < 1 or not 0 < self.r_min_kpc <= self.r_max_kpc:
            raise ValueError(
                f"need n_radii >= 1 and 0 < r_min_kpc <= r_max_kpc, got {self.n_radii}, "
                f"{self.r_min_kpc}, {self.r_max_kpc}"
            )

    @property
    def radii_kpc(self) -> np.ndarray:
        return np.geomspace(self.r_min_kpc, self.r_max_kpc, self.n_radii)


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """Where ``source: api`` reads the TNG web API.

    The key itself is never a setting: the config is saved with every output, so it names only
    the file holding the key (or leaves the key to the ``TNG_API_KEY`` environment variable).

    Parameters
    ----------
    simulation : str
        Simulation name as the API spells it.
    base_url : str
        Root of the API.
    key_file : str or None
        File whose first non-empty line is the key (``~`` expanded); it wins over
        ``TNG_API_KEY`` when it exists and is not empty.
    cache_dir : str
        Folder of downloaded responses (``~`` expanded), reused by reruns.
    max_retries : int
        Retries of a request after transient failures.
    """

    simulation: str = "TNG100-1"
    base_url: str = DEFAULT_BASE_URL
    key_file: str | None = None
    cache_dir: str = "~/.cache/darkstack/tng-api"
    max_retries: int = 5

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """Everything ``darkstack ingest`` does, saved with its outputs.

    Parameters
    ----------
    snapshot : int
        Snapshot number (99 is z = 0).
    source : str
        The registered :class:`~darkstack.ingest.sources.Source` to read: ``"local"`` (a
        basePath on disk) or ``"api"`` (the TNG web API), or one added with
        :func:`~darkstack.ingest.sources.register_source`.
    selection, cutout, targets
        Selection criteria, cutout sphere and target radii.
    api : ApiConfig
        The web API to read when ``source`` is ``"api"``.
    galaxies_per_task : int
        Galaxies assembled by one task of the second pass.
    """

    snapshot: int = 99
    source: str = "local"
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    cutout: CutoutConfig = field(default_factory=CutoutConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    galaxies_per_task: int = 16
