#!/usr/bin/env bash
# Lifecycle figures on the local provider (printed, not asserted):
#  - `aloft status` wall time with 0 and with 100 clusters in the state DB;
#  - `aloft exec` on an UP local cluster: time from invocation until the
#    job's first line of output reaches the terminal.
# Needs target/release/aloft (scripts/build-all.sh). Usage: bench/lifecycle.sh [RUNS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ALOFT="$ROOT/target/release/aloft"
RUNS=${1:-21}
export ALOFT_HOME=$(mktemp -d)
cleanup() { "$ALOFT" down -a -y >/dev/null 2>&1 || true; rm -rf "$ALOFT_HOME"; }
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1e6}'; }

time_status() {
    for _ in $(seq "$RUNS"); do
        s=$(date +%s%N); "$ALOFT" status >/dev/null 2>&1; echo $(( $(date +%s%N) - s ))
    done | median
}

echo "aloft status, 0 clusters:    $(time_status) ms (median of $RUNS)"
python3 - "$ALOFT_HOME" <<'PY'
import sqlite3, sys, json, time
db = sqlite3.connect(sys.argv[1] + "/state.db")
handle = json.dumps({"nodes": [{"rank": 0, "ip": "127.0.0.1", "home": "/nonexistent", "cpus": 2.0, "gpus": [], "gpu_name": None}], "agent_dir": "/nonexistent"})
for i in range(100):
    db.execute("INSERT INTO clusters (name, provider, num_nodes, resources, status, launched_at, handle) VALUES (?, 'local', 1, '1x local(cpus=2, mem=8)', 'STOPPED', ?, ?)",
               (f"bench-{i:03}", int(time.time()) - i * 60, handle))
db.commit()
PY
echo "aloft status, 100 clusters:  $(time_status) ms (median of $RUNS)"
"$ALOFT" down -a -y >/dev/null 2>&1 || python3 -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]+'/state.db'); d.execute('DELETE FROM clusters'); d.commit()" "$ALOFT_HOME"

"$ALOFT" launch -y -c bench "echo up" >/dev/null 2>&1
for _ in $(seq "$RUNS"); do
    s=$(date +%s%N)
    "$ALOFT" exec bench "echo first-line; sleep 0.2" 2>/dev/null | { read -r _; echo $(( $(date +%s%N) - s )); cat >/dev/null; }
done | median | xargs -I{} echo "aloft exec, invocation to first output line: {} ms (median of $RUNS)"
