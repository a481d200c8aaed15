# The sflowpipe image: every subcommand (ingest, process, clickhouse, prometheus, syslog, api, ...).

# The web UI's front-end libraries, from the npm registry at build time, pinned by
# ui/package-lock.json (what scripts/build-ui.sh does on a workstation).
FROM node:20-slim AS ui
WORKDIR /ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sflowpipe ./sflowpipe
COPY ingest ./ingest
COPY processors ./processors
COPY sinks ./sinks
COPY schemas ./schemas
COPY bench ./bench
COPY api ./api
COPY --from=ui /ui/node_modules/uplot/dist/uPlot.iife.min.js /ui/node_modules/uplot/dist/uPlot.min.css \
     ./api/static/vendor/
COPY --from=ui /ui/node_modules/uplot/LICENSE ./api/static/vendor/uPlot.LICENSE
COPY --from=ui /ui/node_modules/swagger-ui-dist/swagger-ui-bundle.js /ui/node_modules/swagger-ui-dist/swagger-ui.css \
     ./api/static/vendor/
COPY --from=ui /ui/node_modules/swagger-ui-dist/LICENSE ./api/static/vendor/swagger-ui.LICENSE
COPY --from=ui /ui/node_modules/swagger-ui-dist/NOTICE ./api/static/vendor/swagger-ui.NOTICE
# Installed in place (editable): the code that runs is the code copied above, data files (Avro
# schemas, ClickHouse migrations, default definitions, the web UI) beside their modules.
RUN pip install -e . \
 && useradd --system --uid 10001 --home-dir /var/lib/sflowpipe --shell /usr/sbin/nologin sflowpipe \
 && mkdir -p /var/lib/sflowpipe/spill /var/lib/sflowpipe/processors \
 && chown -R sflowpipe: /var/lib/sflowpipe
USER sflowpipe
# relative defaults (./data/...) land here
WORKDIR /var/lib/sflowpipe
ENTRYPOINT ["sflowpipe"]
CMD ["--help"]
