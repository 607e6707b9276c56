"""A Ray Train worker process killed mid-training: the run resumes from its checkpoint and ends.

``darkstack train`` runs in a subprocess with its own local Ray instance (under a temporary
directory of this test, so every process it starts is this test's); once an epoch is logged,
its ``ray::RayTrainWorker`` process gets SIGKILL. Ray Train restarts the worker group
(``ray.max_failures``), the new worker resumes from the latest reported checkpoint, and the
final weights equal those of the same training run without interruption.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from darkstack.config import load_config
from darkstack.store import StoreLayout
from darkstack.train.session import run_training
from darkstack.train.tasks.profiles import ProfilesTrainConfig

pytest.importorskip("ray.train")
psutil = pytest.importorskip("psutil")

DARKSTACK = Path(sys.executable).parent / "darkstack"
pytestmark = pytest.mark.skipif(
    not DARKSTACK.exists(), reason=f"no `darkstack` executable next to {sys.executable}"
)
# Epochs of about half a second on one core: long enough to land the kill inside the run.
SETTINGS = (
    "model.image_size=96",
    "data.channels=[sdss_r]",
    "data.batch_size=8",
    "n_members=1",
    "optim.max_epochs=4",
    "ray.max_failures=2",
    "torch_threads=1",
)


def _epochs(metrics: Path) -> list[int]:
    if not metrics.exists():
        return []
    # A line may be seen half written while the loop appends it.
    lines = metrics.read_text().splitlines(keepends=True)
    return [json.loads(line)["epoch"] for line in lines if line.endswith("\n")]


def _train_workers(root: psutil.Process) -> list[psutil.Process]:
    workers = []
    for process in root.children(recursive=True):
        try:
            if " ".join(process.cmdline()).startswith("ray::RayTrainWorker"):
                workers.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return workers


def _stop_tree(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    descendants = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGKILL)
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            continue
    process.wait()


@pytest.mark.slow  # a Ray cluster start-up and a training: ~1 min
@pytest.mark.timeout(600)
def test_a_killed_ray_train_worker_resumes_from_its_checkpoint(
    synthetic_store: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = synthetic_store(n_galaxies=40, image_size=96)
    # Ray's socket paths must stay under 107 bytes: a short folder of this test's own.
    ray_tmp = tmp_path_factory.mktemp("rt")
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    command = [str(DARKSTACK), "train", "--store", str(store), "--set", "run=killed"]
    command += [f"--set={item}" for item in SETTINGS]
    log_path = ray_tmp / "train.log"
    run = StoreLayout(store).run("killed")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 400
            while not _epochs(run.metrics):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "no epoch within 400 s"
                time.sleep(0.05)
            workers = _train_workers(psutil.Process(process.pid))
            before = _epochs(run.metrics)
            finished_before_kill = run.model.exists()
            assert len(workers) == 1, workers
            workers[0].kill()
            returncode = process.wait(timeout=400)
        finally:
            _stop_tree(process)
    output = log_path.read_text()
    assert returncode == 0, output
    assert not finished_before_kill and len(before) < 4, "the kill came after the training"
    assert run.model.exists()
    epochs = _epochs(run.metrics)
    after = epochs[len(before) :]
    # Resumed, not restarted: epoch 0 ran once, and the first epoch after the kill continues
    # from the last one logged (or repeats it, if its checkpoint had not been reported yet).
    assert epochs.count(0) == 1 and epochs == sorted(epochs), epochs
    assert after and after[0] in (before[-1], before[-1] + 1), (before, after)
    assert epochs[-1] == 3 and set(epochs) == {0, 1, 2, 3}, epochs
    # Ray Train's own account of the restart, in its controller's log (the CLI keeps Ray's logs
    # out of the terminal without --verbose), and the training's last line.
    controller_logs = "".join(
        path.read_text(errors="replace") for path in ray_tmp.rglob("ray-train-*controller*.log")
    )
    assert "[FailurePolicy] RETRY" in controller_logs, sorted(ray_tmp.rglob("*.log"))[:20]
    assert "trained killed for 4 epochs" in output, output

    # The same training without interruption (in this process) gives the same weights.
    config = load_config(ProfilesTrainConfig, overrides=["run=straight", *SETTINGS])
    run_training(config, store=store, use_ray=False)
    resumed = torch.load(run.model, weights_only=False)["state_dict"]
    straight = torch.load(StoreLayout(store).run("straight").model, weights_only=False)
    assert resumed.keys() == straight["state_dict"].keys()
    for name, tensor in straight["state_dict"].items():
        assert torch.equal(resumed[name], tensor), name
