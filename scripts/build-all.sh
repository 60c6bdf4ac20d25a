#!/usr/bin/env bash
# Builds the host (release) and every provider component, and packs the
# components with their manifests into build/plugins/. Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/install-deps.sh
cargo build --release --locked -p aloft
scripts/build-providers.sh --locked
scripts/pack-all.sh "$ROOT/target/release/aloft"
