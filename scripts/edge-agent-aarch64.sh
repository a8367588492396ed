#!/usr/bin/env bash
# Builds the edge agent for 64-bit ARM camera hardware (aarch64-unknown-linux-gnu,
# glibc) on an x86-64 machine; with --check it also runs the agent's tests on that
# build under qemu-user and the release binary itself. Prints the binary's path last.
#
#   scripts/edge-agent-aarch64.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
    step "adding Rust's standard library for $target"
    rustup target add "$target"
fi
command -v aarch64-linux-gnu-gcc >/dev/null || apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc

step "building edge-agent for $target"
cargo build --release --locked --target "$target" -p kozomol-edge-agent --bin edge-agent
bin="target/$target/release/edge-agent"

if [ "${1:-}" = --check ]; then
    command -v qemu-aarch64 >/dev/null || apt_install qemu-user
    ensure_services
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"
    step "the edge agent's tests, built for $target, under qemu-user"
    # qemu-user cannot start a foreign binary from inside one, so the test that starts
    # the agent's own binary is left out here and the binary is run below instead.
    cargo test --locked --target "$target" -p kozomol-edge-agent -- \
        --skip the_binary_makes_keys_and_runs_the_spool_until_sigterm
    step "the release binary under qemu-user"
    keys="$(mktemp -d)"
    qemu-aarch64 -L "$sysroot" "$bin" keygen --out "$keys"
    test -s "$keys/camera.key" && test -s "$keys/camera.pub"
    rm -rf "$keys"
fi
echo "$bin"
