#!/usr/bin/env bash
# Builds every crate of the guest workspace (providers/, tests/fixtures/) into
# a WebAssembly component: target/wasm/wasm32-wasip2/release/<crate>.wasm.
#
# Route 1 (ordinary): a toolchain with the wasm32-wasip2 target installed
#   (`rustup target add wasm32-wasip2`): plain cargo.
# Route 2 (machines whose rustup cannot download targets): Debian's rustc-web
#   with its library sources and wasi-libc, `-Zbuild-std`, linked by the
#   wasm-component-ld that rustup ships. See docs/wasm-toolchain.md.
#
# Idempotent: cargo rebuilds only what changed. Packing (plugin.toml with the
# component's sha256) is `aloft provider pack`, run by scripts/setup.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="$ROOT/target/wasm"
cd "$ROOT/providers"

if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "build-providers: using the installed wasm32-wasip2 target" >&2
    exec cargo build --release --target wasm32-wasip2 --workspace "$@"
fi

for need in /usr/bin/rustc /usr/bin/cargo /usr/lib/wasm32-wasi; do
    if [ ! -e "$need" ]; then
        echo "build-providers: $need is missing; run scripts/install-deps.sh (apt: rustc-web cargo-web rust-web-src wasi-libc)" >&2
        exit 1
    fi
done
SYS=$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin
if [ ! -x "$SYS/wasm-component-ld" ]; then
    echo "build-providers: $SYS/wasm-component-ld not found (it ships with rustup's toolchain)" >&2
    exit 1
fi
echo "build-providers: using Debian's rustc with -Zbuild-std (no wasm32-wasip2 target in rustup)" >&2
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_WASIP2_LINKER="$SYS/wasm-component-ld"
export RUSTFLAGS="-Clink-self-contained=no -L/usr/lib/wasm32-wasi -Clink-arg=--wasm-ld-path=$SYS/gcc-ld/wasm-ld"
exec /usr/bin/cargo build --release -Zbuild-std=std,panic_abort --target wasm32-wasip2 --workspace "$@"
