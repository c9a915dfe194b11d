#!/usr/bin/env bash
# Regenerate the protobuf/gRPC modules: starforge_dag/buildkit/pb/ from starforge_dag/buildkit/protos/
# (BuildKit's API) and starforge_dag/depot/pb/ from starforge_dag/depot/protos/ (Depot's API).
# Protos import each other by bare file name ("ops.proto"); the generated modules import
# each other package-relatively ("from . import ops_pb2"), so each pb/ is an ordinary package.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}

# generate SRC OUT DESCRIPTION
generate() {
  local src=$1 out=$2 what=$3
  shopt -s nullglob
  local protos=("$src"/*.proto)
  ((${#protos[@]})) || { echo "gen_protos: no .proto files in $src" >&2; exit 1; }

  rm -rf "$out"
  mkdir -p "$out"
  "$PYTHON" -m grpc_tools.protoc -I "$src" \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    "${protos[@]##*/}"

  # Rewrite `import foo_pb2 as ...` to `from . import foo_pb2 as ...` for our own protos only.
  local modules=() proto name pattern
  for proto in "${protos[@]}"; do
    name=${proto##*/}
    modules+=("${name%.proto}_pb2")
  done
  pattern=$(IFS='|'; echo "${modules[*]}")
  sed -i -E "s/^import (${pattern}) as /from . import \\1 as /" "$out"/*.py "$out"/*.pyi

  cat >"$out/__init__.py" <<PY
"""Generated protobuf/gRPC modules for ${what}; regenerate with scripts/gen_protos.sh."""
PY
  echo "gen_protos: ${#protos[@]} protos -> ${out#"$ROOT"/}" >&2
}

generate "$ROOT/starforge_dag/buildkit/protos" "$ROOT/starforge_dag/buildkit/pb" "BuildKit's API"
generate "$ROOT/starforge_dag/depot/protos" "$ROOT/starforge_dag/depot/pb" "Depot's API"
