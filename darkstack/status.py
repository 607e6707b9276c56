"""Per-item statuses of a build: ``ok`` or the reason an item failed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def summarise_statuses(statuses: Iterable[str]) -> tuple[int, dict[str, int]]:
    """Number of ``ok`` items and the count of each failure reason, most frequent first."""
    counts = Counter(statuses)
    n_ok = counts.pop("ok", 0)
    return n_ok, dict(counts.most_common())
