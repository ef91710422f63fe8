"""``bridge health``: the standard gRPC health check of every frontend of ``--target``.

The frontend answers two services: readiness (``unified_bridge.v1.UnifiedBridge``, the default here:
SERVING only while it reaches Redis) and liveness (``--service ''``: SERVING while the process runs).

The SDK does not depend on ``grpcio-health-checking`` (a frontend dependency), and needs no generated
code for this: ``grpc.health.v1.HealthCheckRequest`` is ``{string service = 1}`` and
``HealthCheckResponse`` is ``{ServingStatus status = 1}`` (an enum, a varint), the same bytes on the
wire as protobuf's own ``StringValue`` and ``Int32Value``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import click
import grpc
from google.protobuf.wrappers_pb2 import Int32Value, StringValue

from unified_bridge._transport import parse_targets
from unified_bridge.cli._errors import ExitCode
from unified_bridge.cli._options import ConnectOptions, pass_options
from unified_bridge.cli._output import echo_json, json_option, table

__all__ = ["READINESS_SERVICE", "check_health", "health"]

READINESS_SERVICE: Final = "unified_bridge.v1.UnifiedBridge"
_METHOD: Final = "/grpc.health.v1.Health/Check"
_STATUS_NAMES: Final = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, credentials)


def check_health(
    target: str, service: str, timeout: float, credentials: grpc.ChannelCredentials | None
) -> tuple[str, str]:
    """(status, detail) of one frontend: SERVING, NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN or
    UNREACHABLE (with the reason in ``detail``)."""
    with _channel(target, credentials) as channel:
        check: Callable[..., Any] = channel.unary_unary(
            _METHOD,
            request_serializer=StringValue.SerializeToString,
            response_deserializer=Int32Value.FromString,
        )
        try:
            response: Int32Value = check(StringValue(value=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code is grpc.StatusCode.NOT_FOUND:  # the server's answer for a service it does not know
                return "SERVICE_UNKNOWN", f"no health status for service {service!r}"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            return "UNREACHABLE", f"{getattr(code, 'name', 'UNKNOWN')}: {details}"
    return _STATUS_NAMES.get(response.value, f"UNKNOWN({response.value})"), ""


@click.command()
@click.option(
    "--service",
    default=READINESS_SERVICE,
    show_default=True,
    help="Health service to ask: readiness (default) or '' for liveness.",
)
@json_option
@pass_options
def health(options: ConnectOptions, service: str, as_json: bool) -> None:
    """Ask every frontend of --target whether it is SERVING; exit 0 only if all are (else 4)."""
    credentials = options.credentials()
    results = [
        (target, *check_health(target, service, options.timeout, credentials))
        for target in parse_targets(options.target)
    ]
    if as_json:
        echo_json([{"target": t, "status": s, "detail": d} for t, s, d in results])
    else:
        table(["TARGET", "STATUS", "DETAIL"], [list(row) for row in results])
    if any(status != "SERVING" for _, status, _ in results):
        raise click.exceptions.Exit(ExitCode.UNAVAILABLE)
