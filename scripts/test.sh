#!/usr/bin/env bash
# Runs the whole test suite: builds everything (as setup does, without
# touching ~/.aloft), then the unit and integration tests of every crate,
# including the SSH tests against real sshd processes on loopback and the
# provider components' sandbox tests, and the AWS provider against moto
# (installed into a venv by scripts/install-moto.sh). Each test uses its own ALOFT_HOME.
# Ends with one summary line: "tests: N passed, M failed".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/build-all.sh
ALOFT_MOTO_SERVER=$(scripts/install-moto.sh)
export ALOFT_MOTO_SERVER
export ALOFT_BIN="$ROOT/target/release/aloft" ALOFT_PLUGINS="$ROOT/build/plugins"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --locked --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
