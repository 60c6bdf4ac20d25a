#!/usr/bin/env bash
# Warm `aloft launch --dryrun` wall time (whole process), median of N runs,
# and how it scales with catalog size (1, 2, then all 5 shipped catalogs).
# Needs scripts/build-all.sh first. Usage: bench/dryrun.sh [RUNS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ALOFT="$ROOT/target/release/aloft"
RUNS=${1:-31}
export ALOFT_HOME=$(mktemp -d)
trap 'rm -rf "$ALOFT_HOME"' EXIT

median_ms() {
    local times=()
    for _ in $(seq "$RUNS"); do
        local s=$(date +%s%N)
        "$ALOFT" launch --dryrun --gpus A100:8 >/dev/null 2>&1 || true
        times+=($(( $(date +%s%N) - s )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1e6}'
}

printf '%-28s %10s %14s\n' "providers installed" "rows" "median wall"
for set in "lambda" "lambda azure" "lambda azure gcp runpod aws"; do
    for p in $set; do "$ALOFT" provider install "$ROOT/build/plugins/$p" >/dev/null; done
    "$ALOFT" launch --dryrun --gpus A100:8 >/dev/null 2>&1 || true   # fills the catalog cache
    rows=$(ALOFT_TIMING=1 "$ALOFT" launch --dryrun --gpus A100:8 2>&1 >/dev/null | sed -n 's/.*catalogs (\([0-9]*\) rows).*/\1/p')
    printf '%-28s %10s %11s ms\n' "$set" "$rows" "$(median_ms)"
done
echo "phases (last run):"
ALOFT_TIMING=1 "$ALOFT" launch --dryrun --gpus A100:8 2>&1 >/dev/null | grep timing
