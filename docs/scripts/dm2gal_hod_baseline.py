"""Score dm2gal's HOD baseline against the hydro truth on a mock universe and its Dark twin.

Builds (or reuses) a universe with ``--dark-twin`` and its ``fields.zarr``, fits the HOD of
:mod:`darkstack.features.fields.hod` on the hydro run, paints it onto the Dark run
(``--realisations`` random paintings, seeds 0.., and the mean-only painting), and scores each
against ``hydro_stellar_mass_subhalo`` over a test cube with
:func:`darkstack.evaluate.dm2gal.scores.score`. The test cube is centred in the box and its
side is the paper's 868/2048 of the grid (54³ of 128³).

A reference shows the scores' floor: the *matched painter* puts every hydro subhalo's own
stellar mass at its Dark twin's position (``subhalo_matching_to_dark``), the best any painter
of Dark subhalos can do; what separates it from the truth is the twins' position jitter and
the baryonic clumps that have no twin.

    python docs/scripts/dm2gal_hod_baseline.py OUT_DIR [--preset quick] [--grid 128]
        [--realisations 20]

Writes ``OUT_DIR/dm2gal_hod_scores.json`` and prints a table (docs/dm2gal_evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import zarr

from darkstack.evaluate.dm2gal.scores import ScoresConfig, score
from darkstack.features.fields.build import run_fields
from darkstack.features.fields.config import FieldsConfig
from darkstack.features.fields.hod import (
    Catalog,
    HodConfig,
    deposit_painting,
    hod_for_runs,
)
from darkstack.ingest.tng_local import read_dataset
from darkstack.tng_layout import subhalo_matching_group, subhalo_matching_path
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig

#: The paper's test cube side over its grid side (868 of 2048 voxels).
TEST_FRACTION = 868 / 2048
SCORES = ("pk_distance", "r_distance", "bk_distance", "pdf_distance")


def build(out: Path, *, preset: str, grid: int) -> tuple[Path, Path, Path]:
    """The hydro run, its twin and fields.zarr under ``out`` (kept from an earlier run)."""
    sim, dark, store = out / "sim", out / "dark", out / "store"
    if not (sim / "output").is_dir():
        config = UniverseConfig(**PRESETS[preset])
        build_universe(config, sim, dark_twin=dark, progress=False)
    if not (store / "fields.zarr").exists():
        fields = FieldsConfig(grid=grid, fields=("hydro_stellar_mass_subhalo",))
        run_fields(fields, sim=sim / "output", store=store, progress=False)
    return sim / "output", dark / "output", store


def matched_painting(sim: Path, dark: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Hydro stellar masses at their Dark twins' positions (subhalos without one dropped)."""
    hydro, twin = Catalog.read(sim, 99), Catalog.read(dark, 99)
    name = f"{subhalo_matching_group(99)}/SubhaloIndexDark_LHaloTree"
    match = read_dataset(subhalo_matching_path(sim), name).astype(np.int64)
    found = match >= 0
    return twin.position_ckpc_h[match[found]], hydro.stellar_mass_msun[found], hydro.box_ckpc_h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    parser.add_argument("--grid", type=int, default=128)
    parser.add_argument("--realisations", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    sim, dark, store = build(args.out, preset=args.preset, grid=args.grid)
    fields = zarr.open_group(store / "fields.zarr", mode="r")
    grid, scheme = int(fields.attrs["grid"]), str(fields.attrs["scheme"])  # type: ignore[arg-type]
    side = round(TEST_FRACTION * grid)
    start = (grid - side) // 2
    cube = (slice(start, start + side),) * 3
    box_mpc_h = float(fields.attrs["box_mpc_h"]) * side / grid  # type: ignore[arg-type]
    truth = np.asarray(fields["hydro_stellar_mass_subhalo"][cube], dtype=np.float64)
    config = ScoresConfig()

    def scored(position: np.ndarray, mass: np.ndarray, box_ckpc_h: float) -> dict[str, float]:
        painted = deposit_painting(position, mass, box_ckpc_h=box_ckpc_h, grid=grid, scheme=scheme)
        return score(
            painted[cube], truth, box_mpc_h=box_mpc_h, scheme=scheme, config=config
        ).summary()

    rows: dict[str, object] = {}
    realisations = []
    for seed in range(args.realisations):
        painting = hod_for_runs(HodConfig(seed=seed), sim=sim, dark=dark)
        realisations.append(
            scored(painting.position_ckpc_h, painting.stellar_mass_msun, painting.box_ckpc_h)
        )
    rows["hod_random"] = realisations
    mean = hod_for_runs(HodConfig(scatter=False), sim=sim, dark=dark)
    rows["hod_mean"] = scored(mean.position_ckpc_h, mean.stellar_mass_msun, mean.box_ckpc_h)
    rows["matched_painter"] = scored(*matched_painting(sim, dark))
    rows["setup"] = {
        "preset": args.preset,
        "grid": grid,
        "scheme": scheme,
        "test_cube": f"{start}:{start + side} on each axis ({side}³ voxels, {box_mpc_h:.3f} Mpc/h)",
        "scores_config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "dm2gal_hod_scores.json").write_text(json.dumps(rows, indent=1, default=str))
    print(f"test cube {rows['setup']['test_cube']}")  # type: ignore[index]
    print("| painting | " + " | ".join(SCORES) + " |")
    print("|---" * (len(SCORES) + 1) + "|")
    values = np.array([[r[s] for s in SCORES] for r in realisations])
    median, low, high = np.median(values, 0), values.min(0), values.max(0)
    cells = [f"{m:.3f} ({lo:.3f}-{hi:.3f})" for m, lo, hi in zip(median, low, high, strict=True)]
    print(f"| HOD, {len(realisations)} random (median, range) | " + " | ".join(cells) + " |")
    for name in ("hod_mean", "matched_painter"):
        row = rows[name]
        print(f"| {name} | " + " | ".join(f"{row[s]:.3f}" for s in SCORES) + " |")  # type: ignore[index]


if __name__ == "__main__":
    main()
