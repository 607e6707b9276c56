"""Is a joint bootstrap ensemble as wide as the same bootstrap trained as separate runs?

de los Rios et al. (2023, §5.3) train 100 networks one by one, each on its own resample. A
profiles ensemble trains its members together: shared batches and batch order, shared
augmentation draws, batch-norm statistics over the whole batch, resample counts as loss
weights. That may make the members more alike than separate networks, and its intervals too
narrow. This tool compares, on one split of one store, per radius:

* the 68% coverage of the ensemble's uncalibrated intervals (the paper's percentiles of the
  members for point predictions; the mixture's Gaussian with a variance head);
* their median width (p84 - p16, dex);
* the median over galaxies of the members' spread (the standard deviation of the member
  means), the part of the width that independence changes.

The joint run is an ordinary ``n_members`` M run; the separate runs are ``n_members`` 1 runs
with ``bootstrap_single`` and seeds 0 ... M-1 (docs/train.md, "Joint and separate
bootstraps"). Every run must have been trained on the same store and split.

Run: ``python tools/bootstrap_independence.py --store STORE --joint RUN --separate RUN RUN ...
[--split test] [--out FILE.json]``
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from darkstack.errors import InputError
from darkstack.evaluate.metrics import coverage
from darkstack.train.predict import predict_members, summarise


@dataclass(frozen=True, kw_only=True)
class Draws:
    """A run's member predictions on a split: ``(n, M, *target)`` points or
    ``(n, M, 2, *target)`` mean and log-variance."""

    run: str
    samples: NDArray[np.int64]
    true: NDArray[np.float64]
    values: NDArray[np.float64]
    heteroscedastic: bool


def run_draws(store: Path, run: str, *, split: str, device: str) -> Draws:
    """Every member's prediction of ``run`` on ``split``."""
    from darkstack.store import StoreLayout
    from darkstack.train.regressor import Regressor
    from darkstack.train.run import load_split_data
    from darkstack.train.tasks import get_task
    from darkstack.train.worker import load_trained

    paths = StoreLayout(store).run(run)
    model = load_trained(paths, task=get_task("profiles"), device=device)
    if not isinstance(model, Regressor):
        raise InputError(f"{paths.model}: not a profiles run (a {type(model).__name__})")
    data = load_split_data(store, paths, split)
    return Draws(
        run=run,
        samples=data.samples,
        true=data.targets.astype(np.float64),
        values=predict_members(model, data.inputs, device=device).astype(np.float64),
        heteroscedastic=model.heteroscedastic,
    )


def check_comparable(runs: list[Draws]) -> None:
    """Raise an :class:`InputError` unless ``runs`` predict the same samples with one head."""
    first = runs[0]
    for other in runs[1:]:
        if not np.array_equal(other.samples, first.samples):
            raise InputError(
                f"run {other.run} predicts other samples than run {first.run}; "
                "expected runs trained on the same store and split"
            )
        if other.heteroscedastic != first.heteroscedastic:
            raise InputError(
                f"run {other.run} has another head than run {first.run}; expected the same"
            )


def joined(runs: list[Draws]) -> Draws:
    """The members of several runs as one ensemble (same samples and head required)."""
    check_comparable(runs)
    first = runs[0]
    return Draws(
        run="+".join(r.run for r in runs),
        samples=first.samples,
        true=first.true,
        values=np.concatenate([r.values for r in runs], axis=1),
        heteroscedastic=first.heteroscedastic,
    )


def interval_scores(draws: Draws) -> dict[str, list[float]]:
    """Per-target coverage and median width of the 68% interval, and the members' spread."""
    interval = summarise(draws.values, heteroscedastic=draws.heteroscedastic)
    means = draws.values[:, :, 0] if draws.heteroscedastic else draws.values
    return {
        "coverage68": coverage(interval.p16, interval.p84, draws.true).tolist(),
        "width68_dex": np.median(interval.p84 - interval.p16, axis=0).tolist(),
        "member_spread_dex": np.median(means.std(axis=1), axis=0).tolist(),
    }


def main() -> None:
    from darkstack.train.tasks.profiles.data import open_observations

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--joint", required=True, help="the M-member run")
    parser.add_argument("--separate", nargs="+", required=True, help="the lone runs")
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="also write the scores as JSON")
    args = parser.parse_args()
    joint = run_draws(args.store, args.joint, split=args.split, device=args.device)
    separate = joined(
        [run_draws(args.store, run, split=args.split, device=args.device) for run in args.separate]
    )
    check_comparable([joint, separate])
    scores = {"joint": interval_scores(joint), "separate": interval_scores(separate)}
    radii = open_observations(args.store).radii_kpc
    print(
        f"{args.split} split, {joint.samples.size} samples; joint {joint.values.shape[1]} "
        f"members, separate {separate.values.shape[1]} runs"
    )
    print(
        "| R (kpc) | coverage 68%, joint | separate | width, joint | separate "
        "| member spread, joint | separate |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(radii):
        row = [scores[kind][key][i] for key in scores["joint"] for kind in ("joint", "separate")]
        print(f"| {r:.1f} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    if args.out:
        args.out.write_text(json.dumps({"radii_kpc": list(map(float, radii)), **scores}, indent=1))


if __name__ == "__main__":
    main()
