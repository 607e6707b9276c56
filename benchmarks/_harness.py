"""The benchmarks' one way to time, compare and record.

Every benchmark times its variants with :func:`compare`: each variant runs once as a warm-up
(imports, caches, compiled kernels, worker start-up), then ``repeats`` rounds run every variant
once, the order reversed every other round (A B, B A, A B, ...), so that a drift of the
machine's load weighs on all variants alike. A figure is the median of the rounds with its
spread (interquartile range and min-max). A variant whose own code knows better what to time
(a subprocess that reports the seconds of its task without its interpreter's start-up) returns
:class:`Timed`.

A benchmark then writes one :class:`Report` to ``benchmarks/results/<bench>.json``: what it
measured, each comparison with its reference and what that reference does differently, and the
machine (cores, memory, load average before and after, package versions, git revision).
``tools/benchmarks_doc.py`` renders ``docs/benchmarks.md`` from these files alone.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
REPOSITORY = Path(__file__).resolve().parent.parent
#: The fewest rounds a figure may rest on (the brief: a median of at least 3 runs).
MIN_REPEATS = 3
#: Packages whose versions are recorded with every result.
PACKAGES = ("numpy", "dask", "distributed", "h5py", "zarr", "torch", "ray", "illustris_python")


@dataclass(frozen=True)
class Timed:
    """What a variant returns to report its own seconds (and, optionally, a value)."""

    seconds: float
    value: Any = None


@dataclass(frozen=True)
class Stats:
    """The rounds of one variant.

    Attributes
    ----------
    samples_s : tuple of float
        Seconds of each timed round, in the order run (the warm-up excluded).
    value : object
        What the variant returned in its last round (counts to check or to turn into rates).
    """

    samples_s: tuple[float, ...]
    value: Any = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def quartiles_s(self) -> tuple[float, float]:
        """First and third quartiles (inclusive method: the min-max for 3 rounds or fewer)."""
        if len(self.samples_s) < 2:
            return (self.samples_s[0], self.samples_s[0])
        q1, _, q3 = statistics.quantiles(self.samples_s, n=4, method="inclusive")
        return (q1, q3)

    def summary(self) -> dict[str, Any]:
        q1, q3 = self.quartiles_s
        return {
            "median_s": self.median_s,
            "q1_s": q1,
            "q3_s": q3,
            "min_s": min(self.samples_s),
            "max_s": max(self.samples_s),
            "samples_s": list(self.samples_s),
        }


def round_orders(names: Sequence[str], repeats: int) -> list[list[str]]:
    """The order of the variants in each round: as given, then reversed, alternately."""
    return [list(names) if r % 2 == 0 else list(names)[::-1] for r in range(repeats)]


def compare(
    variants: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = MIN_REPEATS,
    warmup: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Stats]:
    """Time ``variants`` after a warm-up, in rounds of alternating order.

    Parameters
    ----------
    variants : mapping of str to callable
        Each variant's name and a function running it once; it may return :class:`Timed` to
        give its own seconds.
    repeats : int
        Timed rounds. Fewer than :data:`MIN_REPEATS` is allowed for a first look, and is
        recorded with the figures (see :meth:`Report.comparison`).
    warmup : bool
        Whether every variant runs once, untimed, before the rounds. Turn it off only when a
        variant cannot run twice on the same input, and say so in the report.
    clock : callable
        Seconds, for tests.

    Returns
    -------
    dict of str to Stats
        Each variant's rounds, in the order of ``variants``.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: expected at least 1")
    names = list(variants)
    if warmup:
        for name in names:
            variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    values: dict[str, Any] = {}
    for order in round_orders(names, repeats):
        for name in order:
            start = clock()
            value = variants[name]()
            seconds = clock() - start
            if isinstance(value, Timed):
                seconds, value = value.seconds, value.value
            samples[name].append(seconds)
            values[name] = value
    return {name: Stats(samples_s=tuple(samples[name]), value=values[name]) for name in names}


def machine() -> dict[str, Any]:
    """This machine and the code measured: cores, memory, load, versions, git revision."""
    try:
        import psutil

        memory_gb: float | None = psutil.virtual_memory().total / 2**30
        running = sum(1 for p in psutil.process_iter(["status"]) if p.info["status"] == "running")
    except ImportError:  # pragma: no cover - psutil is a dependency
        memory_gb, running = None, None
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15": list(os.getloadavg()),
        "running_processes": running,
        "packages": versions,
        "git": _git_revision(),
    }


def _git_revision() -> str | None:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPOSITORY, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        # Code only: the results and the page rendered from them change as benchmarks run.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":!docs/benchmarks.md", ":!benchmarks/results"],
            cwd=REPOSITORY, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{revision}+dirty" if dirty else revision


