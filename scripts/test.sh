#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked
scripts/autobahn-quick.sh
