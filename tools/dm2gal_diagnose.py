"""Where does a gravity-only dm2gal painting lose to the HOD: its voxels or its values?

On a store whose ``runs/RUN/test_cube.zarr`` was painted by ``darkstack evaluate --task dm2gal``
(mode (b) by ``GRAVITY_RUN``, a run trained on the Dark centres), this prints:

- the validation MSE (dex² of ``log10(1 + M*)``) of ``GRAVITY_RUN``'s network on its own
  validation centres, beside a quadratic in the central voxel's ``log10(1 + dark_subhalo_mass)``
  fitted on the run's training centres: what the crops add to the one voxel;
- the distances from the truth (P(k), r(k), B(k), the evaluation's scores) of mode (b) as
  painted, with its voxels that hold no hydro galaxy emptied (what its false positives cost),
  and with the truth put at its galaxy voxels (what its values cost), and the per-angle
  B_pred / B_truth of each.

Run: ``python tools/dm2gal_diagnose.py --store STORE --run RUN --gravity-run GRAVITY_RUN``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from darkstack.config import load_config
from darkstack.evaluate.dm2gal.scores import ScoresConfig, score
from darkstack.store import StoreLayout
from darkstack.train.run import load_split
from darkstack.train.tasks.dm2gal.paint import GRAVITY_ONLY, TRUTH, _painter, log_mass_at
from darkstack.train.tasks.dm2gal.samples import DARK_SUBHALO_FIELD, TARGET_FIELD
from darkstack.train.tasks.dm2gal.source import open_fields

FloatArray = NDArray[np.float64]


def centre_voxel_mse(store: Path, run: str) -> dict[str, float]:
    """Validation MSE of ``run``'s network and of the quadratic in the central voxel."""
    group = open_fields(store)
    split = load_split(StoreLayout(store).run(run))
    train, validation = (
        np.asarray(split[name]["samples"], dtype=np.int64) for name in ("train", "validation")
    )
    painter, _ = _painter(store, run, group, predict=None, device="cpu")
    grid = int(group[TARGET_FIELD].shape[0])
    voxels = np.stack(np.unravel_index(validation, (grid,) * 3), axis=1)
    answer = painter.answers(group, voxels, batch_size=64).mean(axis=1).astype(np.float64)
    truth = log_mass_at(group, TARGET_FIELD, validation).astype(np.float64)
    x_train, x_val = (
        log_mass_at(group, DARK_SUBHALO_FIELD, flat).astype(np.float64)
        for flat in (train, validation)
    )
    coefficients = np.polyfit(x_train, log_mass_at(group, TARGET_FIELD, train), 2)
    return {
        "network": float(np.mean((answer - truth) ** 2)),
        "quadratic in the centre voxel": float(
            np.mean((np.polyval(coefficients, x_val) - truth) ** 2)
        ),
        "validation centres": float(validation.size),
    }


def painting_variants(store: Path, run: str) -> dict[str, dict[str, object]]:
    """Scores of mode (b) as painted, without its false positives, with the truth's values."""
    import zarr

    paths = StoreLayout(store).run(run)
    cube = zarr.open_group(paths.test_cube, mode="r")
    truth = np.asarray(cube[TRUTH][...], dtype=np.float64)
    painted = np.asarray(cube[GRAVITY_ONLY][...], dtype=np.float64)
    attrs = dict(cube.attrs)
    metrics = json.loads((paths.report / "metrics.json").read_text())
    config = load_config(ScoresConfig, preset=metrics["evaluate_config"]["scores"])
    galaxy = truth > float(attrs["min_stellar_mass_msun"])  # type: ignore[arg-type]
    variants = {
        "mode (b) as painted": painted,
        "mode (b), voxels without a hydro galaxy emptied": np.where(galaxy, painted, 0.0),
        "mode (b) voxels, the truth's values at its galaxy voxels": np.where(
            galaxy & (painted > 0), truth, painted
        ),
    }
    out: dict[str, dict[str, object]] = {}
    for name, values in variants.items():
        s = score(
            values,
            truth,
            box_mpc_h=float(attrs["box_mpc_h"]),  # type: ignore[arg-type]
            scheme=str(attrs["scheme"]),
            config=config,
        )
        out[name] = {
            "pk_distance": s.pk_distance,
            "r_distance": s.r_distance,
            "bk_distance": s.bk_distance,
            "bk_ratio": np.round(s.bk_predicted / s.bk_truth, 2).tolist(),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--run", required=True, help="The run whose test cube was evaluated.")
    parser.add_argument("--gravity-run", required=True, help="The run that painted mode (b).")
    args = parser.parse_args()
    for name, value in centre_voxel_mse(args.store, args.gravity_run).items():
        print(f"validation MSE, {name}: {value:.4g}")
    for name, row in painting_variants(args.store, args.run).items():
        print(
            f"{name}: P(k) {row['pk_distance']:.3f}, r(k) {row['r_distance']:.3f}, "
            f"B(k) {row['bk_distance']:.3f}; B ratio per angle {row['bk_ratio']}"
        )


if __name__ == "__main__":
    main()
