#!/usr/bin/env bash
# Runs every check CI runs: format, lints, the deploy files' schemas, and the whole
# test suite against SQLite, the embedded broker, the PostgreSQL on this machine, and
# Mosquitto brokers the tests start on free ports from this machine's mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_services
ensure_nextest
ensure_onnxruntime
ensure_stock_soap_client
ensure_browser
ensure_schemathesis
ensure_s3_standin

export KOZOMOL_TEST_POSTGRES_URL="${KOZOMOL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
bash scripts/validate-deploy.sh
step "build the binaries the end-to-end tests start"
cargo build --workspace --bins --locked
step "tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"
step "doc tests"
cargo test --workspace --doc --locked
