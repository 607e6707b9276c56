"""Benchmark: dm2gal's crops streamed from ``fields.zarr`` against the public code's ``.npy`` files.

The public code (nkasmanoff/dm2gal, ``dat/sampling/make_samples.py``) cuts every training crop
once into its own ``.npy`` files (one per channel, one for the target) and its loader
``np.load``\\ s them one sample at a time. darkstack cuts the crops on demand: the training
stream (:class:`~darkstack.train.data.BatchStream` over
:class:`~darkstack.train.tasks.dm2gal.source.CropSource`) reads each storage chunk a batch
draws from once, with a halo of half a crop, and slices the crops out in memory. The third
variant reads every crop with its own zarr read (random access). All three deliver the same
crops in the same order; the benchmark times an epoch of each (loader only), a training step of
the model per batch (its consumption rate), and, with ``--paper-step``, one training step of
the paper-size network (65³, width 128, batch 2) on CPU with its peak memory.

Painting: the same crops as candidates, predicted by the preset's network in eval mode, by
:func:`~darkstack.train.tasks.dm2gal.paint.predict_voxels` (grouped by storage chunk, batches
of 64, as ``darkstack evaluate`` paints) against the public code's validation painting
(``src/predict_stellar_mass.py``, ``validation_epoch_end``: its loader's per-sample ``.npy``
files one at a time, a forward pass per sample and ``.item()``), in candidates per second.

Run: ``python benchmarks/bench_dm2gal.py [--store STORE]`` (default: a synthetic 128³ store);
writes ``benchmarks/results/dm2gal.json``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _harness import Report, compare, print_stats

from darkstack.config import load_config
from darkstack.store import StoreLayout
from darkstack.train.data import BatchStream
from darkstack.train.run import prepare_run
from darkstack.train.tasks import get_task
from darkstack.train.tasks.dm2gal import Dm2galTrainConfig
from darkstack.train.tasks.dm2gal.crops import read_crops
from darkstack.train.tasks.dm2gal.paint import model_predict, predict_voxels
from darkstack.train.tasks.dm2gal.samples import INPUT_FIELDS
from darkstack.train.tasks.dm2gal.source import CropSource
from darkstack.train.worker import initial_model, training_streams

RUN = "bench-dm2gal"


def synthetic_fields(root: Path, *, grid: int, chunk: int) -> Path:
    """Log-normal Dark-run fields with sparse subhalos, stars where the subhalos are."""
    import zarr

    rng = np.random.default_rng(0)
    group = zarr.open_group(StoreLayout(root).zarr("fields"), mode="w")
    shape = (grid,) * 3
    subhalo = np.where(rng.random(shape) < 0.004, rng.lognormal(24, 1.0, shape), 0.0)
    for name, values in (
        ("dark_dm_mass", rng.lognormal(20.0, 1.0, shape)),
        ("dark_subhalo_mass", subhalo),
        ("hydro_stellar_mass_subhalo", 1e-2 * subhalo),
    ):
        array = group.create_array(name, shape=shape, chunks=(chunk,) * 3, dtype="float32")
        array[...] = values.astype(np.float32)
    return root


def write_npy_samples(source: CropSource, directory: Path) -> float:
    """The public code's layout: ``dm{i}.npy``, ``subhalo{i}.npy``, ``galaxies{i}.npy`` per
    sample (raw masses; its loader transforms them). Returns the seconds it took."""
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    labels = np.unique(source.chunk)
    for label in labels:
        rows = np.flatnonzero(source.chunk == label)
        crops = source_raw(source, rows)
        for row, crop in zip(rows, crops, strict=True):
            np.save(directory / f"dm{row}.npy", crop[0])
            np.save(directory / f"subhalo{row}.npy", crop[1])
            np.save(directory / f"galaxies{row}.npy", source.targets[row])
    return time.perf_counter() - start


def source_raw(source: CropSource, rows: np.ndarray) -> np.ndarray:
    from darkstack.train.tasks.dm2gal.crops import read_chunk_crops

    return read_chunk_crops(source.arrays, source.centres[rows], side=source.side)


def npy_epoch(stream: BatchStream, directory: Path) -> Callable[[int], float]:
    """An epoch in ``stream``'s order, each sample ``np.load``-ed from its files."""
    source = stream.source
    assert isinstance(source, CropSource)

    def epoch(number: int) -> float:
        start = time.perf_counter()
        for positions in stream.plan(number):
            crops = np.stack(
                [
                    np.stack([np.load(directory / f"{kind}{p}.npy") for kind in ("dm", "subhalo")])
                    for p in positions
                ]
            )
            targets = np.stack([np.load(directory / f"galaxies{p}.npy") for p in positions])
            inputs = source.inputs(crops, axis=1)
            del inputs, targets
        return time.perf_counter() - start

    return epoch


