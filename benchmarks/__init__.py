"""The Unified Bridge benchmark suite: `python -m benchmarks` (see docs/benchmarks.md).

Every figure is measured in the same run as the baselines it is compared with (raw Redis, bare
gRPC, etcd when present), so ratios stay meaningful on a noisy machine.
"""

from bridge_server.grpc_experiments import prefer_measured_experiments

prefer_measured_experiments()  # clients measured with the gRPC settings the frontend runs with
