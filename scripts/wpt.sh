#!/usr/bin/env bash
# Runs the web-platform-tests of the API areas isola implements, from a WPT
# checkout at PATH, inside isola tenants, and prints the pass rate per
# directory (see scripts/wpt.py). Nothing of WPT is committed.
#
#   scripts/wpt.sh ~/src/wpt                 # the default directories
#   scripts/wpt.sh ~/src/wpt url dom/abort   # some
#   WPT_VERBOSE=1 scripts/wpt.sh ~/src/wpt url   # per file; =2 lists failing subtests
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/wpt.sh WPT_CHECKOUT [DIR ...]" >&2; exit 2; }
wpt="$1"; shift
[ -f "$wpt/resources/testharness.js" ] || { echo "$wpt is not a WPT checkout (no resources/testharness.js)" >&2; exit 2; }
cd "$(dirname "$0")/.."
. ./scripts/env.sh
cargo build --release -q -p isola-cli
exec python3 scripts/wpt.py ./target/release/isola "$wpt" "$@"
