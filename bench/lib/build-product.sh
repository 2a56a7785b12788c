#!/usr/bin/env bash
# Builds the committed product (git HEAD, or REV) into a scratch folder: dist (tsc, then the client
# bundle), bin with its *.cloud names (symlinks to run.js, as installed), services, and a link to
# node_modules. Benches run that build, so a result names the commit it measured and never picks up
# half-edited files, nor rewrites the shared dist/.
# Usage: build-product.sh OUTDIR [REV]   (prints the path of bin/run.js)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build-product.sh OUTDIR [REV]}
rev=${2:-HEAD}
mkdir -p "$out"
paths=(src services bin package.json tsconfig.json)
git -C "$root" cat-file -e "$rev:scripts/bundle-client.mjs" 2>/dev/null && paths+=(scripts)
git -C "$root" archive "$rev" "${paths[@]}" | tar -x -C "$out"
# the *.cloud names are symlinks in git; a user runs them, so must a bench
for name in $(git -C "$root" ls-tree --name-only "$rev" bin/ | grep '\.cloud$'); do
  [ -L "$out/$name" ] || ln -sfn run.js "$out/$name"
done
ln -sfn "$root/node_modules" "$out/node_modules"
"$root/node_modules/.bin/tsc" -p "$out/tsconfig.json" >&2
if [ -f "$out/scripts/bundle-client.mjs" ]; then
  node "$out/scripts/bundle-client.mjs" "$out" >&2
fi
if [ -f "$out/scripts/oclif-manifest.mjs" ]; then
  node "$out/scripts/oclif-manifest.mjs" "$out" >&2
fi
echo "$out/bin/run.js"
