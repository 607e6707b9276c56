"""A progress bar of a training's epochs on the driver, fed by the run's metrics log.

Rank 0 appends one line per epoch to ``metrics.jsonl`` (:func:`darkstack.train.loop.fit`),
wherever it runs: in this process or in a Ray Train worker sharing the store's filesystem. A
thread of the driver follows that file, so the bar (epochs, mean train and validation loss over
the members, members still improving, and tqdm's ETA) is the same with and without Ray, and
Ray's own output can stay out of the terminal.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from darkstack.store import RunPaths

#: Seconds between two looks at the metrics log.
POLL_S = 0.5


@contextmanager
def epoch_progress(
    paths: RunPaths, *, max_epochs: int, enabled: bool = True, poll_s: float = POLL_S
) -> Iterator[None]:
    """Show a bar of the run's epochs while the body trains it.

    Parameters
    ----------
    paths : RunPaths
        The run being trained; epochs already in its metrics log (a resumed run) count as done.
    max_epochs : int
        Epochs of the run unless it stops early (the bar's total).
    enabled : bool
        Show the bar (on stderr).
    poll_s : float
        Seconds between two reads of the metrics log.
    """
    if not enabled:
        yield
        return
    bar = tqdm(total=max_epochs, desc=f"train {paths.name}", unit="epoch", dynamic_ncols=True)
    stop = threading.Event()
    follower = threading.Thread(
        target=_follow, args=(paths, bar, stop, poll_s), name="epoch-progress", daemon=True
    )
    follower.start()
    try:
        yield
    finally:
        stop.set()
        follower.join()
        if 0 < bar.n < max_epochs:  # every member stopped improving: the run is complete
            bar.total = bar.n
            bar.set_description(f"train {paths.name} (stopped early)")
        bar.close()


def _follow(paths: RunPaths, bar: tqdm, stop: threading.Event, poll_s: float) -> None:
    offset = 0
    inode = None
    while True:
        finished = stop.is_set()  # read once more after the training ended
        if paths.metrics.exists():
            with paths.metrics.open("rb") as log:
                # A resumed run replaces the log without the epochs it trains again: read the
                # new file from its start.
                current = os.fstat(log.fileno()).st_ino
                if current != inode:
                    inode, offset = current, 0
                log.seek(offset)
                chunk = log.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits
            offset += len(complete)
            for line in complete.splitlines():
                _show(bar, json.loads(line))
        if finished:
            return
        stop.wait(poll_s)


def _show(bar: tqdm, metrics: dict[str, Any]) -> None:
    # A worker group restarted by Ray Train repeats the epochs after its last checkpoint.
    bar.update(max(int(metrics["epoch"]) + 1 - bar.n, 0))
    bar.set_postfix(
        train=f"{np.mean(metrics['train_loss']):.4f}",
        val=f"{np.mean(metrics['validation_loss']):.4f}",
        improving=metrics["members_improving"],
        refresh=False,
    )
    bar.refresh()
