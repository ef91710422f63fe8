"""Finished calls and their latency as a scrape shows them (the numbers behind them are plain, added
to on the event loop's thread: bridge_server/metrics.py)."""

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bridge_server.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_latencies_fall_in_the_buckets_whose_bound_they_do_not_pass():
    metrics = Metrics()
    for seconds in (0.0003, 0.0005, 0.0007, 0.003, 20.0):
        metrics.unary("GetVariable").succeeded(seconds)
    samples = _samples(metrics)

    def bucket(bound: str) -> float:
        return samples[("bridge_rpc_duration_seconds_bucket", (("le", bound), ("method", "GetVariable")))]

    assert [bucket(b) for b in ("0.0005", "0.001", "0.002", "0.005", "10.0", "+Inf")] == [2, 3, 3, 4, 4, 5]
    assert samples[("bridge_rpc_duration_seconds_count", (("method", "GetVariable"),))] == 5
    assert samples[("bridge_rpc_duration_seconds_sum", (("method", "GetVariable"),))] == 20.0045


def test_calls_are_counted_by_method_and_code():
    metrics = Metrics()
    metrics.unary("GetVariable").succeeded(0.001)
    metrics.finished("GetVariable", "NOT_FOUND")
    metrics.finished("GetVariable", "NOT_FOUND")
    metrics.finished("WatchSession", "OK")
    samples = _samples(metrics)
    calls = {labels: value for (name, labels), value in samples.items() if name == "bridge_rpc_calls_total"}
    assert calls == {
        (("code", "OK"), ("method", "GetVariable")): 1,
        (("code", "NOT_FOUND"), ("method", "GetVariable")): 2,
        (("code", "OK"), ("method", "WatchSession")): 1,
    }
    # Failed unary calls and streams have no latency; each registry keeps its own counts.
    assert ("bridge_rpc_duration_seconds_count", (("method", "WatchSession"),)) not in samples
    assert (
        _samples(Metrics()).get(("bridge_rpc_calls_total", (("code", "OK"), ("method", "GetVariable"))))
        is None
    )


def test_each_series_tells_when_it_was_created_as_prometheus_client_children_do():
    metrics = Metrics()
    metrics.unary("GetVariable").succeeded(0.001)
    metrics.finished("GetVariable", "NOT_FOUND")
    text = generate_latest(metrics.registry).decode()
    for series in (
        'bridge_rpc_calls_created{code="OK",method="GetVariable"}',
        'bridge_rpc_calls_created{code="NOT_FOUND",method="GetVariable"}',
        'bridge_rpc_duration_seconds_created{method="GetVariable"}',
    ):
        assert series in text
