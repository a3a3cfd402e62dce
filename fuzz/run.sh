#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20), starting from the committed seed
# corpus in fuzz/corpus/<target>/; exits non-zero on the first crash, leak, timeout or
# memory blow-up (the input is kept in fuzz/artifacts/<target>/).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain; without
# nightly it uses the default toolchain with RUSTC_BOOTSTRAP=1, which accepts the same
# unstable flags. What the fuzzer finds beyond the seeds goes to a scratch directory, so
# the committed corpus changes only by hand (`cargo fuzz cmin`).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(frame_decode json_bodies token mime_sniff thumbnail)
fi

if rustup run nightly rustc --version >/dev/null 2>&1; then
  cargo=(cargo +nightly fuzz)
else
  echo "fuzz: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  cargo=(cargo fuzz)
fi
# Its own directory: the instrumented build must not evict the ordinary one.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for target in "${targets[@]}"; do
  flags=(-max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048)
  if [ "$target" = thumbnail ]; then
    # A decoded picture is bounded by the pixel budget (4 MB at the target's 1M pixels
    # plus the decoder's 64 MiB allowance); one allocation past 256 MB is a blow-up.
    flags+=(-malloc_limit_mb=256)
  fi
  echo "== fuzz $target (${seconds}s)"
  mkdir -p "$scratch/$target"
  # 16 codegen units, not cargo-fuzz's 1: the instrumented build of the whole server
  # takes about half as long on two cores, for a slightly slower fuzzer.
  if ! "${cargo[@]}" run --codegen-units 16 --target-dir "$target_dir" "$target" "$scratch/$target" "corpus/$target" -- \
    "${flags[@]}" 2>&1 | { grep -v '^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\)' || true; }; then
    echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a failure"
