"""Generated protobuf and gRPC code for the UnifiedBridge service (do not edit: run `make proto`)."""
