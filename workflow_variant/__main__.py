"""python -m workflow_variant {init,up,role,prune} -- see README."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from common.cli import VariantSpec, main
from workflow_variant.controls import parse_control
from workflow_variant.dev_server import temporal_dev_server
from workflow_variant.init import RESET_HELP, init
from workflow_variant.roles import ROLES
from workflow_variant.tools import TOOLS

SPEC = VariantSpec(
    package="workflow_variant",
    title="Workflow variant (Temporal workflow + idempotent activities)",
    default_api_port=8001,
    init=init,
    roles=ROLES,
    parse_control=parse_control,
    dependencies=temporal_dev_server,
    reset_help=RESET_HELP,
    tools=TOOLS,
)


def exit_without_teardown(code: int) -> NoReturn:
    """End the process once main() returned, skipping the interpreter's own teardown.

    By then everything is shut down in order, inside the event loop: a worker has stopped
    polling and its running activities have finished and reported (roles.py), the database pools
    are closed, the output is flushed. What is left are the Temporal SDK's Rust (Tokio) threads,
    which the SDK offers no way to stop; if one of them touches Python while CPython finalizes,
    the process aborts ("Fatal Python error: PyGILState_Release ... finalizing", exit -6, about
    one stop in ten here; temporalio/sdk-python#300). A clean stop must exit 0, so we leave the
    teardown out.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_without_teardown(main(SPEC))
