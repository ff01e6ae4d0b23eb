#!/usr/bin/env bash
# Runs every benchmark once at its smoke size (TGWA_BENCH_SMOKE=1: a few accounts, a second
# of idle) and fails when one fails, panics or prints no `ratio=` line (or an explicit
# `skipped=` line, for a benchmark whose outside tool is missing), so a benchmark cannot
# rot unseen. The benchmarks are those Cargo.toml registers ([[bench]] name = "...").
# Usage: scripts/bench_smoke.sh [bench ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ]; then
    benches=("$@")
else
    mapfile -t benches < <(awk '/^\[\[bench\]\]/{b=1; next} b && /^name *=/{gsub(/"/, "", $3); print $3; b=0}' Cargo.toml)
fi
[ "${#benches[@]}" -gt 0 ] || { echo "bench_smoke: no benchmarks found in Cargo.toml" >&2; exit 1; }

# Build them all first, so a compile error is reported once and the runs below only run.
cargo test --workspace --features insecure-fake-whatsapp --benches --no-run

failed=()
for b in "${benches[@]}"; do
    echo "bench_smoke: $b"
    out=$(mktemp)
    if ! TGWA_BENCH_SMOKE=1 cargo test --features insecure-fake-whatsapp --bench "$b" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        failed+=("$b (failed)")
    elif grep -q 'skipped=' "$out"; then
        # A benchmark that needs something CI lacks (peer: Node and benches/peer/node_modules)
        # says so in one line; that is a pass, and the line is shown.
        grep 'skipped=' "$out"
    elif ! grep -q 'ratio=' "$out"; then
        tail -n 40 "$out" >&2
        failed+=("$b (no ratio= line)")
    else
        grep 'ratio=' "$out"
    fi
    rm -f "$out"
done

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'bench_smoke: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "bench_smoke: all ${#benches[@]} benchmarks ran and printed ratio="
