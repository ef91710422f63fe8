"""The headline table (every figure next to its floor) and the Markdown report."""

from __future__ import annotations

import datetime
import platform
from typing import Any

from benchmarks._table import format_us, markdown_table, text_table

__all__ = ["HEADERS", "headline_rows", "headline_text", "machine", "markdown_report", "now_iso"]

HEADERS = ["figure", "p50", "p99", "ratio to floor (p50)", "etcd (p50)"]

_NOT_MEASURED = "not measured"


def _lat(results: dict[str, Any], workload: str, name: str) -> dict[str, float] | None:
    latency: dict[str, dict[str, float]] = results.get(workload, {}).get("latency", {})
    return latency.get(name)


class _Floors:
    def __init__(self, results: dict[str, Any]) -> None:
        def get(name: str) -> float:
            return (_lat(results, "floors", name) or {}).get("p50_us", 0.0)

        self.echo, self.hget, self.evalsha = (
            get("grpc_unary_echo"),
            get("redis_hget"),
            get("redis_evalsha_4_calls"),
        )
        self.push = get("grpc_stream_push")
        self.read = self.echo + self.hget
        self.write = self.echo + self.evalsha
        self.etcd = {
            name: get(name)
            for name in ("etcd_get", "etcd_put", "etcd_txn_100_puts", "etcd_watch_put_to_event")
        }


def _ratio(value: float, floor: float, label: str) -> str:
    if not floor:
        return _NOT_MEASURED
    ratio = value / floor
    return f"{ratio:.2f}x {label}" if ratio >= 0.05 else f"1/{1 / ratio:.0f} of {label}"


def _etcd(value: float, etcd: float) -> str:
    if not etcd:
        return _NOT_MEASURED
    ratio = value / etcd
    return f"{format_us(etcd)} ({ratio:.2f}x)" if ratio >= 0.05 else f"{format_us(etcd)} (1/{1 / ratio:.0f})"


def _latency_rows(results: dict[str, Any], floors: _Floors) -> list[list[str]]:
    read, write = "echo+HGET", "echo+EVALSHA"
    specs = [
        ("single_ops", "register", "register (raw stub)", floors.write, write, 0.0),
        (
            "single_ops",
            "get_uncached_raw",
            "get uncached (raw stub)",
            floors.read,
            read,
            floors.etcd["etcd_get"],
        ),
        ("single_ops", "get_uncached_sdk", "get uncached (SDK)", floors.read, read, floors.etcd["etcd_get"]),
        ("single_ops", "get_cached_sdk", "get cached (SDK)", floors.read, read, floors.etcd["etcd_get"]),
        ("single_ops", "update_raw", "update (raw stub)", floors.write, write, floors.etcd["etcd_put"]),
        ("single_ops", "update_sdk", "update (SDK)", floors.write, write, floors.etcd["etcd_put"]),
        ("single_ops", "cas_update_raw", "compare-and-set update (raw stub)", floors.write, write, 0.0),
        ("single_ops", "delete", "delete (raw stub)", floors.write, write, 0.0),
        (
            "coherence",
            "update_return_to_visible",
            "coherence: update return -> other process's cache",
            floors.push,
            "stream push",
            0.0,
        ),
        (
            "coherence",
            "update_start_to_visible",
            "coherence: update start -> other process's cache",
            floors.push + floors.write,
            "echo+EVALSHA+push",
            floors.etcd["etcd_watch_put_to_event"],
        ),
    ]
    rows = []
    for workload, key, label, floor, floor_label, etcd in specs:
        lat = _lat(results, workload, key)
        if lat is None:
            rows.append([label, _NOT_MEASURED, "", "", ""])
            continue
        p50 = lat["p50_us"]
        rows.append(
            [
                label,
                format_us(p50),
                format_us(lat["p99_us"]),
                _ratio(p50, floor, floor_label),
                _etcd(p50, etcd),
            ]
        )
    return rows


def _batch_rows(results: dict[str, Any], floors: _Floors) -> list[list[str]]:
    rows = []
    for row in results.get("batch", {}).get("sizes", []):
        size = int(row["size"])
        etcd = floors.etcd["etcd_txn_100_puts"] / 1000 if size == 100 else 0.0
        batch_ms = row["batch_update_atomic_ms"]
        rows.append(
            [
                f"batch update of {size}, atomic (one call)",
                f"{batch_ms:.2f} ms",
                "",
                f"{row['update_speedup_atomic']:.1f}x faster than {size} calls",
                f"{etcd:.2f} ms txn ({batch_ms / etcd:.2f}x)" if etcd else "",
            ]
        )
        rows.append(
            [
                f"batch get of {size} (one call)",
                f"{row['batch_get_ms']:.2f} ms",
                "",
                f"{row['get_speedup']:.1f}x faster than {size} calls",
                "",
            ]
        )
    for op, fit in results.get("batch", {}).get("linearity", {}).items():
        rows.append(
            [
                f"{op.removesuffix('_ms')}: per item",
                f"{fit['per_item_us']:.1f} us",
                "",
                f"fixed {fit['fixed_ms']:.2f} ms, r2={fit['r2']:.3f}",
                "",
            ]
        )
    return rows


