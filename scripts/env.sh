# Sourced by ./x.sh, .ci/run and bench scripts: point the v8 crate at the
# offline V8 archive when it sits beside the repo (no download needed).
archive="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/rusty_v8/librusty_v8_release_x86_64-unknown-linux-gnu.a.gz"
if [ -z "${RUSTY_V8_ARCHIVE:-}" ] && [ -f "$archive" ]; then
  RUSTY_V8_ARCHIVE="$(realpath "$archive")"
  export RUSTY_V8_ARCHIVE
fi
unset archive
