"""Benchmark: mock observations, called directly and through darkstack's orchestration.

The reference, run in the same process on the same cutouts and views, is the renderer and
MARTINI called directly (read, rotate, bc03 photometry, HI cube and moments), which is what a
user scripting the two tools would write. darkstack's ``run_observe`` (the same work plus zarr
region writes, per-view records and the catalog) runs in this process and on 2 local Dask
workers (started before the rounds), each round into a fresh copy of the store. Goal: the
orchestration costs <= 10 % over the direct calls.

Run: ``python benchmarks/bench_observe.py [--store STORE] [--realisations 1] [--repeats 3]``;
without ``--store`` it writes the quick universe and ingests its most massive galaxies
(M* >= ``--stellar-mass-min``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _harness import Report, Timed, compare, print_stats

from darkstack.cluster import dask_client
from darkstack.config import load_config
from darkstack.features.hi import configure_numba_cache, hi_moment_maps
from darkstack.features.observe import ObserveConfig, draw_view, rotate_particles, run_observe
from darkstack.features.photometry import render_sdss
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.cutouts import read_cutout
from darkstack.ingest.selection import SelectionConfig
from darkstack.store import StoreLayout
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig


def direct(store: Path, config: ObserveConfig) -> dict[str, float]:
    """The work without darkstack's orchestration: seconds per step over all views."""
    galaxies = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
    seconds = {"read_rotate": 0.0, "photometry": 0.0, "hi": 0.0}
    views = 0
    for subhalo in galaxies.loc[galaxies.status == "ok", "subhalo_id"]:
        start = time.perf_counter()
        particles, _ = read_cutout(StoreLayout(store).cutout(int(subhalo)))
        seconds["read_rotate"] += time.perf_counter() - start
        for realisation in range(config.n_realisations):
            view = draw_view(
                seed=0, subhalo_id=int(subhalo), realisation=realisation, config=config
            )
            start = time.perf_counter()
            observed = rotate_particles(particles, view.rotation)
            seconds["read_rotate"] += time.perf_counter() - start
            start = time.perf_counter()
            render_sdss(
                observed["stars"], observed["gas"], distance_mpc=view.distance_mpc,
                config=config.photometry, rng=np.random.default_rng(0),
            )  # fmt: skip
            seconds["photometry"] += time.perf_counter() - start
            start = time.perf_counter()
            hi_moment_maps(
                observed["gas"], distance_mpc=view.distance_mpc, config=config.hi, seed=0
            )
            seconds["hi"] += time.perf_counter() - start
            views += 1
    seconds["views"] = views
    return seconds


def quick_store(folder: Path, *, stellar_mass_min_msun: float = 4e10) -> Path:
    """The quick universe in ``folder``, and a store of its most massive galaxies."""
    sim = folder / "sim"
    build_universe(load_config(UniverseConfig, preset=PRESETS["quick"]), sim, progress=False)
    store = folder / "store"
    selection = SelectionConfig(stellar_mass_min_msun=stellar_mass_min_msun)
    run_ingest(IngestConfig(selection=selection), sim=sim / "output", store=store, progress=False)
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="An ingested store.")
    parser.add_argument("--stellar-mass-min", type=float, default=4e10)
    parser.add_argument("--realisations", type=int, default=1, help="views per galaxy")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = dataclasses.replace(ObserveConfig(), n_realisations=args.realisations)
    configure_numba_cache(Path(config.numba_cache_dir).expanduser())
    report = Report(
        bench="observe",
        title="Observe",
        about=(
            "Mock SDSS images (bc03) and MARTINI HI moment maps of the most massive galaxies "
            "of the quick universe, by direct calls and by `run_observe`."
        ),
    )
    with (
        tempfile.TemporaryDirectory(prefix="darkstack-bench-observe-") as tmp,
        dask_client(workers=2) as client,
    ):
        store = args.store or quick_store(Path(tmp), stellar_mass_min_msun=args.stellar_mass_min)

        def observe(on: object) -> float:
            target = Path(tmp) / "observed"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(store, target, ignore=shutil.ignore_patterns("observations*"))
            start = time.perf_counter()
            run_observe(config, store=target, client=on, progress=False)  # type: ignore[arg-type]
            return time.perf_counter() - start

        def in_process() -> Timed:
            return Timed(seconds=observe(None))

        def on_workers() -> Timed:
            return Timed(seconds=observe(client))

        stats = compare(
            {
                "renderer and MARTINI, direct calls": lambda: direct(store, config),
                "run_observe in this process": in_process,
                "run_observe, 2 Dask workers": on_workers,
            },
            repeats=args.repeats,
        )
    steps = stats["renderer and MARTINI, direct calls"].value
    views = int(steps["views"])
    print(f"{views} views:")
    print_stats(stats)
    report.parameters.update(views=views, realisations=args.realisations)
    report.comparison(
        "Observing every view",
        stats,
        reference="renderer and MARTINI, direct calls",
        differs=(
            "calls `render_sdss` and `hi_moment_maps` on each rotated cutout and keeps the "
            "maps in memory; `run_observe` also draws the views, writes each into "
            "`observations.zarr` by region, records a status per view and writes the catalog"
        ),
        per=dict.fromkeys(stats, views),
        per_unit="views",
    )
    for step in ("photometry", "hi", "read_rotate"):
        report.figure(f"direct {step}, last round", views / steps[step], unit="views/s")
    overhead = (
        stats["run_observe in this process"].median_s
        / stats["renderer and MARTINI, direct calls"].median_s
        - 1
    )
    report.figure("orchestration overhead in this process", 100 * overhead, unit="%")
    report.write()


if __name__ == "__main__":
    main()
