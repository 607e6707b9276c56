"""How much do a galaxy's true properties say about its dark-matter profile beyond M*?

Before asking a CNN to beat the stellar-mass-only baseline, check that the simulation lets
anything beat it. For the galaxies of a run's split (one row per galaxy, from
``catalogs/galaxies.parquet``), least-squares models of log10 M_DM(<R) are fitted on the
training galaxies from sets of *true* catalog quantities, and their Δ_MSE on the test galaxies
is printed per radius next to the M*-only baseline's. Images can at best approach what these
true quantities say (they see them through light, dust, noise, an unknown distance and
inclination). With ``--truth`` (the mock universe's ``truth.parquet``) it also prints the
particle noise of the targets: how far the profile measured from the particles is from the
analytic profile they were drawn from, a floor no predictor can go below.

Run: ``python tools/information_ceiling.py --store STORE --run RUN [--truth SIM/truth.parquet]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from darkstack.evaluate.metrics import delta_mse
from darkstack.store import GALAXIES_CATALOG, StoreLayout, read_catalog
from darkstack.train.run import load_split

#: Radii (kpc) at which an ideal rotation curve is read: inside, at and beyond the stellar disk.
ROTATION_CURVE_RADII_KPC = (8.9, 18.3, 29.8)


def design_matrices(galaxies: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    """Predictor sets, each with an intercept and a quadratic in log10 M*."""
    log_mstar = np.log10(galaxies["stellar_mass_msun"].to_numpy())
    radii = np.stack(galaxies["radii_kpc"].to_numpy())[0]
    v_circ = np.stack(galaxies["v_circ_kms"].to_numpy())
    rotation_curve = [
        np.log10(v_circ[:, int(np.argmin(np.abs(radii - r)))]) for r in ROTATION_CURVE_RADII_KPC
    ]
    base = [np.ones_like(log_mstar), log_mstar, log_mstar**2]
    galaxy_properties = [
        np.log10(galaxies["r_half_star_kpc"].to_numpy()),
        np.log10(galaxies["sfr_msun_yr"].to_numpy() + 1e-3),
        np.log10(galaxies["hi_mass_msun"].to_numpy() + 1.0),
    ]
    sets = {
        "M* (the baseline)": base,
        "M*, r_half, SFR, M_HI": base + galaxy_properties,
        "M*, V_rot(2 r_half)": [*base, np.log10(galaxies["v_rot_2rhalf_kms"].to_numpy())],
        "M*, v_circ at " + ", ".join(f"{r:g}" for r in ROTATION_CURVE_RADII_KPC) + " kpc": (
            base + rotation_curve
        ),
    }
    return {name: np.column_stack(columns) for name, columns in sets.items()}


def ceiling(
    galaxies: pd.DataFrame, *, train_ids: set[int], test_ids: set[int]
) -> dict[str, NDArray[np.float64]]:
    """Test-galaxy Δ_MSE per radius of each predictor set, fitted on the training galaxies."""
    targets = np.stack(galaxies["log10_mdm_enclosed"].to_numpy())
    ids = galaxies["subhalo_id"].to_numpy()
    train = np.isin(ids, list(train_ids))
    test = np.isin(ids, list(test_ids))
    result = {}
    for name, design in design_matrices(galaxies).items():
        coefficients = np.linalg.lstsq(design[train], targets[train], rcond=None)[0]
        result[name] = delta_mse(design[test] @ coefficients, targets[test])
    return result


def particle_noise(galaxies: pd.DataFrame, truth: pd.DataFrame) -> NDArray[np.float64]:
    """Scatter per radius of the particle-measured targets around the analytic profiles."""
    analytic = truth.set_index("subhalo_id").loc[galaxies["subhalo_id"]]
    measured = np.stack(galaxies["log10_mdm_enclosed"].to_numpy())
    drawn = np.stack(analytic["log10_mdm_enclosed"].to_numpy())
    return np.asarray(np.std(measured - drawn, axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--run", required=True, help="a run whose split.json to use")
    parser.add_argument("--truth", type=Path, default=None, help="the mock's truth.parquet")
    args = parser.parse_args()
    galaxies = read_catalog(args.store, GALAXIES_CATALOG).to_pandas()
    galaxies = galaxies[galaxies["status"] == "ok"].reset_index(drop=True)
    split = load_split(StoreLayout(args.store).run(args.run))
    errors = ceiling(
        galaxies,
        train_ids=set(split["train"]["subhalo_id"]),
        test_ids=set(split["test"]["subhalo_id"]),
    )
    radii = np.stack(galaxies["radii_kpc"].to_numpy())[0]
    columns = {name: np.round(values, 3) for name, values in errors.items()}
    if args.truth is not None:
        noise = particle_noise(galaxies, pd.read_parquet(args.truth))
        columns["particle noise"] = np.round(noise, 3)
    table = pd.DataFrame(columns, index=pd.Index(np.round(radii, 1), name="R (kpc)"))
    print("Δ_MSE (dex) on the test galaxies of the run's split, from true catalog quantities:")
    print(table.to_string())


if __name__ == "__main__":
    main()
