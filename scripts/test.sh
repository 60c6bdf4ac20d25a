#!/usr/bin/env bash
# Runs the whole test suite: builds everything (as setup does, without
# touching ~/.aloft), then the unit and integration tests. Each test uses its
# own temporary ALOFT_HOME.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/build-all.sh
export ALOFT_BIN="$ROOT/target/release/aloft" ALOFT_PLUGINS="$ROOT/build/plugins"
cargo test --release --locked --workspace
