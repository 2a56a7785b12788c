#!/usr/bin/env bash
# Builds the committed product (git HEAD, or REV) into a scratch folder: dist, bin, services, and a
# link to node_modules. Benches run that build, so a result names the commit it measured and never
# picks up half-edited files, nor rewrites the shared dist/.
# Usage: build-product.sh OUTDIR [REV]   (prints the path of bin/run.js)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build-product.sh OUTDIR [REV]}
rev=${2:-HEAD}
mkdir -p "$out"
git -C "$root" archive "$rev" src services bin package.json tsconfig.json | tar -x -C "$out"
ln -sfn "$root/node_modules" "$out/node_modules"
"$root/node_modules/.bin/tsc" -p "$out/tsconfig.json"
echo "$out/bin/run.js"
