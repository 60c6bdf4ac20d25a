#!/usr/bin/env bash
# Installs moto's server (an EC2/S3 API emulator, used by the AWS provider's
# tests) into a Python venv, idempotently, and prints the path of its
# moto_server. Where: $ALOFT_TOOLS (default ~/.cache/aloft-tools)/moto-<ver>.
set -euo pipefail
VERSION=5.2.5
DIR="${ALOFT_TOOLS:-$HOME/.cache/aloft-tools}/moto-$VERSION"
if [ ! -x "$DIR/bin/moto_server" ] || ! "$DIR/bin/python" -c "import moto, boto3" 2>/dev/null; then
    echo "install-moto: installing moto[server]==$VERSION into $DIR (a few minutes, once)" >&2
    rm -rf "$DIR"
    mkdir -p "$(dirname "$DIR")"
    if ! python3 -m venv "$DIR" >/dev/null 2>&1; then
        # Debian's python3 needs python3-venv for ensurepip.
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$DIR"
        python3 -m venv "$DIR"
    fi
    "$DIR/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$VERSION" >&2
fi
echo "$DIR/bin/moto_server"
