FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sflowpipe ./sflowpipe
COPY ingest ./ingest
COPY processors ./processors
COPY sinks ./sinks
COPY schemas ./schemas
COPY bench ./bench
COPY examples ./examples
RUN pip install --no-cache-dir .
ENTRYPOINT ["sflowpipe"]
