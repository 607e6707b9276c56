"""A short account of a simulation on disk, read back through illustris_python.

Reading the universe with the same library ingest uses is the point: the summary is also a
check that what was written is a TNG simulation to its readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkstack.ingest.selection import (
    GROUP_FIELDS,
    SUBHALO_FIELDS,
    SelectionConfig,
    select_subhalos,
)


@dataclass(frozen=True)
class SimulationSummary:
    """Counts of one snapshot of a simulation."""

    base_path: Path
    snapshot: int
    box_size_mpc: float
    n_groups: int
    n_subhalos: int
    particles_by_type: dict[str, int]
    n_selected: int
    selection: SelectionConfig
    stellar_mass_range_msun: tuple[float, float]

    def lines(self) -> list[str]:
        """Human-readable lines."""
        particles = ", ".join(f"{name} {count:,}" for name, count in self.particles_by_type.items())
        low, high = self.stellar_mass_range_msun
        return [
            f"simulation {self.base_path} snapshot {self.snapshot}: "
            f"box {self.box_size_mpc:.1f} Mpc",
            f"  {self.n_groups:,} FoF groups, {self.n_subhalos:,} subhalos; particles: {particles}",
            f"  {self.n_selected:,} central galaxies pass the paper's selection "
            f"({self.selection.stellar_mass_min_msun:.0e} <= M* <= "
            f"{self.selection.stellar_mass_max_msun:.0e} Msun, SFR >= "
            f"{self.selection.sfr_min_msun_yr} Msun/yr), M* from {low:.2e} to {high:.2e} Msun",
        ]


def summarise_simulation(
    base_path: str | Path, *, snapshot: int = 99, selection: SelectionConfig | None = None
) -> SimulationSummary:
    """Count groups, subhalos, particles and selectable galaxies with illustris_python."""
    import illustris_python as il

    base = str(base_path)
    selection = selection or SelectionConfig()
    header = il.groupcat.loadHeader(base, snapshot)
    snap_header = _snapshot_header(base, snapshot)
    subhalos = il.groupcat.loadSubhalos(base, snapshot, fields=list(SUBHALO_FIELDS))
    groups = il.groupcat.loadHalos(base, snapshot, fields=list(GROUP_FIELDS))
    h = float(header["HubbleParam"])
    selected = select_subhalos(
        subhalos, {"GroupFirstSub": groups}, hubble_param=h, config=selection
    )
    stellar = subhalos["SubhaloMassType"][selected, 4] * 1.0e10 / h
    totals = il.snapshot.getNumPart(snap_header)
    return SimulationSummary(
        base_path=Path(base_path),
        snapshot=snapshot,
        box_size_mpc=float(header["BoxSize"]) / h / 1.0e3,
        n_groups=int(header["Ngroups_Total"]),
        n_subhalos=int(header["Nsubgroups_Total"]),
        particles_by_type={
            name: int(totals[ptype]) for ptype, name in ((0, "gas"), (1, "dm"), (4, "stars"))
        },
        n_selected=int(selected.size),
        selection=selection,
        stellar_mass_range_msun=(
            (float(stellar.min()), float(stellar.max())) if stellar.size else (np.nan, np.nan)
        ),
    )


def _snapshot_header(base: str, snapshot: int) -> dict[str, np.ndarray]:
    import h5py
    import illustris_python as il

    with h5py.File(il.snapshot.snapPath(base, snapshot), "r") as file:
        return dict(file["Header"].attrs.items())
