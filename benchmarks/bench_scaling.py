"""Benchmark: strong scaling of the ingest build from 1 to 2 local Dask workers.

The same ingest (same universe, same config) is run in this process (the reference, no Dask),
then on a local cluster of 1 and of 2 worker processes started through
:func:`darkstack.cluster.dask_cluster`. Cluster start-up is timed apart from the build. Figures:
seconds, speed-up of 2 workers over 1, parallel efficiency (speed-up / 2), the Dask overhead of
one worker over the in-process run, and the machine's own ceiling for 2 workers on pure numpy
tasks (``bench_universe.parallel_ceiling``), against which the speed-up is to be read.

Run: ``python benchmarks/bench_scaling.py [--sim SIM | --preset quick|small]``. Without
``--sim`` it first writes the preset's mock universe in a temporary folder (``quick``: about
half a minute; ``small``: a few minutes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench_universe import RESULTS, parallel_ceiling
from distributed import Client

from darkstack.cluster import DaskClusterConfig, dask_cluster
from darkstack.config import load_config
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig


def time_ingest(sim: Path, store: Path, *, workers: int) -> tuple[float, float, int]:
    """(cluster start-up s, build s, galaxies) of one ingest; 0 workers runs in this process."""
    config = IngestConfig()
    if workers == 0:
        start = time.perf_counter()
        summary = run_ingest(config, sim=sim / "output", store=store, progress=False)
        return 0.0, time.perf_counter() - start, summary.n_selected
    start = time.perf_counter()
    with (
        dask_cluster(DaskClusterConfig(n_workers=workers, dashboard_port=0)) as cluster,
        Client(cluster.address) as client,
    ):
        client.wait_for_workers(workers)
        started = time.perf_counter()
        summary = run_ingest(config, sim=sim / "output", store=store, client=client, progress=False)
        built = time.perf_counter()
    return started - start, built - started, summary.n_selected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, default=None, help="An existing SIM folder.")
    parser.add_argument(
        "--preset",
        choices=["quick", "small"],
        default="quick",
        help="Universe to write first when --sim is not given.",
    )
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    ceiling = parallel_ceiling()
    with tempfile.TemporaryDirectory(prefix="darkstack-bench-scaling-") as tmp:
        sim = args.sim
        if sim is None:
            sim = Path(tmp) / "sim"
            config = load_config(UniverseConfig, preset=PRESETS[args.preset])
            build_universe(config, sim, progress=False)
        runs = {
            workers: time_ingest(sim, Path(tmp) / f"store-{workers}", workers=workers)
            for workers in (0, 1, 2)
        }
    n_galaxies = runs[0][2]
    build = {workers: run[1] for workers, run in runs.items()}
    speedup = build[1] / build[2]
    results = {
        "simulation": str(sim) if args.sim else f"{args.preset} preset (generated)",
        "galaxies": n_galaxies,
        "in_process_s": build[0],
        **{f"dask_{w}w_startup_s": runs[w][0] for w in (1, 2)},
        **{f"dask_{w}w_build_s": build[w] for w in (1, 2)},
        "speedup_2w_over_1w": speedup,
        "efficiency_2w": speedup / 2,
        "dask_1w_overhead_over_in_process": build[1] / build[0] - 1,
        "numpy_parallel_ceiling_2w": ceiling,
        "speedup_over_ceiling": speedup / ceiling,
    }
    print(
        f"ingest of {n_galaxies} galaxies ({results['simulation']})\n"
        f"in process (no Dask): {build[0]:.1f} s\n"
        + "".join(
            f"{w} local worker(s): {build[w]:.1f} s build (+{runs[w][0]:.1f} s cluster start-up)\n"
            for w in (1, 2)
        )
        + f"speed-up 2 over 1: x{speedup:.2f}, efficiency {speedup / 2:.0%} "
        f"(machine ceiling x{ceiling:.2f}: {speedup / ceiling:.0%} of it)\n"
        f"Dask overhead of 1 worker over in-process: {build[1] / build[0] - 1:+.0%}"
    )
    (RESULTS / "scaling.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
