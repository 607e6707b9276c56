"""Ray jobs: trainings submitted to a running Ray cluster through its Jobs API, and following them.

The Jobs API is served by the dashboard of the cluster's head (``http://HOST:8265``); a job is a
shell command the head runs as the driver of a Ray program. A training becomes the job
``darkstack train --store /absolute/store [--config train.yaml] [ARGS] --ray-address auto``:

- The store is made absolute: the driver runs on the head node in the directory ``ray start``
  was run from, where a relative path would name another place. The store must be at that
  path on the cluster's nodes (a shared filesystem), as for any Ray training.
- A ``--config`` file travels with the job: it is copied alone into a fresh directory that
  becomes the job's ``working_dir`` (uploaded through the Jobs API and unpacked on the head,
  where the driver starts), so a laptop can submit to a cluster that cannot see its files.
  Nothing else of the submitting machine is uploaded.
- ``--ray-address auto`` joins the job's own cluster, whose address Ray gives the driver in
  ``RAY_ADDRESS``.
- The environment is the head's (``darkstack`` must be on the PATH Ray was started with), plus
  ``RAY_AUTH_MODE`` when it is set here and ``PYTHONUNBUFFERED=1``. No credential is forwarded:
  a job's runtime environment is shown to anyone who can list the jobs.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from darkstack.cluster.dask import ClusterError
from darkstack.cluster.ports import check_reachable

#: Where the Jobs API is when neither a flag, the cluster settings nor $RAY_ADDRESS say.
DEFAULT_JOBS_ADDRESS = "http://127.0.0.1:8265"
#: Name of the ``--config`` file in the job's working directory.
CONFIG_NAME = "train.yaml"
#: States after which a job does not change any more.
FINISHED = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
#: Environment variables Ray lets override the address given to its Jobs client.
_ADDRESS_VARIABLES = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
#: Forwarded to the job when set here: Ray only works with token authentication disabled when
#: every client says so, the job's driver and Ray Train workers included.
_FORWARDED_VARIABLES = ("RAY_AUTH_MODE",)


@dataclass(frozen=True, kw_only=True)
class JobInfo:
    """One job of a Ray cluster, as its Jobs API reports it.

    Attributes
    ----------
    job_id : str
        The submission id (``raysubmit_...``) that ``darkstack jobs logs|stop`` take.
    status : str
        ``PENDING``, ``RUNNING``, ``STOPPED``, ``SUCCEEDED`` or ``FAILED``.
    entrypoint : str
        The shell command the job runs.
    message : str
        The first line of Ray's explanation of the status (the rest is the log's tail).
    start_time_s, end_time_s : float, optional
        Unix times of the start and the end.
    """

    job_id: str
    status: str
    entrypoint: str
    message: str
    start_time_s: float | None
    end_time_s: float | None

    @property
    def finished(self) -> bool:
        """The job has ended and will not change any more."""
        return self.status in FINISHED


def resolve_jobs_address(*, given: str | None, configured: str | None) -> str:
    """The Jobs API to use: ``given`` (``--ray-address``), the cluster settings'
    ``ray.jobs_address``, ``$RAY_ADDRESS``, or :data:`DEFAULT_JOBS_ADDRESS`, in that order.
    """
    return given or configured or os.environ.get("RAY_ADDRESS") or DEFAULT_JOBS_ADDRESS


def training_entrypoint(
    *, store: Path, arguments: Sequence[str] = (), config: str | None = None
) -> str:
    """The shell command of a training job.

    Parameters
    ----------
    store : Path
        The store, made absolute against this process's working directory.
    arguments : sequence of str
        Further arguments of ``darkstack train`` (``--preset``, ``--set``, ...).
    config : str, optional
        The ``--config`` file as the job sees it (relative to its working directory).
    """
    command = ["darkstack", "train", "--store", os.path.abspath(store.expanduser())]
    if config is not None:
        command += ["--config", config]
    return shlex.join([*command, *arguments, "--ray-address", "auto"])


class RayJobs:
    """The Jobs API of one running Ray cluster: submit trainings, list, follow and stop jobs.

    Parameters
    ----------
    address : str
        The head's dashboard, ``http://HOST:8265``; or an address Ray resolves to it
        (``HOST:6379`` on the cluster, ``ray://HOST:10001``, ``auto``).
    connect_timeout_s : float
        Seconds to wait for the Jobs API to accept a connection (Ray's client has no timeout:
        an address that drops packets would hang it).

    Raises
    ------
    ClusterError
        When nothing answers at ``address``, or what answers is not a Ray Jobs API. Every
        method raises it, in one line naming the address (and the job), when a request fails.
    """

    def __init__(self, address: str, *, connect_timeout_s: float = 10.0) -> None:
        self.address = address
        _check_reachable(address, timeout_s=connect_timeout_s)
        with self._answers(), _without_address_variables():
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(address)

    def submit_training(
        self, *, store: Path, arguments: Sequence[str] = (), config_file: Path | None = None
    ) -> str:
        """Submit ``darkstack train`` as a job and return its id (see the module's notes).

        Parameters
        ----------
        store : Path
            The store; it must be at the same absolute path on the cluster.
        arguments : sequence of str
            Further arguments of ``darkstack train``: not ``--store``, ``--config`` or
            ``--ray-address``, which this sets.
        config_file : Path, optional
            A ``--config`` file on this machine; it travels with the job.
        """
        runtime_env: dict[str, Any] = {"env_vars": _job_environment()}
        with tempfile.TemporaryDirectory(prefix="darkstack-job-") as staging:
            if config_file is not None:
                shutil.copyfile(config_file, Path(staging) / CONFIG_NAME)
                runtime_env["working_dir"] = staging
            entrypoint = training_entrypoint(
                store=store,
                arguments=arguments,
                config=CONFIG_NAME if config_file is not None else None,
            )
            with self._answers():
                return str(
                    self._client.submit_job(
                        entrypoint=entrypoint,
                        runtime_env=runtime_env,
                        metadata={"darkstack": "train"},
                    )
                )

    def jobs(self) -> list[JobInfo]:
        """Every job the cluster knows, oldest first."""
        with self._answers():
            details = self._client.list_jobs()
        return sorted((_job_info(item) for item in details), key=lambda job: job.start_time_s or 0)

    def info(self, job_id: str) -> JobInfo:
        """The current state of one job."""
        with self._answers(job_id=job_id):
            return _job_info(self._client.get_job_info(job_id))

    def logs(self, job_id: str) -> str:
        """Everything the job's driver has printed so far."""
        with self._answers(job_id=job_id):
            return str(self._client.get_job_logs(job_id))

    def stop(self, job_id: str) -> bool:
        """Ask a job to stop (SIGTERM, then SIGKILL); False if it was not running."""
        with self._answers(job_id=job_id):
            return bool(self._client.stop_job(job_id))

    def wait(self, job_id: str, *, echo: Callable[[str], None], poll_s: float = 0.25) -> JobInfo:
        """Follow a job's log until the job ends, and return its final state.

        Parameters
        ----------
        job_id : str
            The job.
        echo : callable
            Receives each chunk of the log as the driver prints it (from the start).
        poll_s : float
            Interval of the status checks after the log has closed.
        """
        info = self.info(job_id)

        async def follow() -> None:
            async for chunk in self._client.tail_job_logs(job_id):
                echo(chunk)

        with self._answers(job_id=job_id):
            asyncio.run(follow())
        # The log closes when the driver exits, a moment before the job's status says so.
        while not info.finished:
            info = self.info(job_id)
            if not info.finished:
                time.sleep(poll_s)
        return info

    @contextmanager
    def _answers(self, *, job_id: str | None = None) -> Iterator[None]:
        """Ray's errors of one request, as one line naming the address (and the job)."""
        from aiohttp import ClientError  # the log follower's websocket
        from ray.exceptions import AuthenticationError

        try:
            yield
        except ClusterError:
            raise
        except AuthenticationError as error:
            raise ClusterError(
                f"the Ray cluster at {self.address} refused the request: {_first_line(error)} "
                "(token authentication: see docs/cluster.md)"
            ) from None
        except (OSError, RuntimeError, ValueError, ClientError) as error:
            message = _first_line(error)
            if job_id is not None and "status code 404" in message:
                raise ClusterError(
                    f"no job {job_id!r} on the Ray cluster at {self.address} "
                    "(`darkstack jobs list` shows its jobs)"
                ) from None
            if "Version check returned 404" in message:
                message = "it answers, but serves no Ray Jobs API (is it a Ray dashboard?)"
            raise ClusterError(f"Ray Jobs API at {self.address}: {message}") from None


def _check_reachable(address: str, *, timeout_s: float) -> None:
    parts = urlsplit(address)
    if parts.scheme not in {"http", "https"}:
        return  # a GCS or Ray Client address, which Ray itself resolves to the dashboard
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ClusterError(
            f"Ray address {address!r}: expected the dashboard of a Ray head, http://HOST:8265"
        )
    try:
        check_reachable(parts.hostname, port, timeout_s=timeout_s)
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ClusterError(
            f"cannot reach the Ray Jobs API at {address}: {reason} (start a head with "
            "`ray start --head --dashboard-host 127.0.0.1`, or give --ray-address "
            "http://HOST:8265)"
        ) from None


@contextmanager
def _without_address_variables() -> Iterator[None]:
    # Ray's Jobs client lets $RAY_ADDRESS override the address it is given; here the address
    # was chosen already (the flag wins over the environment), so the variables are hidden.
    saved = {name: os.environ.pop(name) for name in _ADDRESS_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _job_environment() -> dict[str, str]:
    variables = {name: os.environ[name] for name in _FORWARDED_VARIABLES if name in os.environ}
    # The driver's stdout is a file: unbuffered, followers see each line when it is printed.
    variables["PYTHONUNBUFFERED"] = "1"
    return variables


def _job_info(details: Any) -> JobInfo:
    def seconds(milliseconds: int | None) -> float | None:
        return None if milliseconds is None else milliseconds / 1000

    return JobInfo(
        job_id=str(details.submission_id or details.job_id),
        status=str(getattr(details.status, "value", details.status)),
        entrypoint=str(details.entrypoint or ""),
        # "...failed with exit code 2, last available logs (truncated ...):" introduces the
        # log's tail, which `--wait` and `jobs logs` have printed already.
        message=next(iter(str(details.message or "").splitlines()), "").split(
            ", last available logs"
        )[0],
        start_time_s=seconds(details.start_time),
        end_time_s=seconds(details.end_time),
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(error).__name__
