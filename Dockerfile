# The aggregator image used by compose.yaml: the package with its PostgreSQL extra
# (psycopg, procrastinate). One image for the workers and the publisher.
FROM python:3.11-slim
RUN useradd --system --uid 101 --home /var/lib/aggregator --shell /usr/sbin/nologin aggregator \
    && install -d -o aggregator -g aggregator /var/lib/aggregator
WORKDIR /opt/aggregator
COPY pyproject.toml README.md ./
COPY aggregator ./aggregator
RUN pip install --no-cache-dir '.[postgres]'
USER aggregator
ENV AGGREGATOR_CONFIG=/etc/aggregator/aggregator.yaml AGGREGATOR_LOG_FORMAT=json
ENTRYPOINT ["aggregator"]
CMD ["run"]