@dataclass
class Report:
    """The results of one benchmark run, written to ``benchmarks/results/<bench>.json``.

    Parameters
    ----------
    bench : str
        The file's name (``ingest`` for ``bench_ingest.py``).
    title : str
        The section's title in docs/benchmarks.md.
    about : str
        What is measured, on what data, in a few sentences (no figures: they go in tables).
    """

    bench: str
    title: str
    about: str
    command: str = field(default_factory=lambda: " ".join(["python", *_script_args()]))
    parameters: dict[str, Any] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: dict[str, Any] = field(default_factory=machine)

    def comparison(
        self,
        name: str,
        stats: Mapping[str, Stats],
        *,
        reference: str,
        differs: str,
        per: Mapping[str, float] | None = None,
        per_unit: str = "units",
        notes: Mapping[str, str] | None = None,
    ) -> None:
        """Add a table: each variant's median and spread, and its ratio to ``reference``.

        Parameters
        ----------
        name : str
            The table's caption.
        stats : mapping of str to Stats
            From :func:`compare`.
        reference : str
            The variant the others are compared with: a real tool a user would pick.
        differs : str
            What the reference does differently from the measured code (its task, its data).
        per : mapping of str to float, optional
            Units of work of a variant's run (galaxies, particles, views): the table gets a
            throughput column ``per_unit``/s.
        per_unit : str
            The name of those units.
        notes : mapping of str to str, optional
            A remark for some variants' rows.
        """
        if reference not in stats:
            raise ValueError(f"reference {reference!r} is none of the variants {list(stats)}")
        base = stats[reference].median_s
        rows = []
        for variant, stat in stats.items():
            row: dict[str, Any] = {"variant": variant, **stat.summary()}
            row["over_reference"] = stat.median_s / base
            if per is not None and variant in per:
                row["units"] = per[variant]
                row["units_per_s"] = per[variant] / stat.median_s
            if notes and variant in notes:
                row["note"] = notes[variant]
            rows.append(row)
        self.comparisons.append(
            {
                "name": name,
                "reference": reference,
                "reference_differs": differs,
                "repeats": min(len(s.samples_s) for s in stats.values()),
                "per_unit": per_unit if per is not None else None,
                "rows": rows,
            }
        )

    def figure(self, name: str, value: float, *, unit: str = "", note: str = "") -> None:
        """Add a single figure (a count, a derived ratio, a peak memory)."""
        self.figures.append({"name": name, "value": value, "unit": unit, "note": note})

    def note(self, text: str) -> None:
        """Add a sentence the reader needs (what a variant's number includes, a caveat)."""
        self.notes.append(text)

    def write(self, results: Path = RESULTS) -> Path:
        """Write the JSON; returns its path."""
        results.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["finished"] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_1_5_15": list(os.getloadavg()),
        }
        path = results / f"{self.bench}.json"
        path.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
        print(f"wrote {path}")
        return path


def print_stats(stats: Mapping[str, Stats], *, unit: float = 1.0, label: str = "s") -> None:
    """One line per variant: median, interquartile range and min-max."""
    for name, stat in stats.items():
        q1, q3 = stat.quartiles_s
        print(
            f"  {name:40s} {stat.median_s / unit:10.3f} {label}  (IQR {q1 / unit:.3f}-"
            f"{q3 / unit:.3f}, min-max {min(stat.samples_s) / unit:.3f}-"
            f"{max(stat.samples_s) / unit:.3f}, {len(stat.samples_s)} rounds)",
            flush=True,
        )


def _script_args() -> list[str]:
    script = Path(sys.argv[0])
    try:
        shown = str(script.resolve().relative_to(REPOSITORY))
    except ValueError:
        shown = str(script)
    return [shown, *sys.argv[1:]]


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and paths."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _numpy_task(seed: int) -> float:
    """A numpy-bound task like the builds' (sampling, norms, sorts)."""
    rng = np.random.default_rng(seed)
    positions = rng.normal(size=(2_000_000, 3))
    for _ in range(5):
        np.sort(np.linalg.norm(positions, axis=1))
    return float(positions[0, 0])


def parallel_ceiling(*, repeats: int = MIN_REPEATS) -> dict[str, Stats]:
    """4 numpy tasks serially against on 2 local Dask workers: the machine's own ceiling.

    On small virtual machines two "cores" may share a physical core or a CPU quota, so no
    framework beats this ratio; a build's speed-up on 2 workers is to be read against it.
    The workers start before the rounds (their start-up is not timed).
    """
    from darkstack.cluster import dask_client

    tasks = list(range(4))
    with dask_client(workers=2) as client:
        assert client is not None

        def serial() -> None:
            for seed in tasks:
                _numpy_task(seed)

        def parallel() -> None:
            client.gather(client.map(_numpy_task, tasks, pure=False))

        return compare(
            {"4 numpy tasks, serial": serial, "4 numpy tasks, 2 Dask workers": parallel},
            repeats=repeats,
        )


def ceiling_ratio(stats: Mapping[str, Stats]) -> float:
    """Serial over 2-worker median of :func:`parallel_ceiling`."""
    serial, parallel = (stat.median_s for stat in stats.values())
    return serial / parallel
