"""The HOD baseline of dm2gal: paint the hydro run's stellar masses onto its gravity-only twin.

Kasmanoff et al. (2020, §2.3) judge their CNN against a halo occupation distribution built
from the same pair of runs, as their public code (``src/hod.py``) does:

1. **Fit** (:func:`fit_hod`): the hydro run's subhalos are binned by the mass of their host
   halo (``GroupMass``, ``n_bins`` equal bins in log10, 10 in the paper) and split into
   centrals (``GroupFirstSub``) and satellites; each bin keeps the two stellar-mass
   (``SubhaloMassType[4]``) distributions. Subhalos without stars are kept in them (a zero
   mass), so the distributions hold the occupation fraction too; the public code drops them
   and then paints a galaxy into every Dark subhalo.
2. **Paint** (:func:`paint`): every subhalo of the Dark run gets a stellar mass from the
   distribution of its host's bin and its role: a random draw from it (``scatter=True``, the
   paper's) or its mean (``scatter=False``, the mean-only variant, with no scatter at all).
   Satellite masses are multiplied by the ratio of the two runs' satellite counts in the bin
   (the paper's correction for the baryons' effect on the number of satellites), so the
   mean-only painting puts into every bin the hydro run's stellar mass of that bin.
3. **Deposit** (:func:`deposit_painting`): the painted masses at the Dark subhalos'
   ``SubhaloPos`` go onto the voxel grid of ``fields.zarr``, with its scheme, through
   :func:`~darkstack.features.deposit.mesh.deposit`, exactly as ``hydro_stellar_mass_subhalo``
   deposits the truth.

Host masses (``host_mass``): ``"matched"`` (default) bins a hydro subhalo by the Dark-run mass
of the host of its twin (``subhalo_matching_to_dark``; a subhalo without a twin, a baryonic
clump, takes its group central's twin's host), so both runs are binned by the same mass and the
baryons' shift of halo masses (Velliscig et al. 2014) needs no correction; ``"own"`` bins each
run by its own ``GroupMass``, as the public code does, Dark masses outside the hydro bins
falling into the end bins. A hydro subhalo left without a Dark host is dropped (counted in
:attr:`HodPainting.dropped`).

Not here: halotools' Zheng et al. (2007) HOD with a Moster et al. (2013) SHMR (issue 18's
option); halotools is not installed in this environment and the paper's baseline is the
empirical one above.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from darkstack.config import Checked, Range
from darkstack.features.deposit.mesh import GRID_POINTS, cell_coordinates, deposit
from darkstack.ingest.tng_local import SimulationError, read_attributes, read_dataset
from darkstack.store import StoreLayout
from darkstack.tng_layout import (
    group_catalog_path,
    subhalo_matching_group,
    subhalo_matching_path,
)
from darkstack.units import CodeUnits

FloatArray = NDArray[np.float64]
Role = Literal["central", "satellite"]


@dataclass(frozen=True, kw_only=True)
class HodConfig(Checked):
    """How the HOD baseline is fitted and painted.

    Parameters
    ----------
    n_bins : int
        Equal log10 bins of host mass between the hydro run's smallest and largest host (10 in
        Kasmanoff et al. 2020).
    host_mass : {"matched", "own"}
        Bin hydro subhalos by their twin's Dark host mass (``matched``) or by their own
        ``GroupMass`` (``own``, the public code's); see the module docstring.
    scatter : bool
        Draw each stellar mass at random from its bin's distribution (the paper's); False
        paints the bin's mean (no scatter).
    satellite_rescale : bool
        Multiply satellite masses by the bin's hydro-to-Dark satellite count ratio.
    seed : int
        Seed of the draws (``numpy.random.default_rng``).
    snapshot : int
        Snapshot of both runs.
    matching : {"LHaloTree", "SubLink"}
        Which of ``subhalo_matching_to_dark``'s matches is read.
    """

    n_bins: Annotated[int, Range(ge=1)] = 10
    host_mass: Literal["matched", "own"] = "matched"
    scatter: bool = True
    satellite_rescale: bool = True
    seed: Annotated[int, Range(ge=0)] = 0
    snapshot: Annotated[int, Range(ge=0, le=999)] = 99
    matching: Literal["LHaloTree", "SubLink"] = "LHaloTree"


@dataclass(frozen=True)
class Hod:
    """Per host-mass bin, the hydro run's central and satellite stellar masses.

    Attributes
    ----------
    edges_log10_msun : ndarray, shape (n_bins + 1,)
        Bin edges in log10 host mass (Msun).
    centrals, satellites : tuple of ndarray
        Per bin, the stellar masses (Msun, zeros included) of that role.
    """

    edges_log10_msun: FloatArray
    centrals: tuple[FloatArray, ...]
    satellites: tuple[FloatArray, ...]

    @property
    def n_bins(self) -> int:
        """Number of host-mass bins."""
        return self.edges_log10_msun.size - 1

    def bin_of(self, host_mass_msun: ArrayLike) -> NDArray[np.int64]:
        """Bin of each host mass; masses beyond the edges go to the end bins."""
        return _bin_of(self.edges_log10_msun, host_mass_msun)

    def pool(self, role: Role) -> tuple[FloatArray, ...]:
        """The per-bin stellar masses of one role."""
        return self.centrals if role == "central" else self.satellites

    def mean_msun(self, role: Role) -> FloatArray:
        """Mean stellar mass per bin of one role (NaN in a bin without that role)."""
        return np.array([m.mean() if m.size else np.nan for m in self.pool(role)])

    def counts(self, role: Role) -> NDArray[np.int64]:
        """Number of hydro subhalos per bin of one role."""
        return np.array([m.size for m in self.pool(role)], dtype=np.int64)


def fit_hod(
    *,
    host_mass_msun: ArrayLike,
    central: ArrayLike,
    stellar_mass_msun: ArrayLike,
    n_bins: int,
) -> Hod:
    """The stellar-mass distributions of centrals and satellites per host-mass bin.

    Parameters
    ----------
    host_mass_msun : array_like, shape (n,)
        Host halo mass of each hydro subhalo (Msun, > 0).
    central : array_like of bool, shape (n,)
        Whether each subhalo is its group's central.
    stellar_mass_msun : array_like, shape (n,)
        Stellar mass of each subhalo (Msun, >= 0).
    n_bins : int
        Equal log10 bins between the smallest and largest host mass.

    Raises
    ------
    ValueError
        For mismatched lengths, no subhalos, or a non-positive host mass.
    """
    host = np.asarray(host_mass_msun, dtype=np.float64)
    is_central = np.asarray(central, dtype=bool)
    stars = np.asarray(stellar_mass_msun, dtype=np.float64)
    if not host.shape == is_central.shape == stars.shape or host.ndim != 1:
        raise ValueError(
            f"host_mass_msun {host.shape}, central {is_central.shape} and stellar_mass_msun "
            f"{stars.shape} must be 1D and of one length"
        )
    if host.size == 0:
        raise ValueError("an HOD needs at least one subhalo; the hydro catalog has none")
    if not np.all(host > 0):
        raise ValueError(f"host masses must be > 0 Msun; the smallest is {host.min():g}")
    log_host = np.log10(host)
    low, high = float(log_host.min()), float(log_host.max())
    edges = np.linspace(low, max(high, low + 1e-6), n_bins + 1)
    bins = _bin_of(edges, host)
    split = [
        tuple(stars[(bins == b) & (is_central == role)] for b in range(n_bins))
        for role in (True, False)
    ]
    return Hod(edges, split[0], split[1])


def _bin_of(edges_log10_msun: FloatArray, host_mass_msun: ArrayLike) -> NDArray[np.int64]:
    log_mass = np.log10(np.asarray(host_mass_msun, dtype=np.float64))
    inner = edges_log10_msun[1:-1]
    return np.searchsorted(inner, log_mass, side="right").astype(np.int64)


def paint(
    hod: Hod,
    *,
    host_mass_msun: ArrayLike,
    central: ArrayLike,
    scatter: bool,
    satellite_rescale: bool,
    rng: np.random.Generator,
) -> FloatArray:
    """Stellar masses (Msun) of the Dark run's subhalos, drawn from (or the mean of) the HOD.

    Parameters
    ----------
    hod : Hod
        The fitted distributions.
    host_mass_msun : array_like, shape (m,)
        Host mass of each Dark subhalo (Msun).
    central : array_like of bool, shape (m,)
        Whether each Dark subhalo is its group's central.
    scatter : bool
        Random draws from the bin's distribution, or its mean.
    satellite_rescale : bool
        Multiply satellites by the bin's hydro-to-Dark satellite count ratio.
    rng : numpy.random.Generator
        Source of the draws (unused without scatter).

    Returns
    -------
    ndarray, shape (m,)
        Zero where the hydro run has no subhalo of that role in the bin.
    """
    host = np.asarray(host_mass_msun, dtype=np.float64)
    is_central = np.asarray(central, dtype=bool)
    if host.shape != is_central.shape:
        raise ValueError(f"host_mass_msun {host.shape} and central {is_central.shape} differ")
    bins = hod.bin_of(host)
    painted = np.zeros(host.size)
    roles: tuple[tuple[Role, NDArray[np.bool_]], ...] = (
        ("central", is_central),
        ("satellite", ~is_central),
    )
    for role, members in roles:
        pool = hod.pool(role)
        for b in range(hod.n_bins):
            rows = np.flatnonzero(members & (bins == b))
            if rows.size == 0 or pool[b].size == 0:
                continue
            values = rng.choice(pool[b], size=rows.size) if scatter else pool[b].mean()
            factor = pool[b].size / rows.size if role == "satellite" and satellite_rescale else 1.0
            painted[rows] = values * factor
    return painted


@dataclass(frozen=True)
class Catalog:
    """What the HOD reads of one run's group catalog, in Msun and ckpc/h.

    Attributes
    ----------
    group_number : ndarray of int64
        ``SubhaloGrNr`` of each subhalo.
    central : ndarray of bool
        Whether each subhalo is its group's ``GroupFirstSub``.
    position_ckpc_h : ndarray, shape (n, 3)
        ``SubhaloPos`` (comoving ckpc/h).
    stellar_mass_msun : ndarray
        ``SubhaloMassType[:, 4]`` in Msun.
    group_mass_msun : ndarray
        ``GroupMass`` of each group, Msun.
    group_first_sub : ndarray of int64
        ``GroupFirstSub`` of each group.
    box_ckpc_h : float
        Box side.
    """

    group_number: NDArray[np.int64]
    central: NDArray[np.bool_]
    position_ckpc_h: FloatArray
    stellar_mass_msun: FloatArray
    group_mass_msun: FloatArray
    group_first_sub: NDArray[np.int64]
    box_ckpc_h: float

    @property
    def host_mass_msun(self) -> FloatArray:
        """``GroupMass`` of each subhalo's host."""
        return self.group_mass_msun[self.group_number]

    @classmethod
    def read(cls, base_path: str | Path, snapshot: int) -> Catalog:
        """Read a run's group catalog (all its files) into canonical units.

        Raises
        ------
        SimulationError
            For a missing catalog or dataset, naming the file.
        """
        base = Path(base_path)
        first = group_catalog_path(base, snapshot, 0)
        if not first.is_file():
            raise SimulationError(f"{first} not found: the HOD needs the run's group catalog")
        header = read_attributes(first, "Header")
        units = CodeUnits(
            hubble_param=float(header["HubbleParam"]), scale_factor=float(header["Time"])
        )
        paths = [group_catalog_path(base, snapshot, i) for i in range(int(header["NumFiles"]))]

        def column(name: str, count_key: str) -> NDArray[np.generic]:
            parts = [
                read_dataset(path, name)
                for path in paths
                if int(read_attributes(path, "Header")[count_key]) > 0
            ]
            return np.concatenate(parts) if parts else np.zeros(0)

        group_number = column("Subhalo/SubhaloGrNr", "Nsubgroups_ThisFile").astype(np.int64)
        first_sub = column("Group/GroupFirstSub", "Ngroups_ThisFile").astype(np.int64)
        central = np.zeros(group_number.size, dtype=bool)
        central[first_sub[first_sub >= 0]] = True
        return cls(
            group_number=group_number,
            central=central,
            position_ckpc_h=column("Subhalo/SubhaloPos", "Nsubgroups_ThisFile")
            .astype(np.float64)
            .reshape(-1, 3),
            stellar_mass_msun=units.mass_to_msun(
                column("Subhalo/SubhaloMassType", "Nsubgroups_ThisFile").reshape(-1, 6)[:, 4]
            ),
            group_mass_msun=units.mass_to_msun(column("Group/GroupMass", "Ngroups_ThisFile")),
            group_first_sub=first_sub,
            box_ckpc_h=float(header["BoxSize"]),
        )


