"""Benchmark: mock-universe generation, serially and on 2 Dask workers, against the I/O floor.

For each preset the universe is built in this process (serial) and on a local Dask cluster of
2 workers (started before the rounds), and, as the reference, the same number of particles'
coordinates, velocities, masses and IDs is written with h5py alone: the I/O floor no generator
can beat. The machine's own ceiling for 2 workers on pure numpy tasks is measured in the same
run (``_harness.parallel_ceiling``).

Run: ``python benchmarks/bench_universe.py [--presets quick] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from _harness import Report, ceiling_ratio, compare, parallel_ceiling, print_stats

from darkstack.cluster import dask_client
from darkstack.config import load_config
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig


def write_floor(n_particles: int, path: Path) -> int:
    """Write n particles' coordinates, velocities, masses and IDs with h5py alone."""
    rng = np.random.default_rng(0)
    chunk = 2_000_000
    with h5py.File(path, "w") as file:
        for name, width, dtype in (
            ("Coordinates", 3, np.float64),
            ("Velocities", 3, np.float32),
            ("Masses", 1, np.float32),
            ("ParticleIDs", 1, np.uint64),
        ):
            shape = (n_particles, width) if width > 1 else (n_particles,)
            dataset = file.create_dataset(name, shape=shape, dtype=dtype)
            for lo in range(0, n_particles, chunk):
                hi = min(n_particles, lo + chunk)
                dataset[lo:hi] = (
                    rng.random((hi - lo, width))
                    .astype(dtype)
                    .reshape((hi - lo, width) if width > 1 else (hi - lo,))
                )
    return n_particles


def bench_preset(preset: str, *, folder: Path, client: Any, repeats: int, report: Report) -> None:
    """Compare the preset's serial and 2-worker builds with the I/O floor; add the table."""
    config = load_config(UniverseConfig, preset=PRESETS[preset])
    out = folder / preset

    def build(on: Any = None) -> int:
        shutil.rmtree(out, ignore_errors=True)
        return build_universe(config, out, client=on, progress=False).n_particles

    n_particles = build()
    stats = compare(
        {
            f"{preset}: serial": build,
            f"{preset}: 2 Dask workers": lambda: build(client),
            f"{preset}: h5py I/O floor": lambda: write_floor(n_particles, folder / "floor.hdf5"),
        },
        repeats=repeats,
    )
    print(f"{preset}: {n_particles:,} particles")
    print_stats(stats)
    report.comparison(
        f"Generating the {preset} preset ({n_particles:,} particles)",
        stats,
        reference=f"{preset}: h5py I/O floor",
        differs=(
            "writes random numbers of the same shapes and types with h5py; it samples "
            "nothing and measures nothing"
        ),
        per=dict.fromkeys(stats, n_particles),
        per_unit="particles",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["quick"], choices=["quick", "small"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report = Report(
        bench="universe",
        title="Mock-universe generation",
        about=(
            "`build_universe` of a preset (sampling haloes and galaxies from their profiles, "
            "Jeans velocities, catalog measurements, TNG-layout HDF5 files) in this process "
            "and on 2 local Dask workers, against writing the same number of particles with "
            "h5py alone."
        ),
    )
    ceiling = parallel_ceiling(repeats=args.repeats)
    print("machine ceiling:")
    print_stats(ceiling)
    report.comparison(
        "The machine's ceiling for 2 workers",
        ceiling,
        reference="4 numpy tasks, serial",
        differs="the same tasks in one process; no framework can divide the time by more",
    )
    with (
        tempfile.TemporaryDirectory(prefix="darkstack-bench-universe-") as tmp,
        dask_client(workers=2) as client,
    ):
        for preset in args.presets:
            bench_preset(
                preset, folder=Path(tmp), client=client, repeats=args.repeats, report=report
            )
    report.figure("2-worker ceiling on numpy tasks", ceiling_ratio(ceiling), unit="x")
    report.write()


if __name__ == "__main__":
    main()
