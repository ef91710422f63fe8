"""gRPC's event-engine experiments on and off, for the frontend, its floor and the client.

    python -m benchmarks.grpc_experiments [--alternations 3] [--quick]

gRPC reads GRPC_EXPERIMENTS when its core starts, so each setting runs in a process of its own:
a private Redis, a frontend, the echo and floor servers and the client, all under that setting,
running the `frontend_floor` workload (`python -m benchmarks.workloads.frontend_floor --json`).
The settings alternate; each run prints its table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence

from bridge_server.grpc_experiments import EVENT_ENGINE_OFF

__all__ = ["SETTINGS", "main"]

# "" is gRPC's own defaults (an empty GRPC_EXPERIMENTS is still "set": nothing overrides it).
SETTINGS = {"gRPC defaults": "", "event engine off": EVENT_ENGINE_OFF}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grpc_experiments", description=__doc__)
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    for _ in range(args.alternations):
        for label, value in SETTINGS.items():
            command = [sys.executable, "-m", "benchmarks.workloads.frontend_floor", "--json"]
            command += ["--quick"] if args.quick else []
            env = {**os.environ, "GRPC_EXPERIMENTS": value}
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            run = json.loads(output)
            clients = ", ".join(
                f"{op} {figures['client_cpu_us']['median']:.0f} us"
                for op, figures in run["results"]["operations"].items()
            )
            print(f"== GRPC_EXPERIMENTS: {label} ({value or 'unset'})\n{run['table']}")
            print(f"client CPU per call (raw stub, median): {clients}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
