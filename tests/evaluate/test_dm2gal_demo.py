"""``darkstack demo --task dm2gal``: universe and twin -> fields -> train -> paint -> evaluate.

The fast test runs the demo's own function on the sizes ``test_dm2gal_evaluate.py`` uses too
(conftest.py's ``tiny_dm2gal_*`` overrides: an 8 Mpc/h universe pair, 5³ crops, one epoch,
3 HODs; 32³ fields); the slow one runs the command as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from darkstack.cli.demo import _dm2gal_demo
from darkstack.store import StoreLayout


def _report_line(output: str) -> Path:
    last = output.strip().splitlines()[-1]
    assert last.startswith("report: "), output
    return Path(last.removeprefix("report: "))


def test_the_dm2gal_demo_chain_ends_with_its_report_and_reruns_on_what_is_there(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_dm2gal_universe: tuple[str, ...],
    tiny_dm2gal_training: tuple[str, ...],
    tiny_dm2gal_evaluation: tuple[str, ...],
) -> None:
    torch.set_num_threads(1)

    def run() -> str:
        _dm2gal_demo(
            tmp_path,
            seed=5,
            dask_address=None,
            workers=0,
            grid=32,
            universe_overrides=tiny_dm2gal_universe,
            train_overrides=(*tiny_dm2gal_training, "run=demo"),
            evaluate_overrides=tiny_dm2gal_evaluation,
        )
        return capsys.readouterr().out

    first = run()
    report = _report_line(first)
    paths = StoreLayout(tmp_path / "store").run("demo")
    assert report == paths.report / "summary.md"
    assert "HOD, 3 realisations" in report.read_text()
    metrics = json.loads((paths.report / "metrics.json").read_text())
    assert set(metrics["modes"]) == {"dm2gal_truth_positions", "dm2gal_gravity_only"}
    assert metrics["test_cube"]["grid"] == 32
    # The run trained the quick preset with the demo's overrides, the paper's schedule on.
    config = torch.load(paths.model, weights_only=False)["config"]
    assert config["samples"]["crop_side"] == 5
    assert config["optim"]["lr_schedule"] == "plateau"
    assert "gravity-only twin" in first
    # A rerun reuses the universe pair, the fields and the trained run.
    model_time = paths.model.stat().st_mtime_ns
    second = run()
    assert "gravity-only twin" not in second
    assert _report_line(second) == report
    assert paths.model.stat().st_mtime_ns == model_time


@pytest.mark.slow  # the quick universe and its twin, 64³ fields, 3 epochs, 20 HODs: minutes
def test_darkstack_demo_task_dm2gal_runs_the_quick_chain(tmp_path: Path) -> None:
    from darkstack.cli import cli

    result = CliRunner().invoke(cli, ["demo", "--task", "dm2gal", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = _report_line(result.output)
    assert report.exists()
    assert "HOD, 20 realisations" in report.read_text()
