#!/usr/bin/env bash
# Regenerate starforge_dag/buildkit/pb/ from every .proto in starforge_dag/buildkit/protos/.
# Protos import each other by bare file name ("ops.proto"); the generated modules import
# each other package-relatively ("from . import ops_pb2"), so pb/ is an ordinary package.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC="$ROOT/starforge_dag/buildkit/protos"
OUT="$ROOT/starforge_dag/buildkit/pb"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}

shopt -s nullglob
protos=("$SRC"/*.proto)
((${#protos[@]})) || { echo "gen_protos: no .proto files in $SRC" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
"$PYTHON" -m grpc_tools.protoc -I "$SRC" \
  --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  "${protos[@]##*/}"

# Rewrite `import foo_pb2 as ...` to `from . import foo_pb2 as ...` for our own protos only.
modules=()
for proto in "${protos[@]}"; do
  name=${proto##*/}
  modules+=("${name%.proto}_pb2")
done
pattern=$(IFS='|'; echo "${modules[*]}")
sed -i -E "s/^import (${pattern}) as /from . import \\1 as /" "$OUT"/*.py "$OUT"/*.pyi

cat >"$OUT/__init__.py" <<'PY'
"""Generated protobuf/gRPC modules for BuildKit's API; regenerate with scripts/gen_protos.sh."""
PY
echo "gen_protos: ${#protos[@]} protos -> ${OUT#"$ROOT"/}" >&2
