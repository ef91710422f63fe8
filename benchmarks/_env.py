"""What every workload is given: where things run and how long to spend."""

from __future__ import annotations

import dataclasses

__all__ = ["Env"]


@dataclasses.dataclass(frozen=True, slots=True)
class Env:
    redis_url: str
    frontends: tuple[str, ...]  # gRPC targets, at least one
    frontend_pids: tuple[int, ...]  # empty when the frontends were given with --target
    echo_target: str
    etcd_target: str | None
    quick: bool

    def scale(self, quick: int, full: int) -> int:
        """A count for this run's budget."""
        return quick if self.quick else full
