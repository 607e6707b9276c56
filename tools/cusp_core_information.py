"""What the mock dwarfs let any predictor know about the 150 pc slope (docs/cusp_core.md).

Two ceilings for ``darkstack evaluate --task cusp_core``'s numbers, on the same folds:

- **The Di Cintio oracle**: each dwarf's slope from its *true* M*/M200c by Di Cintio et al.
  (2014), before the mock's N(0, slope_scatter) scatter (``truth.parquet``'s
  ``dicintio_slope``), against the measured slope the networks are trained on. A predictor
  that does not measure the scatter from the stars cannot beat it.
- **Regressions on summary statistics** of each sample (the same lines of sight and star
  subsets ``observe`` draws): the scalars of ``phase_space.zarr`` (log M*, log P98(|v_los|),
  log R_hlr) and the shape of the kinematics that the maps hold: the velocity dispersion
  inside R_hlr / 2, outside R_hlr and outside 2 R_hlr over the whole, the kurtosis of v_los
  inside R_hlr / 2 and outside R_hlr (Merrifield & Kent 1990's virial shape parameters carry
  the anisotropy), and R90 / R_hlr. A full quadratic in them, fitted on each fold's other
  dwarfs (its training and validation dwarfs: the network early-stops on the validation ones).

    python tools/cusp_core_information.py STORE [--n-folds 5 --split-seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from darkstack.evaluate.cusp_core import quadratic_baseline
from darkstack.features.phase_space import PhaseSpaceConfig, sample_stars, velocity_scale_kms
from darkstack.train.folds import galaxy_folds

#: The kinematic shape statistics of a sample, in order.
SHAPE = ("sigma_inner", "sigma_outer", "sigma_far", "kurtosis_inner", "kurtosis_outer", "r90")
SCALAR_COLUMNS = ("log_stellar_mass_msun", "log_v_scale_kms", "log_r_half_kpc")


def shape_statistics(
    *, radius_kpc: NDArray[np.float64], v_los_kms: NDArray[np.float64], r_half_kpc: float
) -> dict[str, float]:
    """:data:`SHAPE` of one sample's stars (dispersions as log10 ratios to the whole's)."""
    v = v_los_kms - np.median(v_los_kms)
    whole = v.std()
    inner, outer, far = (
        radius_kpc < 0.5 * r_half_kpc,
        radius_kpc > r_half_kpc,
        radius_kpc > 2 * r_half_kpc,
    )

    def kurtosis(mask: NDArray[np.bool_]) -> float:
        return float(np.mean(v[mask] ** 4) / np.mean(v[mask] ** 2) ** 2)

    return {
        "sigma_inner": float(np.log10(v[inner].std() / whole)),
        "sigma_outer": float(np.log10(v[outer].std() / whole)),
        # Few stars beyond 2 R_hlr in a compact sample: no ratio (0, the whole's).
        "sigma_far": float(np.log10(v[far].std() / whole)) if far.sum() > 10 else 0.0,
        "kurtosis_inner": kurtosis(inner),
        "kurtosis_outer": kurtosis(outer),
        "r90": float(np.log10(np.percentile(radius_kpc, 90) / r_half_kpc)),
    }


def sample_table(store: Path, config: PhaseSpaceConfig) -> pd.DataFrame:
    """One row per sample (lines of sight x subsets, :func:`sample_stars` as ``observe``)."""
    from darkstack.ingest.dwarfs import load_dwarf
    from darkstack.store import DWARFS_CATALOG, StoreLayout, read_catalog
    from darkstack.store.parquet import read_metadata

    meta = read_metadata(StoreLayout(store).catalog(DWARFS_CATALOG.name))
    catalog = read_catalog(store, DWARFS_CATALOG).to_pandas()
    catalog = catalog[catalog["status"] == "ok"]
    rows = []
    for sid, mass, slope in catalog[
        ["subhalo_id", "stellar_mass_msun", "dm_log_slope_150pc"]
    ].itertuples(index=False):
        dwarf = load_dwarf(meta["sim"], int(meta["config"]["snapshot"]), int(sid))
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(int(sid),)))
        for stars in sample_stars(
            rng,
            position_kpc=dwarf["star_position_kpc"],
            velocity_kms=dwarf["star_velocity_kms"],
            config=config,
        ):
            scale = velocity_scale_kms(stars.v_los_kms, percentile=config.velocity_percentile)
            rows.append(
                {
                    "subhalo_id": int(sid),
                    "slope": float(slope),
                    "log_stellar_mass_msun": float(np.log10(mass)),
                    "log_v_scale_kms": float(np.log10(scale)),
                    "log_r_half_kpc": float(np.log10(stars.r_half_kpc)),
                    **shape_statistics(
                        radius_kpc=np.hypot(stars.x_kpc, stars.y_kpc),
                        v_los_kms=stars.v_los_kms,
                        r_half_kpc=stars.r_half_kpc,
                    ),
                }
            )
    return pd.DataFrame(rows)


def _scores(error: NDArray[np.float64]) -> str:
    a = np.abs(error)
    return (
        f"within 0.1 {np.mean(a <= 0.1):.3f}, within 0.3 {np.mean(a <= 0.3):.3f}, "
        f"MAD {a.mean():.3f}"
    )


def main() -> None:
    import json

    import zarr

    from darkstack.store import DWARFS_CATALOG, PHASE_SPACE_ZARR, StoreLayout, read_catalog
    from darkstack.store.parquet import read_metadata

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()

    layout = StoreLayout(args.store)
    meta = read_metadata(layout.catalog(DWARFS_CATALOG.name))
    truth = pd.read_parquet(Path(meta["sim"]).parent / "truth.parquet").set_index("subhalo_id")
    catalog = read_catalog(args.store, DWARFS_CATALOG).to_pandas().set_index("subhalo_id")
    catalog = catalog[catalog["status"] == "ok"]
    oracle = catalog["dm_log_slope_150pc"] - truth.loc[catalog.index, "dicintio_slope"]
    print(f"Di Cintio oracle (true M*/M200c, no scatter), {len(oracle)} dwarfs: {_scores(oracle)}")
    analytic = catalog["dm_log_slope_150pc"] - truth.loc[catalog.index, "dm_log_slope_true"]
    print(f"the analytic slope itself (the target's measurement error): {_scores(analytic)}")

    group = zarr.open_group(str(layout.zarr(PHASE_SPACE_ZARR.name)), mode="r")
    table = sample_table(args.store, PhaseSpaceConfig(**json.loads(str(group.attrs["config"]))))
    folds = galaxy_folds(table["subhalo_id"].to_numpy(), n_folds=args.n_folds, seed=args.split_seed)
    sets = {
        "log M*": ["log_stellar_mass_msun"],
        "the scalars": list(SCALAR_COLUMNS),
        "kinematic shape only": list(SHAPE),
        "the scalars and the shape": [*SCALAR_COLUMNS, *SHAPE],
    }
    y = table["slope"].to_numpy()
    for name, columns in sets.items():
        x = table[columns].to_numpy()
        errors = [
            quadratic_baseline(x, y, train=train, test=test)[0] - y[test] for train, test in folds
        ]
        print(f"{name}, quadratic: {_scores(np.concatenate(errors))}")


if __name__ == "__main__":
    main()
