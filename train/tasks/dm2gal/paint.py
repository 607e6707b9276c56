"""Painting a trained dm2gal network over the test cube: ``STORE/runs/<run>/test_cube.zarr``.

Kasmanoff et al. (2020) predict the stellar mass of the test cube only at voxels where the hydro
run has a galaxy (their ``src/predict_stellar_mass.py`` walks the test samples, whose centres come
from the hydro field). That is mode (a), ``dm2gal_truth_positions``. A user with only an N-body
run has no such positions, so mode (b), ``dm2gal_gravity_only``, predicts at the voxels holding
Dark-run subhalos above a mass threshold (``dark_subhalo_mass``; no hydro field is read). Both
are zero elsewhere, and both are in Msun per voxel (the inverse of ``log10(1 + x)``).

The paper's network is trained on the hydro centres, so in mode (b) it meets Dark voxels unlike
any it was trained on (empty ones among them). ``gravity_only_run`` names a second run, trained
on the Dark centres (``samples.centres = "dark_subhalos"``, targets that may be zero), which
then paints mode (b) at its own centres; without it the run's own network paints both modes.
Beside them, ``sham_dark_subhalo`` paints mode (b)'s voxels by subhalo abundance matching
(:func:`fit_sham`), the baseline a network that reads whole crops has to beat.

Inference reads crops one storage chunk (plus halo) at a time through
:class:`~darkstack.train.tasks.dm2gal.source.CropSource`, with the run's saved standardisation,
and writes no per-sample file. The module lives with the task, not under ``evaluate/``, because
the paper's model selection (the validation cube's P(k) of such a painting,
:mod:`~darkstack.train.tasks.dm2gal.selection`) is a training step, and training never imports
evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from darkstack.config import Checked, Range
from darkstack.errors import InputError
from darkstack.store import StoreLayout
from darkstack.train.tasks.dm2gal.crops import chunk_of
from darkstack.train.tasks.dm2gal.samples import (
    DARK_SUBHALO_FIELD,
    INPUT_FIELDS,
    TARGET_FIELD,
    Dm2galSamplesConfig,
    Standardise,
    log1p10,
)
from darkstack.train.tasks.dm2gal.source import CropSource, box_and_scheme, open_fields

#: Knots of the quantile calibration (percentiles and both ends) unless set.
QUANTILE_KNOTS = 101

#: Percentiles of an ensemble's per-voxel interval (``<mode>_p16``, ``<mode>_p84``).
INTERVAL_PERCENTILES = (16, 84)

#: The centres a calibration may be fitted on (:class:`PaintConfig`'s ``calibration_centres``).
CalibrationCentres = Literal["validation", "training_and_validation"]

#: Variables of ``test_cube.zarr``.
TRUTH, TRUTH_POSITIONS, GRAVITY_ONLY = "truth", "dm2gal_truth_positions", "dm2gal_gravity_only"
#: The test cube's subhalo-abundance-matching painting (:func:`fit_sham`).
SHAM = "sham_dark_subhalo"


@dataclass(frozen=True, kw_only=True)
class PaintConfig(Checked):
    """How the test cube is painted.

    Mode (b) predicts at the test-cube voxels whose ``dark_subhalo_mass`` exceeds the
    ``samples.dark_subhalo_min_mass_msun`` of the run that paints it.

    Parameters
    ----------
    gravity_only_run : str, optional
        A run of the same store trained on ``samples.centres = "dark_subhalos"`` that paints
        mode (b); ``None`` paints both modes with the evaluated run.
    calibration : {"none", "duan", "quantile"}
        A monotone map of each network's ``y_hat = log10(1 + M*)``, fitted on its own run's
        validation centres (:class:`Calibration`). "none" is the paper's painting. "duan"
        adds Duan (1983)'s smearing, ``log10`` of the mean of ``10^(y - y_hat)``: a network
        fitted by MSE in log10 answers the mean of the logarithm, whose power of ten falls
        short of the mean mass when the mass scatters at fixed input; one shift cannot undo
        a slope below 1. "quantile" maps a prediction's quantile among the validation
        predictions to the same quantile of the validation truths (abundance matching on the
        network's answer): the painting keeps the network's ranking and takes the truth's
        distribution, which a regression to the mean narrows. The default: on `small` it
        brought both modes' P(k) distance from 0.18-0.29 to 0.05 and mode (a)'s B(k) from
        0.43 to 0.25 (docs/dm2gal.md measures all three).
    calibration_quantiles : int
        Quantile levels of the "quantile" map (its knots; fewer when the validation centres
        are fewer).
    calibration_centres : {"validation", "training_and_validation"}
        The centres each network's calibration (and the SHAM's map) is fitted on: its run's
        validation centres (the default), or those and its training centres, every centre
        outside the test cube and its guard band. The quantile map's top knots rest on the
        few most massive galaxies of the sample; the validation cube of `small` holds 10
        above 10^10.6 Msun, the training region ten times as many, and the HOD draws from the
        whole run. The network has seen its training centres, so their answers are in-sample.
    batch_size : int
        Crops per forward pass.
    """

    gravity_only_run: str | None = None
    calibration: Literal["none", "duan", "quantile"] = "quantile"
    calibration_quantiles: Annotated[int, Range(ge=2)] = QUANTILE_KNOTS
    calibration_centres: CalibrationCentres = "validation"
    batch_size: Annotated[int, Range(ge=1)] = 64


#: ``predict(standardised crops (B, 2, s, s, s))``: each crop's ``log10(1 + M*)`` from each of
#: the run's M members, shape (B, M), or (B,) for one (the run's ``Regressor`` maps the
#: network's standardised output back to those units).
Predict = Callable[[NDArray[np.float32]], NDArray[np.float32]]


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A monotone map of ``log10(1 + M*)``: linear between knots, slope 1 beyond the ends.

    No knot is the identity; one knot ``(x, y)`` is the shift ``y - x`` everywhere (Duan's
    smearing); many are a quantile map, continued beyond the validation predictions' range by
    keeping their distance from the end knot.

    Attributes
    ----------
    kind : {"none", "duan", "quantile"}
        :class:`PaintConfig`'s ``calibration`` it was fitted for.
    predicted, calibrated : tuple of float
        Increasing knots: a prediction of ``predicted[i]`` becomes ``calibrated[i]``.
    """

    kind: Literal["none", "duan", "quantile"] = "none"
    predicted: tuple[float, ...] = ()
    calibrated: tuple[float, ...] = ()

    @classmethod
    def fit(
        cls,
        kind: Literal["none", "duan", "quantile"],
        *,
        predicted: NDArray[Any],
        truth: NDArray[Any],
        quantiles: int,
    ) -> Calibration:
        """The map of ``kind`` from validation predictions and truths (both ``log10(1 + M*)``)."""
        predicted = np.asarray(predicted, dtype=np.float64)
        truth = np.asarray(truth, dtype=np.float64)
        if kind == "none":
            return cls()
        if kind == "duan":
            shift = float(np.log10(np.mean(np.power(10.0, truth - predicted))))
            return cls(kind=kind, predicted=(0.0,), calibrated=(shift,))
        levels = np.linspace(0.0, 1.0, min(quantiles, predicted.size))
        # Tied predictions (those clipped at zero mass, say) would make the map multivalued:
        # a tie maps to the mean of the truth's quantiles it spans.
        x, group = np.unique(np.quantile(predicted, levels), return_inverse=True)
        y = np.bincount(group, weights=np.quantile(truth, levels)) / np.bincount(group)
        return cls(kind=kind, predicted=tuple(map(float, x)), calibrated=tuple(map(float, y)))

    def __call__(self, log_mass: NDArray[Any]) -> NDArray[np.float64]:
        """The calibrated ``log10(1 + M*)`` of predictions ``log_mass``."""
        log_mass = np.asarray(log_mass, dtype=np.float64)
        if not self.predicted:
            return log_mass
        x, y = np.asarray(self.predicted), np.asarray(self.calibrated)
        out = np.interp(log_mass, x, y)
        below, above = log_mass < x[0], log_mass > x[-1]
        out[below] = y[0] + log_mass[below] - x[0]
        out[above] = y[-1] + log_mass[above] - x[-1]
        return out

    def attrs(self) -> dict[str, Any]:
        """The map as JSON, for the test cube's attributes."""
        return {
            "kind": self.kind,
            "predicted": list(self.predicted),
            "calibrated": list(self.calibrated),
        }


