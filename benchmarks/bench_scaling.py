"""Benchmark: strong scaling of the ingest build from 1 to 2 local Dask workers.

The same ingest (same universe, same config) runs in this process (no Dask) and on local
clusters of 1 and of 2 worker processes started through
:func:`darkstack.cluster.dask_cluster` before the rounds (their start-up is timed apart). The
machine's own ceiling for 2 workers on pure numpy tasks (``_harness.parallel_ceiling``) is
measured in the same run: the speed-up is to be read against it.

Run: ``python benchmarks/bench_scaling.py [--sim SIM | --preset quick|small] [--repeats 3]``.
Without ``--sim`` it first writes the preset's mock universe (``quick``: about half a minute).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _harness import Report, ceiling_ratio, compare, parallel_ceiling, print_stats
from distributed import Client

from darkstack.cluster import DaskClusterConfig, dask_cluster
from darkstack.config import load_config
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, default=None, help="An existing SIM folder.")
    parser.add_argument("--preset", choices=["quick", "small"], default="quick")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report = Report(
        bench="scaling",
        title="Dask strong scaling of ingest",
        about=(
            "`run_ingest` of the same universe and config in this process and on local "
            "clusters of 1 and 2 worker processes (one thread each), each round into a new "
            "store."
        ),
        parameters={"simulation": str(args.sim) if args.sim else f"{args.preset} preset"},
    )
    ceiling = parallel_ceiling(repeats=args.repeats)
    config = IngestConfig()
    with (
        tempfile.TemporaryDirectory(prefix="darkstack-bench-scaling-") as tmp,
        ExitStack() as stack,
    ):
        sim = args.sim
        if sim is None:
            sim = Path(tmp) / "sim"
            build_universe(
                load_config(UniverseConfig, preset=PRESETS[args.preset]), sim, progress=False
            )
        clients: dict[int, Any] = {0: None}
        for workers in (1, 2):
            start = time.perf_counter()
            cluster = stack.enter_context(
                dask_cluster(DaskClusterConfig(n_workers=workers, dashboard_port=0))
            )
            client = stack.enter_context(Client(cluster.address))
            client.wait_for_workers(workers)
            clients[workers] = client
            report.figure(
                f"start-up of a {workers}-worker local cluster", time.perf_counter() - start,
                unit="s",
            )  # fmt: skip

        def ingest(workers: int) -> int:
            store = Path(tmp) / f"store-{workers}"
            shutil.rmtree(store, ignore_errors=True)
            summary = run_ingest(
                config, sim=sim / "output", store=store, client=clients[workers], progress=False
            )
            return summary.n_selected

        stats = compare(
            {
                "in process (no Dask)": lambda: ingest(0),
                "1 local worker": lambda: ingest(1),
                "2 local workers": lambda: ingest(2),
            },
            repeats=args.repeats,
        )
    galaxies = stats["in process (no Dask)"].value
    print(f"ingest of {galaxies} galaxies; ceiling:")
    print_stats(ceiling)
    print_stats(stats)
    report.parameters["galaxies"] = galaxies
    report.comparison(
        "Ingest build",
        stats,
        reference="1 local worker",
        differs=(
            "the same build on one worker process: the 2-worker speed-up over it is the "
            "strong-scaling figure; the in-process row shows what Dask's task serialisation "
            "and the fragment exchange between the two passes cost"
        ),
        per=dict.fromkeys(stats, galaxies),
        per_unit="galaxies",
    )
    report.comparison(
        "The machine's ceiling for 2 workers",
        ceiling,
        reference="4 numpy tasks, serial",
        differs="the same tasks in one process; no framework can divide the time by more",
    )
    speedup = stats["1 local worker"].median_s / stats["2 local workers"].median_s
    ratio = ceiling_ratio(ceiling)
    report.figure("speed-up of 2 workers over 1", speedup, unit="x")
    report.figure("parallel efficiency (speed-up / 2)", speedup / 2)
    report.figure("speed-up over the machine's ceiling", speedup / ratio)
    report.write()


if __name__ == "__main__":
    main()
