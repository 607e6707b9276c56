"""Benchmark: voxel fields (issue 17): deposit speed, memory per worker, scaling, P(k).

Four parts, all measured in one run of this script; the comparisons (1, 3) are timed by
``_harness.compare`` (a warm-up, then rounds alternating the order), the memory-bound build
and its P(k) (2, 4) are single runs with their peaks:

1. **Deposit speed per core** against Pylians' ``MAS_library.MA`` (the code dm2gal built its
   fields with) on the same particles and grid: Pylians assigns float32 positions into one
   float32 grid in one thread; darkstack's kernel accumulates in float64, alone and as a
   worker runs it (bucketing by tile, then tile by tile). Goal: >= 1.5x Pylians per core.
2. **A build on 2 workers limited to ``--memory-limit`` each** (``--grid``, the issue's 1024^3
   and 2 GB by default), with the peak resident memory of each worker sampled from the
   scheduler every 0.2 s.
3. **1 -> 2 worker efficiency** of the build at ``--scaling-grid``, against the machine's own
   ceiling for 2 workers on pure numpy tasks (``_harness.parallel_ceiling``), measured in
   the same run. Goal: >= 85% of the ceiling.
4. **A distributed P(k)** of the field of (2) on the same workers, with the disk its
   peer-to-peer rechunks spilled (peak size of the workers' scratch folders).

The build reads a ``quick`` mock universe written first into a temporary folder (or
``--sim``), standing in as its own gravity-only twin; only ``hydro_dm_mass`` (and
``hydro_stellar_mass`` for scaling) are built, to bound the disk used. Results go to
``benchmarks/results/fields.json``.

Run: ``python benchmarks/bench_fields.py`` (the issue's sizes: needs ~10 GB of disk for the
field and tens of GB for the P(k) spill), or smaller, e.g. ``--grid 256 --scaling-grid 256
--deposit-grid 256 --particles 4000000``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from _harness import Report, ceiling_ratio, compare, parallel_ceiling, print_stats
from distributed import Client

from darkstack.cluster import DaskClusterConfig, dask_cluster
from darkstack.config import load_config
from darkstack.features.deposit.mesh import cell_coordinates, deposit
from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig, SpectraConfig
from darkstack.features.fields.spectra import run_spectra
from darkstack.features.fields.tiles import Tiling, bucket
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig


def bench_deposit(*, particles: int, grid: int, tile: int, repeats: int, report: Report) -> None:
    """Particles per second per core: Pylians, darkstack's kernel, darkstack's tiled path."""
    import MAS_library

    rng = np.random.default_rng(0)
    box = 100.0
    positions = rng.uniform(0.0, box, (particles, 3)).astype(np.float32)
    weights = rng.uniform(0.5, 2.0, particles).astype(np.float32)
    tiling = Tiling(grid=grid, tile=tile, chunk=min(64, tile))

    def pylians() -> None:
        field = np.zeros((grid,) * 3, dtype=np.float32)
        MAS_library.MA(positions, field, box, "CIC", W=weights, verbose=False)

    def kernel() -> None:
        cells = cell_coordinates(positions, cell_size=box / grid)
        deposit(cells, weights, shape=(grid,) * 3, scheme="cic")

    def tiled() -> None:
        cells = cell_coordinates(positions, cell_size=box / grid)
        buckets = bucket(cells, weights, tiling=tiling, scheme="cic")
        accumulator = np.zeros((tile,) * 3)
        for t in range(tiling.n_tiles):
            rows = slice(buckets.offsets[t], buckets.offsets[t + 1])
            accumulator[:] = 0.0
            deposit(
                buckets.cells[rows],
                buckets.weights[rows],
                shape=accumulator.shape,
                scheme="cic",
                periodic=False,
                out=accumulator,
            )

    stats = compare(
        {
            "Pylians MAS_library.MA (CIC)": pylians,
            "darkstack kernel (CIC)": kernel,
            "darkstack tiled, as a worker runs it": tiled,
        },
        repeats=repeats,
    )
    print_stats(stats)
    report.comparison(
        f"Depositing {particles:,} particles on a {grid}^3 grid, one core",
        stats,
        reference="Pylians MAS_library.MA (CIC)",
        differs=(
            "assigns float32 positions into one float32 grid in one thread, the whole grid in "
            "memory; darkstack accumulates in float64, and its tiled path first buckets the "
            f"particles by tile ({tile}^3) so that a worker holds one tile at a time"
        ),
        per=dict.fromkeys(stats, particles),
        per_unit="particles",
    )


@contextmanager
def polling(sample: Callable[[], None], every_s: float) -> Iterator[None]:
    """Call ``sample`` every ``every_s`` seconds in a thread while in the block."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sample()
            stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def sample_memory(client: Client) -> Iterator[dict[str, int]]:
    """Peak resident memory per worker (bytes), sampled from the scheduler every 0.2 s."""
    peaks: dict[str, int] = {}

    def sample() -> None:
        for address, info in client.scheduler_info(n_workers=-1)["workers"].items():
            peaks[address] = max(peaks.get(address, 0), int(info["metrics"]["memory"]))

    with polling(sample, 0.2):
        yield peaks


