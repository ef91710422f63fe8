"""Prometheus metrics of one frontend, served over HTTP when `--metrics-port` is set.

Each frontend has its own registry, so several in one process (as in tests) never mix counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics"]

# From a cached-path call on loopback (~1 ms) to a slow batch of thousands of items.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "bridge_rpc_calls",
            "Finished calls by method and gRPC status.",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bridge_rpc_duration_seconds",
            "Time to answer a unary call.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.watch_streams = Gauge("bridge_watch_streams", "Open watch streams.", registry=self.registry)
        self.redis_up = Gauge(
            "bridge_redis_up", "1 while Redis answers pings, else 0.", registry=self.registry
        )
        self.watch_queued_bytes = Gauge(
            "bridge_watch_queued_bytes",
            "Event bytes queued for watchers, all together.",
            registry=self.registry,
        )
        self.watch_overflows = Gauge(
            "bridge_watch_overflows",
            "Times a watcher fell behind its queue's bounds and went on from the change log.",
            registry=self.registry,
        )
        self._http: tuple[WSGIServer, threading.Thread] | None = None
        self._unary: dict[str, tuple[Any, Any]] = {}

    def unary_children(self, method: str) -> tuple[Any, Any]:
        """(the OK calls counter, the latency histogram) of ``method``, resolved once: looking a
        labelled child up costs more than using it, on every call."""
        children = self._unary.get(method)
        if children is None:
            children = self._unary[method] = (
                self.calls.labels(method, "OK"),
                self.latency.labels(method),
            )
        return children

    def follow_watch_queues(self, read: Callable[[], tuple[int, int]]) -> None:
        """Report (queued bytes, overflows) as ``read()`` tells them, at each scrape."""
        self.watch_queued_bytes.set_function(lambda: read()[0])
        self.watch_overflows.set_function(lambda: read()[1])

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics endpoint; returns the bound port."""
        self._http = start_http_server(port, addr=host, registry=self.registry)
        return int(self._http[0].server_port)

    def stop(self) -> None:
        if self._http is not None:
            server, thread = self._http
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._http = None
