#!/usr/bin/env bash
# Failover figures on the cloud simulator (printed, not asserted): the two
# cheapest zones have no capacity, so the launch fails over twice and runs
# on the third place. Prints aloft's own report (time from the first
# capacity error until the cluster is up, provider calls), the wall time
# until the job's output, and the simulator's count of API calls.
# Needs root (instances are sshd users) and scripts/build-all.sh + a release
# build of the simulator (cargo build --release -p aloft-sim).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ALOFT="$ROOT/target/release/aloft"
export ALOFT_HOME=$(mktemp -d)
out=$(mktemp)
"$ROOT/target/release/aloft-sim" --listen 127.0.0.1:0 > "$out" &
sim=$!
cleanup() { "$ALOFT" down -a -y >/dev/null 2>&1 || true; kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; rm -rf "$ALOFT_HOME" "$out"; }
trap cleanup EXIT
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
export ALOFT_SIM_URL=$(head -1 "$out")
"$ALOFT" provider install "$ROOT/build/plugins/sim" >/dev/null
"$ALOFT" check >/dev/null
post() { python3 -c "import json,sys,urllib.request as u; u.urlopen(u.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST')).read()" "$ALOFT_SIM_URL$1" "$2"; }
post /v1/control/capacity '{"zone":"sim-east-a","capacity":0}'
post /v1/control/capacity '{"zone":"sim-east-b","capacity":0}'
post /v1/control/reset_calls '{}' 2>/dev/null || true
start=$(date +%s%N)
"$ALOFT" launch -y -c fo --cpus 2 "echo job-running" > "$ALOFT_HOME/launch.out" 2> "$ALOFT_HOME/launch.err"
end=$(date +%s%N)
grep -E '✗|up on' "$ALOFT_HOME/launch.err"
grep -q job-running "$ALOFT_HOME/launch.out"
echo "wall time, invocation to job finished: $(( (end - start) / 1000000 )) ms"
python3 -c "import json,urllib.request as u,sys; print('simulator API calls:', json.load(u.urlopen(sys.argv[1]+'/v1/control/calls')))" "$ALOFT_SIM_URL"
