"""``darkstack submit train`` and ``darkstack jobs`` against a real Ray head on 127.0.0.1.

The head (:func:`darkstack.cluster.ray.local_ray_head`) runs with its own ``--temp-dir`` and
free ports, in its own process session, so the teardown stops exactly its processes (``ray
stop`` would stop every Ray instance of the machine). A tiny training is submitted as a Ray
job from another working directory, with a relative store path and a ``--config`` file that
must travel with the job.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

# ray[default] is a dependency: without it these tests fail (the loopback one must never skip).
import ray.job_submission  # noqa: F401
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.cluster.ports import free_ports
from darkstack.cluster.ray import RayHead, local_ray_head
from darkstack.cluster.ray_jobs import DEFAULT_JOBS_ADDRESS, resolve_jobs_address
from darkstack.store import StoreLayout

BIN = Path(sys.executable).parent
RAY = BIN / "ray"
DARKSTACK = BIN / "darkstack"
TINY = ("model.image_size=96", "data.channels=[sdss_r]", "n_members=1", "data.batch_size=8")


def _synthetic_store_writer() -> object:
    # The training tests' store writer lives in their conftest, which is no importable module.
    path = Path(__file__).parents[1] / "train" / "conftest.py"
    spec = importlib.util.spec_from_file_location("synthetic_store_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_synthetic_store


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayHead]:
    assert RAY.exists() and DARKSTACK.exists(), f"no `ray` or `darkstack` next to {sys.executable}"
    workdir = tmp_path_factory.mktemp("head")
    # Short on purpose: Ray's socket paths under the temp dir must stay below 107 bytes.
    with local_ray_head(
        temp_dir=tmp_path_factory.mktemp("ray"), log_path=workdir / "head.log", cwd=workdir
    ) as head:
        yield head


def _darkstack(
    *arguments: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DARKSTACK), *arguments],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow  # a Ray cluster start-up and a training: ~1 min
@pytest.mark.timeout(600)
def test_a_training_submitted_as_a_ray_job_lands_in_the_store(
    ray_head: RayHead, tmp_path: Path
) -> None:
    write_synthetic_store = _synthetic_store_writer()
    store = write_synthetic_store(tmp_path / "store", n_galaxies=12, image_size=96)  # type: ignore[operator]
    # Relative paths, from a directory the head does not run in: the store is made absolute,
    # the config file travels with the job.
    (tmp_path / "train.yaml").write_text("run: job\noptim:\n  max_epochs: 2\n")
    submitted = _darkstack(
        "submit", "train", "--store", "store", "--config", "train.yaml",
        *(f"--set={item}" for item in TINY), "--ray-address", ray_head.jobs_address, "--wait",
        env=ray_head.env, cwd=tmp_path, timeout=540,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = submitted.stdout.splitlines()[0]
    assert job_id.startswith("raysubmit_"), submitted.stdout
    assert "trained job for 2 epochs" in submitted.stdout  # --wait printed the job's log
    assert f"job {job_id} SUCCEEDED" in submitted.stderr

    listed = _darkstack("jobs", "list", "--ray-address", ray_head.jobs_address, env=ray_head.env)
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(job_id)]
    assert "SUCCEEDED" in line and f"darkstack train --store {store}" in line, line

    logs = _darkstack(
        "jobs", "logs", job_id, "--ray-address", ray_head.jobs_address, env=ray_head.env
    )
    assert logs.returncode == 0, logs.stderr
    assert "trained job for 2 epochs: best validation loss" in logs.stdout, logs.stdout
    assert "--config train.yaml" in logs.stdout and "--ray-address auto" in logs.stdout

    run = StoreLayout(store).run("job")
    assert (run.checkpoints / "checkpoint.pt").exists()
    assert run.model.exists()
    epochs = [json.loads(line)["epoch"] for line in run.metrics.read_text().splitlines()]
    assert epochs == [0, 1]
    assert list(run.ray.rglob("checkpoint.pt"))  # Ray Train's persisted copies


def test_the_local_head_listens_on_loopback_only(
    ray_head: RayHead, assert_loopback_only: Callable[..., set[str]]
) -> None:
    # Every process of the head names its temp dir, but workers, which are its raylet's children.
    roots = [
        process
        for process in psutil.process_iter(["cmdline"])
        if str(ray_head.temp_dir) in " ".join(process.info["cmdline"] or ())
    ]
    names = assert_loopback_only(roots)
    assert {"gcs_server", "raylet"} <= names


@pytest.mark.slow  # a Ray cluster start-up and a training: ~1 min
@pytest.mark.timeout(300)
def test_jobs_stop_a_running_job_and_name_failed_and_unknown_ones(
    ray_head: RayHead, tmp_path: Path
) -> None:
    from ray.job_submission import JobSubmissionClient

    job_id = JobSubmissionClient(ray_head.jobs_address).submit_job(entrypoint="sleep 300")
    address = ("--ray-address", ray_head.jobs_address)
    deadline = time.monotonic() + 120
    while "RUNNING" not in _darkstack("jobs", "list", *address, env=ray_head.env).stdout:
        assert time.monotonic() < deadline, "the job did not start within 120 s"
        time.sleep(0.5)
    stopped = _darkstack("jobs", "stop", job_id, *address, env=ray_head.env)
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"stopping {job_id}", stopped
    followed = _darkstack("jobs", "logs", job_id, "--follow", *address, env=ray_head.env)
    assert followed.returncode == 0 and f"job {job_id} STOPPED" in followed.stderr, followed
    again = _darkstack("jobs", "stop", job_id, *address, env=ray_head.env)
    assert again.stdout.strip() == f"{job_id} was not running (STOPPED)", again

    # A job that fails (no store at that path) fails `submit train --wait`, in one line.
    failed = _darkstack(
        "submit", "train", "--store", str(tmp_path / "missing"), "--wait", *address,
        env=ray_head.env, timeout=240,
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    failed_id = failed.stdout.splitlines()[0]
    assert str(tmp_path / "missing") in failed.stdout  # the driver's own error, in the log
    # The training's own exit code (2: bad input), after the job's log.
    assert failed.stderr.splitlines()[-1] == (
        f"darkstack: error: job {failed_id} FAILED: Job entrypoint command failed with exit code 2"
    ), failed.stderr

    unknown = _darkstack("jobs", "logs", "raysubmit_nope", *address, env=ray_head.env)
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines()[0] == (
        f"darkstack: error: no job 'raysubmit_nope' on the Ray cluster at {ray_head.jobs_address}"
        " (`darkstack jobs list` shows its jobs)"
    )


def test_an_unreachable_jobs_api_is_one_line_naming_it() -> None:
    (port,) = free_ports(1)
    address = f"http://127.0.0.1:{port}"
    for arguments in (["jobs", "list"], ["jobs", "stop", "raysubmit_x"]):
        result = CliRunner().invoke(cli, [*arguments, "--ray-address", address], obj={})
        assert result.exit_code == 1
        first = result.output.splitlines()[0]
        assert first.startswith(f"darkstack: error: cannot reach the Ray Jobs API at {address}: ")
        assert "Connection refused" in first


def test_submit_train_checks_the_training_config_before_submitting(tmp_path: Path) -> None:
    (port,) = free_ports(1)  # nothing listens: the config error must come first
    result = CliRunner().invoke(
        cli,
        ["submit", "train", "--store", str(tmp_path), "--set", "optim.max_epochs=many",
         "--ray-address", f"http://127.0.0.1:{port}"],
        obj={},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "max_epochs" in result.output and "many" in result.output
    assert "cannot reach" not in result.output


def test_submit_train_help_warns_of_nothing() -> None:
    # Its --cluster-config and --cluster-set are the Jobs API's, not train's a second time.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = CliRunner().invoke(cli, ["submit", "train", "--help"], obj={})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.output.count("--cluster-config") == 1


def test_the_jobs_address_is_the_flag_then_the_settings_then_ray_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "http://env:8265")
    assert resolve_jobs_address(given="http://flag:8265", configured="http://cfg:8265") == (
        "http://flag:8265"
    )
    assert resolve_jobs_address(given=None, configured="http://cfg:8265") == "http://cfg:8265"
    assert resolve_jobs_address(given=None, configured=None) == "http://env:8265"
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_jobs_address(given=None, configured=None) == DEFAULT_JOBS_ADDRESS
