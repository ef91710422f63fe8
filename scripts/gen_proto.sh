#!/usr/bin/env bash
# Regenerates the protobuf and gRPC code (with .pyi stubs) from the committed .proto file.
# Usage: scripts/gen_proto.sh [OUT_DIR]   (OUT_DIR defaults to sdk/, i.e. in place)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-sdk}"
python=${PYTHON:-python}
# protoc finds the mypy plugins on PATH, next to the interpreter.
export PATH="$(dirname "$(command -v "$python")"):$PATH"
mkdir -p "$out/unified_bridge/proto"
"$python" -m grpc_tools.protoc \
  -I sdk \
  --python_out="$out" \
  --grpc_python_out="$out" \
  --mypy_out="$out" \
  --mypy_grpc_out="$out" \
  sdk/unified_bridge/proto/unified_bridge.proto
