"""Every Temporal dev server started through common.temporal_dev carries its dynamic config."""

from __future__ import annotations

from pathlib import Path

from common.temporal_dev import QUICK_DELETES, dev_server_argv


def dynamic_config(argv: list[str]) -> dict[str, str]:
    values = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--dynamic-config-value"]
    return dict(value.split("=", 1) for value in values)


def test_the_transfer_queue_read_limit_is_lifted_with_or_without_the_callers_config() -> None:
    alone = dynamic_config(dev_server_argv("127.0.0.1:7233", None))
    with_quick_deletes = dynamic_config(dev_server_argv("127.0.0.1:7233", Path("t.sqlite"), QUICK_DELETES))
    for config in (alone, with_quick_deletes):
        assert int(config["history.transferProcessorMaxPollRPS"]) >= 1000
    assert QUICK_DELETES.items() <= with_quick_deletes.items()


def test_the_callers_value_wins() -> None:
    argv = dev_server_argv("127.0.0.1:7233", None, {"history.transferProcessorMaxPollRPS": "50"})
    assert dynamic_config(argv)["history.transferProcessorMaxPollRPS"] == "50"
