# syntax=docker/dockerfile:1
# Consentry API image. Multi-stage: build a virtualenv with the pinned dependencies, then copy
# only that venv into a slim runtime image that runs as an unprivileged user.
#
#   docker build -t consentry .
#   make image-smoke    (ops/image-smoke: build, run in production mode on PostgreSQL, check)
#   docker run -p 8000:8000 -e CONSENTRY_DATABASE_URL=postgres://... \
#     -v /secrets:/run/secrets:ro -e CONSENTRY_KEK_FILE=/run/secrets/kek.json \
#     -e CONSENTRY_SIGNING_KEY_FILE=/run/secrets/signing.pem \
#     -e CONSENTRY_INDEX_KEY_FILE=/run/secrets/index.key consentry
#
# Production mode is the default here: it refuses to start on generated development keys.

ARG PYTHON=python:3.11-slim-bookworm

FROM ${PYTHON} AS build
# Both stages carry the label, so ops/image-smoke can prune exactly its own superseded images.
LABEL org.opencontainers.image.title=consentry
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first: this layer is rebuilt only when pyproject.toml or constraints.txt change,
# not on every code change. The runtime dependency list is read from pyproject.toml itself.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install -c constraints.txt -r requirements.txt
# Then the project: the packages api, schema and partners with every subpackage (pyproject's
# [tool.setuptools.packages.find]). Bytecode compiled here stays: the root filesystem may be
# read-only at run time, and a start should not recompile every module.
COPY README.md ./
COPY api ./api
COPY schema ./schema
COPY partners ./partners
RUN pip install --no-deps . && pip check

FROM ${PYTHON} AS runtime
LABEL org.opencontainers.image.title=consentry
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONSENTRY_ENV=production \
    CONSENTRY_DATA_DIR=/var/lib/consentry
RUN groupadd --gid 10001 consentry \
 && useradd --uid 10001 --gid consentry --home-dir /var/lib/consentry \
      --shell /usr/sbin/nologin consentry \
 && install -d -o consentry -g consentry -m 0700 /var/lib/consentry
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/consentry
# State that must outlive the container lives here: the shred log (docs/operations.md,
# "Restore"), and the SQLite files when no database URL is set. Mount a named volume here, shared
# by the API and worker containers of a host: production refuses to start when it cannot write
# the shred log (no VOLUME instruction: buildah's handling of it hides a bind mount).
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# `consentry serve` applies pending migrations, then runs uvicorn on the app (no reload, no
# server header, proxy headers honoured for the client address used by rate limits).
CMD ["consentry", "serve", "--host", "0.0.0.0", "--port", "8000"]
