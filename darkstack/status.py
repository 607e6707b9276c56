"""Per-item statuses of a build, and the build's report: what succeeded, what failed and why.

Every build (ingest, observe, fields) records one status per item (galaxy, sample, tile):

- ``ok``;
- ``failed: <cause>``: a *data failure*, a property of the item (no gas, an unresolved centre,
  non-finite particle data). It is the item's result and stays recorded: rerunning the build
  would fail the same way.
- ``retry: <cause> -- <detail>``: an *environmental failure* (a missing or unreadable input, an
  I/O error, a full disk, a lost worker, memory). It says nothing about the item, so the next
  run of the build retries it without being asked.

The ``<cause>`` groups items in the report; the ``<detail>`` after `` -- `` (a path, a row)
is per item and left out of the grouping; either kind of status may carry one. A build is
*complete* when no environmental failure remains and something succeeded; the CLI exits
non-zero otherwise.
"""

from __future__ import annotations

import errno as errno_codes
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from darkstack.errors import DarkstackError

OK = "ok"
#: Prefix of a data failure's status: recorded for good.
FAILED = "failed"
#: Prefix of an environmental failure's status: retried by the next run.
RETRY = "retry"

# Exceptions raised by the environment rather than by an item's data. ``OSError`` covers
# missing and unreadable files, full disks (ENOSPC), permissions, timeouts and lost connections.
_ENVIRONMENTAL: tuple[type[BaseException], ...] = (OSError, MemoryError)
# Dask's ways of saying a worker or task was lost, recognised by name so that this module does
# not import distributed.
_ENVIRONMENTAL_NAMES = frozenset({"KilledWorker", "CancelledError", "FutureCancelledError"})
#: Separates a status's cause from its per-item detail.
DETAIL = " -- "


class DataError(ValueError):
    """An item's own data is unusable (e.g. non-finite particle positions).

    Its message is the item's status after ``failed:`` as is: a cause, then optionally
    `` -- `` and the detail (file, dataset, row).
    """


def is_environmental(error: BaseException) -> bool:
    """Whether ``error`` came from the environment (retry it) rather than from the item's data."""
    return isinstance(error, _ENVIRONMENTAL) or type(error).__name__ in _ENVIRONMENTAL_NAMES


def failure_status(error: BaseException) -> str:
    """The status of an item whose build raised ``error``.

    Parameters
    ----------
    error : BaseException
        What the item's build raised.

    Returns
    -------
    str
        ``retry: <Type>: <strerror> -- <message>`` for an environmental failure with an errno
        (so that, say, every full-disk failure groups together whatever file it hit),
        ``retry: <Type>: <message>`` for another, ``failed: <message>`` for a
        :class:`DataError`, else ``failed: <Type>: <message>``.
    """
    name = type(error).__name__
    message = " ".join(str(error).split()) or name
    if isinstance(error, DataError):
        return f"{FAILED}: {message}"
    if not is_environmental(error):
        return f"{FAILED}: {name}: {message}"
    code = getattr(error, "errno", None)
    if not isinstance(code, int) or code not in errno_codes.errorcode:
        return f"{RETRY}: {name}: {message}"
    return f"{RETRY}: {name}: {os.strerror(code)}{DETAIL}{message}"


def needs_retry(status: str) -> bool:
    """Whether an item with this status is built again by the next run."""
    return status.startswith(f"{RETRY}:")


def cause(status: str) -> str:
    """What groups a failure with others: the status without its prefix and per-item detail."""
    reason = status.split(":", 1)[1].strip() if ":" in status else status
    return reason.split(DETAIL, 1)[0]


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    """How a build's items ended.

    Attributes
    ----------
    build : str
        The verb, e.g. ``"observe"``.
    unit : str
        What an item is, plural (``"galaxies"``, ``"samples"``, ``"tiles"``).
    n_items, n_ok : int
        Items of the build, and those that succeeded.
    failed : dict of str to int
        Data failures per cause, most frequent first.
    retry : dict of str to int
        Environmental failures per cause, most frequent first; the next run retries them.
    whole : bool
        Whether the output is usable only whole (a voxel field with a missing tile), so that
        a data failure leaves the build incomplete too.
    """

    build: str
    unit: str
    n_items: int
    n_ok: int
    failed: dict[str, int] = field(default_factory=dict)
    retry: dict[str, int] = field(default_factory=dict)
    whole: bool = False

    @property
    def complete(self) -> bool:
        """No environmental failure remains, at least one item succeeded (and all, if whole)."""
        if self.whole and self.n_ok < self.n_items:
            return False
        return not self.retry and self.n_ok > 0

    def line(self) -> str:
        """One line: how many succeeded, how many failed and why, grouped by cause."""
        text = f"{self.build}: {self.n_ok} of {self.n_items} {self.unit} ok"
        if self.failed:
            text += f"; {sum(self.failed.values())} failed ({_causes(self.failed)})"
            if self.whole:
                text += ", re-run to retry"
        if self.retry:
            text += (
                f"; {sum(self.retry.values())} to retry, re-run to build them "
                f"({_causes(self.retry)})"
            )
        if self.n_items == 0:
            text += "; nothing to build"
        return text


def summarise(
    statuses: Iterable[str],
    *,
    build: str,
    unit: str,
    n_items: int | None = None,
    n_ok: int | None = None,
    whole: bool = False,
) -> BuildReport:
    """The report of a build whose items ended with ``statuses``.

    Parameters
    ----------
    statuses : iterable of str
        One status per item (or per task, with ``n_items`` and ``n_ok`` given).
    build, unit : str
        The verb, and what an item is (plural).
    n_items, n_ok : int, optional
        Items of the build and those done, when they are not the statuses' (a build whose
        tasks make several items, or that skipped the items an earlier run finished).
    whole : bool
        See :attr:`BuildReport.whole`.
    """
    statuses = list(statuses)
    failed: Counter[str] = Counter()
    retry: Counter[str] = Counter()
    for status in statuses:
        if status != OK:
            (retry if needs_retry(status) else failed)[cause(status)] += 1
    return BuildReport(
        build=build,
        unit=unit,
        n_items=len(statuses) if n_items is None else n_items,
        n_ok=statuses.count(OK) if n_ok is None else n_ok,
        failed=dict(failed.most_common()),
        retry=dict(retry.most_common()),
        whole=whole,
    )


class BuildIncompleteError(DarkstackError):
    """A build left environmental failures to retry, or built nothing; the message is its line.

    Exit code 1 (:data:`darkstack.errors.EXIT_FAILURE`): a failure while working, recorded.

    Attributes
    ----------
    report : BuildReport
        The build's report.
    """

    def __init__(self, report: BuildReport) -> None:
        super().__init__(report.line())
        self.report = report


def _causes(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} x {reason}" for reason, count in counts.items())
