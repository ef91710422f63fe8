"""The Prometheus endpoint counts calls by method and status, and follows open watch streams."""

from __future__ import annotations

import grpc

from bridge_server.config import Settings
from bridge_server.testing import free_port, wait_until
from tests.integration.helpers import EventReader, create_session, metric_sample, rpc_error, scrape_metrics
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc


def test_metrics_count_calls_streams_and_redis(frontend_factory, session_id):
    frontend = frontend_factory(metrics_port=free_port())
    port = frontend.server.metrics_port
    with grpc.insecure_channel(frontend.target) as channel:
        stub = pb_grpc.UnifiedBridgeStub(channel)
        create_session(stub, session_id)
        rpc_error(stub.GetVariable, pb.GetVariableRequest(session_id=session_id, name_or_id="missing"))
        reader = EventReader(stub, session_id)
        try:
            reader.until_caught_up()
            text = scrape_metrics(port)
            assert metric_sample(text, "bridge_watch_streams ") == 1
        finally:
            reader.close()
        wait_until(
            lambda: metric_sample(scrape_metrics(port), "bridge_watch_streams ") == 0,
            "the stream gauge to drop",
        )
    text = scrape_metrics(port)
    assert metric_sample(text, 'bridge_rpc_calls_total{code="OK",method="CreateSession"}') == 1
    assert metric_sample(text, 'bridge_rpc_calls_total{code="NOT_FOUND",method="GetVariable"}') == 1
    assert metric_sample(text, 'bridge_rpc_duration_seconds_count{method="CreateSession"}') == 1
    # The stream the reader cancelled is not an OK one.
    assert metric_sample(text, 'bridge_rpc_calls_total{code="CANCELLED",method="WatchSession"}') == 1
    assert 'bridge_rpc_calls_total{code="OK",method="WatchSession"}' not in text
    assert metric_sample(text, "bridge_redis_up ") == 1


def test_metrics_are_off_unless_asked_for(frontend):
    assert Settings().metrics_port == 0
    assert frontend.server.metrics_port == 0  # nothing was started