def _other_rows(results: dict[str, Any], floors: _Floors) -> list[list[str]]:
    rows = []
    if cache := results.get("cache"):
        rows.append(
            [
                "cache 80/20: hit rate (with writer)",
                f"{cache['hit_rate']:.1%}",
                f"{cache['hit_rate_with_writer']:.1%}",
                f"{cache['speedup_mean']:.0f}x faster than uncached (mean); "
                f"{cache['speedup_mean_with_writer']:.0f}x with writer",
                "",
            ]
        )
    for mode in ("threads", "asyncio"):
        for row in results.get("concurrency", {}).get(mode, []):
            p50 = row["latency"]["p50_us"]
            rows.append(
                [
                    f"read-modify-write, {row['workers']} {mode}",
                    f"{row['throughput_per_s']:.0f} op/s",
                    format_us(row["latency"]["p99_us"]),
                    _ratio(p50, floors.write, "echo+EVALSHA")
                    + (" ok" if row["correct"] else " LOST UPDATES"),
                    "",
                ]
            )
    if scale := results.get("scaleout"):
        ops = scale["ops_per_s"]
        two = f"{ops['2']:.0f} op/s" if "2" in ops else _NOT_MEASURED
        rows.append(
            [
                f"scale-out: 1 -> 2 frontends ({scale['cpu_count']} cores)",
                f"{ops['1']:.0f} op/s",
                two,
                f"{scale.get('speedup', 0):.2f}x" if "speedup" in scale else "",
                "",
            ]
        )
    if footprint := results.get("footprint"):
        per_var = footprint["redis_bytes_per_variable"]
        rss = footprint["rss_per_watch_stream_kib"]
        rows.append(
            [
                "Redis bytes per variable (small int / 1 KiB string)",
                f"{per_var['small_int']['variable_keys']:.0f} B",
                f"{per_var['string_1KiB']['variable_keys']:.0f} B",
                "without the change log",
                "",
            ]
        )
        rows.append(
            [
                "frontend RSS per open watch stream",
                f"{rss:.1f} KiB" if rss is not None else _NOT_MEASURED,
                "",
                "",
                "",
            ]
        )
    return rows


def _floor_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, label in [
        ("redis_hget", "floor: redis-py HGET"),
        ("redis_evalsha_4_calls", "floor: EVALSHA, 4 calls"),
        ("grpc_unary_echo", "floor: bare gRPC unary echo"),
        ("grpc_stream_push", "floor: bare gRPC stream push"),
        ("etcd_get", "etcd get"),
        ("etcd_put", "etcd put"),
        ("etcd_txn_100_puts", "etcd txn of 100 puts"),
        ("etcd_watch_put_to_event", "etcd put start -> watch event"),
    ]:
        lat = _lat(results, "floors", key)
        if lat is None:
            rows.append([label, _NOT_MEASURED, "", "", ""])
        else:
            rows.append([label, format_us(lat["p50_us"]), format_us(lat["p99_us"]), "", ""])
    return rows


def headline_rows(results: dict[str, Any]) -> list[list[str]]:
    floors = _Floors(results)
    return (
        _floor_rows(results)
        + _latency_rows(results, floors)
        + _batch_rows(results, floors)
        + _other_rows(results, floors)
    )


def headline_text(results: dict[str, Any]) -> str:
    return text_table(HEADERS, headline_rows(results))


def markdown_report(results: dict[str, Any], plots: list[str]) -> str:
    meta = results["meta"]
    lines = [
        "# Unified Bridge benchmark report",
        "",
        f"Run {meta['started']} on {meta['machine']} ({meta['cpu_count']} cores), "
        f"{'quick' if meta['quick'] else 'full'} mode, {meta['duration_s']:.0f} s. "
        "Every figure was measured in this run next to its floors: the storage floor (redis-py HGET, "
        "an EVALSHA with four calls), the transport floor (bare grpcio unary echo and stream push on "
        "the same grpc.aio stack) and etcd when present. Latencies are sequential calls from one "
        "client on loopback; ratios are p50 ÷ the sum of the floors the operation stands on.",
        "",
        markdown_table(HEADERS, headline_rows(results)),
        "",
        "Notes:",
        "- `get cached` is served from the SDK's near cache: no network.",
        "- coherence: the child process polls its cache every ~20 us (resolution ~0.1 ms); times are "
        "wall-clock (`time.time_ns`) on one host.",
        f"- scale-out: {meta['cpu_count']} cores bound this machine; Redis, frontends and client "
        "processes share them, so a second frontend helps only as far as a core is idle.",
        f"- skipped: {', '.join(meta['skipped']) or 'nothing'}.",
        "",
    ]
    lines += [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