@dataclass(frozen=True)
class HodPainting:
    """The HOD fitted on a hydro run and painted onto its Dark twin.

    Attributes
    ----------
    hod : Hod
        The fitted distributions.
    position_ckpc_h : ndarray, shape (m, 3)
        Dark subhalos' positions.
    stellar_mass_msun : ndarray, shape (m,)
        Their painted stellar masses.
    box_ckpc_h : float
        Box side.
    dropped : int
        Hydro subhalos without a Dark host under ``host_mass="matched"``.
    """

    hod: Hod
    position_ckpc_h: FloatArray
    stellar_mass_msun: FloatArray
    box_ckpc_h: float
    dropped: int


def matched_host_mass_msun(
    hydro: Catalog, dark: Catalog, match: NDArray[np.int64]
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Dark host mass of each hydro subhalo's twin, and which hydro subhalos have one.

    A subhalo without a twin (``match`` -1) takes its group central's twin's host.
    """
    twin = match.copy()
    orphan = twin < 0
    central_of_group = hydro.group_first_sub[hydro.group_number[orphan]]
    twin[orphan] = np.where(central_of_group >= 0, match[np.maximum(central_of_group, 0)], -1)
    found = twin >= 0
    host = np.full(match.size, np.nan)
    host[found] = dark.host_mass_msun[twin[found]]
    return host, found


def hod_for_runs(config: HodConfig, *, sim: str | Path, dark: str | Path) -> HodPainting:
    """Fit the HOD on the hydro run ``sim`` and paint it onto the Dark run ``dark``.

    Parameters
    ----------
    config : HodConfig
        Bins, host masses, scatter, seed.
    sim, dark : str or Path
        basePaths (``output/`` folders) of the hydro run and its twin.

    Raises
    ------
    SimulationError
        For a missing catalog, or a missing or mis-sized matching file under ``matched``.
    """
    hydro = Catalog.read(sim, config.snapshot)
    twin = Catalog.read(dark, config.snapshot)
    dropped = 0
    if config.host_mass == "matched":
        path = subhalo_matching_path(sim)
        name = f"{subhalo_matching_group(config.snapshot)}/SubhaloIndexDark_{config.matching}"
        if not path.is_file():
            raise SimulationError(f"{path} not found: host_mass='matched' needs the matching")
        match = read_dataset(path, name).astype(np.int64)
        if match.size != hydro.group_number.size:
            raise SimulationError(
                f"{path}: {name} has {match.size} rows; expected one per hydro subhalo "
                f"({hydro.group_number.size})"
            )
        host, found = matched_host_mass_msun(hydro, twin, match)
        dropped = int((~found).sum())
    else:
        host, found = hydro.host_mass_msun, np.ones(hydro.group_number.size, dtype=bool)
    hod = fit_hod(
        host_mass_msun=host[found],
        central=hydro.central[found],
        stellar_mass_msun=hydro.stellar_mass_msun[found],
        n_bins=config.n_bins,
    )
    painted = paint(
        hod,
        host_mass_msun=twin.host_mass_msun,
        central=twin.central,
        scatter=config.scatter,
        satellite_rescale=config.satellite_rescale,
        rng=np.random.default_rng(config.seed),
    )
    return HodPainting(hod, twin.position_ckpc_h, painted, twin.box_ckpc_h, dropped)


def deposit_painting(
    position_ckpc_h: ArrayLike,
    stellar_mass_msun: ArrayLike,
    *,
    box_ckpc_h: float,
    grid: int,
    scheme: str,
) -> FloatArray:
    """Deposit painted masses on a periodic ``grid³`` with the voxel fields' conventions.

    Node ``i`` sits at ``i * box / grid`` (:data:`~darkstack.features.deposit.mesh.GRID_POINTS`),
    as in ``fields.zarr``; returns Msun per voxel.
    """
    cells = cell_coordinates(position_ckpc_h, cell_size=box_ckpc_h / grid, cell_offset=GRID_POINTS)
    return deposit(cells, np.asarray(stellar_mass_msun), shape=(grid,) * 3, scheme=scheme)


def deposit_on_fields_grid(painting: HodPainting, *, store: str | Path) -> FloatArray:
    """:func:`deposit_painting` on the grid and scheme of ``STORE/fields.zarr``.

    Raises
    ------
    FileNotFoundError
        Without ``fields.zarr``.
    """
    import zarr

    path = StoreLayout(Path(store)).zarr("fields")
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `darkstack fields --store {store}` first")
    attrs = zarr.open_group(path, mode="r").attrs
    return deposit_painting(
        painting.position_ckpc_h,
        painting.stellar_mass_msun,
        box_ckpc_h=painting.box_ckpc_h,
        grid=int(attrs["grid"]),  # type: ignore[arg-type]
        scheme=str(attrs["scheme"]),
    )
