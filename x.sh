#!/usr/bin/env bash
# Developer entry point. `./x.sh run` builds isola (release) and starts
# `isola serve` on the embedded defaults (data plane 127.0.0.1:8787, admin API
# 127.0.0.1:8788, data in ~/.local/share/isola); `./x.sh test` runs what CI runs.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/env.sh
cmd="${1:-help}"
shift || true
case "$cmd" in
  run)
    cargo build --release -p isola-cli
    exec ./target/release/isola serve "$@"
    ;;
  test)
    # npm packages the third-party tests run as tenants (not committed).
    bash scripts/fetch-npm-packages.sh
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace "$@"
    ;;
  bench)
    bash bench/startup.sh
    exec bash bench/load.sh
    ;;
  *)
    echo "usage: ./x.sh run | test | bench" >&2
    exit 2
    ;;
esac
