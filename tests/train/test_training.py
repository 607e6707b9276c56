"""The profiles task's data, normalisation and training: splits, bootstrap weights, the loop
and its exact resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from darkstack.config import load_config
from darkstack.errors import InputError
from darkstack.train.data import bootstrap_weights, split_by_group, subsample_groups
from darkstack.train.loop import copy_member, member_losses
from darkstack.train.losses import squared_errors
from darkstack.train.models import build_model, extract_member
from darkstack.train.run import load_split, load_split_data, prepare_run
from darkstack.train.tasks import get_task
from darkstack.train.tasks.profiles import ProfilesTrainConfig
from darkstack.train.tasks.profiles.data import (
    Normalisation,
    load_images,
    open_observations,
    total_fluxes,
)
from darkstack.train.worker import initial_model, load_trained, train_process

CPU = torch.device("cpu")


def _config(**overrides: object) -> ProfilesTrainConfig:
    settings = [f"{key}={value}" for key, value in overrides.items()]
    base = [
        "data.channels=[sdss_r, hi_mom0]",
        "data.batch_size=16",
        "optim.learning_rate=3e-3",
        "model.image_size=96",
    ]
    return load_config(ProfilesTrainConfig, overrides=base + settings)


def test_split_is_disjoint_by_galaxy_and_follows_the_fractions() -> None:
    subhalo = np.repeat(np.arange(100), 3)
    split = split_by_group(subhalo, fractions=(0.6, 0.2, 0.2), seed=4)
    galaxies = {name: set(subhalo[positions]) for name, positions in split.items()}
    assert not galaxies["train"] & galaxies["validation"]
    assert not galaxies["train"] & galaxies["test"]
    assert not galaxies["validation"] & galaxies["test"]
    assert [len(galaxies[name]) for name in ("train", "validation", "test")] == [60, 20, 20]
    assert sum(len(p) for p in split.values()) == subhalo.size
    again = split_by_group(subhalo, fractions=(0.6, 0.2, 0.2), seed=4)
    assert all(np.array_equal(split[name], again[name]) for name in split)


@pytest.mark.parametrize(
    ("n_galaxies", "fractions", "sizes"),
    [
        (3, (0.6, 0.2, 0.2), [1, 1, 1]),
        (10, (0.98, 0.01, 0.01), [8, 1, 1]),
        (10, (0.01, 0.01, 0.98), [1, 1, 8]),
        (5, (0.6, 0.2, 0.2), [3, 1, 1]),
    ],
)
def test_no_split_is_empty_whatever_the_rounding(
    n_galaxies: int, fractions: tuple[float, float, float], sizes: list[int]
) -> None:
    split = split_by_group(np.arange(n_galaxies), fractions=fractions, seed=0)
    assert [split[name].size for name in ("train", "validation", "test")] == sizes


def test_too_few_galaxies_to_split_is_bad_input() -> None:
    with pytest.raises(InputError, match=r"^2 groups cannot fill the train, validation, test"):
        split_by_group(np.arange(2), fractions=(0.6, 0.2, 0.2), seed=0)


def test_failed_samples_are_left_out(synthetic_store: Callable[..., Path]) -> None:
    store = synthetic_store(n_galaxies=6, failed_samples=(3,))
    observations = open_observations(store)
    assert 3 not in observations.samples
    assert observations.samples.size == 11
    assert observations.distance_mpc.shape == (11,)


def test_subsample_takes_whole_galaxies_from_across_the_catalog() -> None:
    # 200 galaxies of 3 samples, in catalog order (which is by halo mass in TNG).
    subhalo_id = np.repeat(np.arange(200) * 5, 3)
    kept = subsample_groups(subhalo_id, limit=151, seed=4)
    assert kept.size == 151 and np.all(np.diff(kept) > 0)
    counts = np.unique(subhalo_id[kept], return_counts=True)[1]
    assert np.sum(counts != 3) == 1  # only the last galaxy drawn is cut short
    # Spread over the catalog, not its first quarter.
    assert 60 < np.mean(subhalo_id[kept] / 5) < 140
    assert np.array_equal(kept, subsample_groups(subhalo_id, limit=151, seed=4))
    assert not np.array_equal(kept, subsample_groups(subhalo_id, limit=151, seed=5))
    assert np.array_equal(subsample_groups(subhalo_id, limit=0, seed=4), np.arange(600))


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_total_fluxes_read_in_batches_equal_one_read(
    synthetic_store: Callable[..., Path], batch_size: int
) -> None:
    store = synthetic_store(n_galaxies=5, image_size=32)
    samples = np.array([0, 2, 3, 7, 9])
    channels = ("sdss_r", "sdss_g")
    whole = load_images(store, samples=samples, channels=channels).astype(np.float64)
    fluxes = total_fluxes(store, samples=samples, channels=channels, batch_size=batch_size)
    assert fluxes.shape == (5, 2)
    np.testing.assert_allclose(fluxes, whole.sum(axis=(2, 3)), rtol=1e-12)
    # Channels come back in the order asked, not the store's.
    assert not np.allclose(fluxes[:, 0], fluxes[:, 1])


def test_normalisation_is_fitted_on_training_data_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    images = rng.lognormal(0, 2, (10, 2, 8, 8)).astype(np.float32)
    targets = rng.normal(11, 0.5, (10, 20)).astype(np.float32)
    normalisation = Normalisation.fit(images, targets, channels=("sdss_r", "hi_mom1"))
    normalised = normalisation.images(images)
    assert np.allclose(normalised.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert np.allclose(normalised.std(axis=(0, 2, 3)), 1, atol=1e-4)
    assert normalisation.stretch_scale[1] == 0  # velocities stay linear
    stored = json.loads(json.dumps(normalisation.to_mapping()))
    assert Normalisation.from_mapping(stored) == normalisation


def test_bootstrap_weights_resample_whole_galaxies() -> None:
    subhalo = np.repeat(np.arange(50), 3)
    weights = bootstrap_weights(subhalo, n_members=7, seed=1)
    assert weights.shape == (150, 7)
    # Each member draws 50 galaxies; all realisations of a galaxy share its count.
    assert np.allclose(weights.sum(axis=0), 150)
    assert np.all(weights.reshape(50, 3, 7).std(axis=1) == 0)
    assert not np.allclose(weights[:, 0], weights[:, 1])
    assert (weights == 0).mean() == pytest.approx(np.exp(-1), abs=0.08)


def test_member_losses_weight_each_member_by_its_resample() -> None:
    predicted = torch.zeros(4, 2, 3)
    targets = torch.tensor([[1.0] * 3, [2.0] * 3, [3.0] * 3, [4.0] * 3])
    weights = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    losses = member_losses(squared_errors(predicted, targets), weights)
    assert losses.tolist() == pytest.approx([(1 + 4) / 2, (2 * 9 + 16) / 3])


def test_split_and_normalisation_are_stored_with_the_run(
    synthetic_store: Callable[..., Path],
) -> None:
    store = synthetic_store(n_galaxies=10, image_size=96)
    paths = prepare_run(store, _config(run="r"))
    split = load_split(paths)
    assert set(split) == {"train", "validation", "test"}
    assert sorted(s for name in split for s in split[name]["samples"]) == list(range(20))
    assert json.loads(paths.normalisation.read_text())["channels"] == ["sdss_r", "hi_mom0"]
    with pytest.raises(ValueError, match="another config"):
        prepare_run(store, _config(run="r", seed=9))


def test_copy_member_takes_exactly_one_members_weights() -> None:
    config = ProfilesTrainConfig(n_members=3)
    torch.manual_seed(0)
    a = build_model(config.model, in_channels=2, n_members=3)
    b = build_model(config.model, in_channels=2, n_members=3)
    original = build_model(config.model, in_channels=2, n_members=3)
    original.load_state_dict(a.state_dict())
    state = {f"network.{k}": v.clone() for k, v in a.state_dict().items()}
    source = {f"network.{k}": v for k, v in b.state_dict().items()}
    copy_member(state, source, member=1, n_members=3)
    a.load_state_dict({k.removeprefix("network."): v for k, v in state.items()})
    images = torch.randn(2, 2, 128, 128)
    with torch.no_grad():
        for model in (a, b, original):
            model.eval()
        # Member 1 is b's now; members 0 and 2 are still a's own, not b's.
        for member, expected in ((0, original), (1, b), (2, original)):
            got = extract_member(a, member)(images)
            assert torch.allclose(got, extract_member(expected, member)(images), atol=1e-5)
            other = b if expected is original else original
            assert not torch.allclose(got, extract_member(other, member)(images), atol=1e-3)


def test_training_learns_and_resumes_exactly(synthetic_store: Callable[..., Path]) -> None:
    store = synthetic_store(n_galaxies=20, image_size=96)
    torch.set_num_threads(2)
    straight = prepare_run(store, _config(run="straight", n_members=2, **{"optim.max_epochs": 6}))
    task = get_task("profiles")
    before = _validation_mse(store, straight, initial_model(straight, task=task).eval())
    result = train_process(store=store, paths=straight, device=CPU)
    assert result.epochs == 6
    after = _validation_mse(store, straight, load_trained(straight))
    assert after < before

    # The same run, stopped after 2 epochs and resumed from its checkpoint.
    split = prepare_run(store, _config(run="split", n_members=2, **{"optim.max_epochs": 3}))
    train_process(store=store, paths=split, device=CPU)
    resumed = prepare_run(store, _config(run="resumed", n_members=2, **{"optim.max_epochs": 6}))
    train_process(store=store, paths=resumed, device=CPU, resume_from=split.checkpoints)
    a = torch.load(straight.checkpoints / "checkpoint.pt", weights_only=False)
    b = torch.load(resumed.checkpoints / "checkpoint.pt", weights_only=False)
    assert a["state"]["epoch"] == b["state"]["epoch"] == 5
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert a["state"]["best_loss"] == b["state"]["best_loss"]


def _validation_mse(store: Path, paths: object, model: torch.nn.Module) -> float:
    data = load_split_data(store, paths, "validation")  # type: ignore[arg-type]
    with torch.no_grad():
        predicted = model(torch.from_numpy(data.inputs))
    if predicted.ndim == 4:  # the default head's mean and log-variance per radius
        predicted = predicted[:, :, 0]
    return float((predicted - torch.from_numpy(data.targets)[:, None]).pow(2).mean())
