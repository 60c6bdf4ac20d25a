#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and runs the main job:
# builds aloft and the provider components, installs the bundled providers
# into $ALOFT_HOME (default ~/.aloft), and runs examples/hello.yaml on this
# machine (the local provider), then tears that cluster down.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/build-all.sh
ALOFT="$ROOT/target/release/aloft"
for dir in build/plugins/*/; do
    name=$(basename "$dir")
    case "$name" in fixture-* | sim) continue ;; esac  # test-only plugins
    "$ALOFT" provider install "$dir"
done
echo "aloft is at $ALOFT" >&2
"$ALOFT" provider list
"$ALOFT" launch -y -c hello --infra local examples/hello.yaml
"$ALOFT" down -y hello
