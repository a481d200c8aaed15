#!/usr/bin/env bash
# Bundle the web UI's front-end libraries from the npm registry into api/static/vendor (build
# time, pinned by ui/package-lock.json); the UI then loads nothing from a CDN at run time.
# uPlot draws the charts; Swagger UI is the API explorer (api/static/api.html).
set -euo pipefail
cd "$(dirname "$0")/.."
out=api/static/vendor
built=(uPlot.iife.min.js uPlot.min.css uPlot.LICENSE
       swagger-ui-bundle.js swagger-ui.css swagger-ui.LICENSE swagger-ui.NOTICE)
fresh=1
for f in "${built[@]}"; do  # every file there and newer than the lock file: nothing to do
  if [ ! -f "$out/$f" ] || [ ! "$out/$f" -nt ui/package-lock.json ]; then fresh=0; fi
done
[ "$fresh" = 1 ] && exit 0
command -v npm >/dev/null || { echo "build-ui: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
# --ignore-scripts: neither library needs an install script (swagger-ui-dist's dependency
# @scarf/scarf has one that reports the install to a third party)
(cd ui && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
mkdir -p "$out"
cp ui/node_modules/uplot/dist/uPlot.iife.min.js ui/node_modules/uplot/dist/uPlot.min.css "$out/"
cp ui/node_modules/uplot/LICENSE "$out/uPlot.LICENSE"
cp ui/node_modules/swagger-ui-dist/swagger-ui-bundle.js ui/node_modules/swagger-ui-dist/swagger-ui.css "$out/"
cp ui/node_modules/swagger-ui-dist/LICENSE "$out/swagger-ui.LICENSE"
cp ui/node_modules/swagger-ui-dist/NOTICE "$out/swagger-ui.NOTICE"
version() { node -p "require('./ui/node_modules/$1/package.json').version"; }
echo "build-ui: bundled uPlot $(version uplot) and Swagger UI $(version swagger-ui-dist) into $out"
