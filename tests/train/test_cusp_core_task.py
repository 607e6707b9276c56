"""The cusp_core task through the shared loop: folds by dwarf, mixture NLL, MC-dropout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import darkstack
from darkstack.config import load_config
from darkstack.errors import InputError
from darkstack.features.phase_space import SCALARS
from darkstack.store import PHASE_SPACE_ZARR, StoreLayout
from darkstack.train.data import split_by_group
from darkstack.train.session import run_training
from darkstack.train.tasks import get_task
from darkstack.train.tasks.cusp_core import (
    CuspCoreTrainConfig,
    PosteriorCalibration,
    mirror_xy_maps,
    pack_inputs,
)


def _write_store(root: Path, *, n_dwarfs: int = 12, per_dwarf: int = 4, side: int = 16) -> Path:
    """Maps whose xy blob width encodes the slope (a learnable stand-in for real maps), and
    scalars of which the stellar mass encodes it too."""
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
            "scalar": list(SCALARS),
            "subhalo_id": np.repeat(np.arange(n_dwarfs), per_dwarf),
            "line_of_sight": np.tile(np.arange(per_dwarf), n_dwarfs),
        },
        data_vars={
            "images": images,
            "scalars": np.column_stack(
                [
                    rng.normal(1.0, 0.1, images.shape[0]),
                    rng.normal(-0.3, 0.1, images.shape[0]),
                    np.repeat(7.0 + slopes, per_dwarf),
                ]
            ),
            "targets": np.repeat(slopes, per_dwarf),
        },
        attrs={
            "config": json.dumps({"n_pixels": side, "n_stars": 100}),
            "darkstack_version": darkstack.__version__,
        },
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


def test_a_damaged_calibration_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    assert PosteriorCalibration.load(path) is None
    PosteriorCalibration(
        temperature=0.8, coverage68_before=0.75, coverage68_after=0.68, n_samples=10
    ).save(path)
    assert PosteriorCalibration.load(path) == PosteriorCalibration(
        temperature=0.8, coverage68_before=0.75, coverage68_after=0.68, n_samples=10
    )
    path.write_text('{"method": "temperature"}')
    with pytest.raises(InputError, match=f"{path} is not a cusp_core calibration"):
        PosteriorCalibration.load(path)


def test_config_refuses_ensembles() -> None:
    with pytest.raises(ValueError, match="n_members"):
        CuspCoreTrainConfig(n_members=3)


@pytest.mark.parametrize("scalars", [[], ["log_stellar_mass_msun", "log_v_scale_kms"]])
def test_cusp_core_trains_through_the_shared_loop(tmp_path: Path, scalars: list[str]) -> None:
    store = _write_store(tmp_path)
    task = get_task("cusp_core")
    config = load_config(
        CuspCoreTrainConfig,
        preset=task.presets["quick"],
        overrides=[
            "model.conv_channels=[4, 8]",
            "model.dense_units=[16]",
            f"model.scalars={json.dumps(scalars)}",
            "optim.max_epochs=2",
            "torch_threads=1",
        ],
    )
    summary = run_training(config, store=store, use_ray=False)
    assert summary.result is not None and summary.paths.model.exists()
    split = json.loads(summary.paths.split.read_text())
    assert not set(split["test"]["subhalo_id"]) & set(split["train"]["subhalo_id"])
    normalisation = json.loads(summary.paths.normalisation.read_text())
    assert len(normalisation["scalar_mean"]) == len(scalars)
    # The posterior temperature was fitted on the validation split and saved with the run.
    calibration = PosteriorCalibration.load(summary.paths.calibration)
    assert calibration is not None and 0.05 < calibration.temperature < 20.0
    assert calibration.n_samples == len(split["validation"]["samples"])
    if not scalars:
        # A maps-only run saved before scalars and calibration existed: its config has
        # neither key and its weights no scalar statistics; it loads as what it was.
        import torch
        import yaml

        from darkstack.train.run import load_run_config
        from darkstack.train.worker import load_trained

        saved = yaml.safe_load(summary.paths.config.read_text())
        del saved["model"]["scalars"], saved["calibration"]
        summary.paths.config.write_text(yaml.safe_dump(saved))
        payload = torch.load(summary.paths.model, weights_only=False)
        assert not any("scalar" in key for key in payload["state_dict"])
        old = load_run_config(summary.paths, task=task)
        assert old.model.scalars == () and old.calibration == "none"
        assert load_trained(summary.paths, task=task).network.config.n_scalars == 0
    if scalars:
        # predict measures the velocity scale from the stars; the stellar mass is the user's.
        from click.testing import CliRunner

        from darkstack.cli import cli
        from darkstack.features.star_catalog import sky_from_tangent_plane

        rng = np.random.default_rng(4)
        x, y = rng.normal(scale=0.4, size=(2, 300))
        ra, dec = sky_from_tangent_plane(
            x_kpc=x, y_kpc=y, centre_deg=(30.0, -5.0), distance_kpc=90.0
        )
        stars = tmp_path / "stars.csv"
        velocity = rng.normal(0, 9, 300)
        pd.DataFrame({"ra_deg": ra, "dec_deg": dec, "v_los_kms": velocity}).to_csv(
            stars, index=False
        )
        arguments = ["predict", "--store", str(store), "--run", config.run_name, "--passes", "3"]
        arguments += ["--stars", str(stars), "--distance-kpc", "90"]
        result = CliRunner().invoke(cli, arguments)
        assert result.exit_code != 0
        assert "takes log_stellar_mass_msun; give --stellar-mass-msun" in result.output
        result = CliRunner().invoke(cli, [*arguments, "--stellar-mass-msun", "1e7"])
        assert result.exit_code == 0, result.output
        assert "v_scale_kms" in result.output
    draws = np.random.default_rng(0).normal(size=(3, 5, 6))
    posterior = task.summarise(draws)
    assert posterior.mode.shape == (3,) and np.all(posterior.lower68 <= posterior.upper68)


@pytest.mark.slow  # two trainings, MC-dropout and the CLI: ~35 s on the shared machine
def test_evaluate_gathers_folds_and_reports_against_the_baseline(tmp_path: Path) -> None:
    from darkstack.evaluate.cusp_core import CuspCoreEvaluateConfig, evaluate_cusp_core
    from darkstack.store import DWARFS_CATALOG, write_catalog

    store = _write_store(tmp_path, n_dwarfs=24)
    rng = np.random.default_rng(2)
    write_catalog(
        store,
        DWARFS_CATALOG,
        {
            "subhalo_id": np.arange(24),
            "m200c_msun": np.full(24, 1e10),
            "stellar_mass_msun": 10 ** rng.uniform(6, 8, 24),
            "r_half_kpc": np.full(24, 0.5),
            "n_stars": np.full(24, 1000),
            "n_dm_fit_window": np.full(24, 10000),
            "dm_log_slope_150pc": rng.uniform(-1.5, 0, 24),
            "dm_log_slope_150pc_error": np.full(24, 0.02),
            "anisotropy_radius_kpc": np.full(24, 1.0),
            "status": ["ok"] * 24,
        },
    )
    base = ["model.conv_channels=[4]", "model.dense_units=[8]", "optim.max_epochs=1"]
    fold_runs = []
    for fold in (0, 1):
        config = load_config(
            CuspCoreTrainConfig,
            preset=get_task("cusp_core").presets["quick"],
            overrides=[*base, f"data.fold={fold}", "torch_threads=1"],
        )
        run_training(config, store=store, use_ray=False)
        fold_runs.append(config.run_name)
    report = evaluate_cusp_core(store, config.run_name, CuspCoreEvaluateConfig(passes=5))
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["missing_folds"] == [] and len(metrics["runs"]) == 2
    # Both folds together hold out every dwarf once.
    assert metrics["metrics"]["n_dwarfs"] == 24 and metrics["metrics"]["n_samples"] == 96
    assert 0.0 <= metrics["metrics"]["within_0.1"] <= metrics["metrics"]["within_0.3"] <= 1.0
    # The store's log M* scalar is 7 + slope: the scalars' fit (a line with ~9 training dwarfs
    # a fold, too few for the quadratic's 10 terms) gets every slope.
    assert metrics["baseline_scalars"]["mad_mode"] < 1e-4
    assert (report / "posteriors.png").exists() and "| within +-0.1 | 0.82 |" in (
        report / "summary.md"
    ).read_text()

    # predict on a star table: the last line is the mode and the 68% interval.
    from click.testing import CliRunner

    from darkstack.cli import cli
    from darkstack.features.star_catalog import sky_from_tangent_plane

    x, y = rng.normal(scale=0.4, size=(2, 300))
    ra, dec = sky_from_tangent_plane(x_kpc=x, y_kpc=y, centre_deg=(30.0, -5.0), distance_kpc=90.0)
    stars = tmp_path / "stars.csv"
    pd.DataFrame({"ra_deg": ra, "dec_deg": dec, "v_los_kms": rng.normal(0, 9, 300)}).to_csv(
        stars, index=False
    )
    arguments = ["predict", "--store", str(store), "--run", config.run_name, "--passes", "5"]
    arguments += ["--stellar-mass-msun", "1e7"]  # the default network takes log M*
    out = tmp_path / "not" / "yet" / "there"  # --out may name folders predict must create
    located = ["--stars", str(stars), "--distance-kpc", "90", "--out", str(out)]
    result = CliRunner().invoke(cli, [*arguments, *located])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"mode -?\d\.\d\d \(68%: -?\d\.\d\d to -?\d\.\d\d\)", last), last
    posterior = np.loadtxt(f"{out}.posterior.csv", delimiter=",", skiprows=1)
    assert posterior.shape[1] == 2 and np.trapezoid(posterior[:, 1], posterior[:, 0]) == (
        pytest.approx(1.0, rel=1e-6)
    )
    # Both folds' networks: the mean of the posteriors each gives alone.
    alone = []
    for name in fold_runs:
        single = ["predict", "--store", str(store), "--run", name, "--passes", "5"]
        single += ["--stellar-mass-msun", "1e7", *located[:-1], str(tmp_path / name)]
        assert CliRunner().invoke(cli, single).exit_code == 0
        alone.append(np.loadtxt(tmp_path / f"{name}.posterior.csv", delimiter=",", skiprows=1))
    assert not np.allclose(alone[0][:, 1], alone[1][:, 1])
    both = ["predict", "--store", str(store), "--passes", "5", "--stellar-mass-msun", "1e7"]
    both += [*(flag for name in fold_runs for flag in ("--run", name)), *located]
    result = CliRunner().invoke(cli, both)
    assert result.exit_code == 0, result.output
    together = np.loadtxt(f"{out}.posterior.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(together[:, 1], (alone[0][:, 1] + alone[1][:, 1]) / 2, rtol=1e-9)
    few = tmp_path / "few.csv"
    pd.read_csv(stars).head(50).to_csv(few, index=False)
    result = CliRunner().invoke(cli, [*arguments, "--stars", str(few), "--distance-kpc", "90"])
    assert result.exit_code != 0 and "fewer than the 100" in result.output


def test_scalars_are_standardised_and_join_the_dense_layers() -> None:
    """Packed rows split back into maps and scalars; the network sees the scalars standardised
    by the training statistics, so a model with scalars answers to them and one without
    does not take them."""
    import torch

    from darkstack.train.models.mdcnn import MDCNN, MDCNNConfig
    from darkstack.train.tasks.cusp_core import CuspCoreModel

    torch.manual_seed(0)
    maps = np.random.default_rng(0).random((5, 2, 8, 8)).astype(np.float32)
    scalars = np.array([[1.0, 8.0]] * 5, dtype=np.float32)
    network = MDCNN(MDCNNConfig(image_size=8, conv_channels=(2,), dense_units=(4,), n_scalars=2))
    model = CuspCoreModel(network, input_scale=64.0, scalar_mean=(1.0, 7.0), scalar_std=(2.0, 0.5))
    rows = torch.from_numpy(pack_inputs(maps, scalars))
    back_maps, back_scalars = model.split_inputs(rows)
    np.testing.assert_array_equal(back_maps.numpy(), maps)
    np.testing.assert_array_equal(back_scalars.numpy(), scalars)
    model.eval()
    # (1 - 1) / 2 = 0 and (8 - 7) / 0.5 = 2: the dense layers receive [0, 2] after the maps.
    direct = network(torch.from_numpy(maps) * 64.0, torch.tensor([[0.0, 2.0]] * 5))
    torch.testing.assert_close(model(rows), direct)
    shifted = rows.clone()
    shifted[:, -1] += 1.0
    assert not torch.allclose(model(shifted), model(rows))
    with pytest.raises(ValueError, match="takes 2 scalars, got 0"):
        network(torch.from_numpy(maps))


def test_augment_mirrors_the_stars_and_keeps_the_rv_map() -> None:
    """Each augmented xy map is the map of the mirrored stars (x -> -x and/or y -> -y)."""
    import torch

    from darkstack.features.phase_space import PhaseSpaceConfig, phase_space_maps

    rng = np.random.default_rng(3)
    # A lopsided clump (centred at +x, +y) so that every mirror gives a different map.
    x, y = rng.normal([0.6, 0.3], 0.4, size=(500, 2)).T
    v = rng.normal(0.0, 10.0, 500)
    config = PhaseSpaceConfig(n_pixels=16)

    def maps(sign_x: float, sign_y: float) -> np.ndarray:
        return phase_space_maps(
            x_kpc=sign_x * x, y_kpc=sign_y * y, v_los_kms=v, r_half_kpc=0.5, config=config
        )

    mirrors = {(sx, sy): maps(sx, sy) for sx in (1.0, -1.0) for sy in (1.0, -1.0)}
    scalars = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    batch = torch.from_numpy(pack_inputs(np.repeat(mirrors[1.0, 1.0][None], 64, axis=0), scalars))
    slopes = torch.arange(64, dtype=torch.float32)
    augmented, same = mirror_xy_maps(
        batch, slopes.clone(), generator=torch.Generator().manual_seed(0), n_scalars=3
    )
    assert torch.equal(same, slopes)
    np.testing.assert_array_equal(augmented[:, -3:].numpy(), scalars)
    seen = set()
    for sample in augmented[:, :-3].reshape(64, 2, 16, 16).numpy():
        np.testing.assert_allclose(sample[1], mirrors[1.0, 1.0][1], atol=1e-7)
        matches = [k for k, m in mirrors.items() if np.allclose(sample[0], m[0], atol=1e-7)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(mirrors)