@dataclass(frozen=True, kw_only=True)
class Painter:
    """A trained network with what it needs to paint: its standardisation and crop side.

    Attributes
    ----------
    predict : Predict
        The network (:func:`model_predict`).
    inputs : Standardise
        Its run's input standardisation.
    side : int
        Its run's crop side.
    calibration : Calibration
        Applied to its painted ``log10(1 + M*)`` (:class:`PaintConfig`'s ``calibration``).
    validation, training : ndarray of int
        Flat voxel indices of its run's validation and training centres, which a calibration
        is fitted on (:class:`PaintConfig`'s ``calibration_centres``).
    """

    predict: Predict
    inputs: Standardise
    side: int
    calibration: Calibration = Calibration()
    validation: NDArray[np.int64] = dataclasses.field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    training: NDArray[np.int64] = dataclasses.field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )

    def calibration_centres(self, which: CalibrationCentres) -> NDArray[np.int64]:
        """Flat voxel indices of the centres a calibration of ``which`` is fitted on."""
        if which == "validation":
            return self.validation
        return np.concatenate([self.training, self.validation])

    def answers(
        self, group: Any, centres: NDArray[np.int64], *, batch_size: int
    ) -> NDArray[np.float32]:
        """Each member's ``log10(1 + M*)`` at ``centres`` of ``fields.zarr`` (``group``),
        ``(n, M)`` (:func:`predict_voxels`)."""
        return predict_voxels(
            self.predict, group, centres, inputs=self.inputs, side=self.side, batch_size=batch_size
        )