def random_access_epoch(stream: BatchStream) -> Callable[[int], float]:
    """An epoch in ``stream``'s order, every crop read with its own zarr reads."""
    source = stream.source
    assert isinstance(source, CropSource)

    def epoch(number: int) -> float:
        start = time.perf_counter()
        for positions in stream.plan(number):
            crops = read_crops(source.arrays, source.centres[positions], side=source.side)
            inputs = source.inputs(crops, axis=1)
            del inputs
        return time.perf_counter() - start

    return epoch


def streaming_epoch(stream: BatchStream) -> Callable[[int], float]:
    def epoch(number: int) -> float:
        start = time.perf_counter()
        for batch in stream.epoch(number):
            del batch
        return time.perf_counter() - start

    return epoch


def npy_painting(model: torch.nn.Module, source: CropSource, directory: Path) -> Callable[[], None]:
    """The public code's painting: each candidate's files loaded and predicted on its own."""

    def paint() -> None:
        with torch.no_grad():
            for p in range(len(source.centres)):
                files = [directory / f"{kind}{p}.npy" for kind in ("dm", "subhalo")]
                crop = np.stack([np.load(path) for path in files])
                inputs = torch.from_numpy(source.inputs(crop[None], axis=1))
                model(inputs).item()

    return paint


def chunk_painting(model: torch.nn.Module, source: CropSource) -> Callable[[], None]:
    """darkstack's painting of the same candidates (as ``darkstack evaluate``)."""
    predict = model_predict(model)
    group = {name: array for name, array in zip(INPUT_FIELDS, source.arrays, strict=True)}

    def paint() -> None:
        predict_voxels(
            predict, group, source.centres, inputs=source.inputs, side=source.side, batch_size=64
        )

    return paint


