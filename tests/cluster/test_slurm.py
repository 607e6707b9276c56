"""SLURM scripts (dask-jobqueue's and the Ray one) and the SLURM, CUDA and local Dask kinds."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkstack.cli import cli
from darkstack.cluster import (
    ClusterError,
    DaskClusterConfig,
    RaySlurmConfig,
    SlurmWorkersConfig,
    dask_client,
    dask_cluster,
)
from darkstack.cluster.slurm import dask_job_script, ray_job_script, slurm_memory

WORKERS = SlurmWorkersConfig(
    partition="cpu",
    account="astro",
    cores=8,
    processes=2,
    memory="16GB",
    walltime="02:00:00",
    job_extra_directives=("--exclusive",),
    job_script_prologue=("source .venv/bin/activate",),
    worker_lifetime="110m",
    worker_lifetime_stagger="5m",
)


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bool(response.status == 200)


def _sbatch(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if "#SBATCH" in line]


def test_the_dask_job_script_asks_for_the_configured_resources() -> None:
    pytest.importorskip("dask_jobqueue")
    script = dask_job_script(WORKERS, scheduler_address="tcp://10.0.0.1:8786")
    assert _sbatch(script) == [
        "-J darkstack-dask", "-p cpu", "-A astro", "-n 1", "--cpus-per-task=8", "--mem=15G",
        "-t 02:00:00", "--exclusive",
    ]  # fmt: skip
    worker = script.splitlines()[-1]
    assert script.index("source .venv/bin/activate") < script.index(worker)
    assert worker.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://10.0.0.1:8786")
    # 16 GB shared by 2 processes of 4 threads; workers retire before the 2 h walltime.
    for argument in ("--nthreads 4", "--nworkers 2", "--memory-limit 7.45GiB", "--nanny"):
        assert argument in worker
    assert "--lifetime 110m --lifetime-stagger 5m" in worker


def test_the_slurm_kind_submits_that_script_and_scales_adaptively() -> None:
    pytest.importorskip("dask_jobqueue")
    from distributed import Client

    config = DaskClusterConfig(kind="slurm", dashboard_port=0, slurm=WORKERS)
    # minimum_workers=0 and no tasks: adaptive scaling submits no job, so no sbatch is needed.
    with dask_cluster(config) as cluster, Client(cluster.address) as client:
        assert cluster.job_script == dask_job_script(WORKERS, scheduler_address=cluster.address)
        assert cluster.dashboard_link is not None
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        assert _answers(cluster.dashboard_link)
        assert client.scheduler_info()["workers"] == {}


def test_the_ray_script_follows_the_ray_on_slurm_pattern() -> None:
    config = RaySlurmConfig(
        nodes=3,
        cpus_per_node=16,
        gpus_per_node=2,
        memory="64G",
        walltime="1-00:00:00",
        partition="gpu",
        account="astro",
        job_extra_directives=("--constraint=a100",),
        job_script_prologue=("module load cuda",),
    )
    command = ["darkstack", "train", "--store", "my store", "--ray-address", "auto"]
    script = ray_job_script(config, command=command)
    assert _sbatch(script) == [
        "--job-name=darkstack-ray", "--nodes=3", "--ntasks-per-node=1", "--cpus-per-task=16",
        "--mem=64G", "--time=1-00:00:00", "--gpus-per-task=2", "--partition=gpu",
        "--account=astro", "--constraint=a100",
    ]  # fmt: skip
    lines = script.splitlines()
    head = lines.index('srun --nodes=1 --ntasks=1 -w "$head_node" \\')
    assert lines[head + 1].strip() == (
        'ray start --head --node-ip-address="$head_node_ip" --port=$port \\'
    )
    assert "--num-cpus=16 --num-gpus=2 --block &" in lines[head + 3]
    worker = next(i for i, line in enumerate(lines) if 'ray start --address "$ip_head"' in line)
    assert lines[worker - 1].strip() == 'srun --nodes=1 --ntasks=1 -w "$node_i" \\'
    assert "--num-cpus=16 --num-gpus=2 --block &" in lines[worker]
    assert lines.index("module load cuda") < head < worker
    assert lines[-1] == "darkstack train --store 'my store' --ray-address auto"
    assert "export RAY_ADDRESS=$ip_head" in lines
    if shutil.which("bash"):
        checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


def test_slurm_memory_uses_slurm_units() -> None:
    assert [slurm_memory(size) for size in ("64G", "64GiB", "64GB", "1500M")] == [
        "64G", "64G", "61036M", "1500M"
    ]  # fmt: skip


def test_cli_writes_the_ray_script(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ray.sbatch"
    result = runner.invoke(
        cli,
        [
            "cluster", "slurm-script", "--kind", "ray", "--nodes", "2", "--cpus", "4",
            "--gpus", "1", "--time", "00:30:00", "--memory", "8G", "--out", str(out),
            "--", "python", "-c", "print('hi')",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    script = out.read_text()
    assert out.stat().st_mode & 0o111
    for directive in ("--nodes=2", "--cpus-per-task=4", "--gpus-per-task=1", "--time=00:30:00"):
        assert f"#SBATCH {directive}" in script
    assert script.rstrip().endswith("""python -c 'print('"'"'hi'"'"')'""")


def test_cli_dask_script_from_a_cluster_file_and_flags(tmp_path: Path) -> None:
    pytest.importorskip("dask_jobqueue")
    config = tmp_path / "cluster.yaml"
    config.write_text("dask:\n  slurm: {partition: short, cores: 4, walltime: '03:00:00'}\n")
    result = CliRunner().invoke(
        cli,
        [
            "cluster", "slurm-script", "--kind", "dask", "--cluster-config", str(config),
            "--memory", "8GB", "--job-extra", "--qos=low",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _sbatch(result.output)[1:] == [
        "-p short", "-n 1", "--cpus-per-task=4", "--mem=8G", "-t 03:00:00", "--qos=low"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--kind", "dask", "--nodes", "2"], "--nodes applies to --kind ray only"),
        (["--kind", "ray", "--time", "90 minutes", "--", "true"], "walltime='90 minutes'"),
        (["--kind", "ray"], "a Ray SLURM script needs a command"),
        (["--kind", "dask", "--", "python", "x.py"], "a Dask script only starts workers"),
    ],
)
def test_cli_errors_are_one_line(arguments: list[str], message: str) -> None:
    if "dask" in arguments and "--" in arguments:
        pytest.importorskip("dask_jobqueue")
    result = CliRunner().invoke(cli, ["cluster", "slurm-script", *arguments])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("kind", "module", "extra"),
    [("slurm", "dask_jobqueue", "slurm"), ("cuda", "dask_cuda", "gpu")],
)
def test_a_missing_extra_is_one_line_naming_it(
    kind: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ClusterError, match=rf"pip install 'darkstack\[{extra}\]'"):
        with dask_cluster(DaskClusterConfig(kind=kind)):  # type: ignore[arg-type]
            pass
    result = CliRunner().invoke(
        cli,
        [
            "submit", "build", "ingest", "--sim", str(tmp_path), "--store", str(tmp_path / "s"),
            "--cluster-set", f"dask.kind={kind}",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == (
        f"darkstack: error: a {'SLURM' if kind == 'slurm' else 'CUDA'} Dask cluster needs "
        f"{module}, which is not installed: pip install 'darkstack[{extra}]'"
    )
    if kind == "slurm":
        monkeypatch.setitem(sys.modules, "dask_jobqueue.slurm", None)
        with pytest.raises(ClusterError, match=r"pip install 'darkstack\[slurm\]'"):
            dask_job_script(WORKERS)


def test_a_local_cluster_binds_127_0_0_1_and_legacy_clients_still_work() -> None:
    from distributed import Client

    config = DaskClusterConfig(n_workers=1, threads_per_worker=2, dashboard_port=0)
    with dask_cluster(config) as cluster, Client(cluster.address) as client:
        assert cluster.address.startswith("tcp://127.0.0.1:")
        assert cluster.dashboard_link is not None
        assert re.match(r"http://127\.0\.0\.1:\d+/status", cluster.dashboard_link)
        assert _answers(cluster.dashboard_link)
        assert [w["nthreads"] for w in client.scheduler_info()["workers"].values()] == [2]
        with dask_client(address=cluster.address) as same:
            assert same is not None and same.submit(sum, [1, 2]).result() == 3
    with dask_client(workers=0) as none:
        assert none is None


def test_an_unreachable_scheduler_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from darkstack.cluster.ports import free_ports

    (port,) = free_ports(1)  # a port nothing listens on
    with pytest.raises(
        ClusterError, match=rf"no Dask scheduler answered at tcp://127.0.0.1:{port} within 2 s"
    ):
        config = DaskClusterConfig(address=f"tcp://127.0.0.1:{port}", connect_timeout_s=2)
        with dask_cluster(config):
            pass
