#!/usr/bin/env bash
# Fuzzes each stream translator (fuzz/fuzz_targets/*) for SECONDS seconds
# (default 30): malformed or truncated SSE must never panic, never grow the
# translator's buffers past the cap, and always end with one terminal event.
#   bash fuzz/run.sh 20      # what .ci/run does
#   bash fuzz/run.sh 600     # a longer run by hand
# Installs cargo-fuzz (crates.io) when missing; builds with RUSTC_BOOTSTRAP=1
# on the stable toolchain (libFuzzer needs -Zsanitizer). Build output and the
# growing corpus live under target/fuzz/; seeds are fuzz/seeds/<target>/.
set -euo pipefail
secs="${1:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
targets=(openai_to_anthropic anthropic_to_openai)
for t in "${targets[@]}"; do
    corpus="$root/target/fuzz/corpus/$t"
    mkdir -p "$corpus"
    echo "fuzz/run.sh: $t for ${secs}s"
    log="$root/target/fuzz/$t.log"
    if ! cargo fuzz run --target-dir "$root/target/fuzz/build" "$t" "$corpus" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -max_len=16384 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz/run.sh: $t FAILED (log: $log; the crashing input is under fuzz/artifacts/$t/)"
        exit 1
    fi
    grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" || true
done
echo "fuzz/run.sh: ${#targets[@]} passed, 0 failed"