@contextmanager
def sample_spill(client: Client) -> Iterator[dict[str, int]]:
    """Peak bytes in the workers' scratch folders (P2P shards, spilled data), every 0.5 s."""
    folders = list(client.run(lambda dask_worker: dask_worker.local_directory).values())
    peak = {"bytes": 0}

    def sample() -> None:
        try:
            size = sum(
                path.stat().st_size
                for folder in folders
                for path in Path(folder).rglob("*")
                if path.is_file()
            )
        except FileNotFoundError:  # a shard removed while listed
            return
        peak["bytes"] = max(peak["bytes"], size)

    with polling(sample, 0.5):
        yield peak


def _cluster(workers: int, memory_limit: str) -> DaskClusterConfig:
    return DaskClusterConfig(n_workers=workers, memory_limit=memory_limit, dashboard_port=0)


def bench_build_and_power(
    sim: Path, scratch: Path, *, grid: int, memory_limit: str, precision: str, report: Report
) -> None:
    """The big build on 2 memory-limited workers, then its distributed P(k)."""
    config = load_config(FieldsConfig, overrides=[f"grid={grid}", "fields=[hydro_dm_mass]"])
    store = scratch / "big"
    with dask_cluster(_cluster(2, memory_limit)) as cluster, Client(cluster.address) as client:
        client.wait_for_workers(2)
        with sample_memory(client) as peaks:
            start = time.perf_counter()
            run_fields(config, sim=sim, store=store, client=client, progress=False)
            build_s = time.perf_counter() - start
        build_peaks = sorted(peaks.values())
        spectra = SpectraConfig(precision=precision)  # type: ignore[arg-type]
        with sample_memory(client) as peaks, sample_spill(client) as spill:
            start = time.perf_counter()
            result = run_spectra(
                spectra, store=store, field="hydro_dm_mass", statistic="pk", client=client
            )
            power_s = time.perf_counter() - start
        power_peaks = sorted(peaks.values())
    (pk,) = result.measurements
    gb = 1e-9
    report.figure(f"build of a {grid}^3 field on 2 workers of {memory_limit}", build_s, unit="s",
                  note="one run (not a median): the issue's memory-bound size")  # fmt: skip
    report.figure("peak resident memory per worker, build", gb * build_peaks[-1], unit="GB")
    report.figure(f"distributed P(k) of that field ({precision})", power_s, unit="s",
                  note=f"{int(pk.bins.size)} bins, one run")  # fmt: skip
    report.figure("peak resident memory per worker, P(k)", gb * power_peaks[-1], unit="GB")
    report.figure("peak disk spilled by the P(k)'s rechunks", gb * spill["bytes"], unit="GB")
    report.figure("the field's size (float32)", gb * grid**3 * 4, unit="GB")


