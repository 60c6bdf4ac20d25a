#!/usr/bin/env bash
# SSH round trips on an UP ssh-pool cluster (real sshd on loopback), in one
# run: russh exec over a reused session, OpenSSH's `ssh host true`, and a
# whole `aloft exec`. Needs root (it creates test users) and the release
# build (scripts/build-all.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ALOFT_BIN="$ROOT/target/release/aloft" ALOFT_PLUGINS="$ROOT/build/plugins" \
    cargo test --release -q -p aloft-tests --test all bench_exec_roundtrip -- --ignored --nocapture 2>&1 \
    | grep -E '^(russh|OpenSSH|aloft exec)'
