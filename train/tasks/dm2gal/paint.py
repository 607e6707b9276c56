"""Painting a trained dm2gal network over the test cube: ``STORE/runs/<run>/test_cube.zarr``.

Kasmanoff et al. (2020) predict the stellar mass of the test cube only at voxels where the hydro
run has a galaxy (their ``src/predict_stellar_mass.py`` walks the test samples, whose centres come
from the hydro field). That is mode (a), ``dm2gal_truth_positions``. A user with only an N-body
run has no such positions, so mode (b), ``dm2gal_gravity_only``, predicts at the voxels holding
Dark-run subhalos above a mass threshold (``dark_subhalo_mass``; no hydro field is read). Both
are zero elsewhere, and both are in Msun per voxel (the inverse of ``log10(1 + x)``).

Inference reads crops one storage chunk (plus halo) at a time through
:class:`~darkstack.train.tasks.dm2gal.source.CropSource`, with the run's saved standardisation,
and writes no per-sample file. The module lives with the task, not under ``evaluate/``, because
the paper's model selection (the validation cube's P(k) of such a painting) is a training step,
and training never imports evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.config import Checked, Range
from darkstack.errors import InputError
from darkstack.store import StoreLayout
from darkstack.train.tasks.dm2gal.crops import chunk_of
from darkstack.train.tasks.dm2gal.samples import INPUT_FIELDS, TARGET_FIELD, Standardise
from darkstack.train.tasks.dm2gal.source import CropSource, open_fields

#: Variables of ``test_cube.zarr``.
TRUTH, TRUTH_POSITIONS, GRAVITY_ONLY = "truth", "dm2gal_truth_positions", "dm2gal_gravity_only"
#: The Dark-run field whose voxels are mode (b)'s candidates.
DARK_SUBHALO_FIELD = INPUT_FIELDS[1]


@dataclass(frozen=True, kw_only=True)
class PaintConfig(Checked):
    """How the test cube is painted.

    Parameters
    ----------
    dark_subhalo_min_mass_msun : float
        Mode (b) predicts at test-cube voxels whose ``dark_subhalo_mass`` exceeds this (Msun).
    batch_size : int
        Crops per forward pass.
    """

    dark_subhalo_min_mass_msun: Annotated[float, Range(ge=0)] = 1e10
    batch_size: Annotated[int, Range(ge=1)] = 64


#: ``predict(standardised crops (B, 2, s, s, s))``: each crop's ``log10(1 + M*)``, shape (B,)
#: (the run's ``Regressor`` maps the network's standardised output back to those units).
Predict = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def model_predict(model: torch.nn.Module, *, device: str = "cpu") -> Predict:
    """A trained run's model (answering ``(B, 1, 1)``) as a :data:`Predict`."""
    model.eval()

    def predict(crops: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.no_grad():
            out = model(torch.from_numpy(crops).to(device))
        return np.asarray(out.reshape(len(crops)).cpu().numpy(), dtype=np.float32)

    return predict


def target_msun(log_mass: NDArray[Any]) -> NDArray[np.float32]:
    """Msun of ``log10(1 + M*)`` targets: the inverse of the training's target transform."""
    return np.power(np.float32(10), np.asarray(log_mass, dtype=np.float32)) - np.float32(1)


def region_voxels(
    array: Any, bounds: tuple[tuple[int, int], ...], *, threshold: float
) -> NDArray[np.int64]:
    """``(n, 3)`` grid indices of the voxels of ``array`` inside ``bounds`` above ``threshold``."""
    (x0, x1), (y0, y1), (z0, z1) = bounds
    block = np.asarray(array[x0:x1, y0:y1, z0:z1])
    return (np.argwhere(block > threshold) + np.array([x0, y0, z0])).astype(np.int64)


def paint_voxels(
    predict: Predict,
    group: Any,
    centres: NDArray[np.int64],
    *,
    inputs: Standardise,
    side: int,
    batch_size: int,
) -> NDArray[np.float32]:
    """Stellar mass (Msun, >= 0) predicted at each of ``(n, 3)`` voxel ``centres``.

    Centres are grouped by storage chunk so each chunk and its halo is read once.
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 3)
    out = np.zeros(len(centres), dtype=np.float32)
    if not len(centres):
        return out
    arrays = [group[name] for name in INPUT_FIELDS]
    source = CropSource(
        arrays=arrays,
        centres=centres,
        targets=np.zeros((len(centres), 1), dtype=np.float32),
        side=side,
        inputs=inputs,
    )
    labels = chunk_of(centres, chunk=arrays[0].chunks[0], grid=arrays[0].shape[0])
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for positions in np.split(order, bounds):
        for start in range(0, len(positions), batch_size):
            batch = positions[start : start + batch_size]
            crops, _ = source.read(batch)
            out[batch] = target_msun(predict(crops))
    # log10(1 + x) below 0 means a negative mass; the painting is a mass field.
    return np.maximum(out, 0)


def _scatter(
    centres: NDArray[np.int64], values: NDArray[np.float32], lows: NDArray[np.int64], shape: Any
) -> NDArray[np.float32]:
    cube = np.zeros(shape, dtype=np.float32)
    local = centres - lows
    cube[local[:, 0], local[:, 1], local[:, 2]] = values
    return cube


@dataclass(frozen=True, kw_only=True)
class TestCube:
    """The painted test cube.

    Attributes
    ----------
    bounds : tuple of (int, int)
        ``[lo, hi)`` of each axis on the fields grid.
    truth, truth_positions, gravity_only : ndarray (n, n, n) float32
        Msun per voxel: the hydro run's, mode (a)'s, mode (b)'s.
    n_truth_positions, n_gravity_only : int
        Voxels painted by each mode.
    """

    bounds: tuple[tuple[int, int], ...]
    truth: NDArray[np.float32]
    truth_positions: NDArray[np.float32]
    gravity_only: NDArray[np.float32]
    n_truth_positions: int
    n_gravity_only: int


def paint_test_cube(
    predict: Predict,
    group: Any,
    *,
    bounds: tuple[tuple[int, int], ...],
    inputs: Standardise,
    side: int,
    min_stellar_mass_msun: float,
    config: PaintConfig,
) -> TestCube:
    """Paint both modes over ``bounds`` of the fields ``group``.

    Parameters
    ----------
    predict : Predict
        The network (:func:`model_predict`).
    group : zarr.Group
        ``fields.zarr``.
    bounds : tuple of (int, int)
        The test cube (non-wrapping, as :func:`~.regions.paper_regions` places it).
    inputs : Standardise
        The run's input standardisation.
    side : int
        The run's crop side.
    min_stellar_mass_msun : float
        Mode (a)'s candidates: hydro voxels above this (the run's sample threshold).
    config : PaintConfig
        Mode (b)'s threshold and the batch size.
    """
    lows = np.array([lo for lo, _ in bounds])
    shape = tuple(hi - lo for lo, hi in bounds)
    (x0, x1), (y0, y1), (z0, z1) = bounds
    truth = np.asarray(group[TARGET_FIELD][x0:x1, y0:y1, z0:z1], dtype=np.float32)
    hydro = (np.argwhere(truth > min_stellar_mass_msun) + lows).astype(np.int64)
    dark = region_voxels(
        group[DARK_SUBHALO_FIELD], bounds, threshold=config.dark_subhalo_min_mass_msun
    )
    painted = {}
    for name, centres in (("a", hydro), ("b", dark)):
        values = paint_voxels(
            predict,
            group,
            centres,
            inputs=inputs,
            side=side,
            batch_size=config.batch_size,
        )
        painted[name] = _scatter(centres, values, lows, shape)
    return TestCube(
        bounds=bounds,
        truth=truth,
        truth_positions=painted["a"],
        gravity_only=painted["b"],
        n_truth_positions=len(hydro),
        n_gravity_only=len(dark),
    )


def write_test_cube(path: Path, cube: TestCube, *, attrs: dict[str, Any], chunk: int) -> Path:
    """Write ``cube`` to the zarr group ``path`` (replaced), its bounds and ``attrs`` attached."""
    import zarr

    group = zarr.open_group(path, mode="w")
    for name, values in (
        (TRUTH, cube.truth),
        (TRUTH_POSITIONS, cube.truth_positions),
        (GRAVITY_ONLY, cube.gravity_only),
    ):
        array = group.create_array(
            name, shape=values.shape, chunks=(min(chunk, values.shape[0]),) * 3, dtype="float32"
        )
        array[...] = values
        array.attrs["units"] = "Msun per voxel"
    group.attrs.update(
        {
            **attrs,
            "bounds": [list(b) for b in cube.bounds],
            "n_truth_positions": cube.n_truth_positions,
            "n_gravity_only": cube.n_gravity_only,
        }
    )
    return path


def paint_run(
    store: str | Path,
    run: str,
    *,
    config: PaintConfig | None = None,
    predict: Predict | None = None,
    device: str = "cpu",
) -> Path:
    """Paint run ``run``'s test cube into ``STORE/runs/<run>/test_cube.zarr``; return its path.

    ``predict`` replaces the run's trained model (tests pass a stub); ``device`` is torch's.

    Raises
    ------
    InputError
        For a store without the fields, or a run whose test centres are not this store's
        (another grid or other fields).
    """
    from darkstack.train.run import load_normalisation, load_run_config, load_split
    from darkstack.train.tasks import get_task

    store = Path(store)
    config = config or PaintConfig()
    paths = StoreLayout(store).run(run)
    task = get_task("dm2gal")
    run_config = load_run_config(paths, task=task)
    group = open_fields(store)
    attrs = dict(group.attrs)
    missing = [key for key in ("box_mpc_h", "scheme") if key not in attrs]
    if missing:
        raise InputError(f"{StoreLayout(store).zarr('fields')} lacks attributes {missing}")
    target = group[TARGET_FIELD]
    grid = int(target.shape[0])
    regions = run_config.samples.regions(grid)
    bounds = tuple((int(lo), int(hi)) for lo, hi in regions.test.bounds)
    saved = np.asarray(load_split(paths)["test"]["samples"], dtype=np.int64)
    threshold = float(run_config.samples.min_stellar_mass_msun)
    expected = np.sort(
        np.ravel_multi_index(region_voxels(target, bounds, threshold=threshold).T, (grid,) * 3)
    )
    if not np.array_equal(np.sort(saved), expected):
        raise InputError(
            f"run {run}'s {saved.size} test centres are not the {expected.size} voxels above "
            f"{threshold:.3g} Msun in the {grid}³ test cube of {store}: it was trained on "
            "other fields"
        )
    normalisation = load_normalisation(paths)
    if predict is None:
        from darkstack.train.worker import load_trained

        predict = model_predict(load_trained(paths, task=task, device=device), device=device)
    cube = paint_test_cube(
        predict,
        group,
        bounds=bounds,
        inputs=Standardise(
            mean=tuple(normalisation["input_mean"]), std=tuple(normalisation["input_std"])
        ),
        side=run_config.samples.crop_side,
        min_stellar_mass_msun=threshold,
        config=config,
    )
    box_mpc_h = float(attrs["box_mpc_h"]) * cube.truth.shape[0] / grid
    return write_test_cube(
        paths.test_cube,
        cube,
        attrs={
            "run": run,
            "grid": grid,
            "scheme": str(attrs["scheme"]),
            "box_mpc_h": box_mpc_h,
            "min_stellar_mass_msun": threshold,
            "dark_subhalo_min_mass_msun": config.dark_subhalo_min_mass_msun,
        },
        chunk=int(target.chunks[0]),
    )
