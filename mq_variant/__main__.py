"""python -m mq_variant {init,up,role,dlq,reconcile,prune} -- see README."""

from __future__ import annotations

import sys

from common.cli import VariantSpec, main
from mq_variant.controls import parse_control
from mq_variant.init import init
from mq_variant.roles import ROLES
from mq_variant.tools import TOOLS

SPEC = VariantSpec(
    package="mq_variant",
    title="MQ variant (outbox + RabbitMQ + dedup)",
    default_api_port=8000,
    init=init,
    roles=ROLES,
    parse_control=parse_control,
    tools=TOOLS,
    left_out=lambda s: set() if s.relay_standby else {"order-relay-standby", "inventory-relay-standby"},
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
