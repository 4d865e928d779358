# syntax=docker/dockerfile:1
#
# ran-distill serving image: the O-RAN near-RT RIC xApp (gRPC :50051, HTTP :8080).
#
#   docker build -t ran-distill:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -p 50051:50051 -p 8080:8080 ran-distill:0.1.0
#
# Only the project's base dependencies are installed (no extras, so no torch, gymnasium,
# matplotlib or ray); the training package is not in the build context (.dockerignore),
# so it is not in the wheel either. tests/deploy/test_image_venv.py runs the same
# commands in a clean virtual environment.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: wheel + venv
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The context is an allow-list (.dockerignore): pyproject.toml, README.md, linkadapt/,
# service/, models/default/ and the xApp descriptor.
COPY . .

# Build the project's wheel, then install it with its base dependencies only (no extras)
# into a self-contained virtual environment that the runtime stage copies as is. The build
# fails if torch or the training package got in. For the < 400 MB budget
# (docs/deployment.md) the venv keeps no bytecode (+0.7 s of imports at start; the root
# filesystem is read-only, so nothing is written at run time either), no third-party
# test suites, and no pip/setuptools.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-compile /wheels/ran_distill-*.whl \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel \
    && ! /opt/venv/bin/python -I -c "import torch" 2>/dev/null \
    && ! /opt/venv/bin/python -I -c "import training" 2>/dev/null \
    && /opt/venv/bin/python -I -c "import service, linkadapt, onnxruntime, grpc, fastapi" \
    && find /opt/venv/lib -type d \( -name __pycache__ -o -name tests \) -prune -exec rm -rf {} +

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

LABEL org.opencontainers.image.title="ran-distill" \
      org.opencontainers.image.description="Distilled DQN link adaptation for 5G NR, served as an O-RAN near-RT RIC xApp" \
      org.opencontainers.image.licenses="Apache-2.0"

# Read-only root filesystem: /tmp (an emptyDir or tmpfs) is the only writable path, so
# HOME, TMPDIR and every cache point there, and Python writes no bytecode.
ENV PATH=/opt/venv/bin:${PATH} \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    CONFIG_FILE=/opt/ric/config/config-file.json \
    RAN_DISTILL_MODEL_DIR=/opt/ran-distill/models/default

RUN groupadd --system --gid "${APP_GID}" ranxapp \
    && useradd --system --uid "${APP_UID}" --gid "${APP_GID}" \
       --home-dir /tmp --no-create-home --shell /usr/sbin/nologin ranxapp

COPY --from=build /opt/venv /opt/venv
# The default model and descriptor are baked in (root-owned, read-only for the app user);
# Helm mounts its ConfigMap over /opt/ric/config and may mount another model directory.
COPY --from=build /src/models/default /opt/ran-distill/models/default
COPY --from=build /src/xapp-descriptor/config-file.json /opt/ric/config/config-file.json

USER ${APP_UID}:${APP_GID}
WORKDIR /tmp

EXPOSE 50051 8080

HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/ric/v1/health/alive', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["ran-distill", "serve"]
CMD ["--model", "/opt/ran-distill/models/default", "--grpc-port", "50051", "--http-port", "8080"]
