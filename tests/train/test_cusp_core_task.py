"""The cusp_core task through the shared loop: folds by dwarf, mixture NLL, MC-dropout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import darkstack
from darkstack.config import load_config
from darkstack.store import PHASE_SPACE_ZARR, StoreLayout
from darkstack.train.data import split_by_group
from darkstack.train.session import run_training
from darkstack.train.tasks import get_task
from darkstack.train.tasks.cusp_core import CuspCoreTrainConfig


def _write_store(root: Path, *, n_dwarfs: int = 12, per_dwarf: int = 4, side: int = 16) -> Path:
    """Maps whose xy blob width encodes the slope (a learnable stand-in for real maps)."""
    rng = np.random.default_rng(0)
    slopes = rng.uniform(-1.5, 0.0, n_dwarfs)
    axis = np.arange(side) - (side - 1) / 2
    y, x = np.meshgrid(axis, axis, indexing="ij")
    images = np.empty((n_dwarfs * per_dwarf, 2, side, side), dtype=np.float32)
    for i in range(images.shape[0]):
        width = 1.5 + 2.0 * (slopes[i // per_dwarf] + 1.5)
        blob = np.exp(-(x**2 + y**2) / (2 * width**2)) + 0.05 * rng.random((side, side))
        images[i] = blob / blob.sum()
    dataset = PHASE_SPACE_ZARR.build(
        coords={
            "sample": np.arange(images.shape[0]),
            "channel": ["xy", "rv"],
            "subhalo_id": np.repeat(np.arange(n_dwarfs), per_dwarf),
            "line_of_sight": np.tile(np.arange(per_dwarf), n_dwarfs),
        },
        data_vars={"images": images, "targets": np.repeat(slopes, per_dwarf)},
        attrs={"config": json.dumps({}), "darkstack_version": darkstack.__version__},
    )
    dataset.to_zarr(StoreLayout(root).zarr(PHASE_SPACE_ZARR.name), mode="w", consolidated=False)
    return root


def test_fold_split_holds_out_whole_dwarfs() -> None:
    groups = np.repeat(np.arange(20), 3)
    held = []
    for fold in range(4):
        split = split_by_group(groups, fractions=(0.6, 0.2, 0.2), seed=1, n_folds=4, fold=fold)
        sets = {name: set(groups[positions]) for name, positions in split.items()}
        assert not (sets["train"] & sets["test"]) and not (sets["validation"] & sets["test"])
        assert not sets["train"] & sets["validation"] and sets["validation"]
        assert sum(p.size for p in split.values()) == groups.size
        held += sorted(sets["test"])
    assert sorted(held) == list(range(20))


def test_config_refuses_ensembles() -> None:
    with pytest.raises(ValueError, match="n_members"):
        CuspCoreTrainConfig(n_members=3)


def test_cusp_core_trains_through_the_shared_loop(tmp_path: Path) -> None:
    store = _write_store(tmp_path)
    task = get_task("cusp_core")
    config = load_config(
        CuspCoreTrainConfig,
        preset=task.presets["quick"],
        overrides=[
            "model.conv_channels=[4, 8]",
            "model.dense_units=[16]",
            "optim.max_epochs=2",
            "torch_threads=1",
        ],
    )
    summary = run_training(config, store=store, use_ray=False)
    assert summary.result is not None and summary.paths.model.exists()
    split = json.loads(summary.paths.split.read_text())
    assert not set(split["test"]["subhalo_id"]) & set(split["train"]["subhalo_id"])
    draws = np.random.default_rng(0).normal(size=(3, 5, 6))
    posterior = task.summarise(draws)
    assert posterior.mode.shape == (3,) and np.all(posterior.lower68 <= posterior.upper68)
