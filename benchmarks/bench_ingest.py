"""Benchmark: cutout throughput of ``darkstack ingest`` against the naive per-galaxy read.

The reference, run in the same process on the same simulation, is what a TNG user writes
first: for each galaxy, ``illustris_python.snapshot.loadSubset`` of every particle type and a
periodic mask of the sphere (one full-snapshot read per galaxy). It is timed on a few galaxies
and reported per galaxy; darkstack's two-pass build is timed on all of them with 1 and 2 local
Dask workers. Figures: particles and galaxies per second, and the ratios.

Run: ``python benchmarks/bench_ingest.py [--sim SIM] [--naive-galaxies 3]``; without ``--sim``
it first writes the ``small`` mock universe (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import illustris_python as il
import numpy as np
import pandas as pd

from darkstack.cluster import dask_client
from darkstack.config import load_config
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.store import StoreLayout
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig

RESULTS = Path(__file__).parent / "results"


def naive_cutout(base: str, snapshot: int, centre: np.ndarray, radius: float, box: float) -> int:
    """Particles in one galaxy's sphere, the naive way; returns how many."""
    count = 0
    for ptype in (0, 1, 4):
        coordinates = il.snapshot.loadSubset(base, snapshot, ptype, fields=["Coordinates"])
        delta = coordinates - centre
        delta -= box * np.round(delta / box)
        count += int(np.count_nonzero(np.einsum("ij,ij->i", delta, delta) < radius**2))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, default=None, help="An existing SIM folder.")
    parser.add_argument("--naive-galaxies", type=int, default=3)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="darkstack-bench-ingest-") as tmp:
        sim = args.sim
        if sim is None:
            sim = Path(tmp) / "sim"
            build_universe(
                load_config(UniverseConfig, preset=PRESETS["small"]), sim, progress=False
            )
        base = str(sim / "output")
        config = IngestConfig()
        timings = {}
        for workers in (1, 2):
            store = Path(tmp) / f"store-{workers}"
            with dask_client(workers=workers) as client:
                start = time.perf_counter()
                summary = run_ingest(config, sim=base, store=store, client=client, progress=False)
                timings[workers] = time.perf_counter() - start
        galaxies = pd.read_parquet(StoreLayout(Path(tmp) / "store-1").catalog("galaxies"))
        particles = int(galaxies[["cutout_n_gas", "cutout_n_dm", "cutout_n_stars"]].sum().sum())
        header = il.groupcat.loadHeader(base, config.snapshot)
        h = header["HubbleParam"]
        radius = config.cutout.radius_kpc * h
        start = time.perf_counter()
        naive_particles = sum(
            naive_cutout(base, config.snapshot, np.asarray(p) * h, radius, header["BoxSize"])
            for p in galaxies["position_kpc"][: args.naive_galaxies]
        )
        naive_per_galaxy = (time.perf_counter() - start) / args.naive_galaxies
    n = summary.n_selected
    results = {
        "galaxies": n,
        "cutout_particles": particles,
        "naive_s_per_galaxy": naive_per_galaxy,
        "naive_galaxies_per_s": 1.0 / naive_per_galaxy,
        "naive_particles_per_s": naive_particles / (naive_per_galaxy * args.naive_galaxies),
    }
    for workers, seconds in timings.items():
        results[f"darkstack_{workers}w_s"] = seconds
        results[f"darkstack_{workers}w_galaxies_per_s"] = n / seconds
        results[f"darkstack_{workers}w_particles_per_s"] = particles / seconds
        results[f"speedup_{workers}w_over_naive"] = naive_per_galaxy * n / seconds
    results["scaling_2w_over_1w"] = timings[1] / timings[2]
    print(
        f"{n} galaxies, {particles:,} cutout particles\n"
        f"naive (loadSubset + mask per galaxy): {naive_per_galaxy:.2f} s/galaxy "
        f"({results['naive_galaxies_per_s']:.3f} galaxies/s)\n"
        + "\n".join(
            f"darkstack, {w} worker(s): {timings[w]:.1f} s, {n / timings[w]:.2f} galaxies/s, "
            f"{particles / timings[w]:,.0f} particles/s, x{results[f'speedup_{w}w_over_naive']:.0f}"
            " over naive"
            for w in timings
        )
        + f"\n2 workers over 1: x{results['scaling_2w_over_1w']:.2f}"
    )
    (RESULTS / "ingest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
