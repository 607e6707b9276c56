"""The benchmark harness (alternating rounds, medians and spreads, the result file) and the
page rendered from its results, which must be the committed docs/benchmarks.md."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from repo_scripts import ROOT, load_script

harness = load_script("benchmarks/_harness.py", "bench_harness")
doc = load_script("tools/benchmarks_doc.py")


def test_rounds_alternate_the_order_after_one_warm_up_of_each() -> None:
    calls: list[str] = []
    ticks = itertools.count()
    variants = {name: (lambda name=name: calls.append(name)) for name in "ABC"}
    harness.compare(variants, repeats=4, clock=lambda: float(next(ticks)))
    warm, rounds = calls[:3], calls[3:]
    assert warm == ["A", "B", "C"]
    assert rounds == list("ABCCBAABCCBA")


def test_median_and_spread_come_from_the_rounds_and_timed_overrides_the_clock() -> None:
    durations = iter([5.0, 1.0, 3.0, 2.0, 4.0])  # seconds of A's rounds
    stats = harness.compare(
        {"A": lambda: harness.Timed(seconds=next(durations), value=7)}, repeats=5, warmup=False
    )["A"]
    assert stats.samples_s == (5.0, 1.0, 3.0, 2.0, 4.0)
    assert stats.median_s == 3.0
    assert stats.quartiles_s == (2.0, 4.0)
    assert stats.value == 7
    summary = stats.summary()
    assert (summary["min_s"], summary["max_s"]) == (1.0, 5.0)


def test_a_report_records_ratios_rates_and_the_machine(tmp_path: Path) -> None:
    report = harness.Report(bench="toy", title="Toy", about="Two sleeps.")
    stats = {
        "tool": harness.Stats(samples_s=(2.0, 2.0, 2.0)),
        "ours": harness.Stats(samples_s=(1.0, 1.0, 4.0)),
    }
    report.comparison(
        "sleeping",
        stats,
        reference="tool",
        differs="it sleeps longer",
        per={"ours": 10},
        per_unit="naps",
    )
    with pytest.raises(ValueError, match="reference 'nobody'"):
        report.comparison("x", stats, reference="nobody", differs="")
    data = json.loads(report.write(tmp_path).read_text())
    rows = {row["variant"]: row for row in data["comparisons"][0]["rows"]}
    assert rows["ours"]["over_reference"] == 0.5
    assert rows["ours"]["units_per_s"] == 10.0
    assert "units_per_s" not in rows["tool"]
    assert data["comparisons"][0]["repeats"] == 3
    assert data["started"]["cpus"] >= 1 and len(data["finished"]["load_average_1_5_15"]) == 3
    page = doc.render(tmp_path)
    assert "## Toy (`benchmarks/bench_toy.py`)" in page
    assert "| ours | 1.00 s | 1.00 s – 2.50 s | 1.00 s – 4.00 s | x0.5 | 10 |" in page
    assert "| over tool | naps/s |" in page
    assert "What the reference does differently: it sleeps longer" in page


def test_the_committed_page_is_rendered_from_the_committed_results() -> None:
    # No row outlives the result file it came from.
    assert (ROOT / "docs" / "benchmarks.md").read_text() == doc.render()
