"""The dm2gal task through the shared loop on a synthetic ``fields.zarr``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from darkstack.config import load_config
from darkstack.errors import InputError
from darkstack.store import StoreLayout
from darkstack.train.session import run_training
from darkstack.train.tasks import get_task
from darkstack.train.tasks.dm2gal import Dm2galTrainConfig
from darkstack.train.tasks.dm2gal.regions import GUARD, TRAIN
from darkstack.train.worker import training_streams

GRID, CHUNK = 48, 16


def _write_fields(root: Path, *, fraction: float = 0.006) -> Path:
    """Random Dark-run fields; stellar mass where the subhalo field is high (a learnable link)."""
    import zarr

    rng = np.random.default_rng(5)
    group = zarr.open_group(StoreLayout(root).zarr("fields"), mode="w")
    # What `darkstack fields` records and the P(k) selection reads.
    group.attrs.update({"box_mpc_h": 20.0, "scheme": "cic"})
    dm = rng.lognormal(20.0, 1.0, (GRID,) * 3).astype(np.float32)
    subhalo = np.where(rng.random((GRID,) * 3) < fraction, rng.lognormal(24, 1.0, (GRID,) * 3), 0)
    stars = np.where(subhalo > 0, 1e-2 * subhalo, 0.0)
    for name, values in (
        ("dark_dm_mass", dm),
        ("dark_subhalo_mass", subhalo),
        ("hydro_stellar_mass_subhalo", stars),
    ):
        array = group.create_array(name, shape=(GRID,) * 3, chunks=(CHUNK,) * 3, dtype="float32")
        array[...] = values.astype(np.float32)
    return root


def _config(*overrides: str) -> Dm2galTrainConfig:
    return load_config(
        Dm2galTrainConfig,
        preset=get_task("dm2gal").presets["quick"],
        overrides=["optim.max_epochs=1", "torch_threads=1", *overrides],
    )


def test_dm2gal_trains_one_epoch_with_the_split_by_region(tmp_path: Path) -> None:
    store = _write_fields(tmp_path)
    config = _config()
    task = get_task("dm2gal")
    dataset = task.open_dataset(store, config)
    summary = run_training(config, store=store, use_ray=False, progress=False)
    assert summary.paths.model.exists()
    split = json.loads(summary.paths.split.read_text())
    regions = config.samples.regions(GRID)
    for name in ("train", "validation", "test"):
        samples = np.asarray(split[name]["samples"])
        assert samples.size > 0
        labels = regions.label(dataset.centres(samples))
        assert np.all(labels == {"train": TRAIN, "validation": 1, "test": 2}[name])
    assert not np.any(regions.label(dataset.centres(dataset.samples)) == GUARD)
    normalisation = json.loads(summary.paths.normalisation.read_text())
    assert normalisation["input_fields"] == ["dark_dm_mass", "dark_subhalo_mass"]
    # Training visits the weighted sampler's draw, new every epoch: repeats, as many as the
    # split; the streams of a resumed run (opened again) draw the same for the same epoch.
    train = np.asarray(split["train"]["samples"], dtype=np.int64)
    stream, _ = training_streams(store, summary.paths, task=task)
    assert len(stream) == train.size
    plans = [np.sort(np.concatenate(stream.plan(epoch))) for epoch in (0, 1)]
    assert plans[0].size == plans[1].size == train.size
    assert np.unique(plans[0]).size < train.size
    assert not np.array_equal(plans[0], plans[1])
    again, _ = training_streams(store, summary.paths, task=task)
    for epoch in (0, 1):
        pairs = zip(stream.plan(epoch), again.plan(epoch), strict=True)
        assert all(np.array_equal(a, b) for a, b in pairs)


def test_draws_per_epoch_caps_the_weighted_and_the_uniform_draw(tmp_path: Path) -> None:
    store = _write_fields(tmp_path)
    task = get_task("dm2gal")
    for bins in (20, 0):
        config = _config("samples.draws_per_epoch=50", f"samples.weight_bins={bins}")
        dataset = task.open_dataset(store, config)
        train = dataset.samples[task.split(dataset, config)["train"]]
        assert train.size > 50
        draw = task.epoch_draw(config, dataset, samples=train)
        assert draw is not None
        assert draw(0).size == draw(1).size == 50
        assert not np.array_equal(draw(0), draw(1))
    uncapped = _config("samples.weight_bins=0")
    assert task.epoch_draw(uncapped, dataset, samples=train) is None


def test_the_sampler_can_bin_the_centres_dark_subhalo_mass_instead_of_the_target(
    tmp_path: Path,
) -> None:
    import zarr

    store = _write_fields(tmp_path)
    # Stellar masses unrelated to the subhalo masses, so the two binnings differ.
    fields = zarr.open_group(StoreLayout(store).zarr("fields"), mode="r+")
    subhalo = np.asarray(fields["dark_subhalo_mass"][...])
    rng = np.random.default_rng(8)
    stars = np.where(subhalo > 0, rng.lognormal(20, 2.0, subhalo.shape), 0.0)
    fields["hydro_stellar_mass_subhalo"][...] = stars.astype(np.float32)
    task = get_task("dm2gal")
    config_overrides = (
        "samples.centres=dark_subhalos",
        "samples.dark_subhalo_min_mass_msun=1e9",
        "samples.weight_field=dark_subhalo_mass",
        "samples.weight_bins=5",
    )
    config = _config(*config_overrides)
    dataset = task.open_dataset(store, config)
    train = dataset.samples[task.split(dataset, config)["train"]]
    draw = task.epoch_draw(config, dataset, samples=train)
    assert draw is not None

    # The inverse counts of 5 equal bins of log10(1 + M), read here straight from the zarr.
    def inverse_counts(masses: np.ndarray) -> np.ndarray:
        log_mass = np.log10(1.0 + masses.astype(np.float64).reshape(-1)[train])
        counts, edges = np.histogram(log_mass, bins=5)
        return 1.0 / counts[np.clip(np.digitize(log_mass, edges) - 1, 0, 4)]

    np.testing.assert_allclose(draw.weights, inverse_counts(subhalo))
    by_target = task.epoch_draw(
        _config(*config_overrides[:-2], "samples.weight_bins=5"), dataset, samples=train
    )
    assert by_target is not None
    np.testing.assert_allclose(by_target.weights, inverse_counts(stars))
    assert not np.allclose(draw.weights, by_target.weights)


def test_too_few_centres_is_a_one_line_error(tmp_path: Path) -> None:
    store = _write_fields(tmp_path)
    with pytest.raises(InputError, match="min_stellar_mass_msun"):
        get_task("dm2gal").open_dataset(store, _config("samples.min_stellar_mass_msun=1e30"))


def test_crop_sides_of_samples_and_model_must_agree() -> None:
    with pytest.raises(ValueError, match="crop_side"):
        _config("samples.crop_side=19")


def test_every_preset_reduces_the_rate_on_plateaus_of_five_epochs_like_the_paper() -> None:
    presets = get_task("dm2gal").presets
    for name in presets:
        optim = load_config(Dm2galTrainConfig, preset=presets[name]).optim
        assert (optim.lr_schedule, optim.lr_patience, optim.lr_factor) == ("plateau", 5, 0.1)


def test_runs_keep_the_epoch_of_the_validation_cubes_power_or_of_the_loss(tmp_path: Path) -> None:
    # selection.by=power logs each epoch's P(k) distance of the painted validation cube and
    # keeps the smallest; by loss (the default) keeps the smallest validation MSE.
    store = _write_fields(tmp_path)
    for by, run in (("power", "p"), ("loss", "l")):
        config = _config("optim.max_epochs=2", f"selection.by={by}", f"run={run}")
        summary = run_training(config, store=store, use_ray=False, progress=False)
        lines = [json.loads(line) for line in summary.paths.metrics.read_text().splitlines()]
        assert summary.result is not None
        kept = "validation_selection" if by == "power" else "validation_loss"
        assert ("validation_selection" in lines[0]) == (by == "power")
        assert summary.result.best_validation_loss == [min(line[kept][0] for line in lines)]
        if by == "power":
            assert all(0 <= line[kept][0] < 5 for line in lines)
            # A run saved before the selection existed has no such section: it reads as what
            # it did then, selected by the validation MSE (the default).
            import yaml

            from darkstack.train.run import load_run_config

            saved = yaml.safe_load(summary.paths.config.read_text())
            assert saved["selection"]["by"] == "power"
            del saved["selection"]
            summary.paths.config.write_text(yaml.safe_dump(saved))
            old = load_run_config(summary.paths, task=get_task("dm2gal"))
            assert old.selection.by == "loss"


def test_an_ensemble_run_selects_each_member_by_its_own_painting(tmp_path: Path) -> None:
    store = _write_fields(tmp_path)
    config = _config("n_members=2", "bootstrap=true", "selection.by=power")
    assert config.run_name.startswith("dm2gal_c17_w4_m2_")
    summary = run_training(config, store=store, use_ray=False, progress=False)
    (line,) = [json.loads(text) for text in summary.paths.metrics.read_text().splitlines()]
    assert len(line["validation_selection"]) == len(line["validation_loss"]) == 2
    # Separately initialised members on their own bootstrap weights paint differently.
    assert line["validation_selection"][0] != line["validation_selection"][1]
    assert summary.result is not None
    assert summary.result.best_validation_loss == line["validation_selection"]
