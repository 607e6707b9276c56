"""Build statuses: environmental failures are retried, data failures recorded, causes grouped."""

from __future__ import annotations

import errno
import os

import pytest

from darkstack.status import (
    BuildReport,
    cause,
    failure_status,
    is_environmental,
    needs_retry,
    summarise,
)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/store/cutouts/a.hdf5"),
            "retry: OSError: No space left on device -- [Errno 28] No space left on device: "
            "'/store/cutouts/a.hdf5'",
        ),
        (FileNotFoundError("cutout vanished"), "retry: FileNotFoundError: cutout vanished"),
        (MemoryError(), "retry: MemoryError: MemoryError"),
        (ValueError("no gas\n in  the cutout"), "failed: ValueError: no gas in the cutout"),
    ],
)
def test_failure_status_tells_environment_from_data(error: BaseException, expected: str) -> None:
    assert failure_status(error) == expected
    assert needs_retry(expected) == isinstance(error, OSError | MemoryError)


def test_a_lost_dask_worker_is_environmental() -> None:
    from distributed.scheduler import KilledWorker

    lost = KilledWorker.__new__(KilledWorker)  # as the client re-raises it: no worker state
    assert is_environmental(lost)


def test_report_groups_causes_and_decides_completion() -> None:
    disk_full = [
        failure_status(OSError(errno.ENOSPC, "No space left on device", f"/s/{i}.hdf5"))
        for i in range(3)
    ]
    statuses = ["ok", "ok", *disk_full, "failed: no gas particles in the cutout"]
    report = summarise(statuses, build="ingest", unit="galaxies")
    assert report == BuildReport(
        build="ingest",
        unit="galaxies",
        n_items=6,
        n_ok=2,
        failed={"no gas particles in the cutout": 1},
        retry={"OSError: No space left on device": 3},
    )
    assert not report.complete
    assert report.line() == (
        "ingest: 2 of 6 galaxies ok; 1 failed (1 x no gas particles in the cutout); 3 to retry, "
        "re-run to build them (3 x OSError: No space left on device)"
    )
    assert summarise(["ok", "failed: x"], build="b", unit="u").complete
    assert not summarise(["failed: x"], build="b", unit="u").complete  # nothing succeeded
    assert not summarise([], build="b", unit="u").complete
    whole = summarise(["failed: x"], build="fields", unit="tiles", n_items=8, n_ok=7, whole=True)
    assert not whole.complete
    assert cause("failed: non-finite PartType0/Coordinates -- snap_099.1.hdf5 row 3") == (
        "non-finite PartType0/Coordinates"
    )
