"""The scida reference of bench_ingest.py: each galaxy's bound particles through scida.

Run by bench_ingest.py with the interpreter of scida's own environment (``make bench-env``:
scida requires zarr < 3, darkstack zarr >= 3, so they cannot share one). It opens the
snapshot with its group catalog (``scida.load``) and, for every subhalo given, selects its
particles (``return_data(subhaloID=...)``, scida's subhalo selector over Dask arrays) and
computes their coordinates, velocities and masses of gas, dark matter and stars. It prints one
JSON line: the seconds of that work (after imports: the interpreter's start-up is not timed)
and the particles read.

Run: ``.venv-scida/bin/python benchmarks/_scida_reference.py SNAPDIR --subhalos 3,7,12``.
"""

from __future__ import annotations

import argparse
import json
import time

import dask
import scida

TYPES = ("PartType0", "PartType1", "PartType4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapdir", help="A snapdir_NNN folder of a TNG-layout basePath.")
    parser.add_argument("--subhalos", required=True, help="Comma-separated subhalo IDs.")
    args = parser.parse_args()
    subhalos = [int(s) for s in args.subhalos.split(",")]
    # One thread, as darkstack's in-process ingest and illustris_python run.
    dask.config.set(scheduler="synchronous")
    start = time.perf_counter()
    dataset = scida.load(args.snapdir, units=False)
    particles = 0
    for subhalo in subhalos:
        data = dataset.return_data(subhaloID=subhalo)
        for ptype in TYPES:
            fields = data[ptype]
            if "Coordinates" not in fields:
                continue
            wanted = [fields["Coordinates"], fields["Velocities"]]
            if "Masses" in fields:  # dark matter has one mass, in the header
                wanted.append(fields["Masses"])
            coordinates, *_ = dask.compute(*wanted)
            particles += len(coordinates)
    print(json.dumps({"seconds": time.perf_counter() - start, "particles": particles}))


if __name__ == "__main__":
    main()
