"""``darkstack evaluate --task dm2gal``: truth, both dm2gal modes and 20 HODs on the test cube.

Kasmanoff et al. (2020, Fig. 1) judge dm2gal against an HOD painted onto the same gravity-only
run by P(k), B(k) and the voxel PDF of the test cube. Here the run's test cube is painted
(:mod:`darkstack.train.tasks.dm2gal.paint`), ``n_hod`` HOD realisations (seeds ``hod.seed`` to
``hod.seed + n_hod - 1``; :mod:`darkstack.features.fields.hod`) are deposited on the fields grid
and cut to the same cube, and each is scored against the truth with
:func:`~darkstack.evaluate.dm2gal.scores.score`. Issue 18's criterion is the fraction of HOD
realisations that mode (b), the gravity-only painting, beats: in P(k) and r(k) by the mean
distance, in B(k) by being closer at ``bk_angle_fraction`` (80%) of the triangle's angles.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray

from darkstack.config import Checked, Range, config_to_dict
from darkstack.errors import InputError
from darkstack.evaluate import Evaluation
from darkstack.evaluate.dm2gal.scores import Dm2galScores, ScoresConfig, score
from darkstack.features.fields.hod import HodConfig, deposit_on_fields_grid, hod_for_runs
from darkstack.plotting import pyplot
from darkstack.store import StoreLayout
from darkstack.train.tasks.dm2gal.paint import (
    GRAVITY_ONLY,
    SHAM,
    TRUTH,
    TRUTH_POSITIONS,
    PaintConfig,
    Predict,
    paint_run,
)

#: The scores compared, and the ones issue 18's "beats the HOD" fraction counts.
SCORES = ("pk_distance", "r_distance", "bk_distance", "pdf_distance")
BEAT_SCORES = ("pk_distance", "bk_distance", "r_distance")
MODES = {TRUTH_POSITIONS: "dm2gal (a), truth positions", GRAVITY_ONLY: "dm2gal (b), gravity only"}
SHAM_LABEL = "SHAM on the Dark subhalo voxels (mode (b)'s)"


@dataclass(frozen=True, kw_only=True)
class Dm2galEvaluateConfig(Checked):
    """Settings of the dm2gal evaluation.

    Parameters
    ----------
    paint : PaintConfig
        The run that paints mode (b) (``paint.gravity_only_run``) and the batch size.
    hod : HodConfig
        The HOD baseline; its ``seed`` is the first realisation's, its ``snapshot`` is replaced
        by the fields' snapshot.
    n_hod : int
        HOD realisations (20 in issue 18).
    bk_angle_fraction : float
        Mode (b) beats an HOD realisation in B(k) when its ``|B / B_truth - 1|`` is the
        smaller at at least this fraction of the triangle's angles (issue 18: 80%).
    scores : ScoresConfig
        Scales and bins of the scores.
    device : str
        Torch device of the painting.
    """

    paint: PaintConfig = field(default_factory=PaintConfig)
    hod: HodConfig = field(default_factory=HodConfig)
    n_hod: Annotated[int, Range(ge=1)] = 20
    bk_angle_fraction: Annotated[float, Range(gt=0, le=1)] = 0.8
    scores: ScoresConfig = field(default_factory=ScoresConfig)
    device: str = "cpu"


def hod_cubes(
    store: Path, config: Dm2galEvaluateConfig, *, bounds: list[list[int]]
) -> list[NDArray[np.float64]]:
    """The ``n_hod`` HOD realisations painted onto the Dark run, cut to ``bounds`` (Msun/voxel).

    Raises
    ------
    InputError
        When ``fields.zarr`` was built without a Dark run.
    """
    import zarr

    path = StoreLayout(store).zarr("fields")
    attrs = zarr.open_group(path, mode="r").attrs
    sources = json.loads(str(attrs["sources"]))
    if "dark" not in sources:
        raise InputError(f"{path} was built without --dark; the HOD is painted onto the Dark run")
    snapshot = int(json.loads(str(attrs["config"]))["snapshot"])
    block = tuple(slice(lo, hi) for lo, hi in bounds)
    cubes = []
    for offset in range(config.n_hod):
        hod = dataclasses.replace(config.hod, seed=config.hod.seed + offset, snapshot=snapshot)
        painting = hod_for_runs(hod, sim=sources["hydro"], dark=sources["dark"])
        # A copy: a view would keep each realisation's whole grid alive (1 GiB at 512³).
        cubes.append(deposit_on_fields_grid(painting, store=store)[block].copy())
    return cubes


def evaluate_dm2gal(
    store: str | Path, run: str, config: Dm2galEvaluateConfig, *, predict: Predict | None = None
) -> Path:
    """Paint ``run``'s test cube, score it and the HODs, and write ``runs/RUN/report/``.

    ``predict`` replaces the run's network (tests pass a stub).
    """
    import zarr

    store = Path(store)
    cube: Any = zarr.open_group(
        paint_run(store, run, config=config.paint, predict=predict, device=config.device), mode="r"
    )
    attrs: dict[str, Any] = dict(cube.attrs)
    truth = np.asarray(cube[TRUTH][...], dtype=np.float64)
    box, scheme = float(attrs["box_mpc_h"]), str(attrs["scheme"])

    def measure(painted: NDArray[Any]) -> Any:
        return score(painted, truth, box_mpc_h=box, scheme=scheme, config=config.scores)

    modes = {name: measure(np.asarray(cube[name][...], dtype=np.float64)) for name in MODES}
    # paint_run fits no abundance matching for a run with fewer than two validation centres.
    sham = measure(np.asarray(cube[SHAM][...], dtype=np.float64)) if SHAM in cube else None
    # The truth painted only where mode (a) paints: what a painting exact at every candidate
    # scores, since the truth's CIC deposit also spills mass below the threshold.
    floor = measure(np.where(truth > attrs["min_stellar_mass_msun"], truth, 0.0))
    hods = hod_cubes(store, config, bounds=attrs["bounds"])
    hod_scores = [measure(painted) for painted in hods]
    beats = hods_beaten(modes[GRAVITY_ONLY], hod_scores, bk_angle_fraction=config.bk_angle_fraction)
    document = {
        "run": run,
        "test_cube": attrs,
        "modes": {name: s.summary() for name, s in modes.items()},
        "truth_at_candidates": floor.summary(),
        "hod": {key: [h.summary()[key] for h in hod_scores] for key in SCORES},
        "gravity_only_beats_hod_fraction": beats,
        "sham": sham.summary() if sham is not None else None,
        "sham_beats_hod_fraction": hods_beaten(
            sham, hod_scores, bk_angle_fraction=config.bk_angle_fraction
        )
        if sham is not None
        else None,
        # The per-angle B(k) the beats count, for every painting.
        "bk_relative": {
            **{name: s.bk_relative.tolist() for name, s in modes.items()},
            **({SHAM: sham.bk_relative.tolist()} if sham is not None else {}),
            "hod": [h.bk_relative.tolist() for h in hod_scores],
        },
        "k_h_mpc": modes[GRAVITY_ONLY].k_h_mpc.tolist(),
        "evaluate_config": config_to_dict(config),
    }
    report = StoreLayout(store).run(run).report
    report.mkdir(parents=True, exist_ok=True)
    (report / "metrics.json").write_text(json.dumps(document, indent=1))
    (report / "summary.md").write_text(_markdown(document))
    _slice_figure(
        report / "slice.png",
        [
            ("truth", truth),
            ("dm2gal (a)", cube[TRUTH_POSITIONS][...]),
            ("dm2gal (b)", cube[GRAVITY_ONLY][...]),
            (f"HOD (seed {config.hod.seed})", hods[0]),
        ],
    )
    return report


def hods_beaten(
    painting: Dm2galScores, hods: list[Dm2galScores], *, bk_angle_fraction: float
) -> dict[str, float]:
    """The fraction of ``hods`` that ``painting`` is closer to the truth than, per score."""
    summary = painting.summary()

    def closer(hod: Dm2galScores, key: str) -> bool:
        if key == "bk_distance":
            return bool(np.mean(painting.bk_relative < hod.bk_relative) >= bk_angle_fraction)
        return summary[key] < hod.summary()[key]

    return {key: float(np.mean([closer(hod, key) for hod in hods])) for key in BEAT_SCORES}


def _markdown(document: dict[str, Any]) -> str:
    cube = document["test_cube"]
    k1, k2 = document["evaluate_config"]["scores"]["triangle"]
    k_f = 2 * np.pi / cube["box_mpc_h"]
    lines = [
        "# dm2gal evaluation",
        "",
        f"Run {document['run']}; test cube {cube['bounds']} of a {cube['grid']}³ grid "
        f"({cube['box_mpc_h']:.3g} Mpc/h); mode (a) painted {cube['n_truth_positions']} voxels, "
        f"mode (b) {cube['n_gravity_only']} (Dark subhalo mass > "
        f"{cube['dark_subhalo_min_mass_msun']:.3g} Msun), painted by run "
        f"{cube['gravity_only_run']}.",
        "",
        f"B(k) triangle (k1, k2) = ({k1:g}, {k2:g}) h/Mpc: k1 = {k1 / k_f:.1f} k_F of the test "
        f"cube ({'the paper' if (k1, k2) == (3.0, 4.0) else 'scaled'}; issue 18 asks k1 >= 5 k_F).",
        "",
        "Distances from the hydro truth (0 is perfect; docs/dm2gal_evaluation.md):",
        "",
        "| painting | " + " | ".join(SCORES) + " |",
        "|---|" + "---|" * len(SCORES),
    ]
    rows = [(label, document["modes"][name]) for name, label in MODES.items()]
    if document["sham"] is not None:
        rows.append((SHAM_LABEL, document["sham"]))
    rows.append(
        (
            f"truth above {cube['min_stellar_mass_msun']:.3g} Msun only (a painting exact at "
            "mode (a)'s voxels)",
            document["truth_at_candidates"],
        )
    )
    for label, row in rows:
        lines.append(f"| {label} | " + " | ".join(f"{row[k]:.3f}" for k in SCORES) + " |")
    hod = document["hod"]
    n = len(hod[SCORES[0]])
    lines.append(
        f"| HOD, {n} realisations: median (min-max) | "
        + " | ".join(
            f"{np.median(hod[k]):.3f} ({np.min(hod[k]):.3f}-{np.max(hod[k]):.3f})" for k in SCORES
        )
        + " |"
    )
    beats = document["gravity_only_beats_hod_fraction"]
    lines += [
        "",
        "Fraction of HOD realisations that mode (b) beats (issue 18 asks for at least 16 of 20): "
        + ", ".join(f"{k} {v:.2f}" for k, v in beats.items())
        + f" (B(k): closer at {document['evaluate_config']['bk_angle_fraction']:.0%} of the "
        "angles or more).",
    ]
    if document["sham_beats_hod_fraction"] is not None:
        lines += [
            "",
            "The same for the SHAM: "
            + ", ".join(f"{k} {v:.2f}" for k, v in document["sham_beats_hod_fraction"].items())
            + ".",
        ]
    lines += [
        "",
        "Figure: slice.png (log10(1 + M*) summed through the cube's depth).",
    ]
    return "\n".join(lines) + "\n"


def _slice_figure(path: Path, panels: list[tuple[str, Any]]) -> None:
    plt = pyplot()

    images = [
        np.log10(1.0 + np.asarray(values, dtype=np.float64).sum(axis=2)) for _, values in panels
    ]
    top = max(float(image.max()) for image in images)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, (title, _), image in zip(axes, panels, images, strict=True):
        shown = ax.imshow(image.T, origin="lower", vmin=0, vmax=top, cmap="magma")
        ax.set(title=title, xticks=[], yticks=[])
    fig.colorbar(shown, ax=axes, label="log10(1 + M* / Msun), projected", shrink=0.8)
    fig.savefig(path, dpi=90)
    plt.close(fig)


#: What ``darkstack evaluate --task dm2gal`` runs.
EVALUATION = Evaluation(config_type=Dm2galEvaluateConfig, evaluate=evaluate_dm2gal)
