#!/usr/bin/env bash
# AWS provider figures, in one run against one moto server on 127.0.0.1:
# - the component's size, and wasmtime's compile time for it;
# - a RunInstances round trip from inside the component (aws-sdk-ec2 over
#   wasi:http through the host's egress check; the provider logs it at debug)
#   and the whole `aloft provider call aws run-instances` process;
# - the same RunInstances from a native aws-sdk-ec2 client (bench/aws-native,
#   built here the first time: a long build).
# Needs scripts/build-all.sh and scripts/install-moto.sh done.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=${N:-21}
ALOFT="$ROOT/target/release/aloft"
MOTO=$(scripts/install-moto.sh)
WASM=build/plugins/aws/aws.wasm
echo "component: $(stat -c %s "$WASM") bytes ($WASM)"

echo "building bench/aws-native (release; first time is long) ..." >&2
(cd bench/aws-native && CARGO_TARGET_DIR="$ROOT/target/bench-aws-native" cargo build --release -q)
NATIVE="$ROOT/target/bench-aws-native/release/aloft-bench-aws-native"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MOTO" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO_PID=$!
HOME_DIR=$(mktemp -d)
trap 'kill $MOTO_PID 2>/dev/null; rm -rf "$HOME_DIR"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

export ALOFT_HOME="$HOME_DIR/aloft" HOME="$HOME_DIR" AWS_ACCESS_KEY_ID=AKIAALOFTBENCH000001 \
    AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_ENDPOINT_URL_EC2="http://127.0.0.1:$PORT"
t0=$(date +%s%N)
"$ALOFT" provider install build/plugins/aws >/dev/null
echo "install (sha check + wasmtime compile + cache): $(( ($(date +%s%N) - t0) / 1000000 )) ms"

KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bench"
inside=() whole=()
for i in $(seq 0 "$N"); do
    req="{\"cluster\":{\"cluster_name\":\"bench-$i\",\"region\":\"us-east-1\"},\"node_count\":1,\"instance_type\":\"m5.large\",\"image_id\":\"ami-0b43efcb5366f38d0\",\"ssh_public_key\":\"$KEY\"}"
    t0=$(date +%s%N)
    err=$(ALOFT_LOG=debug "$ALOFT" provider call aws run-instances --json "$req" 2>&1 >/dev/null)
    t1=$(date +%s%N)
    [ "$i" -eq 0 ] && continue  # warm-up
    inside+=("$(echo "$err" | sed -n 's/.*RunInstances round trip: \([0-9.]*\) ms.*/\1/p')")
    whole+=("$(( (t1 - t0) / 1000 ))")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "component RunInstances round trip (inside the component)  median $(median "${inside[@]}") ms (n=$N)"
echo "whole 'aloft provider call aws run-instances' (8 EC2 calls: new cluster) median $(median "${whole[@]}" | awk '{printf "%.1f", $1/1000}') ms (n=$N)"
"$NATIVE" "http://127.0.0.1:$PORT" "$N"
