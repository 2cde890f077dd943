#!/usr/bin/env bash
# Run every fuzz target (or those named) for SECONDS each (default 600), one after another,
# on the nightly toolchain: `fuzz/run.sh [-t SECONDS] [TARGET...]`. Needs cargo-fuzz
# (`cargo install cargo-fuzz`). A crash stops the run and leaves its input under
# fuzz/artifacts/TARGET/; add it as a regression case before fixing.
set -euo pipefail
cd "$(dirname "$0")"
seconds=600
if [ "${1:-}" = "-t" ]; then seconds=$2; shift 2; fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do
  echo "== $t (${seconds}s)"
  mkdir -p "corpus/$t"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20
done
