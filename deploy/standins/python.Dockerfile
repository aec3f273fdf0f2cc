# Stand-in for python:3.11.11-slim-bookworm, from Debian's own Python 3.11 (deploy/standins/README.md).
# extra-ca/: the build machine's own CA certificates (build.sh copies them), for a TLS-inspecting
# egress proxy between the builds and PyPI.
ARG BASE=cc-standin/debian:bookworm
FROM ${BASE}
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* && update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
