# syntax=docker/dockerfile:1
# Inferflow for Python: multi-stage image. Stage 1 installs the core and the chosen plugins into a
# virtual environment in ONE pip resolution, pinned by requirements/lock.txt; stage 2 copies that
# environment into a slim runtime (no pip, setuptools or wheel) that runs as a non-root user.
#
#   docker build -t inferflow .                                   # core + every first-party plugin
#   docker build --build-arg PLUGINS="onfs predator" -t inferflow-min .
#   docker run -p 8085:8085 -p 8086:8086 -e ETCD_SERVER=http://etcd:2379 inferflow
#   docker run --rm inferflow demo                                # the demo, from the image
#
# PLUGINS is a space-separated list of plugin directories under plugins/ (inferflow_<name>).
# scripts/image-smoke.sh builds this file (docker, or buildah where no daemon runs) and serves a request.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PLUGINS="onfs predator numerix logging"
# Optional: a CA bundle for pip where PyPI is reached through a proxy with its own CA (a file the build
# mounts, e.g. buildah bud --volume); unset by default.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CONSTRAINT=/src/requirements/lock.txt
WORKDIR /src
COPY requirements/lock.txt ./requirements/lock.txt
COPY pyproject.toml README.md LICENSE ./
COPY inferflow_core ./inferflow_core
COPY plugins ./plugins
# The extras a deployed plugin needs: ONNX Runtime for onnx:// endpoints, diskcache for the L2 cache.
RUN set -eu; \
    pkgs="."; \
    for p in ${PLUGINS}; do \
      test -f "plugins/inferflow_${p}/pyproject.toml" || { echo "unknown plugin: ${p}" >&2; exit 1; }; \
      case "${p}" in predator) extra="[onnx]" ;; onfs) extra="[disk-cache]" ;; *) extra="" ;; esac; \
      pkgs="${pkgs} ./plugins/inferflow_${p}${extra}"; \
    done; \
    python -m venv /opt/inferflow; \
    /opt/inferflow/bin/python -m pip install --no-compile ${pkgs}; \
    /opt/inferflow/bin/python -m pip uninstall -y -q pip setuptools wheel 2>/dev/null || true; \
    rm -rf /opt/inferflow/lib/python3.11/site-packages/pyarrow/include \
           /opt/inferflow/lib/python3.11/site-packages/pyarrow/tests; \
    /opt/inferflow/bin/python -m compileall -q /opt/inferflow/lib/python3.11/site-packages >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG PLUGINS="onfs predator numerix logging"
LABEL org.opencontainers.image.title="inferflow" \
      org.opencontainers.image.description="Real-time ML inference orchestration (wire-compatible with Meesho's Inferflow)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.inferflow.plugins="${PLUGINS}"
ENV PATH=/opt/inferflow/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_PORT=8085 \
    INFERFLOW_HTTP_PORT=8086 \
    INFERFLOW_LOG_DIR=/var/lib/inferflow/logs
# The base image's own pip/setuptools/wheel are not needed at run time.
RUN (python3 -m pip uninstall -y -q pip setuptools wheel 2>/dev/null || true) \
 && groupadd --gid 10001 inferflow \
 && useradd --uid 10001 --gid inferflow --no-log-init --home-dir /var/lib/inferflow --create-home inferflow
COPY --from=build /opt/inferflow /opt/inferflow
USER 10001:10001
WORKDIR /var/lib/inferflow
EXPOSE 8085 8086
# readiness of the HTTP side port: 200 once configs are loaded, no model is rejected and gRPC serves
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('INFERFLOW_HTTP_PORT', '8086'), timeout=2).status == 200 else 1)"]
ENTRYPOINT ["inferflow"]
CMD ["serve"]
