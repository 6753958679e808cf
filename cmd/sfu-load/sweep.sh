#!/usr/bin/env bash
# sweep.sh: the measurements of docs/performance.md. Builds the server and
# the load tool, runs 1 publisher (2 Mbit/s of 1200-byte packets, ~208
# packets/s) against each number of subscribers three times, each run with
# a fresh server, and plots the medians.
#
#   cmd/sfu-load/sweep.sh [subscriber counts...]     (default: 10 50 100 200 400)
#
# Writes docs/performance.jsonl (one --json summary per run) and
# docs/performance.svg. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -gt 0 ]; then counts=("$@"); else counts=(10 50 100 200 400); fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/sfu" ./cmd/sfu
go build -o "$bin/sfu-load" ./cmd/sfu-load
out=docs/performance.jsonl
: > "$out"
for n in "${counts[@]}"; do
  for run in 1 2 3; do
    echo "--- $n subscribers, run $run" >&2
    "$bin/sfu-load" --spawn "$bin/sfu --config cmd/sfu-load/load.yaml --listen 127.0.0.1:18555" \
      --url ws://127.0.0.1:18555/ws --subscribers "$n" --ramp 100/s --warmup 3s --duration 10s \
      --join-timeout 60s --json >> "$out"
  done
done
"$bin/sfu-load" plot "$out" > docs/performance.svg
echo "wrote $out and docs/performance.svg" >&2
