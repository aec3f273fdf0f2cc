#!/bin/bash
set -euo pipefail
cat > /etc/rabbitmq/conf.d/10-standin.conf <<CONF
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}
loopback_users = none
log.console = true
log.file = false
CONF
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
  for home in /var/lib/rabbitmq /root; do
    printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$home/.erlang.cookie" && chmod 400 "$home/.erlang.cookie"
  done
  chown rabbitmq:rabbitmq /var/lib/rabbitmq/.erlang.cookie
fi
exec "$@"
