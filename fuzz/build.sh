#!/bin/sh
# Builds the fuzz targets on the stable toolchain with the instrumentation
# `cargo fuzz build -s none` uses (no sanitizer), without needing cargo-fuzz:
#   sh fuzz/build.sh [TARGET...]   then   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET CORPUS -max_total_time=600
set -e
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
bins=""
for t in "$@"; do bins="$bins --bin $t"; done
exec cargo build --release --target x86_64-unknown-linux-gnu $bins
