"""The headline table (every figure next to its floor) and the Markdown report."""

from __future__ import annotations

import datetime
import os
import platform
from typing import Any

from benchmarks._table import format_fine_us, format_us, markdown_table, text_table
from benchmarks.workloads.local_first import OPS

__all__ = [
    "HEADERS",
    "LOCAL_HEADERS",
    "check_cell",
    "dspy_binding_rows",
    "dspy_binding_text",
    "headline_rows",
    "headline_text",
    "local_first_rows",
    "local_first_text",
    "machine",
    "markdown_report",
    "now_iso",
]

HEADERS = ["figure", "p50", "p99", "ratio to floor (p50)", "etcd (p50)"]
LOCAL_HEADERS = ["figure", "avg", "p50", "p99", "max", "target", "original design", "bridged, same run"]

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
    if (fanout := results.get("fanout")) and "watchers" in fanout:
        rows += _fanout_rows(fanout["watchers"])
    if (own := results.get("own_writes")) and own.get("cpu_measured"):
        rows += _own_writes_rows(own["variants"])
    if footprint := results.get("footprint"):
        per_var = footprint["redis_bytes_per_variable"]
        rss = footprint["rss_per_watch_stream_kib"]
        target = footprint["small_variable_target_bytes"]
        for count, small in per_var["small_int"].items():
            verdict = "met" if small["variable_keys"] <= target else "MISSED"
            rows.append(
                [
                    f"Redis bytes per small variable, {int(count):,} in the session",
                    f"{small['variable_keys']:.0f} B",
                    "",
                    f"target <= {target} B: {verdict}",
                    "without the change log",
                ]
            )
        rows.append(
            [
                "Redis bytes per variable holding 1 KiB",
                f"{per_var['string_1KiB']['variable_keys']:.0f} B",
                "",
                "",
                "without the change log",
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


def _own_writes_rows(variants: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Frontend CPU per SDK update with the cache on, against cache off, with and without the
    writer token that spares the context's stream its own events."""
    off = variants["cache off"]["frontend_cpu_us"]
    rows = []
    for variant, what in (("cache on", "own events listed"), ("sent back", "own events sent back")):
        row = variants[variant]
        ratio = row["frontend_cpu_vs_cache_off"]
        rows.append(
            [
                f"SDK update, cache on ({what}): frontend CPU",
                f"{row['frontend_cpu_us']:.0f} us",
                f"p50 {format_us(row['p50_us'])}",
                f"{_range(ratio)} of cache off ({off:.0f} us)",
                "",
            ]
        )
    return rows


def _fanout_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    """Frontend CPU per event per watcher, and idle script calls, for one watcher and for many."""
    one, many = runs[0], runs[-1]
    per_one = one["frontend_cpu_us_per_event_per_watcher"]
    per_many = many["frontend_cpu_us_per_event_per_watcher"]
    return [
        [
            f"fan-out: frontend CPU per event per watcher, {many['watchers']} watchers",
            f"{per_many:.1f} us",
            "",
            f"{per_many / per_one:.2f}x of 1 watcher ({per_one:.1f} us)",
            "",
        ],
        [
            f"fan-out: idle script calls/s, {many['watchers']} watchers of one session",
            f"{many['idle_script_calls_per_s']:.2f}/s",
            "",
            "one shared check per 5 s interval",
            "",
        ],
    ]


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


def _limit(figure: str, limit: float, below: str) -> str:
    """("avg_us", 0.3, "≤") -> "avg ≤ 0.3 us"; ("p50_ms", 100, "<") -> "p50 < 100 ms"."""
    name, _, unit = figure.rpartition("_")
    return f"{name} {below} {limit:g} {unit}"


def check_cell(figures: dict[str, float], limits: dict[str, float], *, strict: bool = False) -> str:
    """A reference column: each limit (``strict``: below it, else at most it), and whether this run's
    figure is within it. Shown, never asserted.

    >>> check_cell({"avg_us": 0.05, "p99_us": 2.5}, {"avg_us": 0.3, "p99_us": 2.0})
    'avg ≤ 0.3 us, p99 ≤ 2 us: missed (p99 2.50 us)'
    """
    if not limits:
        return ""
    missed = [
        f"{figure.rpartition('_')[0]} {figures[figure]:.2f} {figure.rpartition('_')[2]}"
        for figure, limit in limits.items()
        if figures[figure] > limit or (strict and figures[figure] == limit)
    ]
    verdict = f"missed ({', '.join(missed)})" if missed else "met"
    below = "<" if strict else "≤"
    return f"{', '.join(_limit(figure, limit, below) for figure, limit in limits.items())}: {verdict}"


def _bridged_single(results: dict[str, Any], kind: str) -> str:
    if kind == "get":
        cached, uncached = (
            _lat(results, "single_ops", "get_cached_sdk"),
            _lat(results, "single_ops", "get_uncached_sdk"),
        )
        if cached is None or uncached is None:
            return _NOT_MEASURED
        return f"SDK get p50: cached {format_us(cached['p50_us'])}, uncached {format_us(uncached['p50_us'])}"
    update = _lat(results, "single_ops", "update_sdk")
    return _NOT_MEASURED if update is None else f"SDK update p50 {format_us(update['p50_us'])}"


def _bridged_batch(results: dict[str, Any], key: str, size: int) -> str:
    for row in results.get("batch", {}).get("sizes", []):
        if int(row["size"]) == size:
            if key.startswith("get"):
                return f"GetVariables of {size} (raw) {row['batch_get_ms']:.2f} ms"
            return f"SetVariables of {size}, atomic (raw) {row['batch_update_atomic_ms']:.2f} ms"
    return _NOT_MEASURED


_OP_LABELS = {
    "get": 'get `ctx["x"]`',
    "set_item": 'set `ctx["x"] = i`',
    "update_variable": "set `update_variable`",
    "get_variables_10": "`get_variables` of 10",
    "update_variables_10": "`update_variables` of 10, atomic",
}
_CONTEXT_LABELS = {"local": "LocalSessionContext", "local_first": "LocalFirstContext, local"}


def local_first_rows(results: dict[str, Any]) -> list[list[str]]:
    section = results.get("local_first")
    if not section:
        return []
    targets, original = section["targets"], section["original_design"]
    rows = []
    for context, ops in section["ops"].items():
        for key, figures in ops.items():
            kind = OPS[key][0]
            bridged = _bridged_single(results, kind) if kind != "batch" else _bridged_batch(results, key, 10)
            rows.append(
                [
                    f"local {_OP_LABELS[key]} ({_CONTEXT_LABELS[context]})",
                    format_fine_us(figures["avg_us"]),
                    format_fine_us(figures["p50_us"]),
                    format_fine_us(figures["p99_us"]),
                    format_fine_us(figures["max_us"]),
                    check_cell(figures, targets.get(kind, {})),
                    check_cell(figures, original.get(kind, {}), strict=True),
                    bridged,
                ]
            )
    update = _lat(results, "single_ops", "update_sdk")
    for row in section["switch"]:
        size = row["variables"]
        kind = f"switch_{size}"
        rows.append(
            [
                f"switch to the bridge, {size} variables ({row['repetitions']} runs)",
                f"{row['mean_ms']:.2f} ms",
                f"{row['p50_ms']:.2f} ms",
                "",
                f"{row['max_ms']:.2f} ms",
                check_cell(row, targets.get(kind, {})),
                check_cell(row, original.get(kind, {}), strict=True),
                f"{size} x SDK update p50 = {size * update['p50_us'] / 1000:.1f} ms"
                if update
                else _NOT_MEASURED,
            ]
        )
    return rows


def local_first_text(results: dict[str, Any]) -> str:
    rows = local_first_rows(results)
    return text_table(LOCAL_HEADERS, rows) if rows else ""


FLOOR_HEADERS = [
    "operation",
    "frontend p50",
    "floor p50",
    "p50 ratio",
    "p99 ratio",
    "server CPU/req",
    "CPU ratio",
    "target",
]
# Issue targets: an uncached get within 1.15x and an update within 1.2x of the same-run floor server.
FLOOR_TARGETS = {"get": 1.15, "update": 1.2}


def _range(spread: dict[str, float], unit: str = "x") -> str:
    return f"{spread['median']:.2f}{unit} ({spread['min']:.2f}-{spread['max']:.2f})"


def frontend_floor_rows(results: dict[str, Any]) -> list[list[str]]:
    """GetVariable / SetVariable on a frontend against the floor server, medians over rounds."""
    section = results.get("frontend_floor")
    if not section:
        return []
    rows = []
    for op, figures in section["operations"].items():
        cpu = figures.get("frontend_cpu_us")
        floor_cpu = figures.get("floor_cpu_us")
        target = FLOOR_TARGETS[op]
        met = figures["p50_ratio_to_floor"]["median"] <= target
        rows.append(
            [
                f"{op} (raw stub)",
                format_us(figures["frontend_p50_us"]["median"]),
                format_us(figures["floor_p50_us"]["median"]),
                _range(figures["p50_ratio_to_floor"]),
                _range(figures["p99_ratio_to_floor"]),
                f"{cpu['median']:.0f} vs {floor_cpu['median']:.0f} us" if cpu and floor_cpu else "n/a",
                _range(figures["cpu_ratio_to_floor"]) if "cpu_ratio_to_floor" in figures else "n/a",
                f"<= {target}x: {'met' if met else 'MISSED'}",
            ]
        )
    return rows


def frontend_floor_text(results: dict[str, Any]) -> str:
    rows = frontend_floor_rows(results)
    if not rows:
        return ""
    section = results["frontend_floor"]
    extras = "\n".join(frontend_floor_lines(section))
    return (
        f"{text_table(FLOOR_HEADERS, rows)}\n{extras}\n(medians and ranges "
        f"over {section['rounds']} interleaved rounds of {section['n']} calls; no watch stream attached)"
    )


def frontend_floor_lines(section: dict[str, Any]) -> list[str]:
    """GetVariable at N callers (throughput and CPU per call of callers, server and Redis), paced,
    and the SDK's uncached get against the raw stub: one line each, frontend against floor."""
    lines = []
    if figures := section.get("get_throughput"):
        share = figures["share_of_floor"]
        met = "met" if share["median"] >= 0.85 else "MISSED"
        lines.append(
            f"GetVariable throughput, {figures['callers']} callers: frontend "
            f"{figures['frontend_ops_per_s']['median']:.0f}/s, "
            f"floor {figures['floor_ops_per_s']['median']:.0f}/s, "
            f"share {share['median']:.0%} ({share['min']:.0%}-{share['max']:.0%}); target >= 85 %: {met}"
        )
        cpu = [
            f"{label} {figures['frontend_' + key]['median']:.0f} vs "
            f"{figures['floor_' + key]['median']:.0f} us"
            for label, key in (
                ("callers", "caller_cpu_us"),
                ("server", "server_cpu_us"),
                ("Redis", "redis_cpu_us"),
            )
            if f"frontend_{key}" in figures
        ]
        if cpu:
            lines.append("  CPU per call at that load, frontend vs floor: " + ", ".join(cpu))
    if paced := section.get("get_paced"):
        ratio = paced["p50_ratio_to_floor"]
        lines.append(
            f"GetVariable paced (one call every {paced['gap_ms']:.0f} ms): frontend p50 "
            f"{paced['frontend_p50_us']['median']:.0f} us, floor {paced['floor_p50_us']['median']:.0f} us, "
            f"ratio {_range(ratio)}"
        )
    if sdk := section.get("sdk_get"):
        ratio = sdk["p50_ratio_to_raw"]
        lines.append(
            f"SDK get (cache off), in the same shuffle: p50 {sdk['p50_us']['median']:.0f} us, "
            f"{_range(ratio)} the raw stub, "
            f"client CPU {sdk['client_cpu_us']['median']:.0f} us per call"
        )
    return lines


DSPY_HEADERS = ["figure", "avg", "p50", "p99", "max", "target"]


def dspy_binding_rows(results: dict[str, Any]) -> list[list[str]]:
    """Per-call cost of reading a DSPy module's bound variables and building its settings."""
    section = results.get("dspy_binding")
    if not section or "ops" not in section:
        return []
    return [
        [
            f"DSPy binding, {int(figures['bound'])} settings ({label})",
            format_fine_us(figures["avg_us"]),
            format_fine_us(figures["p50_us"]),
            format_fine_us(figures["p99_us"]),
            format_fine_us(figures["max_us"]),
            check_cell(figures, {"avg_us": section["targets"]["avg_us"]}),
        ]
        for label, figures in section["ops"].items()
    ]


def dspy_binding_text(results: dict[str, Any]) -> str:
    rows = dspy_binding_rows(results)
    return text_table(DSPY_HEADERS, rows) if rows else ""


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
    if floor_rows := frontend_floor_rows(results):
        lines += [
            "## The frontend against its floor server",
            "",
            "The floor server has the frontend's gRPC service, server settings and Redis client and does "
            "only each call's Redis command (an HGET for a get, the real update script for an update). "
            f"Medians and ranges over {results['frontend_floor']['rounds']} interleaved rounds; server CPU "
            "is all threads of the serving process per request; no watch stream attached.",
            "",
            markdown_table(FLOOR_HEADERS, floor_rows),
            "",
            *(f"{line}\n" for line in frontend_floor_lines(results["frontend_floor"])),
        ]
    if local_rows := local_first_rows(results):
        lines += _local_first_section(results["local_first"], local_rows)
    if binding_rows := dspy_binding_rows(results):
        lines += [
            "## DSPy bindings",
            "",
            "What a variable-aware module adds to each call: one read of its bound variables at one "
            "revision, and the call's settings built from them (the LM call itself not included).",
            "",
            markdown_table(DSPY_HEADERS, binding_rows),
            "",
        ]
    lines += [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def _local_first_section(section: dict[str, Any], rows: list[list[str]]) -> list[str]:
    calibration = section["calibration"]
    counts = section["counts"]
    per_block = ", ".join(
        f"{n} calls: {ns:.0f} ns" for n, ns in calibration["block_overhead_per_call_ns"].items()
    )
    return [
        "## Local-first sessions",
        "",
        "In process, no network, next to the bridged figures of this run. Targets and the original "
        "design's figures are reference columns, not assertions.",
        "",
        markdown_table(LOCAL_HEADERS, rows),
        "",
        f"- avg: {counts['blocks']} blocks of calls timed as a whole, per call, less the harness's own "
        f"cost per call (a no-op called in the same loop, median block; {per_block}).",
        f"- p50/p99/max: {counts['single_calls']} calls timed one by one, each less the median of single "
        f"timed no-op calls ({calibration['single_call_overhead_ns']:.0f} ns; a pair of clock reads "
        f"alone is {calibration['clock_read_pair_ns']:.0f} ns).",
        "- switch: a fresh LocalFirstContext with N integer variables (constraints and metadata) moved "
        "with `ensure_bridged()` over a connected client; `backend.last_switch_seconds`; avg is the mean.",
        "",
    ]


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"


def versions(redis_url: str) -> dict[str, str]:
    """What the figures depend on: Python, grpcio, redis-py, the Redis server, GRPC_EXPERIMENTS."""
    import grpc
    import redis

    with redis.Redis.from_url(redis_url) as client:
        server = str(client.info("server").get("redis_version", "unknown"))
    return {
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "redis_py": redis.__version__,
        "redis_server": server,
        "GRPC_EXPERIMENTS": os.environ.get("GRPC_EXPERIMENTS", "(unset)"),
    }
