"""Painting dm2gal's test cube (train/tasks/dm2gal/paint.py) with a stub network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from darkstack.config import load_config
from darkstack.errors import InputError
from darkstack.store import StoreLayout
from darkstack.train.tasks import get_task
from darkstack.train.tasks.dm2gal import Dm2galTrainConfig
from darkstack.train.tasks.dm2gal.paint import (
    GRAVITY_ONLY,
    SHAM,
    TRUTH,
    TRUTH_POSITIONS,
    PaintConfig,
    Painter,
    paint_run,
    paint_test_cube,
    target_msun,
)
from darkstack.train.tasks.dm2gal.samples import Standardise, log1p10
from darkstack.train.tasks.dm2gal.source import crop_source, open_fields

GRID, CHUNK, SIDE = 32, 8, 5
DARK_THRESHOLD = 1e10


def _fields(seed: int = 3) -> dict[str, NDArray[np.float32]]:
    """Dark fields with subhalos; hydro galaxies at some of them and at voxels without one."""
    rng = np.random.default_rng(seed)
    dm = rng.lognormal(20.0, 1.0, (GRID,) * 3)
    occupied = rng.random((GRID,) * 3) < 0.05
    subhalo = np.where(occupied, rng.lognormal(np.log(3e10), 1.0, (GRID,) * 3), 0.0)
    # Galaxies in a third of the subhalos, and a hydro-only galaxy population.
    stars = np.where(occupied & (rng.random((GRID,) * 3) < 0.3), 1e-2 * subhalo, 0.0)
    stars += np.where(~occupied & (rng.random((GRID,) * 3) < 0.02), 3e9, 0.0)
    return {
        "dark_dm_mass": dm.astype(np.float32),
        "dark_subhalo_mass": subhalo.astype(np.float32),
        "hydro_stellar_mass_subhalo": stars.astype(np.float32),
    }


def _write_store(root: Path, fields: dict[str, NDArray[np.float32]]) -> Path:
    import zarr

    grid = fields["dark_dm_mass"].shape[0]
    group = zarr.open_group(StoreLayout(root).zarr("fields"), mode="w")
    group.attrs.update({"grid": grid, "scheme": "cic", "box_mpc_h": 10.0})
    for name, values in fields.items():
        array = group.create_array(name, shape=values.shape, chunks=(CHUNK,) * 3, dtype="float32")
        array[...] = values
    return root


def _prepare_run(store: Path, run: str = "r", *overrides: str) -> Dm2galTrainConfig:
    """The files a trained run leaves that painting reads (config, split, normalisation)."""
    import yaml

    from darkstack.config import config_to_dict

    config = load_config(
        Dm2galTrainConfig,
        preset=get_task("dm2gal").presets["quick"],
        overrides=[
            f"samples.crop_side={SIDE}",
            f"model.crop_side={SIDE}",
            "model.kernels=[3]",
            "samples.min_stellar_mass_msun=1e8",
            f"samples.dark_subhalo_min_mass_msun={DARK_THRESHOLD}",
            f"run={run}",
            *overrides,
        ],
    )
    task = get_task("dm2gal")
    dataset = task.open_dataset(store, config)
    split = task.split(dataset, config)
    paths = StoreLayout(store).run(run)
    paths.root.mkdir(parents=True)
    paths.config.write_text(yaml.safe_dump(config_to_dict(config)))
    paths.split.write_text(
        json.dumps({k: {"samples": dataset.samples[v].tolist()} for k, v in split.items()})
    )
    normalisation = task.fit_normalisation(
        store, config, dataset, samples=dataset.samples[split["train"]]
    )
    paths.normalisation.write_text(json.dumps(normalisation))
    return config


def _stub(
    normalisation: dict[str, list[float]],
    stars_of_subhalo: float,
    offset_dex: float = 0.0,
    slope: float = 1.0,
) -> object:
    """Answers ``slope`` log10(1 + c * M_sub) + ``offset_dex`` of the crop's central
    ``dark_subhalo_mass`` voxel (the truth's, where the truth is c times the subhalo field), as
    a trained run's Regressor does."""
    mean, std = normalisation["input_mean"][1], normalisation["input_std"][1]

    def predict(crops: NDArray[np.float32]) -> NDArray[np.float32]:
        centre = crops[:, 1, SIDE // 2, SIDE // 2, SIDE // 2].astype(np.float64)
        subhalo = 10 ** (centre * std + mean) - 1
        return np.float32(slope) * log1p10(stars_of_subhalo * subhalo) + np.float32(offset_dex)

    return predict


def _linked_store(tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, list[float]]]:
    """A prepared run "r" on fields where every subhalo voxel is a galaxy of 1e-2 its subhalo
    mass (so ``_stub(normalisation, 1e-2)`` is exact there): the store, fields and the run's
    normalisation."""
    fields = _fields()
    fields["hydro_stellar_mass_subhalo"] = 1e-2 * fields["dark_subhalo_mass"]
    store = _write_store(tmp_path, fields)
    _prepare_run(store)
    normalisation = json.loads(StoreLayout(store).run("r").normalisation.read_text())
    return store, fields, normalisation


def _open(path: Path) -> object:
    import zarr

    return zarr.open_group(path, mode="r")


def test_a_stub_returning_the_truth_reproduces_it_at_the_candidates(tmp_path: Path) -> None:
    fields = _fields()
    # Every subhalo voxel is a galaxy of 1e-2 its subhalo mass: the stub is then exact there.
    fields["hydro_stellar_mass_subhalo"] = 1e-2 * fields["dark_subhalo_mass"]
    store = _write_store(tmp_path, fields)
    config = _prepare_run(store)
    paths = StoreLayout(store).run("r")
    normalisation = json.loads(paths.normalisation.read_text())
    path = paint_run(
        store,
        "r",
        config=PaintConfig(batch_size=7),
        predict=_stub(normalisation, 1e-2),  # type: ignore[arg-type]
    )
    assert path == paths.test_cube
    cube = _open(path)
    ((lo, hi),) = {tuple(b) for b in cube.attrs["bounds"]}  # type: ignore[attr-defined]
    test = config.samples.regions(GRID).test
    assert [list(b) for b in test.bounds] == cube.attrs["bounds"]  # type: ignore[attr-defined]
    block = (slice(lo, hi),) * 3
    truth = fields["hydro_stellar_mass_subhalo"][block]
    np.testing.assert_array_equal(cube[TRUTH][...], truth)  # type: ignore[index]
    mode_a = cube[TRUTH_POSITIONS][...]  # type: ignore[index]
    candidates = truth > 1e8
    assert candidates.sum() == cube.attrs["n_truth_positions"] > 0  # type: ignore[attr-defined]
    np.testing.assert_allclose(mode_a[candidates], truth[candidates], rtol=2e-4)
    assert np.all(mode_a[~candidates] == 0)
    mode_b = cube[GRAVITY_ONLY][...]  # type: ignore[index]
    dark = fields["dark_subhalo_mass"][block] > DARK_THRESHOLD
    np.testing.assert_allclose(mode_b[dark], truth[dark], rtol=2e-4)
    assert np.all(mode_b[~dark] == 0)


def test_gravity_only_candidates_come_from_the_dark_run_only(tmp_path: Path) -> None:
    fields = _fields()
    # Without calibration: its map is fitted on the run's validation truths, which are hydro.
    paint = PaintConfig(calibration="none")
    cubes = []
    for name, hydro_seed in (("one", 3), ("two", 4)):
        other = dict(fields)
        # Same Dark run, another hydro field (the run is re-prepared on it).
        other["hydro_stellar_mass_subhalo"] = _fields(hydro_seed)["hydro_stellar_mass_subhalo"]
        store = _write_store(tmp_path / name, other)
        _prepare_run(store)
        # The same standardisation for both so the stub's answers depend on the crops alone.
        normalisation = {
            "input_mean": [0.0, 0.0],
            "input_std": [1.0, 1.0],
            "target_mean": [9.0],
            "target_std": [1.0],
        }
        (StoreLayout(store).run("r").normalisation).write_text(json.dumps(normalisation))
        cube = _open(paint_run(store, "r", config=paint, predict=_stub(normalisation, 0.05)))  # type: ignore[arg-type]
        cubes.append(cube)
    mode_b = [cube[GRAVITY_ONLY][...] for cube in cubes]  # type: ignore[index]
    np.testing.assert_array_equal(mode_b[0], mode_b[1])
    assert np.count_nonzero(mode_b[0]) == cubes[0].attrs["n_gravity_only"] > 0  # type: ignore[attr-defined]
    # Mode (a) follows the hydro field, so the two stores' differ.
    assert not np.array_equal(cubes[0][TRUTH_POSITIONS][...], cubes[1][TRUTH_POSITIONS][...])  # type: ignore[index]


def test_a_run_from_another_grid_is_refused(tmp_path: Path) -> None:
    store = _write_store(tmp_path / "a", _fields())
    _prepare_run(store)
    bigger = {name: np.tile(values, (2, 2, 2)) for name, values in _fields().items()}
    other = _write_store(tmp_path / "b", bigger)
    StoreLayout(other).run("r").root.parent.mkdir(parents=True)
    StoreLayout(store).run("r").root.rename(StoreLayout(other).run("r").root)
    with pytest.raises(InputError, match=r"test centres .* 64³ test cube") as error:
        paint_run(other, "r", predict=lambda crops: np.zeros(len(crops), np.float32))
    assert "\n" not in str(error.value)


def test_the_painting_inverts_the_training_targets_transform(tmp_path: Path) -> None:
    """What the network learns (the training source's targets) maps back to the voxels' Msun."""
    store = _write_store(tmp_path, _fields())
    config = _prepare_run(store)
    task = get_task("dm2gal")
    dataset = task.open_dataset(store, config)
    normalisation = json.loads(StoreLayout(store).run("r").normalisation.read_text())
    source = crop_source(
        open_fields(store), dataset, normalisation, samples=dataset.samples, side=SIDE
    )
    msun = target_msun(source.targets[:, 0])
    np.testing.assert_allclose(msun, dataset.targets_msun, rtol=1e-4)
    # The network sees standardised targets through the Regressor alone (not twice): the
    # source's targets are in log10(1 + M*), with the fitted mean and deviation.
    assert source.targets.mean() == pytest.approx(normalisation["target_mean"][0], rel=1e-3)
    assert source.targets.std() == pytest.approx(normalisation["target_std"][0], rel=1e-2)


def test_a_gravity_only_run_paints_mode_b_at_its_own_dark_centres(tmp_path: Path) -> None:
    fields = _fields()
    store = _write_store(tmp_path, fields)
    _prepare_run(store, "a")
    dark = _prepare_run(store, "b", "samples.centres=dark_subhalos")
    task = get_task("dm2gal")
    dataset = task.open_dataset(store, dark)
    # Dark centres: every Dark voxel above the threshold outside the guard band, with the hydro
    # field's value there as the target, zero where the hydro run has no galaxy.
    grid_index = np.stack(np.unravel_index(dataset.samples, (GRID,) * 3), axis=1)
    assert np.all(fields["dark_subhalo_mass"][tuple(grid_index.T)] > DARK_THRESHOLD)
    outside = dark.samples.regions(GRID).label(
        np.argwhere(fields["dark_subhalo_mass"] > DARK_THRESHOLD)
    )
    assert dataset.samples.size == np.count_nonzero(outside != -1)
    targets = fields["hydro_stellar_mass_subhalo"][tuple(grid_index.T)]
    np.testing.assert_array_equal(dataset.targets_msun, targets)
    assert np.any(targets == 0) and np.any(targets > 0)

    path = paint_run(
        store,
        "a",
        config=PaintConfig(gravity_only_run="b", calibration="none"),
        predict=lambda crops: np.full(len(crops), 9.0, np.float32),
    )
    cube = _open(path)
    assert cube.attrs["gravity_only_run"] == "b"  # type: ignore[attr-defined]
    ((lo, hi),) = {tuple(b) for b in cube.attrs["bounds"]}  # type: ignore[attr-defined]
    block = (slice(lo, hi),) * 3
    candidates = fields["dark_subhalo_mass"][block] > DARK_THRESHOLD
    mode_b = cube[GRAVITY_ONLY][...]  # type: ignore[index]
    np.testing.assert_allclose(mode_b[candidates], 1e9 - 1, rtol=1e-6)
    assert np.all(mode_b[~candidates] == 0)
    # A run trained on the hydro centres cannot paint the gravity-only mode.
    with pytest.raises(InputError, match=r"samples\.centres=hydro_galaxies; expected dark"):
        paint_run(
            store,
            "b",
            config=PaintConfig(gravity_only_run="a"),
            predict=lambda c: c,
        )


def test_each_mode_is_painted_by_its_own_network() -> None:
    fields = _fields()
    import zarr

    group = zarr.group()
    for name, values in fields.items():
        group.create_array(name, data=values, chunks=(CHUNK,) * 3)
    identity = Standardise(mean=(0.0, 0.0), std=(1.0, 1.0))

    def constant(value: float) -> Painter:
        return Painter(
            predict=lambda crops: np.full(len(crops), value, np.float32), inputs=identity, side=3
        )

    cube = paint_test_cube(
        group,
        bounds=((8, 24),) * 3,
        truth_positions=constant(8.0),
        gravity_only=constant(10.0),
        min_stellar_mass_msun=1e8,
        dark_subhalo_min_mass_msun=DARK_THRESHOLD,
        batch_size=5,
    )
    assert set(np.unique(cube.truth_positions)) == {0.0, np.float32(1e8 - 1)}
    assert set(np.unique(cube.gravity_only)) == {0.0, np.float32(1e10 - 1)}
    assert np.count_nonzero(cube.truth_positions) == cube.n_truth_positions > 0
    assert np.count_nonzero(cube.gravity_only) == cube.n_gravity_only > 0


def _calibrated(
    store: Path, predict: object, kind: str
) -> tuple[NDArray[Any], NDArray[Any], dict[str, Any]]:
    """Mode (a)'s painting, the truth and the calibration's attributes, with
    ``paint.calibration=kind``."""
    cube = _open(paint_run(store, "r", config=PaintConfig(calibration=kind), predict=predict))  # type: ignore[arg-type]
    return (
        cube[TRUTH_POSITIONS][...],  # type: ignore[index]
        cube[TRUTH][...],  # type: ignore[index]
        cube.attrs["calibration_truth_positions"],  # type: ignore[attr-defined]
    )


def test_duan_smearing_restores_a_network_that_answers_a_tenth_of_a_dex_low(
    tmp_path: Path,
) -> None:
    store, _, normalisation = _linked_store(tmp_path)
    low = _stub(normalisation, 1e-2, offset_dex=-0.1)
    plain, truth, none = _calibrated(store, low, "none")
    smeared, _, duan = _calibrated(store, low, "duan")
    candidates = truth > 1e8
    # Every validation centre is 0.1 dex low: Duan's factor is exactly 10^0.1.
    assert duan["kind"] == "duan"
    assert duan["calibrated"][0] - duan["predicted"][0] == pytest.approx(0.1, abs=1e-5)
    assert none == {"kind": "none", "predicted": [], "calibrated": []}
    np.testing.assert_allclose(smeared[candidates], truth[candidates], rtol=1e-4)
    np.testing.assert_allclose(plain[candidates], truth[candidates] * 10**-0.1, rtol=1e-4)


def test_quantile_calibration_undoes_a_regression_to_the_mean(tmp_path: Path) -> None:
    # A network answering 0.75 of the truth's log10(1 + M*) plus 2 dex keeps the ranking and
    # narrows the spread, as the small run's did (slope 0.75); one shift cannot undo it.
    store, _, normalisation = _linked_store(tmp_path)
    narrow = _stub(normalisation, 1e-2, offset_dex=2.0, slope=0.75)
    error, spread = {}, {}
    for kind in ("none", "duan", "quantile"):
        painted, truth, attrs = _calibrated(store, narrow, kind)
        candidates = truth > 1e8
        true_log = log1p10(truth[candidates])
        painted_log = log1p10(painted[candidates])
        error[kind] = np.median(np.abs(painted_log - true_log))
        spread[kind] = np.std(painted_log) / np.std(true_log)
        if kind == "quantile":
            knots = np.asarray(attrs["predicted"])
            assert knots.size > 10 and np.all(np.diff(knots) > 0)
    # A shift keeps the spread at 0.75 of the truth's; the quantile map restores it, up to
    # its fit on the validation cube's ~100 centres, a sample of the test cube's distribution.
    assert spread["none"] == pytest.approx(0.75, abs=0.01)
    assert spread["duan"] == pytest.approx(0.75, abs=0.01)
    assert spread["quantile"] == pytest.approx(1.0, abs=0.1)
    assert error["quantile"] < 0.5 * min(error["none"], error["duan"])
    assert error["quantile"] < 0.05


@pytest.mark.parametrize("which", ["validation", "training_and_validation"])
def test_the_calibration_and_the_sham_are_fitted_on_the_chosen_centres(
    tmp_path: Path, which: str
) -> None:
    store, fields, normalisation = _linked_store(tmp_path)
    split = json.loads(StoreLayout(store).run("r").split.read_text())
    names = ["validation"] if which == "validation" else ["train", "validation"]
    flat = np.concatenate([np.asarray(split[n]["samples"], dtype=np.int64) for n in names])
    training = np.asarray(split["train"]["samples"], dtype=np.int64)
    config = PaintConfig(calibration="quantile", calibration_centres=which)  # type: ignore[arg-type]
    cube = _open(paint_run(store, "r", config=config, predict=_stub(normalisation, 1e-2)))  # type: ignore[arg-type]
    knots = cube.attrs["calibration_truth_positions"]  # type: ignore[attr-defined]
    sham = cube.attrs["sham"]  # type: ignore[attr-defined]
    # The quantile map's end knots are the extreme truths of exactly the chosen centres, and
    # the abundance matching's the extreme Dark subhalo masses there, read here with numpy.
    stars = np.log10(1 + fields["hydro_stellar_mass_subhalo"].ravel()[flat].astype(np.float64))
    subhalo = np.log10(1 + fields["dark_subhalo_mass"].ravel()[flat].astype(np.float64))
    np.testing.assert_allclose(
        [knots["calibrated"][0], knots["calibrated"][-1]], [stars.min(), stars.max()], rtol=1e-5
    )
    np.testing.assert_allclose(
        [sham["predicted"][0], sham["predicted"][-1]], [subhalo.min(), subhalo.max()], rtol=1e-5
    )
    # The fixture's training region holds a heavier galaxy than its validation cube, so the
    # two choices give different maps.
    heaviest = fields["hydro_stellar_mass_subhalo"].ravel()[training].max()
    assert (10 ** knots["calibrated"][-1] - 1 >= heaviest * (1 - 1e-4)) == (which != "validation")


def test_an_ensemble_paints_its_members_mean_and_their_percentiles(tmp_path: Path) -> None:
    store, fields, normalisation = _linked_store(tmp_path)
    exact = _stub(normalisation, 1e-2)
    offsets = np.array([-0.1, 0.0, 0.1], dtype=np.float32)

    def members(crops: NDArray[np.float32]) -> NDArray[np.float32]:
        # Three members 0.1 dex apart about the truth's log10(1 + M*).
        return exact(crops)[:, None] + offsets  # type: ignore[operator, no-any-return]

    paint = PaintConfig(calibration="none")
    cube = _open(paint_run(store, "r", config=paint, predict=members))
    lo, hi = cube.attrs["bounds"][0]  # type: ignore[attr-defined]
    truth = fields["hydro_stellar_mass_subhalo"][(slice(lo, hi),) * 3]
    for mode in (TRUTH_POSITIONS, GRAVITY_ONLY):
        painted = cube[mode][...]  # type: ignore[index]
        where = painted > 0
        np.testing.assert_allclose(painted[where], truth[where], rtol=2e-4)
        # numpy's linear percentile of (-0.1, 0, 0.1): the 16th at -0.1 + 0.32 * 0.1 dex.
        for level, dex in ((16, -0.068), (84, 0.068)):
            bound = cube[f"{mode}_p{level}"][...]  # type: ignore[index]
            expected = 10 ** (np.log10(1 + truth[where]) + dex) - 1
            np.testing.assert_allclose(bound[where], expected, rtol=2e-4)
            assert np.all(bound[~where] == 0)
    # One network writes no interval.
    single = _open(paint_run(store, "r", config=paint, predict=exact))  # type: ignore[arg-type]
    assert f"{GRAVITY_ONLY}_p16" not in single  # type: ignore[operator]


def test_sham_ranks_the_dark_subhalo_voxels_onto_the_validation_stellar_masses(
    tmp_path: Path,
) -> None:
    import zarr

    store, fields, normalisation = _linked_store(tmp_path)
    cube = _open(paint_run(store, "r", predict=_stub(normalisation, 1e-2)))  # type: ignore[arg-type]
    ((lo, hi),) = {tuple(b) for b in cube.attrs["bounds"]}  # type: ignore[attr-defined]
    block = (slice(lo, hi),) * 3
    dark = fields["dark_subhalo_mass"][block] > DARK_THRESHOLD
    sham = cube[SHAM][...]  # type: ignore[index]
    # Stellar mass rises with the subhalo mass alone here, so matching the ranks is exact.
    truth = fields["hydro_stellar_mass_subhalo"][block]
    np.testing.assert_allclose(sham[dark], truth[dark], rtol=2e-3)
    assert np.all(sham[~dark] == 0)
    # It reads no hydro field in the test cube: doubling its galaxies changes nothing (the run's
    # test centres, the voxels above 1e8 Msun, stay the same).
    group = zarr.open_group(StoreLayout(store).zarr("fields"), mode="r+")
    group["hydro_stellar_mass_subhalo"][block] = np.where(truth > 1e8, 2 * truth, truth)
    again = _open(paint_run(store, "r", predict=_stub(normalisation, 1e-2)))  # type: ignore[arg-type]
    np.testing.assert_array_equal(again[SHAM][...], sham)  # type: ignore[index]
