"""``darkstack evaluate --task dm2gal`` end to end: a tiny universe pair, its fields, one epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr
from click.testing import CliRunner

from darkstack.config import load_config
from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig
from darkstack.features.fields.hod import HodConfig, deposit_on_fields_grid, hod_for_runs
from darkstack.store import StoreLayout
from darkstack.train.session import run_training
from darkstack.train.tasks import get_task
from darkstack.train.tasks.dm2gal import Dm2galTrainConfig
from darkstack.universe.build import build_universe
from darkstack.universe.config import UniverseConfig

GRID = 32


def test_evaluate_paints_scores_and_compares_with_hod_realisations(
    tmp_path: Path,
    tiny_dm2gal_universe: tuple[str, ...],
    tiny_dm2gal_training: tuple[str, ...],
    tiny_dm2gal_evaluation: tuple[str, ...],
) -> None:
    from darkstack.cli import cli

    config = load_config(UniverseConfig, overrides=["seed=5", *tiny_dm2gal_universe])
    build_universe(config, tmp_path / "sim", dark_twin=tmp_path / "dark", progress=False)
    sim, dark, store = tmp_path / "sim" / "output", tmp_path / "dark" / "output", tmp_path / "s"
    fields = FieldsConfig(
        grid=GRID,
        chunk=16,
        fields=("dark_dm_mass", "dark_subhalo_mass", "hydro_stellar_mass_subhalo"),
    )
    run_fields(fields, sim=sim, dark=dark, store=store, progress=False)
    train = load_config(
        Dm2galTrainConfig,
        preset=get_task("dm2gal").presets["quick"],
        overrides=[*tiny_dm2gal_training, "run=r"],
    )
    run_training(train, store=store, use_ray=False, progress=False)
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--task",
            "dm2gal",
            "--store",
            str(store),
            "--run",
            "r",
            *(word for setting in tiny_dm2gal_evaluation for word in ("--set", setting)),
        ],
    )
    assert result.exit_code == 0, result.output
    paths = StoreLayout(store).run("r")
    metrics = json.loads((paths.report / "metrics.json").read_text())
    assert set(metrics["modes"]) == {"dm2gal_truth_positions", "dm2gal_gravity_only"}
    assert all(len(values) == 3 for values in metrics["hod"].values())
    fractions = metrics["gravity_only_beats_hod_fraction"]
    assert set(fractions) == {"pk_distance", "bk_distance", "r_distance"}
    assert all(value in (0, 1 / 3, 2 / 3, 1) for value in fractions.values())
    assert (paths.report / "slice.png").stat().st_size > 0
    assert "HOD, 3 realisations" in (paths.report / "summary.md").read_text()
    # The HOD scored is the one features/fields/hod.py paints, cut to the test cube's bounds.
    bounds = zarr.open_group(paths.test_cube, mode="r").attrs["bounds"]
    block = tuple(slice(lo, hi) for lo, hi in bounds)  # type: ignore[union-attr]
    first = deposit_on_fields_grid(hod_for_runs(HodConfig(seed=0), sim=sim, dark=dark), store=store)
    cube = zarr.open_group(paths.test_cube, mode="r")
    truth = np.asarray(cube["truth"][...])
    assert first[block].shape == truth.shape  # type: ignore[union-attr]
    assert np.isfinite(metrics["hod"]["pk_distance"]).all()
