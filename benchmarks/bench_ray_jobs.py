"""Benchmark: the overhead of submitting a training as a Ray job.

A Ray head is started on 127.0.0.1 (its own temporary folder and free ports, stopped at the
end; its start-up is timed apart). On that running head, the same tiny training runs
each way (``_harness.compare``: a warm-up, then rounds alternating the order):

- directly: ``darkstack train --ray-address 127.0.0.1:GCS_PORT`` (a driver on this machine
  joins the cluster);
- as a job: ``darkstack submit train --ray-address http://127.0.0.1:DASHBOARD --wait`` (the
  Jobs API starts the driver on the head, and the submitter follows its log until it ends).

Both are wall times of the whole command, Python start-up included. Results go to
``benchmarks/results/ray_jobs.json``.

Run: ``python benchmarks/bench_ray_jobs.py [--store STORE] [--repeats 3] [--epochs 2]``.
Without ``--store`` a synthetic store of 12 galaxies with 96 px images is written first (the
training tests' ``write_synthetic_store``).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import Report, Timed, compare, print_stats

from darkstack.cluster.ray import local_ray_head
from darkstack.store import StoreLayout

BIN = Path(sys.executable).parent
TINY = ("model.image_size=96", "data.channels=[sdss_r]", "n_members=1", "data.batch_size=8")


def timed(command: list[str], *, env: dict[str, str], store: Path, run: str) -> Timed:
    """Seconds of ``command`` (a training of ``run``), whose directory is removed afterwards."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    if not StoreLayout(store).run(run).model.exists():
        raise RuntimeError(f"{run}: no model.pt after {' '.join(command)}")
    shutil.rmtree(StoreLayout(store).run(run).root)
    return Timed(seconds=seconds)


def _write_store(root: Path) -> Path:
    path = Path(__file__).parents[1] / "tests" / "train" / "conftest.py"
    spec = importlib.util.spec_from_file_location("synthetic_store_conftest", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the synthetic store writer from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.write_synthetic_store(root, n_galaxies=12, image_size=96))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="A store with 96 px images.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    report = Report(
        bench="ray_jobs",
        title="Ray job submission",
        about=(
            "A tiny training (12 synthetic galaxies, 96 px, 1 member) on a running local Ray "
            "head: `darkstack train --ray-address` (a driver on this machine joins the "
            "cluster) against `darkstack submit train --wait` (the Jobs API starts the driver "
            "on the head). Both are wall times of the whole command, Python start-up included."
        ),
        parameters={"epochs": args.epochs},
    )
    settings = [f"--set={item}" for item in (*TINY, f"optim.max_epochs={args.epochs}")]
    darkstack = str(BIN / "darkstack")
    # Short: Ray's socket paths under the head's temporary folder must stay below 107 bytes.
    with tempfile.TemporaryDirectory(prefix="dsbench-", dir="/tmp") as folder:
        store = args.store or _write_store(Path(folder) / "store")
        start = time.perf_counter()
        with local_ray_head(
            temp_dir=Path(folder) / "ray", log_path=Path(folder) / "head.log", cwd=Path(folder)
        ) as head:
            startup_s = time.perf_counter() - start
            runs = {
                "darkstack train --ray-address": [
                    darkstack, "train", "--store", str(store), *settings,
                    "--set=run=bench-direct", "--ray-address", head.gcs_address],
                "darkstack submit train --wait": [
                    darkstack, "submit", "train", "--store", str(store), *settings,
                    "--set=run=bench-job", "--ray-address", head.jobs_address, "--wait"],
            }  # fmt: skip
            names = {"darkstack train --ray-address": "bench-direct"}
            names["darkstack submit train --wait"] = "bench-job"
            stats = compare(
                {
                    kind: (
                        lambda kind=kind: timed(
                            runs[kind], env=head.env, store=store, run=names[kind]
                        )
                    )
                    for kind in runs
                },
                repeats=args.repeats,
            )
    print_stats(stats)
    report.comparison(
        "A tiny training, directly and as a Ray job",
        stats,
        reference="darkstack train --ray-address",
        differs=(
            "the driver runs in the calling process and joins the head; a job's driver is "
            "started by the head (runtime environment, log streaming back to the submitter)"
        ),
    )
    overhead = (
        stats["darkstack submit train --wait"].median_s
        - stats["darkstack train --ray-address"].median_s
    )
    report.figure("Jobs API overhead", overhead, unit="s")
    report.figure("Ray head start-up", startup_s, unit="s")
    report.write()


if __name__ == "__main__":
    main()