def bench_scaling(
    sim: Path, scratch: Path, *, grid: int, memory_limit: str, repeats: int, report: Report
) -> None:
    """Build time on 1 and 2 workers, alternating, clusters started outside the timing."""
    config = load_config(
        FieldsConfig,
        overrides=[
            f"grid={grid}",
            "fields=[hydro_dm_mass, hydro_stellar_mass]",
            "particles_per_task=500000",
        ],
    )
    with (
        dask_cluster(_cluster(1, memory_limit)) as one,
        Client(one.address) as client_one,
        dask_cluster(_cluster(2, memory_limit)) as two,
        Client(two.address) as client_two,
    ):
        client_one.wait_for_workers(1)
        client_two.wait_for_workers(2)

        def build(client: Client) -> Callable[[], None]:
            def run() -> None:
                shutil.rmtree(scratch / "scaling", ignore_errors=True)
                run_fields(
                    config, sim=sim, store=scratch / "scaling", client=client, progress=False
                )

            return run

        stats = compare(
            {"1 worker": build(client_one), "2 workers": build(client_two)}, repeats=repeats
        )
    ceiling = parallel_ceiling(repeats=repeats)
    print_stats(stats)
    report.comparison(
        f"Building two {grid}^3 fields",
        stats,
        reference="1 worker",
        differs="the same build on one worker process (both clusters started before the rounds)",
    )
    speedup = stats["1 worker"].median_s / stats["2 workers"].median_s
    ratio = ceiling_ratio(ceiling)
    report.figure("speed-up of 2 workers over 1", speedup, unit="x")
    report.figure("2-worker ceiling on numpy tasks, same run", ratio, unit="x")
    report.figure("efficiency against the ceiling", speedup / ratio, note="goal >= 0.85")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, default=None, help="A SIM folder (default: quick).")
    parser.add_argument("--grid", type=int, default=1024, help="Grid of the memory-bound build.")
    parser.add_argument("--memory-limit", default="2GB", help="memory_limit of each worker.")
    parser.add_argument("--scaling-grid", type=int, default=512)
    parser.add_argument("--deposit-grid", type=int, default=512)
    parser.add_argument("--deposit-tile", type=int, default=128)
    parser.add_argument("--particles", type=int, default=20_000_000)
    parser.add_argument("--precision", choices=["double", "single"], default="double")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", type=Path, default=None, help="Folder for stores.")
    args = parser.parse_args()
    report = Report(
        bench="fields",
        title="Voxel fields",
        about=(
            "Particle deposits against Pylians, a memory-limited build on 2 workers with its "
            "distributed P(k), and 1 -> 2 worker scaling against the machine's ceiling, on "
            "the quick universe standing in as its own gravity-only twin."
        ),
        parameters={
            "memory-bound grid": args.grid,
            "memory limit": args.memory_limit,
            "scaling grid": args.scaling_grid,
        },
    )
    bench_deposit(
        particles=args.particles,
        grid=args.deposit_grid,
        tile=args.deposit_tile,
        repeats=args.repeats,
        report=report,
    )
    with tempfile.TemporaryDirectory(prefix="darkstack-bench-fields-", dir=args.scratch) as tmp:
        sim = args.sim
        if sim is None:
            sim = Path(tmp) / "sim"
            build_universe(
                load_config(UniverseConfig, preset=PRESETS["quick"]), sim, progress=False
            )
        base = sim / "output"
        bench_scaling(
            base,
            Path(tmp),
            grid=args.scaling_grid,
            memory_limit=args.memory_limit,
            repeats=args.repeats,
            report=report,
        )
        bench_build_and_power(
            base,
            Path(tmp),
            grid=args.grid,
            memory_limit=args.memory_limit,
            precision=args.precision,
            report=report,
        )
    report.write()


if __name__ == "__main__":
    main()
