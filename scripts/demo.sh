#!/usr/bin/env bash
# Builds kozomol and runs it on the embedded defaults with demo accounts and simulated
# cameras: http://127.0.0.1:8080, MQTT on 127.0.0.1:1884, data in ./kozomol-data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_onnxruntime
step "building kozomol (release)"
cargo build --release --locked -p kozomol-server -p kozomol-edge-agent
step "starting: tokens are in ./kozomol-data/demo-credentials.json; Ctrl-C stops"
exec ./target/release/kozomol serve --demo "$@"
