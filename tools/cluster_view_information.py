"""How much do the X-ray and stellar maps add to the SZ map about a cluster's M(<R)?

When a multi-view U-Net does not beat the SZ-only one in the cylinder masses, ask whether the
other views carry that information at all. On a cluster_mass store and the split of a trained
single-view ``tsz_y`` run, log10 M(<R) (R in units of the true R200c) is regressed:

- linearly on each view's map total and inner sum (pixels within ``--inner-kpc``), and on the
  three views' together, fitted on the training clusters and scored on the test clusters;
- on the tsz_y network's own log M(<R), alone (a linear recalibration) and with the other
  views' totals and inner sums, and on the network's together with each ``--also`` run's: by
  k-fold cross-validation over the test clusters (folds by cluster, so no cluster's lines of
  sight are on both sides).

Scatter = the standard deviation of the residuals over the test maps, in dex.

Run: ``python tools/cluster_view_information.py --store STORE --sz-run RUN [--also RUN]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from darkstack.evaluate.cluster_mass.report import SplitMaps, predict_run, read_split_maps
from darkstack.evaluate.cluster_mass.scores import cylinder_sums
from darkstack.features.cluster_observe import CHANNELS

FloatArray = NDArray[np.float64]


def view_sums(images: FloatArray, *, pixel_kpc: FloatArray, inner_kpc: float) -> FloatArray:
    """log10 of each view's map total and inner sum, ``(n_samples, 2 * n_views)``."""
    everything = np.full((pixel_kpc.size, 1), np.inf)
    inner = np.full((pixel_kpc.size, 1), inner_kpc)
    columns = []
    for channel in range(images.shape[1]):
        for radius in (everything, inner):
            sums = cylinder_sums(images[:, channel], pixel_kpc=pixel_kpc, radius_kpc=radius)
            columns.append(np.log10(sums[:, 0]))
    return np.column_stack(columns)


def log_cylinder_masses(
    maps: FloatArray, *, pixel_kpc: FloatArray, r200c_kpc: FloatArray, radii_r200: tuple[float, ...]
) -> FloatArray:
    """log10 M(<R) of Σ maps (Msun kpc^-2), ``(n_samples, n_radii)``."""
    radius = r200c_kpc[:, None] * np.asarray(radii_r200)[None]
    return np.log10(cylinder_sums(maps, pixel_kpc=pixel_kpc, radius_kpc=radius))


def _with_intercept(x: FloatArray) -> FloatArray:
    return np.column_stack([x, np.ones(len(x))])


def fitted_scatter(
    train_x: FloatArray, train_y: FloatArray, test_x: FloatArray, test_y: FloatArray
) -> float:
    """Scatter of a least-squares linear fit (with intercept) scored on held-out rows."""
    weights, *_ = np.linalg.lstsq(_with_intercept(train_x), train_y, rcond=None)
    return float(np.std(_with_intercept(test_x) @ weights - test_y))


def cross_validated_scatter(
    x: FloatArray, y: FloatArray, *, groups: NDArray[np.int64], folds: int, seed: int
) -> float:
    """Scatter of a linear fit by k-fold cross-validation, folds by cluster."""
    clusters = np.unique(groups)
    np.random.default_rng(seed).shuffle(clusters)
    design = _with_intercept(x)
    residual = np.empty(len(y))
    for held in np.array_split(clusters, folds):
        out = np.isin(groups, held)
        weights, *_ = np.linalg.lstsq(design[~out], y[~out], rcond=None)
        residual[out] = design[out] @ weights - y[out]
    return float(np.std(residual))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--sz-run", required=True, help="A trained single-view tsz_y run.")
    parser.add_argument("--also", action="append", default=[], help="Other runs to stack with it.")
    parser.add_argument("--inner-kpc", type=float, default=550.0)
    parser.add_argument("--radii-r200", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="Torch device of the predictions.")
    args = parser.parse_args()
    radii = tuple(args.radii_r200)

    def prepare(split: str) -> tuple[FloatArray, FloatArray, SplitMaps]:
        maps = read_split_maps(args.store, args.sz_run, split=split)
        sums = view_sums(maps.images, pixel_kpc=maps.pixel_kpc, inner_kpc=args.inner_kpc)
        mass = log_cylinder_masses(
            maps.sigma_msun_kpc2,
            pixel_kpc=maps.pixel_kpc,
            r200c_kpc=maps.r200c_kpc,
            radii_r200=radii,
        )
        return sums, mass, maps

    train_x, train_y, _ = prepare("train")
    test_x, test_y, test = prepare("test")
    rows: list[tuple[str, list[float]]] = []
    for i, name in enumerate(CHANNELS):
        cols = slice(2 * i, 2 * i + 2)
        rows.append(
            (f"linear in {name} total + inner sum", [
                fitted_scatter(train_x[:, cols], train_y[:, k], test_x[:, cols], test_y[:, k])
                for k in range(len(radii))
            ])
        )  # fmt: skip
    rows.append(
        ("linear in all three views", [
            fitted_scatter(train_x, train_y[:, k], test_x, test_y[:, k]) for k in range(len(radii))
        ])
    )  # fmt: skip

    def network(run: str) -> FloatArray:
        predicted = predict_run(args.store, run, samples=test.samples, device=args.device)
        return log_cylinder_masses(
            predicted.sigma_msun_kpc2,
            pixel_kpc=test.pixel_kpc,
            r200c_kpc=test.r200c_kpc,
            radii_r200=radii,
        )

    sz = network(args.sz_run)
    other_views = test_x[:, 2:]  # CHANNELS[0] is tsz_y: the X-ray and stellar sums

    def cv(extra: FloatArray | None, k: int) -> float:
        x = sz[:, [k]] if extra is None else np.column_stack([sz[:, k], extra])
        return cross_validated_scatter(
            x, test_y[:, k], groups=test.groups, folds=args.folds, seed=args.seed
        )

    rows.append((f"{args.sz_run}, recalibrated (CV)", [cv(None, k) for k in range(len(radii))]))
    rows.append(
        (
            f"{args.sz_run} + X-ray and stellar sums (CV)",
            [cv(other_views, k) for k in range(len(radii))],
        )
    )
    for run in args.also:
        masses = network(run)
        rows.append(
            (f"{args.sz_run} + {run} (CV)", [cv(masses[:, [k]], k) for k in range(len(radii))])
        )
        rows.append((f"{run}, as predicted", list(np.std(masses - test_y, axis=0))))
    rows.append((f"{args.sz_run}, as predicted", list(np.std(sz - test_y, axis=0))))

    header = " / ".join(f"{r:g}" for r in radii)
    print(f"| estimator of log10 M(<R), R = {header} R200c | scatter (dex) |")
    print("|---|---|")
    for label, values in rows:
        print(f"| {label} | {' / '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
