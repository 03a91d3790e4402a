# syntax=docker/dockerfile:1
# Inferflow for Python: multi-stage image. Stage 1 builds wheels of the core and the chosen plugins,
# stage 2 installs only those wheels into a slim runtime that runs as a non-root user.
#
#   docker build -t inferflow .                                   # core + every first-party plugin
#   docker build --build-arg PLUGINS="onfs predator" -t inferflow-min .
#   docker run -p 8085:8085 -p 8086:8086 -e ETCD_SERVER=http://etcd:2379 inferflow
#
# PLUGINS is a space-separated list of plugin directories under plugins/ (inferflow_<name>).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PLUGINS="onfs predator numerix logging"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY inferflow_core ./inferflow_core
COPY plugins ./plugins
RUN set -eu; \
    pip wheel --no-cache-dir --wheel-dir /wheels .; \
    for p in ${PLUGINS}; do \
      test -f "plugins/inferflow_${p}/pyproject.toml" || { echo "unknown plugin: ${p}" >&2; exit 1; }; \
      pip wheel --no-cache-dir --find-links /wheels --wheel-dir /wheels "./plugins/inferflow_${p}"; \
    done

FROM ${PYTHON_IMAGE} AS runtime
ARG PLUGINS="onfs predator numerix logging"
LABEL org.opencontainers.image.title="inferflow" \
      org.opencontainers.image.description="Real-time ML inference orchestration (wire-compatible with Meesho's Inferflow)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.inferflow.plugins="${PLUGINS}"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_PORT=8085 \
    INFERFLOW_HTTP_PORT=8086 \
    INFERFLOW_LOG_DIR=/var/lib/inferflow/logs
RUN groupadd --system --gid 10001 inferflow \
 && useradd --system --uid 10001 --gid inferflow --home-dir /var/lib/inferflow --create-home inferflow
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl \
 && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/inferflow
EXPOSE 8085 8086
# readiness of the HTTP side port: 200 once configs are loaded and the gRPC server serves
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('INFERFLOW_HTTP_PORT', '8086'), timeout=2).status == 200 else 1)"]
ENTRYPOINT ["inferflow", "serve"]
