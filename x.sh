#!/usr/bin/env bash
# Developer entry point. `./x.sh run` builds isola (release) and runs the main
# job on the embedded defaults; `./x.sh test` runs what CI runs.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/env.sh
cmd="${1:-help}"
shift || true
case "$cmd" in
  run)
    cargo build --release -p isola-cli
    exec ./target/release/isola run examples/hello/worker.js --verbose --request '{"url":"http://acme.localhost/hello"}' "$@"
    ;;
  test)
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace "$@"
    ;;
  bench)
    exec bash bench/startup.sh "$@"
    ;;
  *)
    echo "usage: ./x.sh run | test | bench" >&2
    exit 2
    ;;
esac
