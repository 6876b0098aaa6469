#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with the nightly toolchain:
#   fuzz/run.sh            # 60 s per target, as CI does
#   fuzz/run.sh 3600       # an hour per target
#   fuzz/run.sh 600 jwt_validate
# New inputs go to fuzz/corpus-work/TARGET (not committed); the committed seeds in
# fuzz/corpus/TARGET are read but never written. A crash is saved under fuzz/artifacts/TARGET
# and fails the run; turn it into a regression test before fixing it.
# No sanitizer: the code under test is safe Rust, whose bugs here are panics, overflows and
# hangs, which libFuzzer catches by itself; without ASan the build is faster and each run
# executes several times more inputs.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/.."
targets=("${@:2}")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus-work/$target"
    echo "fuzz: $target for ${seconds}s"
    log="fuzz/corpus-work/$target.log"
    status=0
    cargo +nightly fuzz run --fuzz-dir fuzz -O --sanitizer none "$target" \
        "fuzz/corpus-work/$target" "fuzz/corpus/$target" \
        -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|INFO: Done)" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz: $target FAILED (exit $status); the input is under fuzz/artifacts/$target"
        exit "$status"
    fi
done