def model_predict(model: torch.nn.Module, *, device: str = "cpu") -> Predict:
    """A trained run's model (answering ``(B, M, 1)``) as a :data:`Predict`."""
    model.eval()

    def predict(crops: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.no_grad():
            out = model(torch.from_numpy(crops).to(device))
        return np.asarray(out.reshape(len(crops), -1).cpu().numpy(), dtype=np.float32)

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


def predict_voxels(
    predict: Predict,
    group: Any,
    centres: NDArray[np.int64],
    *,
    inputs: Standardise,
    side: int,
    batch_size: int,
) -> NDArray[np.float32]:
    """Each member's ``log10(1 + M*)`` at each of ``(n, 3)`` voxel ``centres``, ``(n, M)``.

    Centres are grouped by storage chunk so each chunk and its halo is read once.
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 3)
    answers: list[tuple[NDArray[np.int64], NDArray[np.float32]]] = []
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
    for positions in np.split(order, bounds) if len(centres) else []:
        for start in range(0, len(positions), batch_size):
            batch = positions[start : start + batch_size]
            crops, _ = source.read(batch)
            answers.append((batch, np.asarray(predict(crops)).reshape(len(batch), -1)))
    members = answers[0][1].shape[1] if answers else 1
    out = np.zeros((len(centres), members), dtype=np.float32)
    for batch, answer in answers:
        out[batch] = answer
    return out


def ensemble_log_mass(answers: NDArray[np.float32]) -> NDArray[np.float32]:
    """The painting's ``log10(1 + M*)`` from the members' answers ``(n, M)``: their mean, a
    negative mass (an answer below 0) counted as none."""
    return np.maximum(np.asarray(answers, dtype=np.float32).mean(axis=1), 0)


def painted_msun(calibration: Calibration, answers: NDArray[np.float32]) -> NDArray[np.float32]:
    """Msun painted from the members' answers ``(n, M)``: their :func:`ensemble_log_mass`
    through ``calibration`` (which is fitted on that same quantity)."""
    return np.maximum(target_msun(calibration(ensemble_log_mass(answers))), 0)


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
    intervals : dict of str to ndarray
        With an ensemble (M > 1), each mode's 16th and 84th percentiles over its members'
        calibrated paintings, Msun per voxel (``dm2gal_gravity_only_p16``, ...); empty for one
        network.
    sham : ndarray (n, n, n) float32, optional
        Subhalo abundance matching at mode (b)'s voxels (:func:`fit_sham`), when fitted.
    """

    bounds: tuple[tuple[int, int], ...]
    truth: NDArray[np.float32]
    truth_positions: NDArray[np.float32]
    gravity_only: NDArray[np.float32]
    n_truth_positions: int
    n_gravity_only: int
    intervals: dict[str, NDArray[np.float32]] = dataclasses.field(default_factory=dict)
    sham: NDArray[np.float32] | None = None


def log_mass_at(group: Any, name: str, flat: NDArray[np.int64]) -> NDArray[np.float32]:
    """``log10(1 + x)`` of ``fields.zarr``'s field ``name`` at flat voxel indices ``flat``."""
    array = group[name]
    voxels = tuple(np.stack(np.unravel_index(flat, (int(array.shape[0]),) * 3)))
    return log1p10(np.asarray(array.get_coordinate_selection(voxels)))


def fit_sham(group: Any, centres: NDArray[np.int64]) -> Calibration:
    """Subhalo abundance matching on the Dark run's voxels: the quantile map from the
    ``dark_subhalo_mass`` of the flat voxels ``centres`` to their truths (both
    ``log10(1 + M)``).

    The standard alternative to an HOD (Kravtsov et al. 2004; Conroy et al. 2006): the most
    massive Dark subhalo voxel gets the largest stellar mass, and so on down, with the
    stellar masses of ``centres`` (mode (b)'s calibration centres). It reads nothing of the
    hydro run at the voxels it paints, as mode (b) does not. Its map is the "quantile"
    :class:`Calibration`'s.
    """
    return Calibration.fit(
        "quantile",
        predicted=log_mass_at(group, DARK_SUBHALO_FIELD, centres),
        truth=log_mass_at(group, TARGET_FIELD, centres),
        quantiles=QUANTILE_KNOTS,
    )


def paint_test_cube(
    group: Any,
    *,
    bounds: tuple[tuple[int, int], ...],
    truth_positions: Painter,
    gravity_only: Painter,
    min_stellar_mass_msun: float,
    dark_subhalo_min_mass_msun: float,
    batch_size: int,
    sham: Calibration | None = None,
) -> TestCube:
    """Paint both modes over ``bounds`` of the fields ``group``, and with ``sham`` (a
    :func:`fit_sham` map) the abundance matching at mode (b)'s voxels.

    Parameters
    ----------
    group : zarr.Group
        ``fields.zarr``.
    bounds : tuple of (int, int)
        The test cube (non-wrapping, as :func:`~.regions.paper_regions` places it).
    truth_positions, gravity_only : Painter
        The networks of mode (a) and mode (b) (the same one, or a Dark-centres run for (b)).
    min_stellar_mass_msun : float
        Mode (a)'s candidates: hydro voxels above this.
    dark_subhalo_min_mass_msun : float
        Mode (b)'s candidates: ``dark_subhalo_mass`` voxels above this.
    batch_size : int
        Crops per forward pass.
    sham : Calibration, optional
        :func:`fit_sham`'s map; without it no abundance matching is painted.
    """
    lows = np.array([lo for lo, _ in bounds])
    shape = tuple(hi - lo for lo, hi in bounds)
    (x0, x1), (y0, y1), (z0, z1) = bounds
    truth = np.asarray(group[TARGET_FIELD][x0:x1, y0:y1, z0:z1], dtype=np.float32)
    hydro = (np.argwhere(truth > min_stellar_mass_msun) + lows).astype(np.int64)
    dark = region_voxels(group[DARK_SUBHALO_FIELD], bounds, threshold=dark_subhalo_min_mass_msun)
    painted, intervals = {}, {}
    for name, centres, painter in (
        (TRUTH_POSITIONS, hydro, truth_positions),
        (GRAVITY_ONLY, dark, gravity_only),
    ):
        answers = painter.answers(group, centres, batch_size=batch_size)
        values = painted_msun(painter.calibration, answers)
        painted[name] = _scatter(centres, values, lows, shape)
        if answers.shape[1] > 1:
            # Each member painted and calibrated as the ensemble is: their spread per voxel.
            members = painter.calibration(np.maximum(answers, 0))
            for level in INTERVAL_PERCENTILES:
                bound = target_msun(np.percentile(members, level, axis=1))
                intervals[f"{name}_p{level}"] = _scatter(centres, np.maximum(bound, 0), lows, shape)
    matched = None
    if sham is not None:
        subhalo = group[DARK_SUBHALO_FIELD].get_coordinate_selection(tuple(dark.T))
        values = np.maximum(target_msun(sham(log1p10(np.asarray(subhalo)))), 0)
        matched = _scatter(dark, values, lows, shape)
    return TestCube(
        bounds=bounds,
        truth=truth,
        truth_positions=painted[TRUTH_POSITIONS],
        gravity_only=painted[GRAVITY_ONLY],
        n_truth_positions=len(hydro),
        n_gravity_only=len(dark),
        intervals=intervals,
        sham=matched,
    )


def write_test_cube(path: Path, cube: TestCube, *, attrs: dict[str, Any], chunk: int) -> Path:
    """Write ``cube`` to the zarr group ``path`` (replaced), its bounds and ``attrs`` attached."""
    import zarr

    group = zarr.open_group(path, mode="w")
    for name, values in (
        (TRUTH, cube.truth),
        (TRUTH_POSITIONS, cube.truth_positions),
        (GRAVITY_ONLY, cube.gravity_only),
        *cube.intervals.items(),
        *([(SHAM, cube.sham)] if cube.sham is not None else []),
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


def _test_centres(group: Any, samples: Dm2galSamplesConfig) -> NDArray[np.int64]:
    """Flat indices of the voxels of a run's sample definition inside its test cube, sorted."""
    name, threshold = samples.centre_field()
    array = group[name]
    grid = int(array.shape[0])
    bounds = samples.regions(grid).test.bounds
    voxels = region_voxels(array, tuple(bounds), threshold=threshold)
    return np.sort(np.ravel_multi_index(voxels.T, (grid,) * 3))


def _painter(
    store: Path,
    run: str,
    group: Any,
    *,
    predict: Predict | None,
    device: str,
    expect_centres: str | None = None,
) -> tuple[Painter, Dm2galSamplesConfig]:
    """Run ``run``'s network and its samples' settings, once its centres are checked to be
    ``expect_centres`` (when given) and its test centres to be this store's (the same
    definition over the same fields)."""
    from darkstack.train.run import load_normalisation, load_run_config, load_split
    from darkstack.train.tasks import get_task

    paths = StoreLayout(store).run(run)
    task = get_task("dm2gal")
    samples = load_run_config(paths, task=task).samples
    if expect_centres is not None and samples.centres != expect_centres:
        raise InputError(
            f"paint.gravity_only_run={run} was trained on samples.centres={samples.centres}; "
            f"expected {expect_centres}"
        )
    split = load_split(paths)
    saved = np.sort(np.asarray(split["test"]["samples"], dtype=np.int64))
    expected = _test_centres(group, samples)
    if not np.array_equal(saved, expected):
        name, threshold = samples.centre_field()
        raise InputError(
            f"run {run}'s {saved.size} test centres are not the {expected.size} voxels of "
            f"{name} above {threshold:.3g} Msun in the {group[name].shape[0]}³ test cube of "
            f"{store}: it was trained on other fields"
        )
    normalisation = load_normalisation(paths)
    if predict is None:
        from darkstack.train.worker import load_trained

        predict = model_predict(load_trained(paths, task=task, device=device), device=device)
    inputs = Standardise(
        mean=tuple(normalisation["input_mean"]), std=tuple(normalisation["input_std"])
    )
    painter = Painter(
        predict=predict,
        inputs=inputs,
        side=samples.crop_side,
        validation=np.asarray(split["validation"]["samples"], dtype=np.int64),
        training=np.asarray(split["train"]["samples"], dtype=np.int64),
    )
    return painter, samples


def _calibrated(painter: Painter, run: str, group: Any, *, config: PaintConfig) -> Painter:
    """``painter`` with ``config.calibration`` fitted on its run ``run``'s centres of
    ``config.calibration_centres``."""
    if config.calibration == "none":
        return painter
    grid = int(group[TARGET_FIELD].shape[0])
    flat = painter.calibration_centres(config.calibration_centres)
    if flat.size < 2:
        raise InputError(
            f"run {run} has {flat.size} {config.calibration_centres} centres; "
            f"paint.calibration={config.calibration} is fitted on them and needs at least 2 "
            "(or set none)"
        )
    voxels = np.stack(np.unravel_index(flat, (grid,) * 3), axis=1)
    answers = painter.answers(group, voxels, batch_size=config.batch_size)
    calibration = Calibration.fit(
        config.calibration,
        predicted=ensemble_log_mass(answers),
        truth=log_mass_at(group, TARGET_FIELD, flat),
        quantiles=config.calibration_quantiles,
    )
    return dataclasses.replace(painter, calibration=calibration)


def paint_run(
    store: str | Path,
    run: str,
    *,
    config: PaintConfig | None = None,
    predict: Predict | None = None,
    device: str = "cpu",
) -> Path:
    """Paint run ``run``'s test cube into ``STORE/runs/<run>/test_cube.zarr``; return its path.

    ``predict`` replaces the trained models of both modes (tests pass a stub); ``device`` is
    torch's.

    Raises
    ------
    InputError
        For a store without the fields, a run whose test centres are not this store's (another
        grid or other fields), or a ``gravity_only_run`` trained on other centres or with
        another test cube.
    """
    store = Path(store)
    config = config or PaintConfig()
    group = open_fields(store)
    box_mpc_h, scheme = box_and_scheme(group, store=store)
    target = group[TARGET_FIELD]
    grid = int(target.shape[0])

    mode_a, samples = _painter(store, run, group, predict=predict, device=device)
    bounds = tuple((int(lo), int(hi)) for lo, hi in samples.regions(grid).test.bounds)
    mode_b, dark_samples = mode_a, samples
    if config.gravity_only_run is not None:
        mode_b, dark_samples = _painter(
            store,
            config.gravity_only_run,
            group,
            predict=predict,
            device=device,
            expect_centres="dark_subhalos",
        )
        other = tuple(tuple(int(v) for v in b) for b in dark_samples.regions(grid).test.bounds)
        if other != bounds:
            raise InputError(
                f"paint.gravity_only_run={config.gravity_only_run}'s test cube {other} is not "
                f"run {run}'s {bounds}: train both with the same held-out fractions"
            )
    # Fitted once both runs are checked, so a wrong pairing is refused before any painting.
    mode_a = _calibrated(mode_a, run, group, config=config)
    mode_b = (
        mode_a
        if config.gravity_only_run is None
        else _calibrated(mode_b, config.gravity_only_run, group, config=config)
    )
    # Fitted where mode (b)'s network is calibrated: the gravity-only run's Dark centres.
    sham_centres = mode_b.calibration_centres(config.calibration_centres)
    sham = fit_sham(group, sham_centres) if sham_centres.size >= 2 else None
    threshold = float(samples.min_stellar_mass_msun)
    cube = paint_test_cube(
        group,
        bounds=bounds,
        truth_positions=mode_a,
        gravity_only=mode_b,
        min_stellar_mass_msun=threshold,
        dark_subhalo_min_mass_msun=dark_samples.dark_subhalo_min_mass_msun,
        batch_size=config.batch_size,
        sham=sham,
    )
    return write_test_cube(
        StoreLayout(store).run(run).test_cube,
        cube,
        attrs={
            "run": run,
            "gravity_only_run": config.gravity_only_run or run,
            "grid": grid,
            "scheme": scheme,
            "box_mpc_h": box_mpc_h * cube.truth.shape[0] / grid,
            "min_stellar_mass_msun": threshold,
            "dark_subhalo_min_mass_msun": dark_samples.dark_subhalo_min_mass_msun,
            "calibration_truth_positions": mode_a.calibration.attrs(),
            "calibration_gravity_only": mode_b.calibration.attrs(),
            "sham": sham.attrs() if sham is not None else None,
        },
        chunk=int(target.chunks[0]),
    )
