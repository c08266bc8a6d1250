#!/usr/bin/env bash
# Startup benchmark: plain isolate vs isola's snapshot, lodash cold vs code cache.
# Fetches lodash from the npm registry (not committed) and runs the bench target.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./scripts/env.sh
assets=target/bench-assets
mkdir -p "$assets"
if [ ! -f "$assets/lodash.js" ]; then
  (cd "$assets" && npm pack lodash@4.17.21 --silent >/dev/null && tar xzf lodash-4.17.21.tgz package/lodash.js && mv package/lodash.js lodash.js && rm -rf package lodash-4.17.21.tgz)
fi
ISOLA_BENCH_LODASH="$PWD/$assets/lodash.js" cargo bench -p isola-core --bench startup "$@"
