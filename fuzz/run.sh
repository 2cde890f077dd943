#!/usr/bin/env bash
# Run every fuzz target (or those named) for SECONDS each (default 600), one after another,
# on the nightly toolchain: `fuzz/run.sh [-t SECONDS] [TARGET...]`. Needs cargo-fuzz
# (`cargo install cargo-fuzz`). The targets are built once, then each binary runs on its own
# corpus (fuzz/corpus/TARGET, kept between runs). A crash stops the run and leaves its input
# under fuzz/artifacts/TARGET/; add it as a regression case before fixing.
set -euo pipefail
cd "$(dirname "$0")"
seconds=600
if [ "${1:-}" = "-t" ]; then seconds=$2; shift 2; fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
for t in "${targets[@]}"; do
  echo "== $t (${seconds}s)"
  mkdir -p "corpus/$t" "artifacts/$t"
  "target/$triple/release/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20
done
