#!/usr/bin/env bash
# Fetches the npm packages the third-party tests run unchanged as tenants
# (crates/isola-server/tests/it/npm_packages.rs) from the npm registry into
# target/npm-packages/NAME/package/, checking each tarball's SHA-256. Nothing
# of them is committed. Needs curl, tar and sha256sum; does nothing when they
# are there already.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/npm-packages
mkdir -p "$dest"
while read -r name version sha; do
  [ -f "$dest/$name/.ok-$version" ] && continue
  tmp=$(mktemp)
  curl -sSfL --retry 3 -o "$tmp" "https://registry.npmjs.org/$name/-/$name-$version.tgz"
  echo "$sha  $tmp" | sha256sum -c --quiet - || { echo "fetch-npm-packages: $name@$version: checksum mismatch" >&2; rm -f "$tmp"; exit 1; }
  rm -rf "${dest:?}/$name"
  mkdir -p "$dest/$name"
  tar xzf "$tmp" -C "$dest/$name"
  rm -f "$tmp"
  touch "$dest/$name/.ok-$version"
done <<'LIST'
hono 4.6.14 e6ce9131bdb005177789ff517e3cf472e3ef80651c21579e1f86534f48236095
zod 3.23.8 461cea3c57c75a4ee97bf678e9e4669d963fc57c6ecec93a858aba11ca709e19
jose 5.9.6 dc84a284af1a554208bdb1ef8c41cfa0652538078051bce712d196cfac4fa2c2
marked 15.0.4 bb835befb5ecdfefb38fea62818a89148b6821b88df149b21ae4ed07858a9ed6
nanoid 5.0.9 0df79f4c418c0908a1d08b37d23c0a48bab68e1b5ee449f3399c7a93939c11bd
ky 1.7.2 d8830d2a3c08841b7ef3bc809c10ed90ce300975f4449a2dedd02209c76224c7
aws4fetch 1.0.20 35d828a52d5f1f18fa069632ce6bb47f797aeac22c543a813511d0afc73dadff
LIST
