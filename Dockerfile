# aggregator as a container: `docker build -t aggregator .` then
#   docker run -d -p 127.0.0.1:8080:8080 -v aggregator-data:/data \
#     --ulimit nofile=65536:65536 -e AGGREGATOR_ADMIN_TOKEN=... aggregator
# The daemon raises its soft descriptor limit to the hard one (at most 65,536)
# and gives client connections what is left after a reserve for the store,
# seed scans, publishing and fetches: --ulimit sets the hard limit when the
# Docker daemon's default is low (docs/security.md, file descriptors).
# Seed files go in the volume's seeds/ folder; mount your own config over
# /etc/aggregator/aggregator.yaml (config/docker.yaml is the default).

FROM python:3.12-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/aggregator
COPY pyproject.toml README.md /src/
COPY aggregator /src/aggregator
RUN /opt/aggregator/bin/pip install '/src[postgres]'

FROM python:3.12-slim-bookworm
ENV PATH=/opt/aggregator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AGGREGATOR_CONFIG=/etc/aggregator/aggregator.yaml \
    AGGREGATOR_DATA_DIR=/data \
    AGGREGATOR_PORT=8080
RUN groupadd --system --gid 10001 aggregator \
    && useradd --system --uid 10001 --gid aggregator --home-dir /data --no-create-home aggregator \
    && mkdir -p /data/seeds \
    && chown -R aggregator:aggregator /data
COPY --from=build /opt/aggregator /opt/aggregator
COPY config/docker.yaml /etc/aggregator/aggregator.yaml
USER aggregator:aggregator
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AGGREGATOR_PORT', '8080'), timeout=4)"
ENTRYPOINT ["aggregator"]
CMD ["run"]
