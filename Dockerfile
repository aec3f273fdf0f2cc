# One image for every role of both variants and their `init` steps (see docker-compose.yml).
#   docker build -t consistency-compare:local .
#   docker run --rm consistency-compare:local python -m mq_variant role --help
# Dependencies are installed from deploy/requirements.lock (exact pins, written by deploy/lock.py
# from the environment the tests ran in), so the image runs what was tested.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY deploy/requirements.lock /tmp/requirements.lock
# --no-deps: the lock is the complete set; `pip check` fails the build if it is not.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-deps --only-binary=:all: -r /tmp/requirements.lock \
 && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY common ./common
COPY mq_variant ./mq_variant
COPY workflow_variant ./workflow_variant
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CC_RUN_DIR=/tmp/cc-run
# Compile once at build time (the app user cannot write __pycache__ under /app).
RUN python -m compileall -q /app
USER 10001:10001
# Every service in docker-compose.yml sets its own command (a role, or init).
CMD ["python", "-m", "mq_variant", "--help"]
