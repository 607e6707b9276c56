"""Benchmark: ``darkstack ingest`` against per-galaxy reads with illustris_python and scida.

On one mock universe in TNG's layout, the same selected galaxies are read three ways:

* darkstack's ingest in this process (``run_ingest`` into a new store each round): selection,
  the two-pass cutout of a sphere around each galaxy (its neighbours and unbound particles
  included), the dark-matter targets, zarr cutouts and the parquet catalog;
* ``illustris_python.snapshot.loadSubhalo`` for every galaxy and particle type (coordinates,
  velocities, masses): the tool a TNG user picks first, reading each subhalo's bound particles
  from its offset range;
* scida (Dask over TNG files): ``scida.load`` of the snapshot with its group catalog, then
  ``return_data(subhaloID=...)`` and the same fields per galaxy, run by
  ``_scida_reference.py`` in scida's own environment (``make bench-env``; scida needs
  zarr < 3), timed inside it without the interpreter's start-up.

Run: ``python benchmarks/bench_ingest.py [--sim SIM] [--preset quick] [--repeats 3]``; without
``--sim`` it first writes the preset's universe (quick: about half a minute).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import illustris_python as il
import pandas as pd
from _harness import REPOSITORY, Report, Timed, compare, print_stats

from darkstack.config import load_config
from darkstack.ingest.build import run_ingest
from darkstack.ingest.config import IngestConfig
from darkstack.store import StoreLayout
from darkstack.universe.build import build_universe
from darkstack.universe.config import PRESETS, UniverseConfig

SCIDA_PYTHON = REPOSITORY / ".venv-scida" / "bin" / "python"
SCIDA_SCRIPT = Path(__file__).resolve().parent / "_scida_reference.py"
PARTICLE_FIELDS = {0: ["Coordinates", "Velocities", "Masses"], 1: ["Coordinates", "Velocities"]}
PARTICLE_FIELDS[4] = PARTICLE_FIELDS[0]


def load_subhalos(base: str, snapshot: int, subhalos: list[int]) -> int:
    """Every subhalo's bound particles of each type with illustris_python; returns the count."""
    particles = 0
    for subhalo in subhalos:
        for ptype, fields in PARTICLE_FIELDS.items():
            data = il.snapshot.loadSubhalo(base, snapshot, subhalo, ptype, fields=fields)
            particles += int(data["count"])
    return particles


def scida_subhalos(base: str, snapshot: int, subhalos: list[int]) -> Timed:
    """The same with scida, in its own interpreter; its own timing of the work."""
    snapdir = Path(base) / f"snapdir_{snapshot:03d}"
    output = subprocess.run(
        [str(SCIDA_PYTHON), str(SCIDA_SCRIPT), str(snapdir), "--subhalos",
         ",".join(map(str, subhalos))],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result = json.loads(output.strip().splitlines()[-1])
    return Timed(seconds=result["seconds"], value=result["particles"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, default=None, help="An existing SIM folder.")
    parser.add_argument("--preset", choices=["quick", "small"], default="quick")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not SCIDA_PYTHON.exists():
        raise SystemExit(f"{SCIDA_PYTHON} is missing: run `make bench-env` first")
    report = Report(
        bench="ingest",
        title="Ingest cutouts",
        about=(
            "The galaxies darkstack's selection picks in a mock universe in TNG's layout, read "
            "by darkstack's ingest (in this process, one thread), by illustris_python's "
            "`loadSubhalo` per galaxy and particle type, and by scida's subhalo selection over "
            "Dask (synchronous scheduler, one thread), all on the same files in the same run. "
            "The tasks differ (see below): the references read each galaxy's bound particles "
            "into memory and stop there; darkstack cuts a sphere around each galaxy, neighbours "
            "included, and writes a store."
        ),
        parameters={
            "simulation": str(args.sim) if args.sim else f"{args.preset} preset (generated)",
            "cutout radius": "the selection's per-galaxy radius (IngestConfig defaults)",
        },
    )
    config = IngestConfig()
    with tempfile.TemporaryDirectory(prefix="darkstack-bench-ingest-") as tmp:
        sim = args.sim
        if sim is None:
            sim = Path(tmp) / "sim"
            build_universe(
                load_config(UniverseConfig, preset=PRESETS[args.preset]), sim, progress=False
            )
        base = str(sim / "output")
        store = Path(tmp) / "store"

        def darkstack() -> Timed:
            shutil.rmtree(store, ignore_errors=True)
            start = time.perf_counter()
            summary = run_ingest(config, sim=base, store=store, progress=False)
            return Timed(seconds=time.perf_counter() - start, value=summary.n_selected)

        darkstack()  # the selection, which the references read too
        galaxies = pd.read_parquet(StoreLayout(store).catalog("galaxies"))
        subhalos = [int(s) for s in galaxies["subhalo_id"]]
        cutout = int(galaxies[["cutout_n_gas", "cutout_n_dm", "cutout_n_stars"]].sum().sum())
        names = {
            "darkstack ingest (in process)": darkstack,
            "illustris_python loadSubhalo": lambda: load_subhalos(base, config.snapshot, subhalos),
            "scida return_data(subhaloID)": lambda: scida_subhalos(base, config.snapshot, subhalos),
        }
        report.parameters["galaxies"] = len(subhalos)
        stats = compare(names, repeats=args.repeats)
    print(f"{len(subhalos)} galaxies, median of {args.repeats} rounds:")
    print_stats(stats)
    bound = stats["illustris_python loadSubhalo"].value
    report.comparison(
        "Reading the selected galaxies",
        stats,
        reference="illustris_python loadSubhalo",
        differs=(
            "`loadSubhalo` (and scida's `return_data(subhaloID=...)`) return a subhalo's "
            "bound particles, a contiguous range of the snapshot found through the group "
            "catalog's offsets, and keep them in memory. darkstack's ingest selects the "
            "galaxies, cuts a sphere around each (its neighbours' and unbound particles "
            "included, periodic box), so it must scan every particle's position; it also "
            "computes the dark-matter profile targets, writes zarr cutouts and the parquet "
            "catalog, and records a status per galaxy."
        ),
        per={name: len(subhalos) for name in stats},
        per_unit="galaxies",
    )
    report.figure("particles in darkstack's cutout spheres", cutout)
    report.figure("bound particles read by loadSubhalo", bound)
    report.figure("bound particles read by scida", stats["scida return_data(subhaloID)"].value)
    report.note(
        "scida runs in its own virtual environment (`make bench-env`: scida 0.3.6 requires "
        "zarr < 3, darkstack zarr >= 3); each round is one interpreter whose own clock times "
        "`scida.load` and the selections, not its start-up or imports. Its metadata cache "
        "(`~/.cache/scida`) is made in the warm-up."
    )
    report.write()


if __name__ == "__main__":
    main()
