"""The standard gRPC health service: liveness and readiness, told apart by service name.

* Liveness, service ``""`` (what a probe asks by default) or ``"liveness"``: SERVING while the process
  runs and answers; NOT_SERVING only once it shuts down. A Redis outage does not touch it, so an
  orchestrator does not restart every frontend because Redis is away (restarting cannot fix that).
* Readiness, service ``"unified_bridge.v1.UnifiedBridge"`` or ``"readiness"``: SERVING while Redis
  answers; NOT_SERVING while it does not, so traffic goes to frontends that can serve it. SERVING
  again as soon as Redis answers: no restart needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from bridge_server.eviction import eviction_risk
from bridge_server.metrics import Metrics

__all__ = ["LIVENESS_SERVICES", "READINESS_SERVICES", "SERVICE_NAME", "HealthMonitor"]

log = logging.getLogger(__name__)

SERVICE_NAME = "unified_bridge.v1.UnifiedBridge"
# Health checks between two looks at Redis's eviction policy.
_POLICY_EVERY = 30
LIVENESS_SERVICES = ("", "liveness")
READINESS_SERVICES = (SERVICE_NAME, "readiness")


class HealthMonitor:
    def __init__(self, redis: Any, interval_seconds: float, timeout_seconds: float, metrics: Metrics) -> None:
        self.servicer = HealthServicer()
        self._metrics = metrics
        self._redis = redis
        self._interval = interval_seconds
        self._timeout = timeout_seconds
        self._task: asyncio.Task[None] | None = None
        self._serving: bool | None = None
        #: Why the frontend refuses every call (Redis may evict keys), or None.
        self.refusal: str | None = None
        self._checks = 0

    async def start(self) -> None:
        for service in LIVENESS_SERVICES:
            await self.servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        await self._check_once()
        self._task = asyncio.create_task(self._run(), name="bridge-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.servicer.enter_graceful_shutdown()

    async def _check_policy(self) -> None:
        refusal = await asyncio.wait_for(eviction_risk(self._redis), timeout=self._timeout)
        if refusal != self.refusal:
            if refusal is None:
                log.info("Redis no longer evicts keys: serving again")
            else:
                log.error("%s", refusal)
            self.refusal = refusal

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._check_once()

    async def _check_once(self) -> None:
        try:
            await asyncio.wait_for(self._redis.ping(), timeout=self._timeout)
            serving = True
            if self._checks % _POLICY_EVERY == 0:  # the policy rarely changes: look now and then
                await self._check_policy()
            self._checks += 1
            serving = self.refusal is None
        except Exception as exc:
            serving = False
            if self._serving is not False:
                log.warning("Redis does not answer (%s): health is NOT_SERVING", exc)
        if serving and self._serving is False:
            log.info("Redis answers again: health is SERVING")
        self._metrics.redis_up.set(1 if serving else 0)
        if serving != self._serving:
            self._serving = serving
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if serving
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for service in READINESS_SERVICES:
                await self.servicer.set(service, status)
