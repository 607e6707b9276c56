"""Golden values: sums and catalog statistics of the quick chain, pinned across refactors.

The quick mock universe, its ingest and an observe of its most massive galaxies are reduced to
per-array statistics (count, sum, sum of squares, NaN count) and compared with
``tests/golden/quick.json`` at rtol 1e-6: bytes vary with CPU and BLAS, these statistics do
not beyond rounding. Training and evaluation are compared in a slow test against
``tests/golden/quick_train.json``.

``make golden`` rewrites both files (``pytest tests/golden --update-golden -m ""``); do it in
a commit of its own that says which change moved the values and why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr

from darkstack.config import load_config
from darkstack.features.observe import ObserveConfig, run_observe
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.ingest.selection import SelectionConfig
from darkstack.store import PREDICTIONS_CATALOG, read_catalog
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig

HERE = Path(__file__).parent
RTOL = 1e-6
# Training on the CPU is deterministic on one machine, not across BLAS builds.
TRAIN_RTOL = 1e-5
#: Order statistics get a looser bound: a half-mass radius is the distance of the particle at
#: which M(<r) crosses M/2, so a last-bit change of a cumulative sum on another CPU moves one
#: galaxy's radius to its neighbouring particle (seen on an AMD EPYC: 1.5e-6 of the sum).
ORDER_STATISTIC_RTOL = {"HalfmassRad": 1e-5}
#: Galaxies observed for the golden values: the quick universe's most massive (5 of ~200), so
#: the default test run stays short; observe's code path is the same for every galaxy.
OBSERVE_MIN_MSTAR_MSUN = 6e10


def _array_stats(values: Any) -> dict[str, float]:
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        return {}
    array = array.astype(np.float64).ravel()
    finite = np.isfinite(array)
    kept = array[finite]
    return {
        "n": float(array.size),
        "non_finite": float(array.size - kept.size),
        "sum": float(kept.sum()),
        "sumsq": float(np.square(kept).sum()),
    }


def _flatten(prefix: str, stats: Mapping[str, float]) -> Iterator[tuple[str, float]]:
    for key, value in stats.items():
        yield f"{prefix}:{key}", value


def _hdf5_stats(paths: list[Path], *, prefix: str) -> dict[str, float]:
    """Statistics of every dataset, concatenated over the files (in path order)."""
    pieces: dict[str, list[np.ndarray]] = {}

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            pieces.setdefault(name, []).append(np.asarray(node[()]).reshape(-1))

    for path in paths:
        with h5py.File(path, "r") as file:
            file.visititems(visit)
    out: dict[str, float] = {}
    for name in sorted(pieces):
        out.update(_flatten(f"{prefix}/{name}", _array_stats(np.concatenate(pieces[name]))))
    return out


def _parquet_stats(path: Path, *, prefix: str) -> dict[str, float]:
    return _table_stats(pq.read_table(path), prefix=prefix)


def _table_stats(table: pa.Table, *, prefix: str) -> dict[str, float]:
    out: dict[str, float] = {f"{prefix}:rows": float(table.num_rows)}
    for name in sorted(table.column_names):
        column = table.column(name).combine_chunks()
        if column.type in ("string", "large_string"):
            labels, counts = np.unique(column.to_numpy(False), return_counts=True)
            for value, count in zip(labels, counts, strict=True):
                out[f"{prefix}/{name}={value}"] = float(count)
            continue
        values = column.to_pylist()
        flat = np.array(list(_flat(values)), dtype=object)
        if flat.size and isinstance(flat[0], str):
            continue
        numeric = np.array([np.nan if v is None else v for v in flat], dtype=np.float64)
        out.update(_flatten(f"{prefix}/{name}", _array_stats(numeric)))
    return out


def _flat(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flat(value)
        else:
            yield value


def universe_stats(sim: Path) -> dict[str, float]:
    output = sim / "output"
    out: dict[str, float] = {}
    for folder in sorted(output.iterdir()):
        files = sorted(folder.glob("*.hdf5"), key=lambda p: int(p.name.split(".")[-2]))
        out.update(_hdf5_stats(files, prefix=folder.name))
    offsets = sorted((sim / "postprocessing" / "offsets").glob("*.hdf5"))
    out.update(_hdf5_stats(offsets, prefix="offsets"))
    out.update(_parquet_stats(sim / "truth.parquet", prefix="truth"))
    return out


def ingest_stats(store: Path) -> dict[str, float]:
    out = _parquet_stats(store / "catalogs" / "galaxies.parquet", prefix="galaxies")
    cutouts = sorted((store / "cutouts").glob("*.hdf5"))
    out["cutouts:files"] = float(len(cutouts))
    out.update(_hdf5_stats(cutouts, prefix="cutouts"))
    return out


def observe_stats(store: Path) -> dict[str, float]:
    out = _parquet_stats(store / "catalogs" / "observations.parquet", prefix="observations")
    with xr.open_zarr(store / "observations.zarr", consolidated=False) as dataset:
        for name in sorted(dataset.variables):
            values = dataset[name].values
            if name == "images":
                for index, channel in enumerate(dataset["channel"].values):
                    out.update(_flatten(f"zarr/images/{channel}", _array_stats(values[:, index])))
            else:
                out.update(_flatten(f"zarr/{name}", _array_stats(values)))
    return out


def _rtol(key: str, rtol: float) -> float:
    return max([rtol, *(bound for part, bound in ORDER_STATISTIC_RTOL.items() if part in key)])


def compare(actual: Mapping[str, float], golden_file: Path, *, rtol: float, update: bool) -> None:
    if update:
        golden_file.write_text(json.dumps(dict(sorted(actual.items())), indent=1) + "\n")
        return
    expected = json.loads(golden_file.read_text())
    assert sorted(actual) == sorted(expected), (
        f"keys differ: missing {sorted(set(expected) - set(actual))[:10]}, "
        f"new {sorted(set(actual) - set(expected))[:10]}"
    )
    wrong = {
        key: (actual[key], expected[key])
        for key in expected
        if not math.isclose(actual[key], expected[key], rel_tol=_rtol(key, rtol), abs_tol=1e-9)
    }
    assert not wrong, (
        f"{len(wrong)} of {len(expected)} golden values differ: {dict(list(wrong.items())[:10])}"
    )


@pytest.fixture(scope="module")
def quick_chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("golden")
    config = load_config(UniverseConfig, preset=PRESETS["quick"])
    build_universe(config, root / "sim", progress=False)
    run_ingest(IngestConfig(), sim=root / "sim" / "output", store=root / "store", progress=False)
    heavy = IngestConfig(selection=SelectionConfig(stellar_mass_min_msun=OBSERVE_MIN_MSTAR_MSUN))
    run_ingest(heavy, sim=root / "sim" / "output", store=root / "observed", progress=False)
    run_observe(ObserveConfig(), store=root / "observed", progress=False)
    return {"sim": root / "sim", "store": root / "store", "observed": root / "observed"}


def test_quick_chain_matches_golden_values(
    quick_chain: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    actual = {
        **{f"universe|{k}": v for k, v in universe_stats(quick_chain["sim"]).items()},
        **{f"ingest|{k}": v for k, v in ingest_stats(quick_chain["store"]).items()},
        **{f"observe|{k}": v for k, v in observe_stats(quick_chain["observed"]).items()},
    }
    compare(
        actual,
        HERE / "quick.json",
        rtol=RTOL,
        update=request.config.getoption("--update-golden"),
    )


@pytest.mark.slow
def test_quick_training_matches_golden_values(
    quick_chain: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    """The demo's observe -> train (in-process) -> evaluate on the quick store."""
    from darkstack.evaluate.profiles import EvaluateConfig, evaluate_run
    from darkstack.train.session import run_training
    from darkstack.train.tasks.profiles import PRESETS as TRAIN_PRESETS
    from darkstack.train.tasks.profiles import ProfilesTrainConfig

    store = quick_chain["store"]
    run_observe(ObserveConfig(n_realisations=1), store=store, progress=False)
    config = load_config(ProfilesTrainConfig, preset=TRAIN_PRESETS["quick"])
    run_training(config, store=store, use_ray=False)
    report = evaluate_run(store, config.run_name, EvaluateConfig(rotation_curve_galaxies=0))
    metrics = json.loads((report / "metrics.json").read_text())["metrics"]
    actual = {
        f"metrics/{name}:{index}": float(value)
        for name, values in sorted(metrics.items())
        if isinstance(values, list)
        for index, value in enumerate(values)
        if isinstance(value, int | float)
    }
    predictions = read_catalog(store, PREDICTIONS_CATALOG)
    actual.update(_table_stats(predictions, prefix="predictions"))
    compare(
        actual,
        HERE / "quick_train.json",
        rtol=TRAIN_RTOL,
        update=request.config.getoption("--update-golden"),
    )
