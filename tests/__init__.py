"""The test suite runs its clients and in-process frontends with the frontend's gRPC experiments."""

from bridge_server.grpc_experiments import prefer_measured_experiments

prefer_measured_experiments()
