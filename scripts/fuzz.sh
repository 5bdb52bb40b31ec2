#!/usr/bin/env bash
# Runs the frame-parser fuzz target for SECONDS (default 60) under
# libFuzzer, with nightly rustc's coverage instrumentation (DESIGN.md).
# Starts from the committed seed corpus (fuzz/corpus/frame), works on a
# temporary copy, and fails on any crash (the input is kept in
# fuzz/artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
export PATH="$HOME/.cargo/bin:$PATH"
rt=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null | head -1)
[ -n "$rt" ] || { echo "fuzz: libclang-rt-14-dev is not installed" >&2; exit 1; }
# -Zallow-features= : Debian's proc-macro2 turns on nightly-only features
# that today's nightly no longer has; allowing none makes it use stable code.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 -Cdebug-assertions -Clink-arg=$rt -Clink-arg=-lstdc++ -Zallow-features="
cargo +nightly build --release --quiet --manifest-path fuzz/Cargo.toml --target-dir fuzz/target
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp fuzz/corpus/frame/* "$work/"
mkdir -p fuzz/artifacts
fuzz/target/release/frame "$work" -max_total_time="$seconds" -max_len=2048 \
  -artifact_prefix=fuzz/artifacts/ -print_final_stats=1 2>&1 | tail -n 12
