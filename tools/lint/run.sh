#!/usr/bin/env bash
# Lints the container build: Dockerfile.jvm with dockerfilelint, and the build context .dockerignore
# leaves (context.js). Installs the pinned linters from package-lock.json (npm ci) on first use.
# Exit status 0: clean. CI runs it from .ci/run; locally: tools/lint/run.sh
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
  echo "tools/lint/run.sh: npm (Node.js 18 or newer) is needed" >&2
  exit 2
fi
if [ ! -x node_modules/.bin/dockerfilelint ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/dockerfilelint ../../Dockerfile.jvm
node context.js
