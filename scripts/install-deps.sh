#!/usr/bin/env bash
# Installs what building and testing Aloft needs on Debian 12, idempotently:
# Debian's rustc-web/cargo-web/rust-web-src/wasi-libc (the wasm guest
# toolchain where rustup has no wasm32-wasip2 target) and OpenSSH's server.
set -euo pipefail
PKGS=(rustc-web cargo-web rust-web-src wasi-libc openssh-server)
if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    PKGS=(openssh-server)
fi
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "install-deps: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
