"""The deploy files probe what they mean to: liveness the process, readiness its Redis."""

from __future__ import annotations

import re
from pathlib import Path

from bridge_server.health import LIVENESS_SERVICES, READINESS_SERVICES

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "frontend.yaml"


def _probe_service(kind: str) -> str:
    match = re.search(rf"{kind}Probe:.*?service: ([\w.]+)", MANIFEST.read_text())
    assert match is not None, f"{kind}Probe names no gRPC health service"
    return match.group(1)


def test_liveness_probes_the_process_not_redis() -> None:
    assert _probe_service("liveness") in LIVENESS_SERVICES


def test_readiness_probes_redis() -> None:
    assert _probe_service("readiness") in READINESS_SERVICES
