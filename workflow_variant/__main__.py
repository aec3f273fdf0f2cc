"""python -m workflow_variant {init,up,role} -- see README."""

from __future__ import annotations

import sys

from common.cli import VariantSpec, main
from workflow_variant.controls import parse_control
from workflow_variant.dev_server import temporal_dev_server
from workflow_variant.init import init
from workflow_variant.roles import ROLES

SPEC = VariantSpec(
    package="workflow_variant",
    title="Workflow variant (Temporal workflow + idempotent activities)",
    default_api_port=8001,
    init=init,
    roles=ROLES,
    parse_control=parse_control,
    dependencies=temporal_dev_server,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
