#!/usr/bin/env bash
# Builds stand-ins for the third-party images of docker-compose.yml from Debian's packages and
# PyPI, for a machine whose Docker engine reaches no image registry (deploy/standins/README.md).
# Needs a running Docker engine, debootstrap, and root. Prints the env file to use them.
set -euo pipefail
cd "$(dirname "$0")"
base=cc-standin/debian:bookworm
if ! docker image inspect "$base" >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  echo "== $base (debootstrap)"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
  rm -rf "$rootfs"
fi
build() { echo "== $1"; DOCKER_BUILDKIT=0 docker build -q -t "$1" "${@:2}" 2>&1 >/dev/null | grep -v -e DEPRECATED -e "^ " -e "^$" || true; }
ctx=$(mktemp -d)
mkdir "$ctx/extra-ca" && cp python.Dockerfile "$ctx/Dockerfile"
cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
build cc-standin/python:3.11-bookworm "$ctx"
rm -rf "$ctx"
build cc-standin/postgres:15 postgres
build cc-standin/rabbitmq:3.10 rabbitmq
build cc-standin/temporal-dev:1.9.1 -f temporal.Dockerfile .
build cc-standin/nginx:1.22 nginx
echo "== done: docker compose --env-file deploy/standins/standins.env ..."