def step_seconds(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Seconds of one Adam training step of ``model`` on a batch (MSE)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    start = time.perf_counter()
    loss = (model(inputs) - targets.unsqueeze(1)).pow(2).mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return time.perf_counter() - start


def paper_step(batch: int) -> None:
    """One training step of the paper-size network; prints seconds and peak RSS (GiB)."""
    from darkstack.train.models.dm2gal_cnn import Dm2galCNN, Dm2galCNNConfig

    model = Dm2galCNN(Dm2galCNNConfig())
    seconds = step_seconds(model, torch.rand(batch, 2, 65, 65, 65), torch.rand(batch, 1).squeeze(1))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{seconds} {peak}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="Default: synthetic 128³.")
    parser.add_argument("--preset", default="small", help="dm2gal training preset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--max-samples", type=int, default=1024, help="training samples timed")
    parser.add_argument("--paper-step", action="store_true", help="also the 65³ step (~4 min)")
    parser.add_argument("--paper-step-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.paper_step_child:
        paper_step(args.paper_step_child)
        return
    scratch = tempfile.TemporaryDirectory(prefix="darkstack-bench-dm2gal-")
    given = args.store
    if args.store is None:
        args.store = synthetic_fields(Path(scratch.name) / "store", grid=128, chunk=32)
    task = get_task("dm2gal")
    shutil.rmtree(StoreLayout(args.store).run(RUN).root, ignore_errors=True)
    config = load_config(
        Dm2galTrainConfig,
        preset=task.presets[args.preset],
        overrides=[f"run={RUN}", f"data.max_samples_per_split={args.max_samples}"],
    )
    paths = prepare_run(args.store, config, task=task)
    stream, _ = training_streams(args.store, paths, task=task)
    # The reference has no rotations either; they cost the same after any loader.
    stream.augment = None
    source = stream.source
    assert isinstance(source, CropSource)
    npy_dir = Path(scratch.name) / "npy"
    write_s = write_npy_samples(source, npy_dir)
    samples = len(stream)
    report = Report(
        bench="dm2gal",
        title="dm2gal crops: streamed from fields.zarr against per-sample .npy files",
        about=(
            f"Epochs of {samples} training crops ({config.samples.crop_side}³, 2 channels, "
            f"batch {config.data.batch_size}, the weighted sampler's draw) in one order: "
            "streamed by storage chunk with a halo (darkstack), np.load of per-sample files "
            "(the public code), one zarr read per crop (random access); loader only, "
            "normalised inputs. Then a training step of the preset's model per batch."
        ),
        parameters={
            "threads": args.threads,
            "store": str(given) if given else "synthetic 128³, chunk 32",
            "preset": args.preset,
            "training samples": samples,
            "chunk": int(source.arrays[0].chunks[0]),
        },
    )
    variants = {
        "per-sample .npy files (public code)": npy_epoch(stream, npy_dir),
        "streamed by chunk (darkstack)": streaming_epoch(stream),
        "one zarr read per crop": random_access_epoch(stream),
    }
    numbers = iter(range(10**9))
    stats = compare(
        {name: (lambda e=e: e(next(numbers))) for name, e in variants.items()},
        repeats=args.repeats,
    )
    print_stats(stats)
    report.comparison(
        "One epoch of crops, loader only",
        stats,
        reference="per-sample .npy files (public code)",
        differs=(
            "reads crops cut beforehand into three .npy files per sample (writing them is not "
            "timed here: see the figure below); its files are in the page cache"
        ),
        per=dict.fromkeys(stats, samples),
        per_unit="samples",
    )
    report.figure("writing the per-sample .npy files once", write_s, unit="s")
    model = initial_model(paths, task=task)
    batch = next(iter(stream.epoch(0)))
    step = compare(
        {"training step": lambda: step_seconds(model, batch.inputs, batch.targets)},
        repeats=max(args.repeats, 5),
    )["training step"]
    consumption = batch.inputs.shape[0] / step.median_s
    report.figure("model consumption", consumption, unit="samples/s")
    model.eval()
    painting = compare(
        {
            "per-sample .npy files, batch 1 (public code)": npy_painting(model, source, npy_dir),
            "by storage chunk, batch 64 (darkstack)": chunk_painting(model, source),
        },
        repeats=args.repeats,
    )
    print_stats(painting)
    report.comparison(
        "Painting candidates (network in eval mode)",
        painting,
        reference="per-sample .npy files, batch 1 (public code)",
        differs=(
            "predicts each candidate alone from files cut beforehand (not timed), as its "
            "validation painting does; darkstack cuts the crops from the fields and batches them"
        ),
        per=dict.fromkeys(painting, len(source.centres)),
        per_unit="candidates",
    )
    for name, stat in stats.items():
        rate = samples / stat.median_s
        report.figure(f"{name}: throughput over consumption", rate / consumption, unit="x")
        print(f"{name}: {rate:.0f} samples/s = {rate / consumption:.1f}x the model's consumption")
    if args.paper_step:
        for batch_size in (2,):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--paper-step-child",
                    str(batch_size),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds, peak = (float(v) for v in done.stdout.split())
            report.figure(
                f"paper network (65³, width 128) step, batch {batch_size}", seconds, unit="s"
            )
            report.figure(f"paper network step, batch {batch_size}: peak memory", peak, unit="GiB")
            print(f"paper step, batch {batch_size}: {seconds:.1f} s, {peak:.2f} GiB")
    report.write()
    shutil.rmtree(StoreLayout(args.store).run(RUN).root, ignore_errors=True)


if __name__ == "__main__":
    main()
