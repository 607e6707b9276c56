"""Configuration of ``darkstack ingest`` (defaults: de los Rios et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from darkstack.config import Checked, Range, Rule
from darkstack.ingest.selection import SelectionConfig
from darkstack.ingest.tng_api import DEFAULT_BASE_URL

ARCMIN_RAD = np.pi / (180.0 * 60.0)


@dataclass(frozen=True, kw_only=True)
class CutoutConfig(Checked):
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

    field_of_view_arcmin: Annotated[float, Range(gt=0)] = 17.2
    max_distance_mpc: Annotated[float, Range(gt=0)] = 20.0
    min_radius_kpc: Annotated[float, Range(gt=0)] = 100.0

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
class TargetConfig(Checked):
    """Radii of the enclosed-mass targets: n log-spaced radii (paper: 20 from 1 to 100 kpc)."""

    n_radii: Annotated[int, Range(ge=1)] = 20
    r_min_kpc: Annotated[float, Range(gt=0)] = 1.0
    r_max_kpc: Annotated[float, Range(gt=0)] = 100.0

    RULES = (Rule.ordered("r_max_kpc", ">=", "r_min_kpc"),)

    @property
    def radii_kpc(self) -> np.ndarray:
        return np.geomspace(self.r_min_kpc, self.r_max_kpc, self.n_radii)


@dataclass(frozen=True, kw_only=True)
class ApiConfig(Checked):
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
    max_retries: Annotated[int, Range(ge=0)] = 5


def _cutout_covers_targets(config: IngestConfig) -> str | None:
    # Mass beyond the cutout is not there to count: M(<r) would stay flat past its edge and
    # every galaxy would still be "ok".
    radius_kpc = config.cutout.radius_kpc
    if config.targets.r_max_kpc <= radius_kpc:
        return None
    return (
        f"<= the cutout radius {radius_kpc:.4g} kpc, or the masses beyond it are missing "
        f"(raise cutout.min_radius_kpc to {config.targets.r_max_kpc:g})"
    )


@dataclass(frozen=True, kw_only=True)
class IngestConfig(Checked):
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
    galaxies_per_task: Annotated[int, Range(ge=1)] = 16

    RULES = (Rule("targets.r_max_kpc", _cutout_covers_targets),)
