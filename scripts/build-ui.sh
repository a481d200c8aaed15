#!/usr/bin/env bash
# Bundle the web UI's front-end libraries from the npm registry into api/static/vendor (build
# time, pinned by ui/package-lock.json); the UI then loads nothing from a CDN at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=api/static/vendor
if [ -f "$out/uPlot.iife.min.js" ] && [ "$out/uPlot.iife.min.js" -nt ui/package-lock.json ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "build-ui: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
(cd ui && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p "$out"
cp ui/node_modules/uplot/dist/uPlot.iife.min.js ui/node_modules/uplot/dist/uPlot.min.css "$out/"
cp ui/node_modules/uplot/LICENSE "$out/uPlot.LICENSE"
echo "build-ui: bundled uPlot $(node -p "require('./ui/node_modules/uplot/package.json').version") into $out"
