"""Benchmark: the overhead of submitting a training as a Ray job.

A Ray head is started on 127.0.0.1 (its own temporary folder and free ports, stopped at the
end; its start-up is timed apart). On that running head, the same tiny training runs
``--repeats`` times each way, alternating:

- directly: ``darkstack train --ray-address 127.0.0.1:GCS_PORT`` (a driver on this machine
  joins the cluster);
- as a job: ``darkstack submit train --ray-address http://127.0.0.1:DASHBOARD --wait`` (the
  Jobs API starts the driver on the head, and the submitter follows its log until it ends).

Both are wall times of the whole command, Python start-up included. Printed: the medians, the
overhead of the job (seconds) and the ratio job / direct. Results go to
``benchmarks/results/ray_jobs.json``.

Run: ``python benchmarks/bench_ray_jobs.py [--store STORE] [--repeats 3] [--epochs 2]``.
Without ``--store`` a synthetic store of 12 galaxies with 96 px images is written first (the
training tests' ``write_synthetic_store``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from bench_universe import RESULTS
from ray.job_submission import JobSubmissionClient

BIN = Path(sys.executable).parent
TINY = ("model.image_size=96", "data.channels=[sdss_r]", "n_members=1", "data.batch_size=8")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@contextmanager
def ray_head(folder: Path, env: dict[str, str]) -> Iterator[tuple[str, str, float]]:
    """(GCS address, Jobs API address, start-up seconds) of a head stopped on exit."""
    gcs, dashboard, agent, client = _free_ports(4)
    temp_dir = folder / "ray"
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
        "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--dashboard-agent-listen-port", str(agent), "--ray-client-server-port", str(client),
        "--num-cpus", "2", "--include-dashboard", "true", "--disable-usage-stats",
        "--temp-dir", str(temp_dir),
    ]  # fmt: skip
    start = time.perf_counter()
    log = (folder / "head.log").open("wb")
    head = subprocess.Popen(
        command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_jobs_api(address, head)
        yield f"127.0.0.1:{gcs}", address, time.perf_counter() - start
    finally:
        # Only this head's processes: its session, and whatever names its temp folder.
        own = psutil.Process(head.pid).children(recursive=True) if head.poll() is None else []
        own += [
            process
            for process in psutil.process_iter(["cmdline"])
            if str(temp_dir) in " ".join(process.info["cmdline"] or ())
        ]
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(own, timeout=5)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue
        try:
            head.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()


def _wait_for_jobs_api(address: str, head: subprocess.Popen[bytes]) -> None:
    # The dashboard answers before its agent takes jobs: wait for a trivial job to succeed.
    deadline = time.monotonic() + 180
    job_id = None
    while True:
        if head.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Ray head at {address} did not run a job within 180 s")
        try:
            client = JobSubmissionClient(address)
            job_id = job_id or client.submit_job(entrypoint="true")
            if client.get_job_status(job_id) == "SUCCEEDED":
                return
        except (ConnectionError, RuntimeError):
            pass
        time.sleep(0.5)


def timed(command: list[str], *, env: dict[str, str], store: Path, run: str) -> float:
    """Seconds of ``command`` (a training of ``run``), whose directory is removed afterwards."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    if not (store / "runs" / run / "model.pt").exists():
        raise RuntimeError(f"{run}: no model.pt after {' '.join(command)}")
    shutil.rmtree(store / "runs" / run)
    return seconds


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
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": path}
    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        env.pop(name, None)
    os.environ.update(RAY_AUTH_MODE="disabled")  # this process checks the head's readiness
    settings = [f"--set={item}" for item in (*TINY, f"optim.max_epochs={args.epochs}")]
    darkstack = str(BIN / "darkstack")
    # Short: Ray's socket paths under the head's temporary folder must stay below 107 bytes.
    with tempfile.TemporaryDirectory(prefix="dsbench-", dir="/tmp") as folder:
        store = args.store or _write_store(Path(folder) / "store")
        with ray_head(Path(folder), env) as (gcs, jobs, startup_s):
            direct, job = [], []
            for repeat in range(args.repeats):
                runs = {
                    "direct": [darkstack, "train", "--store", str(store), *settings,
                               "--set=run=bench-direct", "--ray-address", gcs],
                    "job": [darkstack, "submit", "train", "--store", str(store), *settings,
                            "--set=run=bench-job", "--ray-address", jobs, "--wait"],
                }  # fmt: skip
                order = ("direct", "job") if repeat % 2 == 0 else ("job", "direct")
                for kind in order:
                    seconds = timed(runs[kind], env=env, store=store, run=f"bench-{kind}")
                    (direct if kind == "direct" else job).append(seconds)
                    print(f"repeat {repeat}: {kind} {seconds:.1f} s", flush=True)
    direct_s, job_s = statistics.median(direct), statistics.median(job)
    print(
        f"Ray head start-up {startup_s:.1f} s; tiny training ({args.epochs} epochs) directly "
        f"{direct_s:.1f} s, as a Ray job {job_s:.1f} s (medians of {args.repeats}): overhead "
        f"{job_s - direct_s:+.1f} s, x{job_s / direct_s:.2f}"
    )
    RESULTS.mkdir(exist_ok=True)
    record = {
        "head_startup_s": startup_s,
        "direct_s": direct,
        "job_s": job,
        "direct_median_s": direct_s,
        "job_median_s": job_s,
        "overhead_s": job_s - direct_s,
        "job_over_direct": job_s / direct_s,
        "args": {**vars(args), "store": str(args.store) if args.store else None},
    }
    (RESULTS / "ray_jobs.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
