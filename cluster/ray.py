"""Ray: connect to a running cluster, or start a local instance or head bound to 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from darkstack.cluster.dask import ClusterError
from darkstack.cluster.ports import check_reachable, free_ports

#: Seconds a local head may take until its Jobs API has run a job.
HEAD_STARTUP_TIMEOUT_S = 300
#: Variables that would point Ray clients of a local head at another cluster.
_OTHER_CLUSTER_VARIABLES = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
#: The environment of a local instance's processes (see :func:`_single_node`).
LOCAL_ENV = {
    # Ray 2.60 turns on token authentication for new clusters; a local instance owned by this
    # process has no other client, so the token would only add a failure mode.
    "RAY_AUTH_MODE": "disabled",
    # On Linux Ray replaces a node IP of 127.0.0.1 by the machine's outward address
    # (``services.resolve_ip_for_localhost``) and binds its GCS, raylet, workers and agents
    # there or on all interfaces. With multi-node clusters turned off, as Ray does on macOS and
    # Windows, the node IP stays 127.0.0.1 and every server of the instance binds loopback.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # Nothing collects the metrics of a local instance: no Prometheus exporter, no reports.
    "RAY_enable_metrics_collection": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


@contextmanager
def ray_session(
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    connect_timeout_s: float = 10.0,
    verbose: bool = False,
) -> Iterator[None]:
    """A Ray session for a training, shut down on exit if this process started it.

    Parameters
    ----------
    address : str, optional
        Address of a running cluster (``ray://host:10001``, ``host:6379`` or ``auto``);
        without one a local instance starts with :data:`LOCAL_ENV`: every server it starts,
        the dashboard included (Ray Train polls the state API it serves), listens on
        127.0.0.1 only.
    num_cpus : int, optional
        CPUs of the local instance (all of the machine's by default).
    connect_timeout_s : float
        Seconds to wait for the cluster at ``address`` to accept a connection; Ray itself
        retries a dead address for minutes.
    verbose : bool
        Forward the workers' and actors' output (Ray Train's controller included) to this
        terminal. Off, it stays in Ray's session logs (``/tmp/ray/session_latest/logs``) and the
        caller shows its own progress: the forwarded lines are colour-coded per process and
        include Ray Train's routine shutdown messages at error level.

    Raises
    ------
    ClusterError
        When nothing answers at ``address`` in time.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    if address is not None:
        # A cluster we join keeps whatever authentication and addresses it has.
        check_ray_address(address, timeout_s=connect_timeout_s)
        ray.init(address=address, log_to_driver=verbose, configure_logging=False)
        try:
            yield
        finally:
            ray.shutdown()
        return
    with _process_environ(**LOCAL_ENV), _single_node():
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
            log_to_driver=verbose,
            configure_logging=False,
        )
        try:
            yield
        finally:
            ray.shutdown()


@contextmanager
def _single_node() -> Iterator[None]:
    """Ray's multi-node switch off in this process while the context is open.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is read once, when ``ray`` is first imported; a
    process that imported it before (a test session, a notebook) gets the same setting here.
    The processes the instance starts read the variable themselves.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def check_ray_address(address: str, *, timeout_s: float) -> None:
    """Fail in one line, within ``timeout_s``, when nothing listens at a Ray ``address``.

    Parameters
    ----------
    address : str
        ``HOST:6379`` (a GCS), ``ray://HOST:10001`` (Ray Client) or ``auto`` (not checked).
    timeout_s : float
        Seconds to wait for the connection.

    Raises
    ------
    ClusterError
        Naming the address and the setting of the wait.
    """
    if address == "auto":
        return  # Ray reads the address of the cluster on this node from its own files
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ClusterError(f"Ray address {address!r}: expected HOST:6379, ray://HOST:10001 or auto")
    try:
        check_reachable(parts.hostname, port, timeout_s=timeout_s)
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise ClusterError(
            f"no Ray cluster answered at {address} within {timeout_s:g} s: {reason} (expected "
            "a running head, `ray start --head`; ray.connect_timeout_s sets the wait)"
        ) from None


@dataclass(frozen=True)
class RayHead:
    """A running local Ray head.

    Attributes
    ----------
    gcs_address : str
        Its GCS, ``127.0.0.1:PORT``: what ``ray.init(address=...)`` and ``darkstack train
        --ray-address`` join.
    jobs_address : str
        Its dashboard and Jobs API, ``http://127.0.0.1:PORT``: what ``darkstack submit train``
        and ``darkstack jobs`` use.
    env : dict of str to str
        The head's environment, which its job drivers inherit; clients of the head started as
        subprocesses should get it too (no token authentication, no other cluster's address).
    temp_dir : Path
        Its ``--temp-dir``, which every one of its processes but workers names on its command
        line (workers are children of its raylet).
    """

    gcs_address: str
    jobs_address: str
    env: dict[str, str]
    temp_dir: Path


@contextmanager
def local_ray_head(
    *,
    temp_dir: Path,
    num_cpus: int = 2,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> Iterator[RayHead]:
    """A ``ray start --head`` on 127.0.0.1, ready to run jobs, whose processes stop on exit.

    The head listens on free ports, keeps its sessions in ``temp_dir`` and runs in its own
    process session. On exit it stops exactly its own processes (its process tree and any
    process naming ``temp_dir``), never with ``ray stop``, which would stop every Ray instance
    of the machine.

    Parameters
    ----------
    temp_dir : Path
        Ray's ``--temp-dir``. Keep its path short: Ray's socket paths below it must stay under
        107 bytes.
    num_cpus : int
        CPUs the head offers to tasks.
    env : mapping of str to str, optional
        The head's environment (default: this process's), given to it with :data:`LOCAL_ENV`
        (loopback only, no token authentication, no metrics), the folder of this interpreter
        first on the ``PATH`` (so
        that job drivers find ``darkstack``, as when Ray is started from an activated
        virtualenv) and without ``RAY_ADDRESS`` or ``RAY_API_SERVER_ADDRESS``.
    log_path : Path, optional
        File of the head's output (default: discarded).
    cwd : Path, optional
        Where the head runs, and so where job drivers start (default: this process's folder).

    Yields
    ------
    RayHead
        Its addresses and environment. While the context is open, this process's environment
        has :data:`LOCAL_ENV` and no ``RAY_ADDRESS`` or ``RAY_API_SERVER_ADDRESS``, so
        Ray clients made in this process reach the head; it is restored on exit.

    Raises
    ------
    ClusterError
        When the head exits, or has not run a job within ``HEAD_STARTUP_TIMEOUT_S`` seconds.
    """
    bin_dir = Path(sys.executable).parent
    head_env = dict(os.environ if env is None else env)
    head_env.update(LOCAL_ENV, PATH=f"{bin_dir}{os.pathsep}{head_env['PATH']}")
    for name in _OTHER_CLUSTER_VARIABLES:
        head_env.pop(name, None)
    gcs, dashboard, agent, client = free_ports(4)
    command = [
        str(bin_dir / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
        "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--dashboard-agent-listen-port", str(agent), "--ray-client-server-port", str(client),
        "--num-cpus", str(num_cpus), "--include-dashboard", "true", "--disable-usage-stats",
        "--temp-dir", str(temp_dir),
    ]  # fmt: skip
    jobs_address = f"http://127.0.0.1:{dashboard}"
    with (
        open(os.devnull if log_path is None else log_path, "wb") as log,
        _process_environ(**LOCAL_ENV, **dict.fromkeys(_OTHER_CLUSTER_VARIABLES)),
    ):
        # Its own session: the teardown signals the head's process group, not ours.
        head = subprocess.Popen(
            command,
            cwd=cwd,
            env=head_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_jobs_api(jobs_address, head, log_path=log_path)
            yield RayHead(
                gcs_address=f"127.0.0.1:{gcs}",
                jobs_address=jobs_address,
                env=head_env,
                temp_dir=temp_dir,
            )
        finally:
            _stop_head(head, temp_dir=temp_dir)


@contextmanager
def _process_environ(**values: str | None) -> Iterator[None]:
    """This process's environment with ``values`` set (``None``: removed), restored on exit."""
    saved = {name: os.environ.get(name) for name in values}

    def assign(items: Mapping[str, str | None]) -> None:
        for name, value in items.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    assign(values)
    try:
        yield
    finally:
        assign(saved)


def _wait_for_jobs_api(
    address: str, head: subprocess.Popen[bytes], *, log_path: Path | None
) -> None:
    """Until a trivial job succeeds: the dashboard answers before its agent takes jobs.

    A probe job that fails (on a loaded machine the agent can accept a job before it can
    start its supervisor) is submitted again rather than waited on until the deadline.
    """
    from ray.job_submission import JobStatus, JobSubmissionClient

    where = f" (its output: {log_path})" if log_path is not None else ""
    deadline = time.monotonic() + HEAD_STARTUP_TIMEOUT_S
    job_id = None
    last = "no answer from its Jobs API"
    while True:
        if head.poll() is not None:
            raise ClusterError(f"the local Ray head at {address} exited{where}")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"the local Ray head at {address} did not run a job within "
                f"{HEAD_STARTUP_TIMEOUT_S} s (last: {last}){where}"
            )
        try:
            client = JobSubmissionClient(address)
            job_id = job_id or client.submit_job(entrypoint="true")
            info = client.get_job_info(job_id)
            if info.status == JobStatus.SUCCEEDED:
                return
            last = f"probe job {job_id} {info.status}: {info.message}"
            if info.status in (JobStatus.FAILED, JobStatus.STOPPED):
                job_id = None
        except (ConnectionError, RuntimeError) as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.5)


def _stop_head(head: subprocess.Popen[bytes], *, temp_dir: Path) -> None:
    """Stop the head's processes, and only them: SIGTERM, then SIGKILL what remains."""
    own = _own_processes(head, temp_dir=temp_dir)
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


def _own_processes(head: subprocess.Popen[bytes], *, temp_dir: Path) -> list[psutil.Process]:
    """The head's process tree, and any process naming its temp dir.

    Ray's workers and agents may leave the head's process group, but they all name the temp
    dir on their command lines.
    """
    found = {}
    try:
        root = psutil.Process(head.pid)
        found = {process.pid: process for process in root.children(recursive=True)}
    except psutil.NoSuchProcess:
        pass
    for process in psutil.process_iter(["cmdline"]):
        if str(temp_dir) in " ".join(process.info["cmdline"] or ()):
            found.setdefault(process.pid, process)
    return list(found.values())
