# syntax=docker/dockerfile:1
# Consentry API image. Multi-stage: build a virtualenv with the pinned dependencies, then copy
# only that venv into a slim runtime image that runs as an unprivileged user.
#
#   docker build -t consentry .
#   docker run -p 8000:8000 -e CONSENTRY_DATABASE_URL=postgres://... \
#     -v /secrets:/run/secrets:ro -e CONSENTRY_KEK_FILE=/run/secrets/kek.json \
#     -e CONSENTRY_SIGNING_KEY_FILE=/run/secrets/signing.pem \
#     -e CONSENTRY_INDEX_KEY_FILE=/run/secrets/index.key consentry
#
# Production mode is the default here: it refuses to start on generated development keys.

ARG PYTHON=python:3.11-slim-bookworm

FROM ${PYTHON} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (cached while only the code changes), then the project itself.
COPY pyproject.toml constraints.txt README.md ./
COPY api ./api
COPY schema ./schema
COPY partners ./partners
RUN pip install -c constraints.txt . \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONSENTRY_ENV=production \
    CONSENTRY_DATA_DIR=/var/lib/consentry
RUN groupadd --system --gid 10001 consentry \
 && useradd --system --uid 10001 --gid consentry --home-dir /var/lib/consentry \
      --shell /usr/sbin/nologin consentry \
 && install -d -o consentry -g consentry -m 0700 /var/lib/consentry
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/consentry
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# `consentry serve` applies pending migrations, then runs uvicorn on the app (no reload, no
# server header, proxy headers honoured for the client address used by rate limits).
CMD ["consentry", "serve", "--host", "0.0.0.0", "--port", "8000"]
