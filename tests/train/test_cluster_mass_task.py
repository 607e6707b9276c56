"""The cluster_mass task through the shared loop: U-Nets on a tiny synthetic cluster_maps.zarr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import darkstack
from darkstack.config import load_config
from darkstack.errors import InputError
from darkstack.store import CLUSTER_MAPS_ZARR, StoreLayout
from darkstack.train.session import run_training
from darkstack.train.tasks import get_task
from darkstack.train.tasks.cluster_mass import ClusterMassTrainConfig


def _write_store(
    root: Path, *, n_clusters: int = 10, per_cluster: int = 3, side: int = 32, width: int = 0
) -> Path:
    """NFW-like projected mass with views that follow it: y ~ Σ^1.5, S_X ~ Σ^2, stellar mass
    Σ^1 in a few blobs and zero elsewhere (a learnable stand-in with the real maps' units).
    Maps are ``side`` pixels high and ``width`` (default ``side``) wide."""
    rng = np.random.default_rng(0)
    width = width or side
    y, x = np.meshgrid(
        (np.arange(side) - (side - 1) / 2) / (side / 2),
        (np.arange(width) - (width - 1) / 2) / (side / 2),
        indexing="ij",
    )
    n = n_clusters * per_cluster
    images = np.zeros((n, 3, side, width))
    targets = np.empty((n, side, width))
    for i in range(n):
        mass = 10 ** rng.uniform(13.5, 15)
        radius = np.hypot(x - rng.normal(0, 0.05), y - rng.normal(0, 0.05)) + 0.05
        sigma = mass / 1e6 / (radius * (1 + 5 * radius) ** 2)
        targets[i] = sigma
        images[i, 0] = 1e-12 * sigma**1.5
        images[i, 1] = 1e-20 * sigma**2
        blobs = rng.integers(0, min(side, width), size=(4, 2))
        images[i, 2, blobs[:, 0], blobs[:, 1]] = 0.01 * sigma[blobs[:, 0], blobs[:, 1]]
    dataset = CLUSTER_MAPS_ZARR.build(
        coords={
            "sample": np.arange(n),
            "channel": list(CLUSTER_MAPS_ZARR.labels("channel")),
            "group_id": np.repeat(100 + np.arange(n_clusters), per_cluster),
            "line_of_sight": np.tile(np.arange(per_cluster), n_clusters),
            "pixel_kpc": np.full(n, 50.0),
        },
        data_vars={"images": images, "targets": targets},
        attrs={
            "config": json.dumps({"n_pixels": side}),
            "darkstack_version": darkstack.__version__,
            "framing": "paper",
        },
    )
    dataset.to_zarr(StoreLayout(root).zarr(CLUSTER_MAPS_ZARR.name), mode="w", consolidated=False)
    return root


def _config(*overrides: str) -> ClusterMassTrainConfig:
    config: ClusterMassTrainConfig = load_config(
        ClusterMassTrainConfig,
        preset=get_task("cluster_mass").presets["quick"],
        overrides=["model.channels=4", "optim.max_epochs=2", "torch_threads=1", *overrides],
    )
    return config


@pytest.mark.parametrize(
    "overrides",
    [["views=[stellar_mass]"], ["fusion=late"]],
    ids=["single-view", "late-fusion"],
)
def test_unet_trains_through_the_shared_loop_split_by_cluster(
    tmp_path: Path, overrides: list[str]
) -> None:
    store = _write_store(tmp_path)
    summary = run_training(_config(*overrides), store=store, use_ray=False, progress=False)
    assert summary.result is not None and summary.paths.model.exists()
    split = json.loads(summary.paths.split.read_text())
    clusters = {name: set(split[name]["group_id"]) for name in ("train", "validation", "test")}
    assert clusters["train"] and clusters["validation"] and clusters["test"]
    assert not clusters["train"] & clusters["test"]
    assert not clusters["train"] & clusters["validation"]
    assert not clusters["validation"] & clusters["test"]


def test_normalised_training_inputs_are_standard_log_maps(tmp_path: Path) -> None:
    store = _write_store(tmp_path)
    task = get_task("cluster_mass")
    config = _config()
    dataset = task.open_dataset(store, config)
    train = task.split(dataset, config)["train"]
    normalisation = task.fit_normalisation(store, config, dataset, samples=train)
    inputs, targets = task.source(store, config, dataset, normalisation, samples=train).read(
        np.arange(train.size)
    )
    assert inputs.shape == (train.size, 3, 32, 32) and targets.shape == (train.size, 32, 32)
    np.testing.assert_allclose(inputs.mean(axis=(0, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(inputs.std(axis=(0, 2, 3)), 1.0, atol=1e-3)
    # The target stays log10 Σ (the Regressor standardises it): compare with numpy directly.
    raw = np.asarray(task_maps(store)["targets"])[dataset.samples[train]]
    floor = 1e-4 * raw.mean()
    np.testing.assert_allclose(targets, np.log10(np.maximum(raw, floor)), rtol=1e-5)
    assert normalisation["target_floor"] == pytest.approx([floor])
    # Empty stellar pixels sit at the floor, 1e-4 of the channel's mean training pixel.
    stellar = np.asarray(task_maps(store)["images"])[dataset.samples[train], 2]
    assert normalisation["input_floor"][2] == pytest.approx(1e-4 * stellar.mean())


def task_maps(store: Path) -> Any:
    return CLUSTER_MAPS_ZARR.check(StoreLayout(store).zarr(CLUSTER_MAPS_ZARR.name))


def test_map_side_not_divisible_by_the_poolings_is_a_one_line_error(tmp_path: Path) -> None:
    store = _write_store(tmp_path, side=30)
    with pytest.raises(InputError, match=r"cluster_maps.zarr: U-Net input maps are 30x30") as info:
        get_task("cluster_mass").open_dataset(store, _config())
    assert "\n" not in str(info.value)


def test_unknown_view_is_refused() -> None:
    with pytest.raises(ValueError, match="views"):
        ClusterMassTrainConfig(views=("tsz_y", "lensing"))


def test_two_member_bootstrap_ensemble_trains_and_predicts_member_maps(tmp_path: Path) -> None:
    from darkstack.evaluate.cluster_mass.report import predict_run
    from darkstack.train.predict import predict_members
    from darkstack.train.run import load_split_data
    from darkstack.train.worker import load_trained

    store = _write_store(tmp_path)
    config = _config(
        "n_members=2", "bootstrap=true", "views=[tsz_y]", "dihedral=true", "data.augment=true"
    )
    assert config.run_name == "unet_tsz_y_c4p3_m2_d4_s0"
    summary = run_training(config, store=store, use_ray=False, progress=False)
    payload = torch.load(summary.paths.model, weights_only=False)
    weights = np.asarray(payload["bootstrap_weights"])
    split = json.loads(summary.paths.split.read_text())["train"]
    groups = get_task("cluster_mass").open_dataset(store, config).groups
    clusters = groups[split["samples"]]
    # One count per cluster and member, the same for its lines of sight; members differ.
    assert weights.shape == (len(split["samples"]), 2)
    for cluster in np.unique(clusters):
        assert np.unique(weights[clusters == cluster], axis=0).shape[0] == 1
    assert not np.array_equal(weights[:, 0], weights[:, 1])
    np.testing.assert_array_equal(weights.sum(axis=0), len(split["samples"]))
    data = load_split_data(store, summary.paths, "test")
    members = predict_members(load_trained(summary.paths), data.inputs)
    assert members.shape == (data.inputs.shape[0], 2, 32, 32) and np.all(np.isfinite(members))
    assert not np.allclose(members[:, 0], members[:, 1])
    # The report's prediction: the members' mean log map, their spread the std (ddof 0).
    found = predict_run(store, summary.paths.root.name, samples=data.samples, device="cpu")
    np.testing.assert_allclose(np.log10(found.sigma_msun_kpc2), members.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(found.spread_dex, members.std(axis=1), atol=1e-6)
    assert found.n_members == 2


def test_bootstrap_weights_weigh_each_members_pixel_mean_squared_error() -> None:
    from darkstack.train.loop import member_losses

    rng = np.random.default_rng(1)
    outputs, targets = rng.normal(size=(5, 2, 4, 4)), rng.normal(size=(5, 4, 4))
    weights = np.array([[1, 0], [2, 1], [0, 3], [1, 1], [0, 0]], dtype=np.float64)
    per_sample = get_task("cluster_mass").per_sample_loss(
        torch.from_numpy(outputs), torch.from_numpy(targets)
    )
    losses = member_losses(per_sample, torch.from_numpy(weights)).numpy()
    errors = ((outputs - targets[:, None]) ** 2).mean(axis=(2, 3))
    expected = [np.average(errors[:, m], weights=weights[:, m]) for m in range(2)]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)


def test_dihedral_flips_reach_views_and_target_alike_through_the_stream(tmp_path: Path) -> None:
    from darkstack.train.run import prepare_run
    from darkstack.train.worker import training_streams

    store = _write_store(tmp_path)
    task = get_task("cluster_mass")
    config = _config("dihedral=true", "data.augment=true")
    assert config.run_name == "unet_tsz_y+xray_bol+stellar_mass_early_c4p3_d4_s0"
    stream, _ = training_streams(store, prepare_run(store, config, task=task), task=task)
    codes = set()
    for batch in stream.epoch(0):
        inputs, targets = stream.source.read(batch.positions)
        for sample in range(len(batch.positions)):
            # The element that moved the views (numpy's rot90 of a flip) moved the target.
            (code,) = [
                c
                for c in range(8)
                if np.array_equal(batch.inputs[sample].numpy(), _numpy_d4(inputs[sample], c))
            ]
            np.testing.assert_array_equal(
                batch.targets[sample].numpy(), _numpy_d4(targets[sample], code)
            )
            codes.add(code)
    assert len(codes) > 1


def _numpy_d4(maps: np.ndarray, code: int) -> np.ndarray:
    return np.rot90(np.flip(maps, axis=-1) if code >= 4 else maps, k=code % 4, axes=(-2, -1))


def test_flips_are_opt_in_and_need_data_augment() -> None:
    task = get_task("cluster_mass")
    # The small preset leaves data.augment at its default, true: still no flips.
    small = load_config(ClusterMassTrainConfig, preset=task.presets["small"])
    assert small.data.augment and task.augmentation(small) is None
    assert task.augmentation(_config("dihedral=true", "data.augment=true")) is not None
    with pytest.raises(ValueError, match=r"dihedral=True; expected false unless data\.augment"):
        _config("dihedral=true")


def test_log_radius_weights_give_each_logarithmic_annulus_the_same_weight() -> None:
    from darkstack.features.cluster_observe import pixel_radii_kpc
    from darkstack.train.tasks.cluster_mass import log_radius_weights

    n = 512
    weights = log_radius_weights(n)
    radius = pixel_radii_kpc(n, pixel_kpc=1.0)
    assert weights.mean() == pytest.approx(1.0, rel=1e-12)
    # Pixels inside one pixel of the centre share the cap; beyond, w r^2 is one constant.
    np.testing.assert_allclose(weights[radius < 1], weights.max(), rtol=1e-12)
    np.testing.assert_allclose((weights * radius**2)[radius >= 1], weights.max(), rtol=1e-12)
    # 2 pi d ln r per annulus: the octaves 16-32, ..., 128-256 px weigh 2 pi ln 2 each, to
    # the pixelisation of the rings (< 1% at these sizes, 2% at 8-16 px).
    octaves = [weights[(radius >= r) & (radius < 2 * r)].sum() for r in (16, 32, 64, 128)]
    np.testing.assert_allclose(
        np.asarray(octaves) / weights.max(), 2 * np.pi * np.log(2), rtol=0.01
    )


def test_log_radius_loss_is_the_numpy_weighted_pixel_mean_and_scores_validation_alike() -> None:
    from darkstack.train.tasks.cluster_mass import log_radius_weights

    task = get_task("cluster_mass")
    rng = np.random.default_rng(2)
    outputs, targets = rng.normal(size=(3, 2, 8, 8)), rng.normal(size=(3, 8, 8))
    config = _config("loss_weighting=log_radius")
    assert config.run_name == "unet_tsz_y+xray_bol+stellar_mass_early_c4p3_wlogr_s0"
    loss, validation = task.losses(config)
    found = loss(torch.from_numpy(outputs), torch.from_numpy(targets)).numpy()
    errors = (outputs - targets[:, None]) ** 2
    expected = np.average(errors.reshape(3, 2, -1), axis=-1, weights=log_radius_weights(8).ravel())
    np.testing.assert_allclose(found, expected, rtol=1e-12)
    np.testing.assert_array_equal(
        validation(torch.from_numpy(outputs), torch.from_numpy(targets)).numpy(), found
    )
    # The default is the plain pixel mean of the other tasks.
    plain, _ = task.losses(_config())
    np.testing.assert_allclose(
        plain(torch.from_numpy(outputs), torch.from_numpy(targets)).numpy(),
        errors.mean(axis=(2, 3)),
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    "overrides", [["loss_weighting=log_radius"], ["dihedral=true", "data.augment=true"]]
)
def test_square_only_settings_on_rectangular_maps_are_a_one_line_error(
    tmp_path: Path, overrides: list[str]
) -> None:
    store = _write_store(tmp_path, side=32, width=48)
    task = get_task("cluster_mass")
    assert task.open_dataset(store, _config()).side == (32, 48)
    with pytest.raises(InputError, match=rf"maps are 32x48 pixels; {overrides[0]} needs square"):
        task.open_dataset(store, _config(*overrides))
