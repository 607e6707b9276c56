"""The task contract: the toy task trains and resumes through the unchanged loop; the registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from darkstack.config import ConfigError, load_config
from darkstack.train.models import extract_member
from darkstack.train.run import load_split_data, prepare_run
from darkstack.train.session import run_training
from darkstack.train.tasks import get_task, task_names
from darkstack.train.tasks.profiles import PRESETS as PROFILES_PRESETS
from darkstack.train.tasks.profiles import ProfilesTrainConfig
from darkstack.train.worker import initial_model, load_trained, train_process

sys.path.insert(0, str(Path(__file__).parent))
import toy_task
from toy_task import assert_same_weights, toy_config, train_interrupted


def test_registry_resolves_builtin_and_registered_tasks() -> None:
    assert get_task("profiles").name == "profiles"
    assert get_task("toy") is toy_task.TASK
    assert {"cusp_core", "dm2gal", "profiles", "toy"} <= set(task_names())
    registered = "registered: cluster_mass, cusp_core, dm2gal"
    with pytest.raises(ValueError, match=rf"unknown task 'nbody'; {registered}"):
        get_task("nbody")


def test_train_help_names_every_builtin_task_and_preset() -> None:
    """The --task and --preset help is spelled out (no torch import for --help): it must keep up
    with the registry."""
    from click.testing import CliRunner

    from darkstack.cli import cli

    help_text = " ".join(CliRunner().invoke(cli, ["train", "--help"]).output.split())
    builtin = {"profiles", "cusp_core", "dm2gal", "cluster_mass"}
    for name in builtin:
        assert f"{name} (" in help_text
        for preset in get_task(name).presets:
            assert f"|{preset}" in help_text or f"[{preset}|" in help_text


def test_a_config_of_another_task_is_refused(tmp_path: Path) -> None:
    store = toy_task.write_toy_store(tmp_path / "store", n_groups=6)
    with pytest.raises(ValueError, match="task 'profiles' takes a ProfilesTrainConfig"):
        prepare_run(store, toy_config(), task=get_task("profiles"))


def test_toy_task_learns_and_resumes_exactly_through_the_loop(tmp_path: Path) -> None:
    store = toy_task.write_toy_store(tmp_path / "store")
    torch.set_num_threads(1)
    straight = run_training(
        toy_config(run="straight", **{"optim.max_epochs": 6}), store=store, use_ray=False
    )
    assert straight.result is not None and straight.result.epochs == 6
    # It learned: the validation error fell well below the spread of the targets.
    validation = load_split_data(store, straight.paths, "validation")
    task = get_task("toy")
    with torch.no_grad():
        before = initial_model(straight.paths, task=task).eval()(
            torch.from_numpy(validation.inputs)
        )
        after = load_trained(straight.paths)(torch.from_numpy(validation.inputs))
    truth = torch.from_numpy(validation.targets)[:, None]
    assert (after - truth).pow(2).mean() < 0.5 * (before - truth).pow(2).mean()
    assert (after - truth).pow(2).mean() < 0.25 * truth.var()

    # The same run interrupted after epoch 2 and run again resumes from its checkpoint.
    resumed = train_interrupted(
        store, toy_config(run="resumed", **{"optim.max_epochs": 6}), after_epoch=2
    )
    summary = run_training(
        toy_config(run="resumed", **{"optim.max_epochs": 6}), store=store, use_ray=False
    )
    assert summary.result is not None and summary.result.epochs == 6
    lines = resumed.metrics.read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2, 3, 4, 5]
    assert_same_weights(straight.paths, resumed)


def test_checkpoints_every_k_epochs_and_the_last_resume_exactly(tmp_path: Path) -> None:
    store = toy_task.write_toy_store(tmp_path / "store")
    torch.set_num_threads(1)
    settings = {"optim.max_epochs": 6, "checkpoint_every_epochs": 4}
    written: list[int] = []

    def record(metrics: dict[str, Any], checkpoint: Path | None) -> None:
        if checkpoint is not None:
            written.append(metrics["epoch"])

    straight = prepare_run(store, toy_config(run="straight", **settings))
    train_process(store=store, paths=straight, device=torch.device("cpu"), report=record)
    assert written == [3, 5]  # every 4th epoch, and the run's last

    # Stopped after epoch 4, whose checkpoint was not due: the run resumes from epoch 3's.
    resumed = train_interrupted(store, toy_config(run="resumed", **settings), after_epoch=4)
    checkpoint = torch.load(resumed.checkpoints / "checkpoint.pt", weights_only=False)
    assert checkpoint["state"]["epoch"] == 3
    epochs = [json.loads(line)["epoch"] for line in resumed.metrics.read_text().splitlines()]
    assert epochs == [0, 1, 2, 3, 4]
    summary = run_training(toy_config(run="resumed", **settings), store=store, use_ray=False)
    assert summary.result is not None and summary.result.epochs == 6
    # Epoch 4 was trained again; its first line left the log, which holds each epoch once.
    epochs = [json.loads(line)["epoch"] for line in resumed.metrics.read_text().splitlines()]
    assert epochs == [0, 1, 2, 3, 4, 5]
    assert_same_weights(straight, resumed)


def test_checkpoint_cadence_is_a_checked_setting() -> None:
    with pytest.raises(ConfigError, match=r"checkpoint_every_epochs=0; expected a value >= 1"):
        toy_config(checkpoint_every_epochs=0)
    paper = load_config(ProfilesTrainConfig, preset=PROFILES_PRESETS["paper"])
    quick = load_config(ProfilesTrainConfig, preset=PROFILES_PRESETS["quick"])
    assert (paper.checkpoint_every_epochs, quick.checkpoint_every_epochs) == (10, 1)


def test_toy_members_are_independent_networks() -> None:
    network = toy_task.ToyVolumeNet(toy_task.ToyNetConfig(n_members=3)).eval()
    volumes = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        together = network(volumes)
        for member in range(3):
            alone = extract_member(network, member)(volumes)
            assert torch.allclose(alone[:, 0], together[:, member], atol=1e-6)
    assert together.shape == (2, 3, 1)
    assert not np.allclose(together[:, 0].numpy(), together[:, 1].numpy())
