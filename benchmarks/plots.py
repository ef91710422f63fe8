"""PNG figures (matplotlib, Agg backend): the reference's 2x2, batch-size scaling, latency CDF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks._table import format_us

__all__ = ["write_plots"]


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _ms(samples_ns: list[int]) -> Any:
    return np.asarray(samples_ns, dtype=np.float64) / 1e6


def _overview(results: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    fig.suptitle("Unified Bridge: performance overview")

    ax = axes[0, 0]
    latency = results.get("single_ops", {}).get("latency", {})
    ops = [
        op
        for op in ("register", "get_uncached_sdk", "get_cached_sdk", "update_sdk", "cas_update_raw", "delete")
        if op in latency
    ]
    bars = ax.bar(ops, [latency[op]["p50_us"] / 1000 for op in ops], color="tab:blue")
    # A cached read is ~1000x faster than a remote call: only a log axis shows both.
    ax.set_yscale("log")
    ax.bar_label(bars, labels=[format_us(latency[op]["p50_us"]) for op in ops], fontsize=8)
    ax.set_ylabel("p50 latency (ms, log scale)")
    ax.set_title("Single operations")
    ax.tick_params(axis="x", labelrotation=30)

    ax = axes[0, 1]
    samples = results.get("cache", {}).get("samples_ns", {})
    for name in ("uncached", "cached", "cached_with_writer"):
        if name in samples:
            ax.hist(_ms(samples[name]), bins=np.logspace(-4, 1.5, 60), alpha=0.6, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("access time (ms, log scale)")
    ax.set_ylabel("reads")
    ax.set_title("Access time, 80/20 pattern over 20 variables")
    _legend(ax)

    ax = axes[1, 0]
    rows = results.get("batch", {}).get("sizes", [])
    if rows:
        labels = [str(int(row["size"])) for row in rows]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [row["individual_update_ms"] for row in rows], 0.4, label="one call each")
        ax.bar(x + 0.2, [row["batch_update_atomic_ms"] for row in rows], 0.4, label="one atomic batch")
        ax.set_xticks(x, labels)
        ax.set_yscale("log")
        _legend(ax)
    ax.set_xlabel("variables updated")
    ax.set_ylabel("total time (ms, log scale)")
    ax.set_title("Batch vs individual updates")

    ax = axes[1, 1]
    for mode in ("threads", "asyncio"):
        rows = results.get("concurrency", {}).get(mode, [])
        if rows:
            ax.plot(
                [r["workers"] for r in rows], [r["throughput_per_s"] for r in rows], marker="o", label=mode
            )
    ax.set_xlabel("workers")
    ax.set_ylabel("read-modify-writes per second")
    ax.set_title("Concurrency: update(name, fn)")
    _legend(ax)

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _batch_scaling(results: dict[str, Any], path: Path) -> None:
    rows = results.get("batch", {}).get("sizes", [])
    fig, ax = plt.subplots(figsize=(7, 5))
    sizes = [row["size"] for row in rows]
    for key, label in [
        ("individual_update_ms", "individual updates"),
        ("batch_update_atomic_ms", "batch update, atomic"),
        ("batch_update_nonatomic_ms", "batch update, non-atomic"),
        ("individual_get_ms", "individual gets"),
        ("batch_get_ms", "batch get"),
    ]:
        ax.plot(sizes, [row[key] for row in rows], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("variables per operation")
    ax.set_ylabel("total time (ms)")
    ax.set_title("Batch-size scaling (log-log: slope 1 is linear)")
    _legend(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cdf(results: dict[str, Any], path: Path) -> None:
    series = {
        "get uncached (SDK)": results.get("single_ops", {}).get("samples_ns", {}).get("get_uncached_sdk"),
        "get cached (SDK)": results.get("single_ops", {}).get("samples_ns", {}).get("get_cached_sdk"),
        "etcd get": results.get("floors", {}).get("samples_ns", {}).get("etcd_get"),
        "redis-py HGET": results.get("floors", {}).get("samples_ns", {}).get("redis_hget"),
    }
    fig, ax = plt.subplots(figsize=(7, 5))
    for label, samples in series.items():
        if samples:
            values = np.sort(_ms(samples))
            ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of calls")
    ax.set_title("Latency CDF of a read")
    _legend(ax)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(results: dict[str, Any], out: Path) -> list[str]:
    """Write the figures into `out`; returns their file names."""
    figures = {"overview.png": _overview, "batch_scaling.png": _batch_scaling, "latency_cdf.png": _cdf}
    for name, draw in figures.items():
        draw(results, out / name)
    return list(figures)
