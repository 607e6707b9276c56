"""The epoch bar follows the run's metrics log as rank 0 writes it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from darkstack.store import RunPaths
from darkstack.train.progress import epoch_progress


def test_the_bar_follows_the_metrics_log(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    # A resumed run: one epoch already logged.
    line = {"train_loss": [0.5, 0.7], "validation_loss": [0.2, 0.4], "members_improving": 2}
    paths.metrics.write_text(json.dumps({"epoch": 0, **line}) + "\n")
    with epoch_progress(paths, max_epochs=5, poll_s=0.01):
        time.sleep(0.05)
        with paths.metrics.open("a") as log:
            log.write(json.dumps({"epoch": 1, **line, "validation_loss": [0.1, 0.2]}) + "\n")
            log.write('{"epoch": 2, "train_lo')  # a line still being written is not read
        time.sleep(0.05)
    err = capsys.readouterr().err
    assert "train run" in err
    assert "2/5" in err and "3/5" not in err
    assert "val=0.1500" in err and "train=0.6000" in err and "improving=2" in err
    assert "(stopped early)" in err and "2/2" in err
    with epoch_progress(paths, max_epochs=5, enabled=False):
        pass
    assert capsys.readouterr().err == ""
