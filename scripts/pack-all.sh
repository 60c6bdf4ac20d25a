#!/usr/bin/env bash
# Packs every built component of the guest workspace into build/plugins/<name>/
# (<name>.wasm + plugin.toml with its sha256). Usage: pack-all.sh ALOFT_BIN
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ALOFT=${1:?usage: pack-all.sh ALOFT_BIN}
OUT="$ROOT/build/plugins"
WASM_DIR="$ROOT/target/wasm/wasm32-wasip2/release"
mkdir -p "$OUT"
for toml in "$ROOT"/providers/*/Cargo.toml "$ROOT"/tests/fixtures/*/Cargo.toml; do
    crate=$(sed -n 's/^name = "\(.*\)"/\1/p' "$toml" | head -1)
    name=$(awk '/^\[package.metadata.aloft\]/{m=1;next} /^\[/{m=0} m && /^name/{gsub(/.*= *"|"/,""); print}' "$toml")
    wasm="$WASM_DIR/${crate//-/_}.wasm"
    [ -f "$wasm" ] || { echo "pack-all: $wasm not built" >&2; exit 1; }
    rm -rf "${OUT:?}/$name"
    "$ALOFT" provider pack --crate "$toml" --wasm "$wasm" --out "$OUT/$name" >/dev/null
done
echo "pack-all: packed $(ls "$OUT" | wc -l) plugins into $OUT" >&2
