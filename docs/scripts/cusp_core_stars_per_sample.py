"""A trained cusp_core fold on its held-out dwarfs with N stars per map (docs/cusp_core.md).

For each N of ``--n-stars``, the held-out dwarfs' maps are drawn again as
``darkstack observe --kind phase_space --set n_stars=N`` draws them (same seed, lines of sight
and subsets; only the test fold's dwarfs, so it costs a fifth of an observe run) and the run's
network (trained on the stored maps, whatever their N) gives each map's MC-dropout posterior.
It prints §3's numbers against the measured slope (the training target) and against the
analytic slope of ``truth.parquet``, one line per N.

    python docs/scripts/cusp_core_stars_per_sample.py STORE RUN [--n-stars 100 300 1000]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from darkstack.evaluate.cusp_core import cusp_core_metrics, dwarf_bootstrap_sigma
from darkstack.evaluate.posterior import summarise
from darkstack.features.phase_space import PhaseSpaceConfig, _galaxy_task, sample_scalars
from darkstack.store import DWARFS_CATALOG, StoreLayout, read_catalog
from darkstack.store.parquet import read_metadata
from darkstack.train.run import load_run_config, load_split
from darkstack.train.tasks import get_task
from darkstack.train.tasks.cusp_core import SLOPE_GRID, pack_inputs, select_scalars
from darkstack.train.worker import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("run")
    parser.add_argument("--n-stars", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--passes", type=int, default=100)
    args = parser.parse_args()

    layout = StoreLayout(args.store)
    paths = layout.run(args.run)
    model = load_trained(paths, task=get_task("cusp_core"))
    run_scalars = load_run_config(paths, task=get_task("cusp_core")).model.scalars
    test = sorted(set(load_split(paths)["test"]["subhalo_id"]))
    meta = read_metadata(layout.catalog(DWARFS_CATALOG.name))
    catalog = read_catalog(args.store, DWARFS_CATALOG).to_pandas().set_index("subhalo_id")
    truth_file = Path(meta["sim"]).parent / "truth.parquet"
    analytic = pd.read_parquet(truth_file).set_index("subhalo_id")["dm_log_slope_true"]
    stored = PhaseSpaceConfig(**json.loads(_stored_config(layout)))
    print(f"{args.run}: {len(test)} held-out dwarfs; network trained on {stored.n_stars} stars")
    for n_stars in args.n_stars:
        config = replace(stored, n_stars=n_stars)
        rows, measured, true, groups = [], [], [], []
        for sid in test:
            result = _galaxy_task(
                sid, sim=meta["sim"], snapshot=int(meta["config"]["snapshot"]), config=config
            )
            if isinstance(result, str):
                raise SystemExit(f"dwarf {sid}: {result}")
            maps, scales = result
            # The scalars as observe stores them, then the run's columns.
            stored = sample_scalars(scales, stellar_mass_msun=catalog.loc[sid, "stellar_mass_msun"])
            rows.append(pack_inputs(maps, select_scalars(stored, run_scalars)))
            measured += [catalog.loc[sid, "dm_log_slope_150pc"]] * len(maps)
            true += [analytic.loc[sid]] * len(maps)
            groups += [sid] * len(maps)
        inputs = torch.from_numpy(np.concatenate(rows))
        torch.manual_seed(0)
        density = np.concatenate(
            [
                model.posterior(inputs[start : start + 256], n_passes=args.passes)[0]
                for start in range(0, len(inputs), 256)
            ]
        )
        summary = summarise(SLOPE_GRID, density)
        for label, target in (("measured", np.array(measured)), ("analytic", np.array(true))):
            inside = (target >= summary.lower68) & (target <= summary.upper68)
            metrics = cusp_core_metrics(
                mode=summary.mode, truth=target, sigma=summary.sigma, inside68=inside
            )
            metrics["double_peaked"] = float(np.mean(np.isfinite(summary.second_peak)))
            error = np.abs(summary.mode - target)
            spread = dwarf_bootstrap_sigma(
                np.array(groups), {"0.1": error <= 0.1, "0.3": error <= 0.3, "68": inside}
            )
            print(
                f"n_stars {n_stars} vs {label}: "
                + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "n_samples")
                + f", n_samples {metrics['n_samples']}; bootstrap sigma over dwarfs: "
                + ", ".join(f"{k} {v:.3f}" for k, v in spread.items())
            )


def _stored_config(layout: StoreLayout) -> str:
    import zarr

    from darkstack.store import PHASE_SPACE_ZARR

    group = zarr.open_group(str(layout.zarr(PHASE_SPACE_ZARR.name)), mode="r")
    return str(group.attrs["config"])


if __name__ == "__main__":
    main()
