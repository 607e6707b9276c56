"""Run a function over many inputs on a Dask client, or in this process when there is none.

The stages build task lists and hand them here; whether a cluster exists, and how it was
started, is :mod:`darkstack.cluster`'s business. Results come back in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")
R = TypeVar("R")


def map_tasks(
    function: Callable[..., R],
    items: Sequence[T],
    *,
    client: Client | None = None,
    description: str = "",
    progress: bool = True,
    **shared: Any,
) -> list[R]:
    """``[function(item, **shared) for item in items]``, on ``client`` if one is given.

    Parameters
    ----------
    function : callable
        A picklable, pure function of one item (plus ``shared`` keyword arguments).
    items : sequence
        One task per item.
    client : distributed.Client, optional
        Where to run; ``None`` runs serially here.
    description : str
        Label of the progress bar.
    progress : bool
        Show a progress bar on stderr.
    **shared
        Keyword arguments passed to every call; keep them small (they ship with every task).
    """
    bar = tqdm(total=len(items), desc=description, disable=not progress, unit="task")
    try:
        if client is None:
            results = []
            for item in items:
                results.append(function(item, **shared))
                bar.update()
            return results
        from distributed import as_completed

        # Shared arguments travel inside each task rather than being scattered: scattered data
        # has no lineage, so it would be lost with a worker and every dependent task cancelled.
        futures = client.map(function, items, pure=False, **shared)
        for _ in as_completed(futures):
            bar.update()
        return client.gather(futures)
    finally:
        bar.close()
