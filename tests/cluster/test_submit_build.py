"""``darkstack submit build`` on real `dask scheduler` and `dask worker` processes on 127.0.0.1.

The same ingest run in this process is the reference: the cluster build, with or without a
worker killed in the middle, must write the same catalog content and cutout datasets (and, as
written atomically by pure tasks, the same bytes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from darkstack.config import load_config
from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig
from darkstack.features.observe import ObserveConfig, run_observe
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.store import StoreLayout
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig

BIN = Path(sys.executable).parent
DASK = BIN / "dask"
DARKSTACK = BIN / "darkstack"
pytestmark = [
    pytest.mark.skipif(not DASK.exists(), reason=f"no `dask` executable next to {sys.executable}"),
    pytest.mark.skipif(
        not DARKSTACK.exists(), reason=f"no `darkstack` executable next to {sys.executable}"
    ),
]
# One galaxy per task: many small tasks, so a worker can be lost with work still to do.
INGEST_SETTINGS = ("galaxies_per_task=1", "selection.stellar_mass_min_msun=3e9")
OBSERVE_SETTINGS = ("n_realisations=1", "photometry.n_pixels=24", "hi.n_pixels=24")
# Many small tiles and pieces, so a worker can be lost with tiles still to deposit.
FIELDS_SETTINGS = ("grid=32", "chunk=8", "tile=8", "particles_per_task=20000")
UNIVERSE = UniverseConfig(seed=5, box_size_mpc_h=10.0, snapshot_files=8, groupcat_files=2)


@dataclass
class DaskProcesses:
    """A scheduler and its workers, each worker its own process group (nanny and worker)."""

    address: str
    workers: dict[str, subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    build_universe(UNIVERSE, root, progress=False)
    return root / "output"


@pytest.fixture(scope="module")
def reference(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("reference") / "store"
    config = load_config(IngestConfig, overrides=INGEST_SETTINGS)
    run_ingest(config, sim=sim, store=store, progress=False)
    return store


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[DaskProcesses]:
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    log = (tmp_path / "dask.log").open("wb")
    processes = [
        subprocess.Popen(
            [
                str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file),
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        address: str | None = None
        while address is None:
            assert processes[0].poll() is None, (tmp_path / "dask.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start within 60 s"
            time.sleep(0.1)
            try:  # the scheduler writes the file in place: it may be seen half written
                address = json.loads(scheduler_file.read_text())["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                continue
        workers = {}
        for name in ("worker-a", "worker-b"):
            workers[name] = subprocess.Popen(
                [
                    str(DASK), "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                    "--no-dashboard", "--name", name,
                ],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            processes.append(workers[name])
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield DaskProcesses(address=address, workers=workers)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _submit(sim: Path, store: Path, address: str) -> subprocess.Popen[str]:
    command = [
        str(DARKSTACK), "submit", "build", "ingest", "--sim", str(sim), "--store", str(store),
        "--dask-address", address, *(f"--set={item}" for item in INGEST_SETTINGS),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_a_busy_worker(
    build: subprocess.Popen[str], dask_processes: DaskProcesses, *, started: Callable[[], bool]
) -> str:
    """Once ``started()``, kill a worker holding tasks; the build must still succeed.

    Returns the build's standard output.
    """
    from distributed import Client

    lost_tasks: list[str] = []
    with Client(dask_processes.address, timeout=30) as observer:
        deadline = time.monotonic() + 120
        while not lost_tasks:
            assert build.poll() is None, "the build ended before a worker could be killed"
            assert time.monotonic() < deadline, "no worker was ever busy after a first output"
            busy = [w for w, keys in observer.processing().items() if keys] if started() else []
            if not busy:
                time.sleep(0.01)
                continue
            name = observer.scheduler_info()["workers"][busy[0]]["name"]
            victim = dask_processes.workers[name]
            # Freeze it first: whatever the scheduler still sees it processing afterwards was
            # in flight when it died, so the kill provably loses work.
            os.killpg(victim.pid, signal.SIGSTOP)
            time.sleep(0.5)
            lost_tasks = list(observer.processing().get(busy[0], ()))
            if lost_tasks:
                os.killpg(victim.pid, signal.SIGKILL)
            else:
                os.killpg(victim.pid, signal.SIGCONT)
        stdout, stderr = build.communicate(timeout=180)
        assert build.returncode == 0, stderr
        assert victim.wait(timeout=10) == -signal.SIGKILL
        assert len(observer.scheduler_info()["workers"]) == 1
    return stdout


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _assert_same_store(store: Path, reference: Path) -> None:
    catalog = pq.read_table(StoreLayout(store).catalog("galaxies"))
    expected = pq.read_table(StoreLayout(reference).catalog("galaxies"))
    assert catalog.equals(expected, check_metadata=True)
    mine, theirs = StoreLayout(store).cutouts, StoreLayout(reference).cutouts
    cutouts = sorted(path.name for path in mine.glob("subhalo_*.hdf5"))
    assert cutouts == sorted(path.name for path in theirs.glob("subhalo_*.hdf5"))
    assert len(cutouts) == catalog.num_rows > 0
    for name in cutouts:
        with (
            h5py.File(mine / name, "r") as file,
            h5py.File(theirs / name, "r") as other,
        ):
            assert sorted(file.attrs) == sorted(other.attrs)
            for key in file.attrs:
                np.testing.assert_array_equal(file.attrs[key], other.attrs[key])
            datasets = _datasets(file)
            assert datasets == _datasets(other), name
            for path in datasets:
                assert file[path].dtype == other[path].dtype, f"{name}:{path}"
                np.testing.assert_array_equal(file[path][()], other[path][()], err_msg=path)
    # Pure tasks writing atomically: not only the same values, the same files byte for byte,
    # and nothing left behind by the lost worker.
    files, expected_files = _tree(store), _tree(reference)
    assert sorted(files) == sorted(expected_files)
    assert files == expected_files


def _datasets(file: h5py.File) -> list[str]:
    found: list[str] = []
    file.visititems(
        lambda path, item: found.append(path) if isinstance(item, h5py.Dataset) else None
    )
    return found


@pytest.mark.timeout(240)
def test_submit_build_on_a_running_cluster_equals_a_local_build(
    sim: Path, reference: Path, dask_processes: DaskProcesses, tmp_path: Path
) -> None:
    build = _submit(sim, tmp_path / "store", dask_processes.address)
    stdout, stderr = build.communicate(timeout=180)
    assert build.returncode == 0, stderr
    assert f"dask scheduler {dask_processes.address}, dashboard http://127.0.0.1:" in stderr
    assert "assemble galaxies" in stderr  # the verb's own progress bars
    assert stdout.strip().splitlines()[-1].startswith("ingest: ")
    _assert_same_store(tmp_path / "store", reference)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("folder", "first_output"),
    [("cutouts_work", "chunk_*.hdf5"), ("cutouts", "subhalo_*.hdf5")],
    ids=["while-cutting-chunks", "while-writing-cutouts"],
)
def test_a_build_survives_a_worker_killed_mid_task(
    sim: Path,
    reference: Path,
    dask_processes: DaskProcesses,
    tmp_path: Path,
    folder: str,
    first_output: str,
) -> None:
    store = tmp_path / "store"
    build = _submit(sim, store, dask_processes.address)
    stdout = _kill_a_busy_worker(
        build,
        dask_processes,
        started=lambda: any(getattr(StoreLayout(store), folder).glob(first_output)),
    )
    assert stdout.strip().splitlines()[-1].startswith("ingest: ")
    _assert_same_store(store, reference)


@pytest.mark.timeout(240)
def test_submit_build_observe_equals_a_local_observe(
    reference: Path, dask_processes: DaskProcesses, tmp_path: Path
) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    shutil.copytree(reference, local)
    shutil.copytree(reference, remote)
    run_observe(load_config(ObserveConfig, overrides=OBSERVE_SETTINGS), store=local, progress=False)
    command = [
        str(DARKSTACK), "submit", "build", "observe", "--store", str(remote),
        "--dask-address", dask_processes.address, *(f"--set={item}" for item in OBSERVE_SETTINGS),
    ]  # fmt: skip
    build = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr
    assert "observe galaxies" in build.stderr and "observe: " in build.stdout
    files = _tree(remote)
    images = StoreLayout(remote).zarr("observations") / "images" / "zarr.json"
    assert images.relative_to(remote).as_posix() in files
    assert files == _tree(local)


@pytest.mark.timeout(240)
def test_submit_build_starts_a_local_cluster_from_the_settings(
    sim: Path, reference: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from darkstack.cli import cli

    settings = tmp_path / "cluster.yaml"
    settings.write_text("dask:\n  kind: local\n  dashboard_port: 0\n")
    result = CliRunner().invoke(
        cli,
        [
            "submit", "build", "ingest", "--sim", str(sim), "--store", str(tmp_path / "store"),
            "--cluster-config", str(settings), "--workers", "1",
            *(f"--set={item}" for item in INGEST_SETTINGS),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert re.search(
        r"dask scheduler tcp://127\.0\.0\.1:\d+, dashboard http://127\.0\.0\.1:", result.output
    )
    _assert_same_store(tmp_path / "store", reference)


@pytest.fixture(scope="module")
def fields_reference(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("fields-reference") / "store"
    config = load_config(FieldsConfig, overrides=FIELDS_SETTINGS)
    run_fields(config, sim=sim, dark=sim, store=store, progress=False)
    return store


@pytest.mark.timeout(300)
def test_submit_build_fields_with_a_worker_killed_mid_tile_writes_the_same_bytes(
    sim: Path, fields_reference: Path, dask_processes: DaskProcesses, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    command = [
        str(DARKSTACK), "submit", "build", "fields", "--sim", str(sim), "--dark", str(sim),
        "--store", str(store), "--dask-address", dask_processes.address,
        *(f"--set={item}" for item in FIELDS_SETTINGS),
    ]  # fmt: skip
    build = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout = _kill_a_busy_worker(
        build, dask_processes, started=lambda: any(store.glob("fields.work/tiles/*/*.json"))
    )
    assert "dark_dm_mass, dark_subhalo_mass, hydro_dm_mass" in stdout
    files = _tree(store / "fields.zarr")
    assert "hydro_dm_mass/c/3/3/3" in files  # every chunk written
    assert files == _tree(fields_reference / "fields.zarr")
