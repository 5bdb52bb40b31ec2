#!/usr/bin/env bash
# Fuzzes the whole-frame parser (fuzz/fuzz_targets/frame.rs) for SECONDS
# (default 60) under libFuzzer, with nightly rustc's coverage
# instrumentation (DESIGN.md). Starts from the committed seed corpus
# (fuzz/corpus/frame: real captured frames and a few hand-made ones) and
# works on a temporary copy, so the repository's corpus stays small.
# Exits non-zero on a crash; the input that crashed is kept in
# fuzz/artifacts/.
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
mkdir "$work/corpus"
cp fuzz/corpus/frame/* "$work/corpus/"
mkdir -p fuzz/artifacts
status=0
fuzz/target/release/frame "$work/corpus" -max_total_time="$seconds" -max_len=2048 \
  -timeout=10 -rss_limit_mb=2048 -artifact_prefix=fuzz/artifacts/ -print_final_stats=1 \
  >"$work/log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  # The panic message and the crashing input's name are near the end.
  tail -n 60 "$work/log"
  echo "fuzz: the frame parser crashed (exit $status); input in fuzz/artifacts/" >&2
  exit "$status"
fi
grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/log"
echo "fuzz: no crash in ${seconds}s; corpus grew from $(ls fuzz/corpus/frame | wc -l) to $(ls "$work/corpus" | wc -l) inputs"
