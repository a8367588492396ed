#!/usr/bin/env bash
# The fault suite in full: every fault test (tests/tests/e2e/fault_suite.rs and
# faults.rs) with 10,000-event streams, one test at a time so each has the machine's
# cores, on release binaries (recognition, which the suite waits for, is several times
# faster than in a debug build). `scripts/test.sh` runs the same tests with short
# streams on debug binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_services
ensure_nextest
ensure_onnxruntime
export KOZOMOL_TEST_POSTGRES_URL="${KOZOMOL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export KOZOMOL_FAULT_EVENTS="${KOZOMOL_FAULT_EVENTS:-10000}"

step "build the binaries (release)"
cargo build --release --workspace --bins --locked
export KOZOMOL_BIN_DIR="$PWD/target/release"
step "fault suite, $KOZOMOL_FAULT_EVENTS events per stream"
cargo nextest run -p kozomol-tests --locked --no-fail-fast --test-threads 1 \
    -E 'test(/^fault_suite::|^faults::/)' "$@"
