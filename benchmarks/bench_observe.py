"""Benchmark: mock observations per second, and darkstack's orchestration overhead.

Reference run in the same process: the renderer and MARTINI called directly on the same
cutouts and views (read, rotate, render, HI moments), timed per step. darkstack's
``run_observe`` (zarr region writes, records, catalog) is then timed in this process and on 1
and 2 local Dask workers. Figures: galaxy-realisations per second per core for the bc03
photometry and the HI step, and the overhead of the orchestration over the direct calls
(goal <= 10%).

Run: ``python benchmarks/bench_observe.py [--store STORE]``; without ``--store`` it writes the
quick universe and ingests its most massive galaxies first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

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

RESULTS = Path(__file__).parent / "results"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="An ingested store.")
    args = parser.parse_args()
    config = ObserveConfig()
    configure_numba_cache(Path(config.numba_cache_dir).expanduser())
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="darkstack-bench-observe-") as tmp:
        store = args.store
        if store is None:
            sim = Path(tmp) / "sim"
            build_universe(
                load_config(UniverseConfig, preset=PRESETS["quick"]), sim, progress=False
            )
            store = Path(tmp) / "store"
            selection = SelectionConfig(stellar_mass_min_msun=4e10)
            run_ingest(
                IngestConfig(selection=selection), sim=sim / "output", store=store, progress=False
            )
        direct(store, config)  # warm: numba kernels and the SSP table
        reference = direct(store, config)
        views = int(reference.pop("views"))
        direct_total = sum(reference.values())
        timings = {}
        for label, workers in (("in-process", 0), ("1 worker", 1), ("2 workers", 2)):
            target = Path(tmp) / f"observed-{workers}"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(store, target, ignore=shutil.ignore_patterns("observations*"))
            with dask_client(workers=workers) as client:
                start = time.perf_counter()
                run_observe(config, store=target, client=client, progress=False)
                timings[label] = time.perf_counter() - start
    results = {
        "views": views,
        "photometry_views_per_s_per_core": views / reference["photometry"],
        "hi_views_per_s_per_core": views / reference["hi"],
        "direct_s": direct_total,
        **{f"observe_{k.replace(' ', '_')}_s": v for k, v in timings.items()},
        "overhead_in_process": timings["in-process"] / direct_total - 1.0,
        "speedup_2_over_1_worker": timings["1 worker"] / timings["2 workers"],
    }
    print(
        f"{views} galaxy-realisations\n"
        f"direct: photometry {views / reference['photometry']:.2f} views/s/core, HI "
        f"{views / reference['hi']:.2f} views/s/core, total {direct_total:.1f} s\n"
        + "\n".join(f"darkstack observe, {k}: {v:.1f} s" for k, v in timings.items())
        + f"\norchestration overhead in-process: {100 * results['overhead_in_process']:+.1f}%"
        f"\n2 workers over 1: x{results['speedup_2_over_1_worker']:.2f}"
    )
    (RESULTS / "observe.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
