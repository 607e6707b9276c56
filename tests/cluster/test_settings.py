"""Cluster settings: YAML and overrides, SLURM times and sizes, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkstack.cluster import ClusterConfig, SlurmWorkersConfig
from darkstack.cluster.settings import format_walltime, walltime_seconds
from darkstack.config import ConfigError, load_config


def test_a_cluster_file_sets_both_clusters(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    # Unquoted, YAML 1.1 reads 2:00:00 as 7200 (seconds): accepted as such.
    path.write_text(
        "dask:\n"
        "  kind: slurm\n"
        "  slurm:\n"
        "    partition: cpu\n"
        "    cores: 16\n"
        "    walltime: 2:00:00\n"
        "    job_extra_directives: [--exclusive]\n"
        "ray:\n"
        "  slurm: {nodes: 3, gpus_per_node: 4, walltime: 1-12:00:00}\n"
    )
    config = load_config(ClusterConfig, path=path, overrides=["dask.slurm.maximum_workers=32"])
    assert config.dask.kind == "slurm" and config.dask.address is None
    assert config.dask.dashboard_host == "127.0.0.1"
    slurm = config.dask.slurm
    assert (slurm.partition, slurm.cores, slurm.maximum_workers) == ("cpu", 16, 32)
    assert slurm.walltime == 7200 and slurm.walltime_hms == "02:00:00"
    assert slurm.job_extra_directives == ("--exclusive",)
    assert config.ray.slurm.nodes == 3 and config.ray.slurm.walltime_hms == "1-12:00:00"
    assert load_config(ClusterConfig) == ClusterConfig()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("01:30:00", 5400), ("2-00:00:00", 172800), ("45:00", 2700), ("100:00:00", 360000), (60, 60)],
)
def test_walltimes_in_slurm_forms(text: str | int, seconds: int) -> None:
    assert walltime_seconds(text) == seconds
    assert walltime_seconds(format_walltime(seconds)) == seconds


@pytest.mark.parametrize("text", ["1h", "01:75:00", "00:00:00", "1:2:3:4", ""])
def test_a_bad_walltime_names_the_setting_and_the_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"walltime=.*; expected a positive SLURM time"):
        SlurmWorkersConfig(walltime=text)


def test_a_setting_cannot_inject_lines_into_a_batch_script() -> None:
    with pytest.raises(ValueError, match=r"partition='gpu\\nrm -rf /'; expected a single line"):
        SlurmWorkersConfig(partition="gpu\nrm -rf /")
    with pytest.raises(ValueError, match=r"job_script_prologue=.*; expected single lines"):
        SlurmWorkersConfig(job_script_prologue=("module load x\nrm -rf /",))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["dask.slurm.walltime=00:30:00"],
            r"dask.slurm.worker_lifetime='55m'; expected .* ends before walltime=00:30:00",
        ),
        (["dask.slurm.worker_lifetime=soon"], r"worker_lifetime='soon'; expected a duration"),
        (["dask.slurm.memory=lots"], r"dask.slurm.memory='lots'; expected a size"),
        (["dask.slurm.cores=2", "dask.slurm.processes=4"], r"processes=4; expected <= cores=2"),
        (["dask.slurm.minimum_workers=5"], r"slurm.minimum_workers=5; expected <= maximum_workers"),
        (["dask.address=localhost:8786"], r"dask.address='localhost:8786'; expected .*tcp://"),
        (["dask.kind=kubernetes"], r"dask.kind='kubernetes'; expected one of"),
        (["dask.n_workers=0"], r"dask.n_workers=0; expected a value >= 1"),
        (["ray.slurm.dashboard_host=0.0.0.0 --x"], r"slurm.dashboard_host=.*; expected an address"),
        (["dask.slurm.cpus=4"], r"unknown key dask.slurm.cpus"),
    ],
)
def test_bad_settings_name_the_field_and_what_was_expected(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(ClusterConfig, overrides=overrides)


def test_a_training_reads_ray_settings_and_the_flag_wins(tmp_path: Path) -> None:
    from darkstack.cli.options import ray_cluster_settings

    path = tmp_path / "cluster.yaml"
    path.write_text("ray:\n  address: head:6379\n  num_cpus: 3\n")
    configured = ray_cluster_settings(ray_address=None, cluster_config=path, cluster_overrides=())
    assert (configured.address, configured.num_cpus) == ("head:6379", 3)
    flagged = ray_cluster_settings(
        ray_address="ray://other:10001", cluster_config=path, cluster_overrides=()
    )
    assert (flagged.address, flagged.num_cpus) == ("ray://other:10001", 3)
    local = ray_cluster_settings(
        ray_address=None, cluster_config=None, cluster_overrides=("ray.num_cpus=1",)
    )
    assert (local.address, local.num_cpus) == (None, 1)
