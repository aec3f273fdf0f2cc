"""Every Temporal dev server the project starts carries the same dynamic config (common.temporal_dev)."""

from __future__ import annotations

from pathlib import Path

from common.temporal_dev import QUICK_DELETES, dev_server_argv


def dynamic_config(argv: list[str]) -> dict[str, str]:
    values = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--dynamic-config-value"]
    return dict(value.split("=", 1) for value in values)


def test_the_transfer_queue_read_limit_is_lifted_with_or_without_the_callers_config() -> None:
    for argv in (
        dev_server_argv("127.0.0.1:7233", None),
        dev_server_argv("127.0.0.1:7233", Path("t.sqlite"), QUICK_DELETES),
    ):
        config = dynamic_config(argv)
        assert int(config["history.transferProcessorMaxPollRPS"]) >= 1000
    assert QUICK_DELETES.items() <= dynamic_config(argv).items()
