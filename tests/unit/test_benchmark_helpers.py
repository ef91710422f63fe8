"""The benchmark suite's arithmetic: percentiles, the linear fit of batch sizes, the harness-overhead
corrections of sub-microsecond timings, tables and the local-first reference columns."""

from __future__ import annotations

import pytest

from benchmarks._stats import net_mean_ns, net_samples, summarize, time_blocks, time_calls
from benchmarks._table import format_fine_us, markdown_table, text_table
from benchmarks.report import check_cell, local_first_rows
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


def test_time_blocks_times_whole_blocks_after_the_warmup():
    seen: list[int] = []
    samples = time_blocks(seen.append, blocks=3, per_block=4, warmup=1)
    assert seen == [0, 1, 2, 3] * 4
    assert len(samples) == 3
    assert all(sample >= 0 for sample in samples)


def test_net_mean_is_total_per_call_less_the_median_harness_block():
    # 3 blocks of 100 calls: 6000, 7000, 11000 ns -> 80 ns per call; harness blocks' median 2000 -> 20.
    assert net_mean_ns([6000, 7000, 11000], [1900, 2000, 9000], per_block=100) == pytest.approx(60.0)


def test_net_mean_never_goes_below_zero_and_needs_samples():
    assert net_mean_ns([1000], [2000], per_block=100) == 0.0
    with pytest.raises(ValueError, match="no samples"):
        net_mean_ns([], [2000], per_block=100)
    with pytest.raises(ValueError, match="no samples"):
        net_mean_ns([1000], [], per_block=100)


def test_net_samples_subtract_the_single_call_overhead_and_clamp_at_zero():
    assert net_samples([100, 54, 40, 1054], 54.4) == [46, 0, 0, 1000]


def test_fine_microseconds_keep_the_digits_a_sub_microsecond_figure_needs():
    assert format_fine_us(0.0415) == "0.042 us"
    assert format_fine_us(2.469) == "2.47 us"
    assert format_fine_us(15.83) == "15.8 us"
    assert format_fine_us(1500.0) == "1.50 ms"


def test_check_cell_names_each_limit_and_the_figures_that_miss():
    assert check_cell({"avg_us": 0.04, "p99_us": 0.1}, {"avg_us": 0.3, "p99_us": 2.0}) == (
        "avg ≤ 0.3 us, p99 ≤ 2 us: met"
    )
    assert check_cell({"avg_us": 2.5}, {"avg_us": 2.0}) == "avg ≤ 2 us: missed (avg 2.50 us)"
    assert check_cell({"p50_ms": 82.04, "max_ms": 90.0}, {"p50_ms": 60.0}) == (
        "p50 ≤ 60 ms: missed (p50 82.04 ms)"
    )
    assert check_cell({"avg_us": 2.5}, {}) == ""
    assert check_cell({"avg_us": 1.0}, {"avg_us": 1.0}, strict=True) == "avg < 1 us: missed (avg 1.00 us)"
    assert check_cell({"avg_us": 0.9}, {"avg_us": 1.0}, strict=True) == "avg < 1 us: met"


def _op(avg_us: float, p99_us: float) -> dict[str, float]:
    return {
        "avg_us": avg_us,
        "n": 10,
        "mean_us": avg_us,
        "p50_us": avg_us,
        "p90_us": p99_us,
        "p99_us": p99_us,
        "max_us": p99_us,
    }


def test_local_first_rows_put_targets_and_bridged_figures_next_to_each_figure():
    results = {
        "single_ops": {
            "latency": {
                "get_cached_sdk": {"p50_us": 0.6, "p99_us": 1.0},
                "get_uncached_sdk": {"p50_us": 250.0, "p99_us": 400.0},
                "update_sdk": {"p50_us": 500.0, "p99_us": 900.0},
            }
        },
        "local_first": {
            "targets": {
                "get": {"avg_us": 0.3, "p99_us": 2.0},
                "set": {"avg_us": 2.0},
                "switch_100": {"p50_ms": 15.0},
            },
            "original_design": {"switch_100": {"p50_ms": 100.0}},
            "ops": {"local": {"get": _op(0.05, 0.2), "set_item": _op(2.5, 4.0)}},
            "switch": [{"variables": 100, "repetitions": 3, "mean_ms": 8.0, "p50_ms": 7.5, "max_ms": 9.0}],
        },
    }
    get, set_item, switch = local_first_rows(results)
    assert get[0] == 'local get `ctx["x"]` (LocalSessionContext)'
    assert get[1:5] == ["0.050 us", "0.050 us", "0.200 us", "0.200 us"]
    assert get[5] == "avg ≤ 0.3 us, p99 ≤ 2 us: met"
    assert get[7] == "SDK get p50: cached 0.6 us, uncached 250.0 us"
    assert set_item[5] == "avg ≤ 2 us: missed (avg 2.50 us)"
    assert set_item[7] == "SDK update p50 500.0 us"
    assert switch[1:5] == ["8.00 ms", "7.50 ms", "", "9.00 ms"]
    assert switch[5:] == ["p50 ≤ 15 ms: met", "p50 < 100 ms: met", "100 x SDK update p50 = 50.0 ms"]
    assert local_first_rows({}) == []


@pytest.mark.real_redis
def test_every_redis_client_is_measured_on_both_commands(redis_url):
    import asyncio

    from benchmarks.redis_clients import measure, render

    results = asyncio.run(measure(redis_url, n=5, rounds=1))
    clients = {client for client, _ in results}
    assert clients == {"redis.asyncio (hiredis)", "minimal asyncio protocol", "coredis", "valkey-glide"}
    assert {command for _, command in results} == {"HGET", "EVALSHA get_variables"}
    assert all(latency > 0 and cpu >= 0 for samples in results.values() for latency, cpu in samples)
    assert "CPU vs minimal" in render(results, rounds=1, n=5)
