"""The benchmark suite's arithmetic: percentiles, the linear fit of batch sizes, tables."""

from __future__ import annotations

import pytest

from benchmarks._stats import summarize, time_calls
from benchmarks._table import markdown_table, text_table
from benchmarks.workloads.batch import _fit


def test_summary_is_in_microseconds_with_numpy_percentiles():
    summary = summarize([n * 1000 for n in range(1, 101)])  # 1..100 us
    assert summary.n == 100
    assert summary.mean_us == pytest.approx(50.5)
    assert summary.p50_us == pytest.approx(50.5)
    assert summary.p99_us == pytest.approx(99.01)
    assert summary.max_us == 100


def test_no_samples_is_an_error_not_a_zero():
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_time_calls_times_each_call_after_the_warmup():
    seen: list[int] = []
    samples = time_calls(seen.append, n=5, warmup=2)
    assert seen == [0, 1, 0, 1, 2, 3, 4]
    assert len(samples) == 5
    assert all(sample >= 0 for sample in samples)


def test_linear_fit_recovers_fixed_and_per_item_cost():
    rows = [{"size": float(n), "t": 2.0 + 0.05 * n} for n in (10, 100, 1000)]  # ms
    fit = _fit(rows, "t")
    assert fit["fixed_ms"] == pytest.approx(2.0)
    assert fit["per_item_us"] == pytest.approx(50.0)
    assert fit["r2"] == pytest.approx(1.0)


def test_linear_fit_reports_a_poor_fit():
    rows = [{"size": 10.0, "t": 1.0}, {"size": 100.0, "t": 50.0}, {"size": 1000.0, "t": 60.0}]
    assert _fit(rows, "t")["r2"] < 0.9


def test_tables_align_and_render_markdown():
    text = text_table(["figure", "p50"], [["get", "1.2 ms"], ["get cached", "0.6 us"]])
    lines = text.splitlines()
    assert lines[0].startswith("figure")
    assert "p50" in lines[0]
    assert len({len(line) for line in lines}) == 1  # every line padded to the same width
    assert markdown_table(["a", "b"], [["x", "1"]]) == "| a | b |\n|---|---:|\n| x | 1 |"
