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


ROOT = MANIFEST.parents[2]


def test_the_redis_manifest_keeps_every_write_and_never_evicts() -> None:
    import yaml

    documents = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "redis.yaml").read_text()))
    kinds = {document["kind"] for document in documents}
    assert kinds == {"ConfigMap", "StatefulSet", "Service"}
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]["redis.conf"]
    assert "appendfsync always" in config
    assert "maxmemory-policy noeviction" in config
    # The same settings as deploy/redis.conf, line for line.
    settings = [
        line for line in (ROOT / "deploy" / "redis.conf").read_text().splitlines() if line[:1] not in "#"
    ]
    assert [line for line in config.splitlines() if line] == [line for line in settings if line]
    service = next(d for d in documents if d["kind"] == "Service")
    assert service["metadata"]["name"] == "redis"  # the name frontend.yaml's BRIDGE_REDIS_URL uses
    assert "redis://redis:6379" in MANIFEST.read_text()


def test_compose_waits_for_a_healthy_redis() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert "healthcheck" in compose["services"]["redis"]
    for name in ("frontend-1", "frontend-2"):
        assert compose["services"][name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_image_build_leaves_local_clutter_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)
